// copy.comp — device-to-device copy of 32-bit words: 16-byte loads and stores when both windows
// are 16-byte aligned, words otherwise. Also the kernel behind the measured copy bandwidth.
#version 450
layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;

layout(binding = 0) readonly buffer S_ { uint S[]; };
layout(binding = 0) readonly buffer S4_ { uvec4 S4[]; };
layout(binding = 1) writeonly buffer D_ { uint D[]; };
layout(binding = 1) writeonly buffer D4_ { uvec4 D4[]; };

layout(push_constant) uniform PC { uint words, src_rem, dst_rem, gx; } pc;

void main() {
    const uint WG = gl_WorkGroupSize.x;
    uint group = gl_WorkGroupID.y * pc.gx + gl_WorkGroupID.x;
    uint base = group * WG * 4;
    if (pc.src_rem == 0 && pc.dst_rem == 0) {
        uint v = group * WG + gl_LocalInvocationID.x;
        if (v * 4 + 3 < pc.words) {
            D4[v] = S4[v];
            return;
        }
        for (uint i = v * 4; i < v * 4 + 4 && i < pc.words; i++) D[i] = S[i];
        return;
    }
    for (uint j = 0; j < 4; j++) {
        uint i = base + j * WG + gl_LocalInvocationID.x;
        if (i < pc.words) D[pc.dst_rem + i] = S[pc.src_rem + i];
    }
}
