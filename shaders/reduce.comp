// reduce.comp — reductions of a strided (B, R, C) view over R: sum (compensated), min/max with
// first-index arguments, and one-pass statistics (count, Welford mean/M2 merged by Chan's rule,
// compensated sum, min, max). A workgroup takes one b, a block of CEFF columns and one segment of
// R; its threads are laid out column-fastest (coalesced when the columns are contiguous), each
// folds its rows serially, then the workgroup merges its threads' states in shared memory. With
// FINAL = 0 it writes one partial state per (b, column, segment) for a second pass (the `state`
// variant, which reads those states back as its input); with FINAL = 1 it writes the results; with
// FINAL = 2 it writes partial states and the last workgroup of each (b, column block) to finish,
// found by a ticket counter, merges that block's states and writes the results (one dispatch, no
// second pass; the counter is left at zero again).
// Contiguous rows (C == 1, unit stride) take 16-byte loads. Any subgroup size: nothing here
// depends on it.
// SG_SHUFFLE variants: where the threads of a column are adjacent (one column per workgroup, or
// short rows taken by grp adjacent threads) and their count a power of two, the first levels of
// the merge are butterfly shuffles within the subgroup (threads are numbered along their
// subgroups); the rest goes through shared memory.
//! variant f16: -DIN_F16
//! variant state: -DIN_STATE
//! variant sg: -DSG_SHUFFLE
//! variant f16_sg: -DIN_F16 -DSG_SHUFFLE
//! variant state_sg: -DIN_STATE -DSG_SHUFFLE
#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_memory_scope_semantics : require
#if defined(SG_SHUFFLE)
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#endif
#if defined(IN_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint OP = 0;      // 0 sum, 1 min, 2 max, 3 statistics
layout(constant_id = 4) const uint FINAL = 1;   // 1: write results; 0: partial states; 2: both (above)

#if defined(IN_STATE)
layout(binding = 0) readonly buffer X_ { uvec4 XS[]; };
#elif defined(IN_F16)
layout(binding = 0) readonly buffer X_ { float16_t X[]; };
layout(binding = 0) readonly buffer X8_ { uvec4 X8[]; };   // eight halves per load
const uint UNIT = 8u;
#else
layout(binding = 0) readonly buffer X_ { float X[]; };
layout(binding = 0) readonly buffer X4_ { vec4 X4[]; };
const uint UNIT = 4u;
#endif
layout(binding = 1) coherent buffer P_ { uvec4 P[]; };      // partial states, two uvec4 each
layout(binding = 2) writeonly buffer O_ { float O[]; };     // values (four per result for stats)
layout(binding = 3) writeonly buffer OI_ { uint OI[]; };    // int64 indices / counts as word pairs
layout(binding = 4) coherent buffer CNT_ { uint CNT[]; };   // FINAL = 2: tickets per (b, column block)

layout(push_constant) uniform PC {
    uint x_off;           // element (or state) offset of the window
    uint B, R, C;         // this dispatch's extents
    uint sb, sr, sc;      // strides in elements (states)
    uint seg;             // rows per segment
    uint nseg;            // segments of this dispatch
    uint S, s0;           // segments in the partial layout, first segment of this dispatch
    uint b0, c0, Ctot;    // position of this dispatch in the full (B, C) output
    uint r0;              // index of this dispatch's first row
    uint ceff;            // columns per workgroup
    uint what;            // 0 sum 1 mean 2 var 3 std 4 min 5 max 6 argmin 7 argmax 8 statistics
    float ddof, count;    // count: the full R, for mean
    uint o_off, oi_off;   // output window remainders (elements)
    uint grp;             // > 0: rows (sr == 1) taken by grp adjacent threads each, ceff = WG / grp
} pc;

const uint NONE = 0xFFFFFFFFu;

// hi/lo: compensated sum; mean/m2: Welford; mn/mx: extremes; n: count; idx: argument index.
struct St { float hi, lo, mean, m2, mn, mx; uint n, idx; };

