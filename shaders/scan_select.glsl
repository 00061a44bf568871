// scan_select.glsl — the k best (key, row) candidates of a scan, selected while the scan runs,
// for QG queries of one workgroup at once (included by pq_scan.comp and ivf_flat_scan.comp).
//
// Each query group member g owns a buffer of CAP (key, row) entries and a threshold tau[g]: a row
// is offered only when its order key is below tau (a later row of the work item can never win a
// tie: rows are scanned in increasing order, round by round). A round offers at most `room` rows
// per member; at its end a member whose buffer holds more than max(2k, 64) entries, or could not
// take another round, is compacted: bitonic-sorted by (key, row) and cut to its k best, and tau
// becomes the k-th key. Once tau is tight almost nothing passes it, so compactions are rare and
// the scan runs at the rate of its distance computation. The distance matrix is never written.
//
// Work items of the same query share a bound through device memory: GT[q] (SB[sel_gt + q]) is
// the smallest k-th key any work item of query q has found so far. A row whose key is above it
// cannot be among the query's k best (k rows at or below it exist), so a work item starting late,
// as most pairs of a many-probe IVF search do, offers only rows at or below it from its first row.
// The host sets GT to NONE before the scan. A round reads GT for the next one to apply.
//
// The buffers live in shared memory (SBUF = QG * CAP entries) or, for k too large for it, in a
// device scratch region of the workgroup (BUF_GLOBAL = 1; SB[sel_gb + 2 i], SB[sel_gb + 2 i + 1]).
//
// Keys: unsigned order of the float, -0 == +0, NaN after every number (inverted for LARGEST);
// entries past the count act as +infinity in the sort network.
//
// The including shader declares, before #include: spec constants LARGEST, QG, CAP, SBUF,
// BUF_GLOBAL; a buffer `SB` (uint[]); and sets sel_k, sel_gb, sel_gt, sel_q0, sel_nq in main.

const uint NAN_KEY = 0xFFFFFFFEu;   // after every number
const uint NONE = 0xFFFFFFFFu;      // "no row"; also tau before k rows are buffered

shared uint s_bkey[SBUF];
shared uint s_brow[SBUF];
shared uint s_cnt[QG];
shared uint s_tau[QG];

uint sel_k;    // k of this dispatch
uint sel_gb;   // first word of this workgroup's device buffers (BUF_GLOBAL = 1)
uint sel_gt;   // first word of the per-query bounds GT
uint sel_q0;   // query of member 0; member g is query sel_q0 + g, valid below sel_nq
uint sel_nq;

