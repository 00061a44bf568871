// layer_norm.comp — out[i, :] = (x[i, :] - mean) / sqrt(var + eps) * w + b over each row (biased
// variance, as torch.nn.functional.layer_norm). A row belongs to one subgroup (ROWS > 1) or the
// whole workgroup (ROWS == 1). Rows of at most 4 * VPT elements per thread stay in registers and
// take the two-pass mean and variance; longer rows keep a Welford (count, mean, M2) per thread,
// merged across threads by Chan's formula written as two row sums. Any subgroup size.
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
layout(constant_id = 5) const uint VEC = 4;
layout(constant_id = 6) const bool HAS_W = false;
layout(constant_id = 7) const bool HAS_B = false;

layout(binding = 0) readonly buffer X_ { ELEM X[]; };
layout(binding = 0) readonly buffer X4_ { ELEM4 X4[]; };
layout(binding = 1) readonly buffer W_ { float W[]; };
layout(binding = 2) readonly buffer B_ { float B[]; };
layout(binding = 3) writeonly buffer O_ { ELEM O[]; };
layout(binding = 3) writeonly buffer O4_ { ELEM4 O4[]; };

layout(push_constant) uniform PC {
    uint m, n, ldx, sx, x_off, ldo, o_off, w_off, b_off;
    float eps;
} pc;

shared float red[256];   // one per subgroup: up to 1024 threads in subgroups of 4

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

// Elements 4c .. 4c+3 of a row; 0 past its end.
vec4 load4(uint xb, uint c) {
    if (VEC == 4u) return vec4(X4[(xb + 4u * c) / 4u]);
    vec4 v;
    [[unroll]] for (uint e = 0u; e < 4u; e++) {
        uint k = 4u * c + e;
        v[e] = k < pc.n ? float(X[xb + k * pc.sx]) : 0.0;
    }
    return v;
}

vec4 valid4(uint c) { return vec4(lessThan(uvec4(4u * c) + uvec4(0u, 1u, 2u, 3u), uvec4(pc.n))); }

void store4(uint ob, uint c, vec4 xhat) {
    vec4 w = vec4(1.0), b = vec4(0.0);
    [[unroll]] for (uint e = 0u; e < 4u; e++) {
        uint k = min(4u * c + e, pc.n - 1u);
        if (HAS_W) w[e] = W[pc.w_off + k];
        if (HAS_B) b[e] = B[pc.b_off + k];
    }
    vec4 y = xhat * w + b;
    if (VEC == 4u) {
        O4[(ob + 4u * c) / 4u] = ELEM4(y);
    } else {
        [[unroll]] for (uint e = 0u; e < 4u; e++)
            if (4u * c + e < pc.n) O[ob + 4u * c + e] = ELEM(y[e]);
    }
}

void main() {
    uint width = ROWS > 1u ? gl_SubgroupSize : gl_WorkGroupSize.x;
    uint lane = ROWS > 1u ? gl_SubgroupInvocationID : gl_LocalInvocationID.x;
    uint first = ROWS > 1u ? gl_SubgroupID : 0u;
    uint step = ROWS > 1u ? gl_NumSubgroups : 1u;
    uint chunks = (pc.n + 3u) / 4u;
    bool cached = chunks <= width * VPT;
    float nf = float(pc.n);
    for (uint r = first; r < ROWS; r += step) {
        uint row = gl_WorkGroupID.x * ROWS + r;
        if (row >= pc.m) break;   // uniform across the threads of the row
        uint xb = pc.x_off + row * pc.ldx, ob = pc.o_off + row * pc.ldo;
        float mean, var;
        vec4 v[VPT];
        if (cached) {
            float s = 0.0;
            [[unroll]] for (uint j = 0u; j < VPT; j++) {
                uint c = j * width + lane;
                v[j] = c < chunks ? load4(xb, c) : vec4(0.0);
                s += (v[j].x + v[j].y) + (v[j].z + v[j].w);
            }
            mean = row_sum(s) / nf;
            float q = 0.0;
            [[unroll]] for (uint j = 0u; j < VPT; j++) {
                uint c = j * width + lane;
                vec4 d = (v[j] - mean) * (c < chunks ? valid4(c) : vec4(0.0));
                q += dot(d, d);
            }
            var = row_sum(q) / nf;
        } else {
            float cnt = 0.0, mt = 0.0, m2 = 0.0;
            for (uint c = lane; c < chunks; c += width) {
                vec4 x = load4(xb, c), ok = valid4(c);
                float k = dot(ok, vec4(1.0));
                float cm = dot(x, ok) / k;
                vec4 d = (x - cm) * ok;
                // Chan's merge of this chunk (k values, mean cm, M2 |d|^2) into the running one.
                float tot = cnt + k, delta = cm - mt;
                mt += delta * (k / tot);
                m2 += dot(d, d) + delta * delta * (cnt * k / tot);
                cnt = tot;
            }
            mean = row_sum(cnt * mt) / nf;
            float dm = mt - mean;
            var = row_sum(m2 + cnt * dm * dm) / nf;
        }
        float rstd = inversesqrt(var + pc.eps);
        if (cached) {
            [[unroll]] for (uint j = 0u; j < VPT; j++) {
                uint c = j * width + lane;
                if (c < chunks) store4(ob, c, (v[j] - mean) * rstd);
            }
        } else {
            for (uint c = lane; c < chunks; c += width) store4(ob, c, (load4(xb, c) - mean) * rstd);
        }
    }
}