St st_init() {
    return St(0.0, 0.0, 0.0, 0.0, uintBitsToFloat(0x7F800000u), uintBitsToFloat(0xFF800000u), 0u, NONE);
}

// Neumaier's compensated add; the error term of an inf step is NaN and is dropped at the end.
void add_comp(inout float hi, inout float lo, float x) {
    precise float t = hi + x;
    precise float e = abs(hi) >= abs(x) ? (hi - t) + x : (x - t) + hi;
    hi = t;
    lo += e;
}

// NaN wins (first NaN kept); then the strictly smaller (larger) value; an empty state loses.
bool better(float v, uint i, float w, uint j) {   // (v, i) replaces (w, j)?
    if (j == NONE) return i != NONE;
    if (i == NONE) return false;
    bool nv = isnan(v), nw = isnan(w);
    if (nw) return nv && i < j;
    if (nv) return true;
    bool lt = OP == 1u ? v < w : v > w;
    return lt || (v == w && i < j);
}

void push1(inout St s, float x, uint r) {
    if (OP == 0u) {
        add_comp(s.hi, s.lo, x);
    } else if (OP == 1u || OP == 2u) {
        float w = OP == 1u ? s.mn : s.mx;
        // Rows reach a thread in increasing order: only strict improvements (or a first NaN) move.
        bool take = s.idx == NONE || (isnan(x) ? !isnan(w) : (OP == 1u ? x < w : x > w));
        if (take) { if (OP == 1u) s.mn = x; else s.mx = x; s.idx = r; }
    } else {
        add_comp(s.hi, s.lo, x);
        s.n += 1u;
        float d = x - s.mean;
        s.mean += d / float(s.n);
        s.m2 += d * (x - s.mean);
        s.mn = isnan(x) || isnan(s.mn) ? x + s.mn : min(s.mn, x);
        s.mx = isnan(x) || isnan(s.mx) ? x + s.mx : max(s.mx, x);
    }
}

St merge(St a, St b) {
    if (OP == 0u) {
        float hi = a.hi, lo = a.lo;
        add_comp(hi, lo, b.hi);
        a.hi = hi;
        a.lo = lo + b.lo;
    } else if (OP == 1u || OP == 2u) {
        float va = OP == 1u ? a.mn : a.mx, vb = OP == 1u ? b.mn : b.mx;
        if (better(vb, b.idx, va, a.idx)) return b;
    } else {
        if (b.n == 0u) return a;
        if (a.n == 0u) return b;
        float hi = a.hi, lo = a.lo;
        add_comp(hi, lo, b.hi);
        a.hi = hi;
        a.lo = lo + b.lo;
        uint n = a.n + b.n;
        float f = float(b.n) / float(n);
        float d = b.mean - a.mean;
        a.mean += d * f;
        a.m2 += b.m2 + d * d * float(a.n) * f;
        a.n = n;
        a.mn = isnan(a.mn) || isnan(b.mn) ? a.mn + b.mn : min(a.mn, b.mn);
        a.mx = isnan(a.mx) || isnan(b.mx) ? a.mx + b.mx : max(a.mx, b.mx);
    }
    return a;
}

// Four (eight) consecutive rows at once: the statistics fold them as one small batch (one
// division instead of four); the others element by element.
void push_unit(inout St s, vec4 v, uint r) {
    if (OP == 1u || OP == 2u) {
        // Most units hold nothing better than the running extreme: one test of the four (no NaN
        // among them, a state already set, their extreme not strictly better) skips them.
        float w = OP == 1u ? s.mn : s.mx;
        float e = OP == 1u ? min(min(v.x, v.y), min(v.z, v.w)) : max(max(v.x, v.y), max(v.z, v.w));
        if (s.idx != NONE && !any(isnan(v)) && !(OP == 1u ? e < w : e > w)) return;
    }
    if (OP != 3u) {
        push1(s, v.x, r); push1(s, v.y, r + 1u); push1(s, v.z, r + 2u); push1(s, v.w, r + 3u);
        return;
    }
    float m = ((v.x + v.y) + (v.z + v.w)) * 0.25;
    vec4 dv = v - m;
    St t = St(0.0, 0.0, m, dot(dv, dv), min(min(v.x, v.y), min(v.z, v.w)), max(max(v.x, v.y), max(v.z, v.w)), 4u, NONE);
    add_comp(t.hi, t.lo, v.x); add_comp(t.hi, t.lo, v.y); add_comp(t.hi, t.lo, v.z); add_comp(t.hi, t.lo, v.w);
    if (any(isnan(v))) { t.mn = t.mx = t.m2 = t.mean = uintBitsToFloat(0x7FC00000u); }
    s = merge(s, t);
}