uint order_key(float v) {
    if (isnan(v)) return NAN_KEY;
    uint u = floatBitsToUint(v == 0.0 ? 0.0 : v);
    uint key = (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
    return LARGEST == 1u ? min(~key, NAN_KEY - 1u) : min(key, NAN_KEY - 1u);
}

float key_value(uint key) {
    if (key == NAN_KEY) return uintBitsToFloat(0x7FC00000u);
    if (LARGEST == 1u) key = ~key;
    uint u = (key & 0x80000000u) != 0u ? (key & 0x7FFFFFFFu) : ~key;
    return uintBitsToFloat(u);
}

void sel_barrier() {
    if (BUF_GLOBAL == 1u) memoryBarrierBuffer();
    barrier();
}

uint sel_key(uint i) { return BUF_GLOBAL == 1u ? SB[sel_gb + 2u * i] : s_bkey[i]; }
uint sel_row(uint i) { return BUF_GLOBAL == 1u ? SB[sel_gb + 2u * i + 1u] : s_brow[i]; }

void sel_put(uint i, uint key, uint row) {
    if (BUF_GLOBAL == 1u) {
        SB[sel_gb + 2u * i] = key;
        SB[sel_gb + 2u * i + 1u] = row;
    } else {
        s_bkey[i] = key;
        s_brow[i] = row;
    }
}

// The shared bound GT of member g, read atomically (NONE for no query). Issued a round before it
// is applied (sel_round_end), so the read's latency hides behind a round of scanning.
uint sel_bound_fetch(uint g) {
    return sel_q0 + g < sel_nq ? atomicOr(SB[sel_gt + sel_q0 + g], 0u) : NONE;
}

// A fetched bound as a strict threshold: keys at or below GT pass.
uint sel_bound_tau(uint b) { return b == NONE ? NONE : b + 1u; }

void sel_init() {
    const uint t = gl_LocalInvocationID.x;
    if (t < QG) {
        s_cnt[t] = 0u;
        s_tau[t] = sel_q0 + t < sel_nq ? sel_bound_tau(sel_bound_fetch(t)) : 0u;   // 0: nothing passes
    }
    barrier();
}

// Offer row `row` at key `key` to member g, whose threshold the caller read as tau (room is
// guaranteed by the round structure).
void sel_offer(uint g, uint tau, uint key, uint row) {
    if (key >= tau) return;
    uint slot = atomicAdd(s_cnt[g], 1u);
    if (slot < CAP) sel_put(g * CAP + slot, key, row);
}

// Sorts member g's first cnt entries by (key, row), ascending; every thread takes part. The
// first step of each stage compares mirrored pairs, so the network sorts any cnt.
void sel_sort(uint g, uint cnt) {
    const uint WG = gl_WorkGroupSize.x, t = gl_LocalInvocationID.x, b0 = g * CAP;
    uint lg = 0u;
    while ((1u << lg) < cnt) lg++;
    for (uint ls = 1u; ls <= lg; ls++) {                 // stage 2^ls
        for (uint lt = ls; lt > 0u; lt--) {                // step 2^(lt - 1)
            const uint step = 1u << (lt - 1u);
            for (uint i = t; i < (1u << (lg - 1u)); i += WG) {
                uint off = i & (step - 1u), lo, hi;
                if (lt == ls) {
                    uint base = (i >> (lt - 1u)) << ls;
                    lo = base + off;
                    hi = base + (1u << ls) - 1u - off;
                } else {
                    lo = ((i >> (lt - 1u)) << lt) + off;
                    hi = lo + step;
                }
                if (hi >= cnt) continue;
                uint kl = sel_key(b0 + lo), kh = sel_key(b0 + hi);
                uint rl = sel_row(b0 + lo), rh = sel_row(b0 + hi);
                if (kh < kl || (kh == kl && rh < rl)) {
                    sel_put(b0 + lo, kh, rh);
                    sel_put(b0 + hi, kl, rl);
                }
            }
            sel_barrier();
        }
    }
}

// Member g's buffer sorted and cut to its k best; tau tightened, and the shared bound with it.
// Uniform control flow.
void sel_compact(uint g) {
    const uint cnt = min(s_cnt[g], CAP);
    sel_sort(g, cnt);
    if (gl_LocalInvocationID.x == 0u) {
        uint keep = min(cnt, sel_k);
        s_cnt[g] = keep;
        if (keep == sel_k) {
            uint kth = sel_key(g * CAP + keep - 1u);
            s_tau[g] = min(s_tau[g], kth);
            if (sel_q0 + g < sel_nq) atomicMin(SB[sel_gt + sel_q0 + g], kth);
        }
    }
    sel_barrier();
}

// End of a round that offered at most `room` rows per member: compact the members whose buffer
// grew past max(2k, 64) entries or could not take another round, and tighten every threshold to
// the shared bound `fetched` (threads t < QG: sel_bound_fetch(t) of an earlier round). Every
// thread calls it.
void sel_round_end(uint room, uint fetched) {
    sel_barrier();
    const uint hi = max(2u * sel_k, 64u);
    for (uint g = 0u; g < QG; g++) {
        uint c = s_cnt[g];
        if (c > hi || c + room > CAP) sel_compact(g);
    }
    const uint t = gl_LocalInvocationID.x;
    if (t < QG) s_tau[t] = min(s_tau[t], sel_bound_tau(fetched));
    barrier();
}

// Writes member g's k best, best first, to values SB[v] and rows SB[r] (k entries each, the
// values as float bits); missing entries are (NaN, NONE): after every real entry, NaN included,
// when merged. Every thread calls it (after the last round's sel_round_end).
void sel_write(uint g, bool valid, uint v, uint r) {
    sel_compact(g);
    const uint cnt = s_cnt[g];
    if (valid) {
        for (uint i = gl_LocalInvocationID.x; i < sel_k; i += gl_WorkGroupSize.x) {
            bool have = i < cnt;
            SB[v + i] = have ? floatBitsToUint(key_value(sel_key(g * CAP + i))) : 0x7FC00000u;
            SB[r + i] = have ? sel_row(g * CAP + i) : NONE;
        }
    }
}
