// pq_scan.comp — asymmetric-distance (ADC) scan of product-quantization codes with the k best
// rows selected in the same pass (scan_select.glsl); the distance matrix is never written.
//
// A row's distance is C + sum_j LUT[j, code_j] over its M sub-codes (NBITS bits each, an LSB-first
// bit stream in CSW 32-bit words per row), where LUT is a query's table of M x KSUB distances to the
// sub-quantizers' centroids (pq_lut.comp), plus a per-list table B for IVF-PQ's precomputed
// residual terms, and C a per-work-item constant (IVF-PQ: the coarse term).
//
// Work items (one per workgroup):
//   IVF = 0 (PQIndex): x = a group of QG queries, y = a slice of the database rows bound in this
//           dispatch. The QG tables sit in shared memory (16 KiB per query for M=16, 8 bits) and
//           every code read serves all QG queries; consecutive workgroups (x) share a slice, so
//           the codes stream through L2 once per wave.
//   IVF = 1 (IVF-PQ): x = query q, y = probe j; the work item scans list probes[q, j] (its
//           rows inside the bound window) with the table of q (or of the pair, PAIR_LUT = 1).
//           Queries vary fastest so that a query's later probes start after its nearest lists
//           have tightened the shared bound (scan_select.glsl).
// Item results go to columns [(col0 + item) * k, +k) of the query's row of the partial outputs;
// a topk merge (topk_rows.comp) finishes. Tables too large for shared memory are read from the
// device buffer (LUT_SHARED = 0).
//
// LUT16 = 1 (PQIndex, opt-in): the shared tables hold float16 entries, those of queries 2p and
// 2p + 1 packed in one word, so one lookup serves two queries: half the shared-memory reads,
// which bound this kernel (random sub-codes make bank conflicts). Each query's table is scaled by
// a power of two that puts its largest magnitude below 2^14 (no float16 overflow, and the sums
// are scaled back exactly); entries keep float16's 11-bit precision. Variant f16arith (devices with
// shaderFloat16) adds the entries of four sub-quantizers in float16 pairs before one conversion
// to float32: converting every entry would cost more than the lookups it saves (NVIDIA converts
// at a quarter of the add rate). Entries are then scaled to 2^12 at most, so that four fit.
//! variant f16arith: -DF16_ARITH
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#if defined(F16_ARITH)
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint LARGEST = 0;
layout(constant_id = 4) const uint QG = 1;          // queries per workgroup (IVF: 1)
layout(constant_id = 5) const uint CAP = 512;       // candidate buffer entries per query
layout(constant_id = 6) const uint SBUF = 512;      // QG * CAP, or 1 with BUF_GLOBAL
layout(constant_id = 7) const uint BUF_GLOBAL = 0;
layout(constant_id = 8) const uint M = 8;           // sub-quantizers
layout(constant_id = 9) const uint NBITS = 8;       // bits per sub-code, 1..8
layout(constant_id = 10) const uint CSW = 2;        // code words per row
layout(constant_id = 11) const uint VEC4 = 0;       // CSW and the code offset are multiples of 4
layout(constant_id = 12) const uint LUT_SHARED = 1;
layout(constant_id = 13) const uint LUT_WORDS = 2048;   // QG * M * KSUB, or 1
layout(constant_id = 14) const uint IVF = 0;
layout(constant_id = 15) const uint HAS_B = 0;      // add the per-list table B
layout(constant_id = 16) const uint PAIR_LUT = 0;   // table rows are per (query, probe) pair
layout(constant_id = 17) const uint HAS_MASK = 0;
layout(constant_id = 18) const uint P = 1;          // rows per thread per round
layout(constant_id = 19) const uint LUT16 = 0;      // float16 pairs in shared memory (IVF = 0 only)
layout(constant_id = 20) const uint LUT16_WORDS = 1;    // (QG + 1) / 2 * M * KSUB, or 1

const uint KSUB = 1u << NBITS;
const uint MK = M * KSUB;

layout(binding = 0) readonly buffer C_ { uint CODES[]; };
layout(binding = 0) readonly buffer C4_ { uvec4 CODES4[]; };
layout(binding = 1) readonly buffer A_ { float LUTA[]; };
layout(binding = 2) readonly buffer B_ { float LUTB[]; };
layout(binding = 3) readonly buffer W_ { uint WORK[]; };   // probes (u32), coarse terms (f32 bits)
layout(binding = 4) readonly buffer L_ { uint LISTS[]; };  // (first row, count) per list
layout(binding = 5) readonly buffer M_ { uint MASK[]; };
layout(binding = 6) buffer O_ { uint SB[]; };              // outputs and device candidate buffers