St unpack_state(uvec4 a, uvec4 b) {
    return St(uintBitsToFloat(a.x), uintBitsToFloat(a.y), uintBitsToFloat(a.z), uintBitsToFloat(a.w),
              uintBitsToFloat(b.x), uintBitsToFloat(b.y), b.z, b.w);
}

#if defined(IN_STATE)
St load_state(uint i) { return unpack_state(XS[2u * i], XS[2u * i + 1u]); }
#else
float load1(uint i) { return float(X[i]); }
#endif

shared uvec4 sh[2u * gl_WorkGroupSize.x];

void put_shared(uint t, St s) {
    sh[2u * t] = uvec4(floatBitsToUint(s.hi), floatBitsToUint(s.lo), floatBitsToUint(s.mean), floatBitsToUint(s.m2));
    sh[2u * t + 1u] = uvec4(floatBitsToUint(s.mn), floatBitsToUint(s.mx), s.n, s.idx);
}

St get_shared(uint t) { return unpack_state(sh[2u * t], sh[2u * t + 1u]); }

#if defined(SG_SHUFFLE)
St shuffle_xor(St s, uint m) {
    return St(subgroupShuffleXor(s.hi, m), subgroupShuffleXor(s.lo, m), subgroupShuffleXor(s.mean, m),
              subgroupShuffleXor(s.m2, m), subgroupShuffleXor(s.mn, m), subgroupShuffleXor(s.mx, m),
              subgroupShuffleXor(s.n, m), subgroupShuffleXor(s.idx, m));
}
#endif

// Merges the Y threads of each column (a tree over y, any Y, not only powers of two; the lower y
// always on the left, so the order of the merges is fixed); every thread calls it; y == 0 gets
// its column's state.
St merge_columns(uint t, uint y, uint Y, uint ystride, St s) {
    uint span = 1u;
    while (span < Y) span <<= 1u;
    uint last = 1u;   // the smallest tree level left to shared memory
#if defined(SG_SHUFFLE)
    if (ystride == 1u && span == Y) {   // uniform: Y and ystride are the dispatch's
        uint L = min(Y, gl_SubgroupSize);
        for (uint m = 1u; m < L; m <<= 1u) {
            St o = shuffle_xor(s, m);
            s = (y & m) == 0u ? merge(s, o) : merge(o, s);
        }
        if (Y <= gl_SubgroupSize) return s;
        last = gl_SubgroupSize;   // each lane now holds its subgroup's part of the column
    }
#endif
    put_shared(t, s);
    barrier();
    for (uint h = span >> 1u; h >= last; h >>= 1u) {
        if (y < h && y + h < Y) {
            St o = get_shared(t + h * ystride);
            put_shared(t, merge(get_shared(t), o));
        }
        barrier();
    }
    return get_shared(t);
}

shared bool last_group;

