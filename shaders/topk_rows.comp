// topk_rows.comp — the k best entries of each row, sorted best first, ties by lower index, NaN
// after every number, masked-out columns never; one workgroup per row, any k up to the row length.
// Selection is a radix select on the 64-bit composite (order key, index). A first pass histograms
// the top 11 key bits. When the bucket holding the k-th entry is small (the usual case), a second
// pass takes every entry of lower buckets and keeps that bucket's entries as candidates in shared
// memory, where the rest is decided: two reads of the row. Otherwise (heavy ties, huge k) more
// histogram passes narrow the prefix until the chosen bucket holds exactly the entries still
// needed. The selected entries are then bitonic-sorted (in shared memory up to SORT_MAX, in the
// output row beyond). Any subgroup size; 24 KiB of shared memory. With HAS_FLAGS it recomputes
// only the rows flagged in binding 5 (the rows topk's filter path could not settle, topk.c).
//! variant f16: -DX_F16
#version 450
#extension GL_EXT_control_flow_attributes : require
#if defined(X_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM float16_t
#else
#define ELEM float
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint LARGEST = 0;    // 1: largest first
layout(constant_id = 4) const uint HAS_IDX = 0;    // 1: indices come from binding 1 (merging)
layout(constant_id = 5) const uint HAS_MASK = 0;   // 1: binding 2 is a bitset of allowed columns
layout(constant_id = 6) const uint SORT_MAX = 2048;
layout(constant_id = 7) const uint HAS_FLAGS = 0;  // 1: rows whose flag in binding 5 is 0 are left alone

layout(binding = 0) readonly buffer X_ { ELEM X[]; };
layout(binding = 1) readonly buffer I_ { uint IDX[]; };
layout(binding = 2) readonly buffer M_ { uint MASK[]; };
layout(binding = 3) buffer V_ { float OV[]; };
layout(binding = 4) buffer O_ { uint OI[]; };
layout(binding = 5) readonly buffer F_ { uint FLAGS[]; };

layout(push_constant) uniform PC {
    uint m, n, k;
    uint ldx, x_off, ldi, i_off, ldv, v_off, ldo, o_off, mask_off, idx_base, f_off;
} pc;

const uint NAN_KEY = 0xFFFFFFFEu;   // after every number
const uint NONE = 0xFFFFFFFFu;      // padding: after everything

shared uint hist[2048];             // histogram; then candidates: keys [0, CAND), indices [CAND, 2 CAND)
const uint CAND = 1024u;
shared uint skey[SORT_MAX];
shared uint sidx[SORT_MAX];
shared uint s_count, s_need, s_total, s_bucket, s_below, s_done, s_ccount;
shared uint s_part[256];

// Sampled threshold (k up to 1024, long rows): 16 evenly spaced blocks of the row (1/16 of it)
// give a key threshold expected to pass k entries plus four standard deviations of the estimate;
// one read of the row then keeps every entry at or below it as a candidate (in skey/sidx), and
// the candidates are sorted in shared memory. When the guess passes fewer than k or more than
// SORT_MAX entries, the exact radix select below runs instead.
const uint FAST_K = 1024u, FAST_N = 8192u;

