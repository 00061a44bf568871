// pq_lut.comp — product-quantization distance tables: for every table row r and entry e = (j, c)
// of the M x KSUB sub-quantizer centroids,
//   IP = 0: OUT[r, e] = scale * sum_i (x[j*DSUB + i] - CENT[e, i])^2
//   IP = 1: OUT[r, e] = scale * sum_i  x[j*DSUB + i] * CENT[e, i]
// where x is query q(r) (RESID = 0: row r is query r), or for an IVF pair r = q * nprobe + probe
// (RESID = 1) the residual query q - COARSE[probes[r]]. Differences are taken directly, not
// through a norm expansion, so a table entry is accurate to float32 rounding of its few terms.
// One thread per entry; x (a sub-vector) is read by every thread of a workgroup alike.
#version 450
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint IP = 0;
layout(constant_id = 4) const uint RESID = 0;
layout(constant_id = 5) const uint DSUB = 8;
layout(constant_id = 6) const uint MK = 4096;   // M * KSUB entries per row
layout(constant_id = 7) const uint KSUB = 256;

layout(binding = 0) readonly buffer Q_ { float Q[]; };
layout(binding = 1) readonly buffer C_ { float CENT[]; };
layout(binding = 2) readonly buffer Y_ { float COARSE[]; };
layout(binding = 3) readonly buffer W_ { uint WORK[]; };
layout(binding = 4) writeonly buffer O_ { float OUT[]; };

layout(push_constant) uniform PC {
    uint rows, ldq, q_off, cent_off, coarse_off, ldc, nprobe, probe_off, out_off, ldo;
    float scale;
} pc;

void main() {
    const uint e = gl_GlobalInvocationID.x, r = gl_WorkGroupID.y;
    if (e >= MK || r >= pc.rows) return;
    const uint j = e / KSUB;
    const uint q = RESID == 1u ? r / pc.nprobe : r;
    const uint xb = pc.q_off + q * pc.ldq + j * DSUB;
    const uint cb = pc.cent_off + e * DSUB;
    uint yb = 0u;
    bool resid = false;
    if (RESID == 1u) {
        uint list = WORK[pc.probe_off + r];
        resid = list != 0xFFFFFFFFu;
        yb = pc.coarse_off + list * pc.ldc + j * DSUB;
    }
    float s = 0.0;
    for (uint i = 0u; i < DSUB; i++) {
        float x = Q[xb + i];
        if (resid) x -= COARSE[yb + i];
        if (IP == 1u) {
            s = fma(x, CENT[cb + i], s);
        } else {
            float diff = x - CENT[cb + i];
            s = fma(diff, diff, s);
        }
    }
    OUT[pc.out_off + r * pc.ldo + e] = pc.scale * s;
}