void write_result(uint o, St s) {
    uint w = pc.what;
    float total = isinf(s.hi) || isnan(s.hi) ? s.hi : s.hi + s.lo;
    float var = s.m2 / max(float(s.n) - pc.ddof, 0.0);
    if (s.n > 0u && s.m2 == 0.0 && float(s.n) - pc.ddof <= 0.0) var = uintBitsToFloat(0x7FC00000u);
    if (w == 0u) O[pc.o_off + o] = total;
    else if (w == 1u) O[pc.o_off + o] = total / pc.count;
    else if (w == 2u) O[pc.o_off + o] = var;
    else if (w == 3u) O[pc.o_off + o] = sqrt(var);
    else if (w == 4u) O[pc.o_off + o] = s.mn;
    else if (w == 5u) O[pc.o_off + o] = s.mx;
    else if (w == 6u || w == 7u) { OI[pc.oi_off + 2u * o] = s.idx; OI[pc.oi_off + 2u * o + 1u] = 0u; }
    else {
        uint b = pc.o_off + 4u * o;
        O[b] = total / float(s.n);
        O[b + 1u] = var;
        O[b + 2u] = s.mn;
        O[b + 3u] = s.mx;
        OI[pc.oi_off + 2u * o] = s.n;
        OI[pc.oi_off + 2u * o + 1u] = 0u;
    }
}

