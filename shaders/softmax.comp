// softmax.comp — softmax along rows: out[i, :] = exp(x[i, :] - max) / sum(exp(x[i, :] - max)).
// A row belongs to one subgroup (ROWS > 1: ROWS rows per workgroup, short rows) or to the whole
// workgroup (ROWS == 1). Rows of at most 4 * VPT elements per thread are held in registers (one
// read); longer rows take one read with a running (max, sum) per thread and one more to write.
// NumPy's special values: a row holding NaN, +inf, or only -inf is NaN throughout.
// Any subgroup size: reductions go through gl_SubgroupSize / gl_NumSubgroups.
//! variant f16: -DIO_F16
#version 450
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require
#if defined(IO_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM float16_t
#define ELEM4 f16vec4
#else
#define ELEM float
#define ELEM4 vec4
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint ROWS = 1;
layout(constant_id = 4) const uint VPT = 8;
layout(constant_id = 5) const uint VEC = 4;   // 4: rows contiguous and 4-aligned (vec4 accesses)

layout(binding = 0) readonly buffer X_ { ELEM X[]; };
layout(binding = 0) readonly buffer X4_ { ELEM4 X4[]; };
layout(binding = 1) writeonly buffer O_ { ELEM O[]; };
layout(binding = 1) writeonly buffer O4_ { ELEM4 O4[]; };

layout(push_constant) uniform PC {
    uint m, n, ldx, sx, x_off, ldo, o_off;
} pc;

#define NEG_INF uintBitsToFloat(0xff800000u)
#define NAN uintBitsToFloat(0x7fc00000u)

shared float red[256];   // one per subgroup: up to 1024 threads in subgroups of 4

// Reductions over the threads that share a row.
float row_max(float v) {
    v = subgroupMax(v);
    if (ROWS > 1u) return v;
    barrier();
    if (subgroupElect()) red[gl_SubgroupID] = v;
    barrier();
    float r = red[0];
    for (uint i = 1u; i < gl_NumSubgroups; i++) r = max(r, red[i]);
    return r;
}

float row_sum(float v) {
    v = subgroupAdd(v);
    if (ROWS > 1u) return v;
    barrier();
    if (subgroupElect()) red[gl_SubgroupID] = v;
    barrier();
    float r = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++) r += red[i];
    return r;
}

// Elements 4c .. 4c+3 of a row; -inf past its end. NaN is reported through `nan`.
vec4 load4(uint xb, uint c, inout bool nan) {
    vec4 v;
    if (VEC == 4u) {
        v = vec4(X4[(xb + 4u * c) / 4u]);
    } else {
        [[unroll]] for (uint e = 0u; e < 4u; e++) {
            uint k = 4u * c + e;
            v[e] = k < pc.n ? float(X[xb + k * pc.sx]) : NEG_INF;
        }
    }
    if (any(isnan(v))) nan = true;
    return v;
}

void store4(uint ob, uint c, vec4 v) {
    if (VEC == 4u) {
        O4[(ob + 4u * c) / 4u] = ELEM4(v);
    } else {
        [[unroll]] for (uint e = 0u; e < 4u; e++)
            if (4u * c + e < pc.n) O[ob + 4u * c + e] = ELEM(v[e]);
    }
}

float max4(vec4 v) { return max(max(v.x, v.y), max(v.z, v.w)); }

void main() {
    uint width = ROWS > 1u ? gl_SubgroupSize : gl_WorkGroupSize.x;
    uint lane = ROWS > 1u ? gl_SubgroupInvocationID : gl_LocalInvocationID.x;
    uint first = ROWS > 1u ? gl_SubgroupID : 0u;
    uint step = ROWS > 1u ? gl_NumSubgroups : 1u;
    uint chunks = (pc.n + 3u) / 4u;
    bool cached = chunks <= width * VPT;
    for (uint r = first; r < ROWS; r += step) {
        uint row = gl_WorkGroupID.x * ROWS + r;
        if (row >= pc.m) break;   // uniform across the threads of the row
        uint xb = pc.x_off + row * pc.ldx, ob = pc.o_off + row * pc.ldo;
        bool nan = false;
        float M, S;
        vec4 v[VPT];
        if (cached) {
            float mx = NEG_INF;
            [[unroll]] for (uint j = 0u; j < VPT; j++) {
                uint c = j * width + lane;
                v[j] = c < chunks ? load4(xb, c, nan) : vec4(NEG_INF);
                mx = max(mx, max4(v[j]));
            }
            M = row_max(nan ? uintBitsToFloat(0x7f800000u) : mx);
            float s = 0.0;
            if (!isinf(M))
                [[unroll]] for (uint j = 0u; j < VPT; j++) {
                    vec4 e = exp(v[j] - M);
                    s += (e.x + e.y) + (e.z + e.w);
                }
            S = row_sum(s);
        } else {
            // A running (max, sum of exp(x - max)) per thread, rescaled when the max grows.
            float mt = NEG_INF, st = 0.0;
            for (uint c = lane; c < chunks; c += width) {
                vec4 x = load4(xb, c, nan);
                float mx = max4(x);
                if (mx > mt) {
                    st = mt == NEG_INF ? 0.0 : st * exp(mt - mx);
                    mt = mx;
                }
                if (mt != NEG_INF && !isinf(mt)) {
                    vec4 e = exp(x - mt);
                    st += (e.x + e.y) + (e.z + e.w);
                }
            }
            M = row_max(nan ? uintBitsToFloat(0x7f800000u) : mt);
            S = row_sum(mt == NEG_INF || isinf(M) ? 0.0 : st * exp(mt - M));
        }
        // NaN anywhere (reported as +inf above), +inf, or nothing but -inf: NaN, as NumPy.
        float inv = isinf(M) ? NAN : 1.0 / S;
        if (cached) {
            [[unroll]] for (uint j = 0u; j < VPT; j++) {
                uint c = j * width + lane;
                if (c < chunks) store4(ob, c, exp(v[j] - M) * inv);
            }
        } else {
            for (uint c = lane; c < chunks; c += width) {
                bool unused = false;
                store4(ob, c, exp(load4(xb, c, unused) - M) * inv);
            }
        }
    }
}
