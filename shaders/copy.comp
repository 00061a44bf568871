// copy.comp — device-to-device copy of 32-bit words: 16-byte loads and stores when both windows
// are 16-byte aligned, words otherwise. Also the kernel behind the measured copy bandwidth. The
// windows never overlap (restrict: loads may take the read-only path).
#version 450
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;

layout(binding = 0) restrict readonly buffer S_ { uint S[]; };
layout(binding = 0) restrict readonly buffer S4_ { uvec4 S4[]; };
layout(binding = 1) restrict writeonly buffer D_ { uint D[]; };
layout(binding = 1) restrict writeonly buffer D4_ { uvec4 D4[]; };

layout(push_constant) uniform PC { uint words, src_rem, dst_rem, gx; } pc;

// Each workgroup copies 16 words per thread: four 16-byte accesses in flight per thread keep
// enough requests outstanding to approach DRAM bandwidth.
void main() {
    const uint WG = gl_WorkGroupSize.x;
    uint group = gl_WorkGroupID.y * pc.gx + gl_WorkGroupID.x;
    uint lid = gl_LocalInvocationID.x;
    if (pc.src_rem == 0 && pc.dst_rem == 0) {
        uint base = group * WG * 4;
        uvec4 v[4];
        [[unroll]] for (uint j = 0; j < 4; j++) {
            uint i = base + j * WG + lid;
            if (i * 4 + 3 < pc.words) v[j] = S4[i];
        }
        [[unroll]] for (uint j = 0; j < 4; j++) {
            uint i = base + j * WG + lid;
            if (i * 4 + 3 < pc.words) {
                D4[i] = v[j];
            } else {
                for (uint w = i * 4; w < i * 4 + 4 && w < pc.words; w++) D[w] = S[w];
            }
        }
        return;
    }
    uint base = group * WG * 16;
    for (uint j = 0; j < 16; j++) {
        uint i = base + j * WG + lid;
        if (i < pc.words) D[pc.dst_rem + i] = S[pc.src_rem + i];
    }
}