void main() {
    const uint WG = gl_WorkGroupSize.x;
#if defined(SG_SHUFFLE)
    // Threads numbered along their subgroups, so the lanes of a subgroup are consecutive whatever
    // the implementation's layout (the workgroup, 256, holds whole subgroups).
    uint t = gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID;
#else
    uint t = gl_LocalInvocationID.x;
#endif
    uint cblocks = (pc.C + pc.ceff - 1u) / pc.ceff;
    uint g = gl_WorkGroupID.x;
    uint seg = g / cblocks, cb = g % cblocks;
    uint b = gl_WorkGroupID.y;
    // Column-fastest threads (a column's Y threads are ceff apart), or with grp > 0 each column
    // (a short contiguous run: sr == 1) to grp adjacent threads, whose 16-byte loads then cover
    // consecutive memory across the workgroup when the runs are adjacent.
    const uint G = pc.grp;
    uint cl = G != 0u ? t / G : t % pc.ceff, y = G != 0u ? t % G : t / pc.ceff;
    uint Y = G != 0u ? G : WG / pc.ceff, ystride = G != 0u ? 1u : pc.ceff;
    uint c = cb * pc.ceff + cl;
    bool live = y < Y && c < pc.C && b < pc.B;
    uint rs = seg * pc.seg, re = min(pc.R, rs + pc.seg);

    St s = st_init();
    if (live) {
        uint base = pc.x_off + b * pc.sb + c * pc.sc;
#if defined(IN_STATE)
        for (uint r = rs + y; r < re; r += Y) s = merge(s, load_state(base + r * pc.sr));
#else
        if (pc.sr == 1u && (pc.C == 1u || G != 0u)) {
            // One contiguous run of the column per workgroup (C == 1), or per grp threads: scalar
            // head up to the first 16-byte boundary, 16-byte loads, scalar tail. Each thread still
            // meets its rows in order.
            const uint ln = G != 0u ? y : t, LS = G != 0u ? G : WG;
            uint lo = base + rs, hi = base + re;
            uint ua = min((lo + UNIT - 1u) / UNIT, hi / UNIT), ub = max(hi / UNIT, ua);
            uint ir = pc.r0 + rs - lo;   // row index = element index + ir
            for (uint e = lo + ln; e < min(ua * UNIT, hi); e += LS) push1(s, load1(e), e + ir);
            uint u = ua + ln;
            for (; u + 3u * LS < ub; u += 4u * LS) {
#if defined(IN_F16)
                uvec4 q[4];
                [[unroll]] for (uint j = 0u; j < 4u; j++) q[j] = X8[u + j * LS];
                [[unroll]] for (uint j = 0u; j < 4u; j++) {
                    uint e = (u + j * LS) * UNIT + ir;
                    push_unit(s, vec4(unpackHalf2x16(q[j].x), unpackHalf2x16(q[j].y)), e);
                    push_unit(s, vec4(unpackHalf2x16(q[j].z), unpackHalf2x16(q[j].w)), e + 4u);
                }
#else
                vec4 q[4];
                [[unroll]] for (uint j = 0u; j < 4u; j++) q[j] = X4[u + j * LS];
                [[unroll]] for (uint j = 0u; j < 4u; j++) push_unit(s, q[j], (u + j * LS) * UNIT + ir);
#endif
            }
            for (; u < ub; u += LS) {
#if defined(IN_F16)
                uvec4 q = X8[u];
                push_unit(s, vec4(unpackHalf2x16(q.x), unpackHalf2x16(q.y)), u * UNIT + ir);
                push_unit(s, vec4(unpackHalf2x16(q.z), unpackHalf2x16(q.w)), u * UNIT + 4u + ir);
#else
                push_unit(s, X4[u], u * UNIT + ir);
#endif
            }
            for (uint e = max(ub * UNIT, lo) + ln; e < hi; e += LS) push1(s, load1(e), e + ir);
        } else {
            // Four rows in flight per thread; reads across threads are consecutive columns.
            uint r = rs + y;
            for (; r + 3u * Y < re; r += 4u * Y) {
                float v[4];
                [[unroll]] for (uint j = 0u; j < 4u; j++) v[j] = load1(base + (r + j * Y) * pc.sr);
                [[unroll]] for (uint j = 0u; j < 4u; j++) push1(s, v[j], pc.r0 + r + j * Y);
            }
            for (; r < re; r += Y) push1(s, load1(base + r * pc.sr), pc.r0 + r);
        }
#endif
    }

    s = merge_columns(t, y, Y, ystride, s);
    if (FINAL == 1u) {
        if (y == 0u && live) write_result(b * pc.Ctot + c, s);
        return;
    }
    uint col0 = ((pc.b0 + b) * pc.Ctot + pc.c0 + c) * pc.S + pc.s0;
    if (y == 0u && live) {
        uint pi = col0 + seg;
        P[2u * pi] = uvec4(floatBitsToUint(s.hi), floatBitsToUint(s.lo), floatBitsToUint(s.mean), floatBitsToUint(s.m2));
        P[2u * pi + 1u] = uvec4(floatBitsToUint(s.mn), floatBitsToUint(s.mx), s.n, s.idx);
    }
    if (FINAL == 0u) return;
    // Release: every thread's state stores are ordered (device scope) before this workgroup's
    // ticket; acquire: the workgroup that takes the last ticket of its (b, column block) then sees
    // every other workgroup's states.
    controlBarrier(gl_ScopeWorkgroup, gl_ScopeDevice, gl_StorageSemanticsBuffer | gl_StorageSemanticsShared,
                   gl_SemanticsAcquireRelease);
    uint unit = b * cblocks + cb;
    if (t == 0u)
        last_group = atomicAdd(CNT[unit], 1u, gl_ScopeDevice, gl_StorageSemanticsBuffer,
                               gl_SemanticsAcquireRelease) == pc.nseg - 1u;
    controlBarrier(gl_ScopeWorkgroup, gl_ScopeDevice, gl_StorageSemanticsBuffer | gl_StorageSemanticsShared,
                   gl_SemanticsAcquireRelease);
    if (!last_group) return;
    St m = st_init();
    if (live) {
        // Four states in flight per thread (the merge is latency-bound: one workgroup, the rest idle).
        uint r = y;
        for (; r + 3u * Y < pc.nseg; r += 4u * Y) {
            uvec4 q[8];
            [[unroll]] for (uint j = 0u; j < 4u; j++) {
                q[2u * j] = P[2u * (col0 + r + j * Y)];
                q[2u * j + 1u] = P[2u * (col0 + r + j * Y) + 1u];
            }
            [[unroll]] for (uint j = 0u; j < 4u; j++) m = merge(m, unpack_state(q[2u * j], q[2u * j + 1u]));
        }
        for (; r < pc.nseg; r += Y) m = merge(m, unpack_state(P[2u * (col0 + r)], P[2u * (col0 + r) + 1u]));
    }
    m = merge_columns(t, y, Y, ystride, m);
    if (y == 0u && live) write_result(b * pc.Ctot + c, m);
    if (t == 0u) CNT[unit] = 0u;
}