layout(push_constant) uniform PC {
    uint nq, k;
    uint code_off, row0, rows;          // bound window: rows [row0, row0 + rows) from CODES[code_off]
    uint lut_off, ldl, lutb_off;        // table rows: LUTA[lut_off + row * ldl], LUTB[lutb_off + list * MK]
    uint slice, col0, ldo;              // rows per slice (IVF = 0); first item column; partial row stride
    uint nprobe, probe_off, cd_off, lists_off;
    uint mask_off;
    uint v_off, i_off, sel_off, gt_off;
} pc;

#include "scan_select.glsl"

shared float s_lut[LUT_WORDS];
shared uint s_lut16[LUT16_WORDS];
shared uint s_amax[QG];
const uint NPAIR = (QG + 1u) / 2u;

float acc[QG];   // the row's distance for each query of the group
#if defined(F16_ARITH)
f16vec2 part[NPAIR];   // float16 sums of up to four entries of a query pair, not yet in acc
const float LUT16_TOP = 12.0;
#else
const float LUT16_TOP = 14.0;
#endif

void add_pair(uint p2, vec2 v) {
    acc[2u * p2] += v.x;
    if (2u * p2 + 1u < QG) acc[min(2u * p2 + 1u, QG - 1u)] += v.y;
}

// Adds table entry e (sub-quantizer j, sub-code c: e = j * KSUB + c) of every query to acc.
void lookup(uint j, uint e, uint lrow, uint list) {
    if (LUT16 == 1u) {
        [[unroll]] for (uint p2 = 0u; p2 < NPAIR; p2++) {
#if defined(F16_ARITH)
            part[p2] += unpackFloat2x16(s_lut16[p2 * MK + e]);
            if ((j & 3u) == 3u || j == M - 1u) {
                add_pair(p2, vec2(part[p2]));
                part[p2] = f16vec2(0.0);
            }
#else
            add_pair(p2, unpackHalf2x16(s_lut16[p2 * MK + e]));
#endif
        }
    } else {
        [[unroll]] for (uint g = 0u; g < QG; g++) {
            if (LUT_SHARED == 1u) {
                acc[g] += s_lut[g * MK + e];
            } else {
                float v = LUTA[pc.lut_off + (lrow + g) * pc.ldl + e];
                if (HAS_B == 1u) v += LUTB[pc.lutb_off + list * MK + e];
                acc[g] += v;
            }
        }
    }
}

bool allowed(uint row) {
    if (HAS_MASK == 0u) return true;
    uint bit = pc.mask_off + row;
    return ((MASK[bit >> 5] >> (bit & 31u)) & 1u) != 0u;
}