// Order key: unsigned compare of keys = the requested order of the floats.
uint order_key(float v) {
    if (isnan(v)) return NAN_KEY;
    uint u = floatBitsToUint(v == 0.0 ? 0.0 : v);  // -0 and +0 are equal
    uint key = (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
    return LARGEST == 1 ? min(~key, NAN_KEY - 1u) : min(key, NAN_KEY - 1u);
}

float key_value(uint key) {
    if (key == NAN_KEY) return uintBitsToFloat(0x7FC00000u);
    if (LARGEST == 1) key = ~key;
    uint u = (key & 0x80000000u) != 0u ? (key & 0x7FFFFFFFu) : ~key;
    return uintBitsToFloat(u);
}

bool allowed(uint j) {
    if (HAS_MASK == 0) return true;
    uint bit = pc.mask_off + j;
    return ((MASK[bit >> 5] >> (bit & 31u)) & 1u) != 0u;
}

uint index_of(uint row, uint j) {
    return HAS_IDX == 1 ? IDX[pc.i_off + row * pc.ldi + j] : j + pc.idx_base;
}

// (a_key, a_idx) before (b_key, b_idx)?
bool before(uint ak, uint ai, uint bk, uint bi) { return ak < bk || (ak == bk && ai < bi); }

// Bitonic sort of the first cnt (key, index) pairs of skey/sidx (cand = false) or of the
// candidates in hist (cand = true), ascending at every step: the first step of each stage
// compares mirrored pairs, so positions past cnt act as +infinity and never move.
void sort_shared(bool cand, uint cnt) {
    const uint WG = gl_WorkGroupSize.x;
    uint size = 1u;
    while (size < cnt) size <<= 1u;
    for (uint stage = 2u; stage <= size; stage <<= 1u) {
        for (uint step = stage >> 1u; step > 0u; step >>= 1u) {
            for (uint i = gl_LocalInvocationID.x; i < size / 2u; i += WG) {
                uint block = i / step, off = i % step, lo, hi;
                if (step == stage >> 1u) { lo = block * stage + off; hi = block * stage + stage - 1u - off; }
                else { lo = block * 2u * step + off; hi = lo + step; }
                if (hi >= cnt) continue;
                if (cand) {
                    if (before(hist[hi], hist[CAND + hi], hist[lo], hist[CAND + lo])) {
                        uint k0 = hist[lo]; hist[lo] = hist[hi]; hist[hi] = k0;
                        uint i0 = hist[CAND + lo]; hist[CAND + lo] = hist[CAND + hi]; hist[CAND + hi] = i0;
                    }
                } else if (before(skey[hi], sidx[hi], skey[lo], sidx[lo])) {
                    uint k0 = skey[lo]; skey[lo] = skey[hi]; skey[hi] = k0;
                    uint i0 = sidx[lo]; sidx[lo] = sidx[hi]; sidx[hi] = i0;
                }
            }
            barrier();
        }
    }
}

// The first histogram bin b at which the running count reaches target: s_bucket = b (2048 when
// the histogram holds fewer), s_below = the count before b, s_total = the histogram's total.
// Every thread sums its own run of bins; one thread then walks runs, then bins of one run.
void locate(uint target) {
    const uint t = gl_LocalInvocationID.x, WG = gl_WorkGroupSize.x, per = 2048u / WG;
    uint sum = 0u;
    for (uint i = 0u; i < per; i++) sum += hist[t * per + i];
    s_part[t] = sum;
    barrier();
    if (t == 0u) {
        uint below = 0u, total = 0u, seg = 0u;
        for (uint i = 0u; i < WG; i++) total += s_part[i];
        while (seg < WG && below + s_part[seg] < target) { below += s_part[seg]; seg++; }
        uint b = 2048u;
        if (seg < WG) {
            b = seg * per;
            while (below + hist[b] < target) { below += hist[b]; b++; }
        }
        s_bucket = b;
        s_below = below;
        s_total = total;
    }
    barrier();
}

void main() {
    const uint WG = gl_WorkGroupSize.x;
    const uint t = gl_LocalInvocationID.x;
    const uint row = gl_WorkGroupID.x;
    if (row >= pc.m) return;
    if (HAS_FLAGS == 1 && FLAGS[pc.f_off + row] == 0u) return;
    const uint xb = pc.x_off + row * pc.ldx;

    if (pc.k <= FAST_K && pc.n >= FAST_N) {
        const uint bs = pc.n / 256u, ns = 16u * bs, stride = pc.n / 16u;
        const float expect = float(pc.k) * float(ns) / float(pc.n);
        const uint target = min(ns, uint(ceil(expect + 4.0 * sqrt(expect))) + 4u);
        uint p1 = 0u, pm = 0u, below0 = 0u;
        for (uint level = 0u; level < 2u; level++) {
            uint shift = level == 0u ? 21u : 10u;
            for (uint b = t; b < 2048u; b += WG) hist[b] = 0u;
            barrier();
            for (uint i = t; i < ns; i += WG) {
                uint j = (i / bs) * stride + i % bs;
                if (!allowed(j)) continue;
                uint key = order_key(float(X[xb + j]));
                if ((key & pm) != p1) continue;
                atomicAdd(hist[(key >> shift) & 2047u], 1u);
            }
            barrier();
            locate(target - below0);
            below0 += s_below;
            uint b = s_bucket;
            if (b >= 2048u) { p1 = 0xFFFFFFFFu; pm = 0u; break; }  // too few samples: take all
            p1 |= b << shift;
            pm |= 2047u << shift;
        }
        // Inclusive upper bound of the chosen fine bucket (or everything).
        const uint tau = pm == 0u ? 0xFFFFFFFFu : (p1 | 0x3FFu);
        if (t == 0u) s_ccount = 0u;
        barrier();
        for (uint j = t; j < pc.n; j += WG) {
            if (!allowed(j)) continue;
            uint key = order_key(float(X[xb + j]));
            if (key > tau) continue;
            uint c = atomicAdd(s_ccount, 1u);
            if (c < SORT_MAX) {
                skey[c] = key;
                sidx[c] = index_of(row, j);
            }
        }
        barrier();
        const uint nc = s_ccount;
        if (nc <= SORT_MAX && (nc >= pc.k || tau == 0xFFFFFFFFu)) {
            sort_shared(false, nc);
            const uint vb0 = pc.v_off + row * pc.ldv, ob0 = pc.o_off + row * pc.ldo;
            for (uint i = t; i < pc.k; i += WG) {
                bool have = i < nc;
                OV[vb0 + i] = have ? key_value(skey[i])
                                   : (LARGEST == 1 ? uintBitsToFloat(0xFF800000u) : uintBitsToFloat(0x7F800000u));
                OI[ob0 + i] = have ? sidx[i] : NONE;
            }
            return;
        }
        barrier();  // the guess failed: the exact select reuses the shared memory
    }

    // Radix select over (key, index), most significant bits first.
    uint phi = 0u, mhi = 0u, plo = 0u, mlo = 0u;
    bool all = false;
    if (t == 0u) { s_done = 0u; s_need = pc.k; }
    for (uint pass = 0u; pass < 6u; pass++) {
        uint shift = pass % 3u == 0u ? 21u : (pass % 3u == 1u ? 10u : 0u);
        uint bits = pass % 3u == 2u ? 10u : 11u;
        uint bmask = (1u << bits) - 1u;
        for (uint b = t; b < 2048u; b += WG) hist[b] = 0u;
        barrier();
        for (uint j = t; j < pc.n; j += WG) {
            if (!allowed(j)) continue;
            uint key = order_key(float(X[xb + j]));
            if ((key & mhi) != phi) continue;
            uint idx = pass >= 3u ? index_of(row, j) : 0u;
            if ((idx & mlo) != plo) continue;
            uint digit = ((pass < 3u ? key : idx) >> shift) & bmask;
            atomicAdd(hist[digit], 1u);
        }
        barrier();
        locate(s_need);
        if (t == 0u) {
            uint need = s_need, b = s_bucket;
            if (s_total <= need) {
                // Everything still in play is taken (fewer valid entries than k).
                s_done = 2u;
            } else {
                s_need = need - s_below;
                s_done = hist[b] == need - s_below ? 1u : 0u;
                // A small bucket: finish among its entries in shared memory (mode 3).
                if (s_done == 0u && pass == 0u && hist[b] <= CAND && pc.k <= SORT_MAX) s_done = 3u;
            }
        }
        barrier();
        if (s_done == 2u) { all = true; break; }
        if (s_done == 3u) break;
        uint b = s_bucket;
        if (pass < 3u) { phi |= b << shift; mhi |= bmask << shift; }
        else { plo |= b << shift; mlo |= bmask << shift; }
        if (s_done == 1u) break;
    }

    const bool in_shared = pc.k <= SORT_MAX;
    const bool cand_mode = s_done == 3u;
    barrier();  // every thread has read s_done before it changes
    if (t == 0u) { s_count = 0u; s_ccount = 0u; }
    barrier();
    if (cand_mode) {
        // Entries of lower buckets are in; the bucket's own entries become candidates.
        const uint b = s_bucket;
        for (uint j = t; j < pc.n; j += WG) {
            if (!allowed(j)) continue;
            uint key = order_key(float(X[xb + j]));
            uint digit = key >> 21u;
            if (digit > b) continue;
            uint idx = index_of(row, j);
            if (digit < b) {
                uint slot = atomicAdd(s_count, 1u);
                skey[slot] = key;
                sidx[slot] = idx;
            } else {
                uint c = atomicAdd(s_ccount, 1u);
                hist[c] = key;
                hist[CAND + c] = idx;
            }
        }
        barrier();
        const uint nc = s_ccount, taken = s_count;
        sort_shared(true, nc);
        for (uint i = t; i < s_need; i += WG) {
            skey[taken + i] = hist[i];
            sidx[taken + i] = hist[CAND + i];
        }
        barrier();
        if (t == 0u) s_count = taken + s_need;
        barrier();
    }
    // Collect: entries whose masked composite is at or below the prefix. Once every bit is fixed,
    // the entries equal to the prefix are identical (same value, same index: merged candidate rows
    // repeat the +inf / 0xFFFFFFFF padding, and so may rows given with HAS_IDX); only s_need of
    // them belong to the k, after the k - s_need entries below the prefix.
    const bool full = mhi == 0xFFFFFFFFu && mlo == 0xFFFFFFFFu;
    for (uint j = t; j < pc.n && !cand_mode; j += WG) {
        if (!allowed(j)) continue;
        uint key = order_key(float(X[xb + j]));
        uint idx = index_of(row, j);
        bool take = all, tie = false;
        if (!take) {
            uint hk = key & mhi, lk = idx & mlo;
            take = hk < phi || (hk == phi && lk <= plo);
            tie = full && hk == phi && lk == plo;
        }
        if (!take) continue;
        uint slot;
        if (tie) {
            uint e = atomicAdd(s_ccount, 1u);
            if (e >= s_need) continue;
            slot = pc.k - s_need + e;
        } else {
            slot = atomicAdd(s_count, 1u);
        }
        if (slot >= pc.k) continue;  // cannot happen; guards the writes
        if (in_shared) {
            skey[slot] = key;
            sidx[slot] = idx;
        } else {
            OV[pc.v_off + row * pc.ldv + slot] = key_value(key);
            OI[pc.o_off + row * pc.ldo + slot] = idx;
        }
    }
    barrier();
    const uint cnt = min(s_count + (cand_mode || all || !full ? 0u : min(s_ccount, s_need)), pc.k);

    const uint vb = pc.v_off + row * pc.ldv, ob = pc.o_off + row * pc.ldo;
    if (in_shared) {
        sort_shared(false, cnt);
    } else {
        // The same network over the output row in device memory.
        uint size = 1u;
        while (size < cnt) size <<= 1u;
        for (uint stage = 2u; stage <= size; stage <<= 1u) {
            for (uint step = stage >> 1u; step > 0u; step >>= 1u) {
                for (uint i = t; i < size / 2u; i += WG) {
                    uint block = i / step, off = i % step, lo, hi;
                    if (step == stage >> 1u) { lo = block * stage + off; hi = block * stage + stage - 1u - off; }
                    else { lo = block * 2u * step + off; hi = lo + step; }
                    if (hi >= cnt) continue;
                    uint kl = order_key(OV[vb + lo]), kh = order_key(OV[vb + hi]);
                    uint il = OI[ob + lo], ih = OI[ob + hi];
                    if (before(kh, ih, kl, il)) {
                        float v0 = OV[vb + lo]; OV[vb + lo] = OV[vb + hi]; OV[vb + hi] = v0;
                        OI[ob + lo] = ih; OI[ob + hi] = il;
                    }
                }
                memoryBarrierBuffer();
                barrier();
            }
        }
    }

    for (uint i = t; i < pc.k; i += WG) {
        if (i < cnt) {
            if (in_shared) {
                OV[vb + i] = key_value(skey[i]);
                OI[ob + i] = sidx[i];
            }
        } else {
            OV[vb + i] = LARGEST == 1 ? uintBitsToFloat(0xFF800000u) : uintBitsToFloat(0x7F800000u);
            OI[ob + i] = NONE;
        }
    }
}
