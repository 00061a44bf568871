// kmeans_sort.comp — the first half of a Lloyd update: rows grouped by their new label with a
// counting sort (no float atomics anywhere). STAGE 0 clears the counters; 1 counts rows per label
// (integer atomics, through shared memory for k <= 2048), counts labels that changed and writes
// per-workgroup partial sums of w·dist (the inertia, reduced later in a fixed order); 2 (one
// workgroup) turns the counts into row offsets and into work chunks of at most S rows of one label
// for the reduction; 3 scatters row numbers to their label's segment (their order inside it does
// not matter: the sums are exact fixed-point, see kmeans_reduce.comp). Each X window (rows
// [r0, r0 + rc)) runs 1-3 on its own.
//
// CNT (uint words): counts[k] | changed, empty, work chunks, - | inertia partials (float bits)
// OFF (uint words): offsets[k + 1] | cursor[k] | chunk bases[k + 1]
#version 450
layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint STAGE = 0;
// LOCAL: k <= LK labels, counted in shared memory first, so global atomics are one per
// (workgroup, label present) instead of one per row (small k would serialise on a few words).
layout(constant_id = 4) const bool LOCAL = true;
layout(constant_id = 5) const uint ITEMS = 8;    // rows per thread in stages 1 and 3
const uint LK = 2048;

layout(binding = 0) readonly buffer L_ { uint L[]; };     // new labels
layout(binding = 1) readonly buffer LO_ { uint LO[]; };   // previous labels
layout(binding = 2) readonly buffer DS_ { float DS[]; };  // squared distances to the old centres
layout(binding = 3) readonly buffer W_ { float W[]; };    // sample weights
layout(binding = 4) buffer CNT_ { uint CNT[]; };
layout(binding = 5) buffer OFF_ { uint OFF[]; };
layout(binding = 6) writeonly buffer PERM_ { uint PERM[]; };

layout(push_constant) uniform PC {
    uint k, rows;          // centres; rows of this window
    uint l_off, lo_off, ds_off, w_off;
    uint has_w, first;     // first: no previous labels (every row counts as changed)
    uint part_base;        // index of this window's first inertia partial
    uint S;                // rows per work chunk
    uint clear_n;          // words of CNT to clear (stage 0)
} pc;

const uint WG = gl_WorkGroupSize.x;
shared float red[WG];
shared uint sh_changed;
shared uint sc_a[WG], sc_b[WG];
shared uint hist[LOCAL ? LK : 1];
shared uint base_[LOCAL ? LK : 1];

// Row it of this thread (rows of a workgroup: ITEMS * WG, thread-interleaved).
uint row_of(uint it) { return gl_WorkGroupID.x * WG * ITEMS + it * WG + gl_LocalInvocationID.x; }

void clear_hist() {
    for (uint e = gl_LocalInvocationID.x; e < pc.k; e += WG) hist[e] = 0u;
}

void count_rows() {
    const uint t = gl_LocalInvocationID.x;
    if (t == 0u) sh_changed = 0u;
    if (LOCAL) clear_hist();
    barrier();
    float v = 0.0;
    uint ch = 0u;
    for (uint it = 0u; it < ITEMS; it++) {
        uint i = row_of(it);
        if (i < pc.rows) {
            uint l = L[pc.l_off + i];
            if (LOCAL) atomicAdd(hist[l], 1u);
            else atomicAdd(CNT[l], 1u);
            if (pc.first != 0u || LO[pc.lo_off + i] != l) ch++;
            float dv = DS[pc.ds_off + i];
            v += pc.has_w != 0u ? dv * W[pc.w_off + i] : dv;
        }
    }
    if (ch != 0u) atomicAdd(sh_changed, ch);
    red[t] = v;
    barrier();
    if (LOCAL)
        for (uint e = t; e < pc.k; e += WG)
            if (hist[e] != 0u) atomicAdd(CNT[e], hist[e]);
    for (uint h = WG / 2; h > 0u; h >>= 1) {
        if (t < h) red[t] += red[t + h];
        barrier();
    }
    if (t == 0u) {
        CNT[pc.k + 4u + pc.part_base + gl_WorkGroupID.x] = floatBitsToUint(red[0]);
        if (sh_changed != 0u) atomicAdd(CNT[pc.k], sh_changed);
    }
}

// One workgroup: each thread takes a contiguous run of labels; the runs' totals are scanned in
// shared memory (Hillis-Steele) and every thread writes its run's exclusive offsets.
void scan_counts() {
    const uint t = gl_LocalInvocationID.x;
    const uint k = pc.k;
    const uint per = (k + WG - 1) / WG;
    const uint a = min(k, t * per), b = min(k, a + per);
    uint sa = 0u, sb = 0u;
    for (uint j = a; j < b; j++) {
        uint c = CNT[j];
        sa += c;
        sb += (c + pc.S - 1u) / pc.S;
    }
    sc_a[t] = sa;
    sc_b[t] = sb;
    barrier();
    for (uint h = 1u; h < WG; h <<= 1) {
        uint xa = t >= h ? sc_a[t - h] : 0u, xb = t >= h ? sc_b[t - h] : 0u;
        barrier();
        sc_a[t] += xa;
        sc_b[t] += xb;
        barrier();
    }
    uint oa = sc_a[t] - sa, ob = sc_b[t] - sb;
    for (uint j = a; j < b; j++) {
        uint c = CNT[j];
        OFF[j] = oa;
        OFF[k + 1u + j] = oa;
        OFF[2u * k + 1u + j] = ob;
        CNT[j] = 0u;  // ready for the next window's counts
        oa += c;
        ob += (c + pc.S - 1u) / pc.S;
    }
    if (t == WG - 1u) {
        OFF[k] = sc_a[t];
        OFF[3u * k + 1u] = sc_b[t];
        CNT[k + 2u] = sc_b[t];
    }
}

// Row numbers to their label's segment: with LOCAL, one global atomic per (workgroup, label)
// reserves the workgroup's places, handed out by shared counters.
void scatter_rows() {
    const uint t = gl_LocalInvocationID.x;
    if (LOCAL) {
        clear_hist();
        barrier();
        for (uint it = 0u; it < ITEMS; it++) {
            uint i = row_of(it);
            if (i < pc.rows) atomicAdd(hist[L[pc.l_off + i]], 1u);
        }
        barrier();
        for (uint e = t; e < pc.k; e += WG) {
            uint c = hist[e];
            if (c != 0u) base_[e] = atomicAdd(OFF[pc.k + 1u + e], c);
            hist[e] = 0u;
        }
        barrier();
    }
    for (uint it = 0u; it < ITEMS; it++) {
        uint i = row_of(it);
        if (i < pc.rows) {
            uint l = L[pc.l_off + i];
            uint pos = LOCAL ? base_[l] + atomicAdd(hist[l], 1u) : atomicAdd(OFF[pc.k + 1u + l], 1u);
            PERM[pos] = i;
        }
    }
}

void main() {
    if (STAGE == 0u) {
        uint i = gl_GlobalInvocationID.x;
        if (i < pc.clear_n) CNT[i] = 0u;
    } else if (STAGE == 1u) {
        count_rows();
    } else if (STAGE == 2u) {
        scan_counts();
    } else {
        scatter_rows();
    }
}