void main() {
    const uint t = gl_LocalInvocationID.x, WG = gl_WorkGroupSize.x;
    sel_k = pc.k;
    sel_gb = pc.sel_off + (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * (2u * QG * CAP);
    sel_gt = pc.gt_off;
    sel_nq = pc.nq;

    // The work item: queries q0 .. q0 + QG - 1, rows [r0, r1) of the window, its tables.
    uint q0, r0, r1, item, list = 0u;
    float cterm = 0.0;
    uint lrow = 0u;   // table row of the first query (IVF: of the pair)
    if (IVF == 1u) {
        const uint j = gl_WorkGroupID.y;
        q0 = gl_WorkGroupID.x;
        item = j;
        const uint pair = q0 * pc.nprobe + j;
        list = WORK[pc.probe_off + pair];
        r0 = 0u;
        r1 = 0u;
        if (list != NONE) {
            uint first = LISTS[pc.lists_off + 2u * list], count = LISTS[pc.lists_off + 2u * list + 1u];
            // The list's rows inside the window [row0, row0 + rows), as window positions.
            uint a = max(first, pc.row0), b = min(first + count, pc.row0 + pc.rows);
            if (a < b) { r0 = a - pc.row0; r1 = b - pc.row0; }
        }
        if (PAIR_LUT == 0u) cterm = uintBitsToFloat(WORK[pc.cd_off + pair]);
        lrow = PAIR_LUT == 1u ? pair : q0;
    } else {
        q0 = gl_WorkGroupID.x * QG;
        item = gl_WorkGroupID.y;
        r0 = min(item * pc.slice, pc.rows);
        r1 = min(r0 + pc.slice, pc.rows);
        lrow = q0;
    }
    sel_q0 = q0;

    float inv_scale[QG];   // LUT16: the sums are scaled back by these
    [[unroll]] for (uint g = 0u; g < QG; g++) inv_scale[g] = 1.0;
    if (LUT16 == 1u) {
        // Largest |entry| per query, then its power-of-two scale, then the packed pairs.
        if (t < QG) s_amax[t] = 0u;
        barrier();
        [[unroll]] for (uint g = 0u; g < QG; g++) {
            if (q0 + g >= pc.nq) continue;
            const uint src = pc.lut_off + (lrow + g) * pc.ldl;
            float mx = 0.0;
            for (uint e = t; e < MK; e += WG) {
                float a = abs(LUTA[src + e]);
                if (a <= 3.0e38) mx = max(mx, a);          // NaN and inf stay NaN and inf below
            }
            atomicMax(s_amax[g], floatBitsToUint(mx));
        }
        barrier();
        float scale[QG];
        [[unroll]] for (uint g = 0u; g < QG; g++) {
            int e2;
            float mx = uintBitsToFloat(s_amax[g]);
            frexp(mx, e2);
            e2 = mx > 0.0 ? clamp(int(LUT16_TOP) - e2, -100, 100) : 0;
            scale[g] = exp2(float(e2));
            inv_scale[g] = exp2(float(-e2));
        }
        [[unroll]] for (uint p = 0u; p < NPAIR; p++) {
            const uint g0 = 2u * p, g1 = min(2u * p + 1u, QG - 1u);
            const bool have0 = q0 + g0 < pc.nq, have1 = 2u * p + 1u < QG && q0 + g1 < pc.nq;
            if (!have0) continue;
            const uint src0 = pc.lut_off + (lrow + g0) * pc.ldl, src1 = pc.lut_off + (lrow + g1) * pc.ldl;
            for (uint e = t; e < MK; e += WG) {
                float a = LUTA[src0 + e] * scale[g0];
                float b = have1 ? LUTA[src1 + e] * scale[g1] : 0.0;
                s_lut16[p * MK + e] = packHalf2x16(vec2(a, b));
            }
        }
    } else if (LUT_SHARED == 1u) {
        [[unroll]] for (uint g = 0u; g < QG; g++) {
            if (q0 + g >= pc.nq || (IVF == 1u && r0 == r1)) continue;
            const uint src = pc.lut_off + (lrow + g) * pc.ldl;
            for (uint e = t; e < MK; e += WG) {
                float v = LUTA[src + e];
                if (HAS_B == 1u) v += LUTB[pc.lutb_off + list * MK + e];
                s_lut[g * MK + e] = v;
            }
        }
    }
    sel_init();   // its barrier also publishes the tables

    const uint room = WG * P;
    uint gt_ready = NONE, gt_next = NONE;
    for (uint base = r0; base < r1; base += room) {
        if (t < QG) gt_next = sel_bound_fetch(t);
        uint tau[QG];
        [[unroll]] for (uint g = 0u; g < QG; g++) tau[g] = s_tau[g];
        [[unroll]] for (uint p = 0u; p < P; p++) {
            const uint r = base + p * WG + t;
            if (r >= r1 || !allowed(pc.row0 + r)) continue;
            [[unroll]] for (uint g = 0u; g < QG; g++) acc[g] = cterm;
#if defined(F16_ARITH)
            [[unroll]] for (uint p2 = 0u; p2 < NPAIR; p2++) part[p2] = f16vec2(0.0);
#endif
            const uint cb = pc.code_off + r * CSW;
            if (VEC4 == 1u && 32u % NBITS == 0u) {
                // Whole sub-codes per word (1, 2, 4, 8 bits): each 16-byte piece of the row is
                // loaded once and its sub-codes taken from registers.
                const uint PER = 32u / NBITS;
                [[unroll]] for (uint w4 = 0u; w4 < CSW / 4u; w4++) {
                    const uvec4 v = CODES4[(cb >> 2u) + w4];
                    [[unroll]] for (uint c4 = 0u; c4 < 4u; c4++) {
                        [[unroll]] for (uint b = 0u; b < PER; b++) {
                            const uint j = (w4 * 4u + c4) * PER + b;
                            if (j < M) lookup(j, j * KSUB + ((v[c4] >> (b * NBITS)) & (KSUB - 1u)), lrow, list);
                        }
                    }
                }
            } else {
                [[unroll]] for (uint j = 0u; j < M; j++) {
                    const uint bit = j * NBITS, w = bit >> 5u, sh = bit & 31u;
                    uint c = CODES[cb + w] >> sh;
                    if (sh + NBITS > 32u) c |= CODES[cb + w + 1u] << (32u - sh);
                    lookup(j, j * KSUB + (c & (KSUB - 1u)), lrow, list);
                }
            }
            [[unroll]] for (uint g = 0u; g < QG; g++)
                sel_offer(g, tau[g], order_key(LUT16 == 1u ? acc[g] * inv_scale[g] : acc[g]), pc.row0 + r);
        }
        sel_round_end(room, gt_ready);
        gt_ready = gt_next;
    }

    [[unroll]] for (uint g = 0u; g < QG; g++) {
        const uint q = q0 + g;
        const uint at = q * pc.ldo + (pc.col0 + item) * pc.k;
        sel_write(g, q < pc.nq, pc.v_off + at, pc.i_off + at);
    }
}
