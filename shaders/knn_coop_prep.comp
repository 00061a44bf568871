// knn_coop_prep.comp — the float16 operands of the tensor-core k-nearest-neighbour search
// (knn_coop.comp): row r of the output is row r of X (or row MAP[r] when GATHER, the sample),
// scaled and rounded to float16, zero-padded to dpad columns (rows past `valid` are all zeros),
// and NRM[r] is what knn_coop.glsl's bounds take:
//   MODE 0: the squared norm of the row (float32, as row_l2 sums it), NaN where a float16 value
//           is not finite (an overflow, or inf/NaN in the row);
//   MODE 1 (cosine): the row divided by its norm, and the inverse norm (as row_l2's mode 2).
// With HAS_SHIFT the rows are first shifted, x − MU; with RESID values below float16's normal range
// are stored as zeros and RES[r] gets the squared norm of what the rounding lost, (scaled row) −
// (its float16 copy), each difference exact in float32 (k-means' operands, kmeans_coop.comp).
// One subgroup per row, so any subgroup size works.
//! variant f16: -DIN_F16
#version 450
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#if defined(IN_F16)
#define ELEM float16_t
#else
#define ELEM float
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint MODE = 0;
layout(constant_id = 4) const uint ROWS = 8;
layout(constant_id = 5) const bool GATHER = false;
layout(constant_id = 6) const bool HAS_SHIFT = false;
layout(constant_id = 7) const bool RESID = false;

layout(binding = 0) readonly buffer X_ { ELEM X[]; };
layout(binding = 1) writeonly buffer XH_ { float16_t XH[]; };
layout(binding = 2) writeonly buffer NRM_ { float NRM[]; };
layout(binding = 3) readonly buffer MAP_ { uint MAP[]; };
layout(binding = 4) readonly buffer MU_ { float MU[]; };
layout(binding = 5) writeonly buffer RES_ { float RES[]; };

layout(push_constant) uniform PC {
    uint rows, valid, d, dpad;
    uint ldx, x_off, ldo, o_off, nrm_off, map_off;
    float scale;
    uint mu_off;
} pc;

float at(uint base, uint p) { return HAS_SHIFT ? float(X[base + p]) - MU[pc.mu_off + p] : float(X[base + p]); }

bool bad(float16_t h) { return (floatBitsToUint(float(h)) & 0x7F800000u) == 0x7F800000u; }

void main() {
    for (uint r = gl_SubgroupID; r < ROWS; r += gl_NumSubgroups) {
        uint row = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * ROWS + r;
        if (row >= pc.rows) break;
        uint ob = pc.o_off + row * pc.ldo;
        if (row >= pc.valid) {
            for (uint p = gl_SubgroupInvocationID; p < pc.dpad; p += gl_SubgroupSize) XH[ob + p] = float16_t(0.0);
            continue;
        }
        uint src = GATHER ? MAP[pc.map_off + row] : row;
        uint base = pc.x_off + src * pc.ldx;
        float s = 0.0;
        for (uint p = gl_SubgroupInvocationID; p < pc.d; p += gl_SubgroupSize) {
            float v = at(base, p);
            s = fma(v, v, s);
        }
        s = subgroupAdd(s);
        float f = MODE == 1 ? pc.scale / sqrt(s) : pc.scale;
        bool b = false;
        float res = 0.0;
        for (uint p = gl_SubgroupInvocationID; p < pc.dpad; p += gl_SubgroupSize) {
            float16_t h;
            if (RESID) {
                // Through the bits: the residual is measured on exactly what is stored.
                float v = p < pc.d ? at(base, p) * f : 0.0;
                uint bits = packHalf2x16(vec2(v, 0.0)) & 0xFFFFu;
                float hv = unpackHalf2x16(bits).x;
                if (abs(hv) < 6.103515625e-05) hv = 0.0;   // 2^-14: no subnormals
                float r = v - hv;
                res = fma(r, r, res);
                b = b || (floatBitsToUint(hv) & 0x7F800000u) == 0x7F800000u;
                h = float16_t(hv);   // exact: hv is a float16 value
            } else {
                // knn's operands, in this very form: with the choice made before the conversion
                // instead, the H100 missed a neighbour in test_coop_extreme_values (cause not found).
                h = p < pc.d ? float16_t(at(base, p) * f) : float16_t(0.0);
                b = b || bad(h);
            }
            XH[ob + p] = h;
        }
        b = subgroupAny(b);
        if (RESID) res = subgroupAdd(res);
        if (subgroupElect()) {
            NRM[pc.nrm_off + row] = MODE == 1 ? 1.0 / sqrt(s) : b ? uintBitsToFloat(0x7FC00000u) : s;
            if (RESID) RES[pc.nrm_off + row] = res;
        }
    }
}
