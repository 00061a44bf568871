/* scan.h — what the PQ (pq.c) and IVF (ivf.c) planners share: the plan of the fused scan kernels'
 * candidate selection (shaders/scan_select.glsl), the distance-table dispatch, bindings of whole
 * small tensors, and the scratch budget. Not public. */
#ifndef VA_OPS_SCAN_H
#define VA_OPS_SCAN_H

#include "../core/internal.h"

#define VA_SCAN_WG 256u          /* threads per scan workgroup (a multiple of every subgroup size) */
#define VA_NONE 0xFFFFFFFFu

typedef struct va_select_plan {
    uint32_t qg;      /* queries per workgroup */
    uint32_t cap;     /* candidate entries per query */
    uint32_t sbuf;    /* shared entries: qg * cap, or 1 when the buffers live in device memory */
    uint32_t global;  /* 1: buffers in device scratch, 2 * qg * cap words per workgroup */
    uint32_t p;       /* rows per thread (per subgroup) per round */
} va_select_plan;

/* The selection plan for k: shared buffers when 2k + a round's rows fit the shared memory left
 * beside per_query bytes of other shared data per query (the PQ tables), else device buffers.
 * unit: rows a round offers per query when p = 1; p is at most p_max, qg at most qg_max. */
va_select_plan va_select_plan_for(const va_context *ctx, int64_t k, uint32_t qg_max, uint64_t per_query,
                                  uint32_t unit, uint32_t p_max);

/* Sets n words of buf from byte offset off to 0xFFFFFFFF (the per-query bounds of the scans). */
va_status va_scan_reset_bounds(va_stream *s, va_buffer *buf, uint64_t off, uint64_t n);

/* Shared memory a scan kernel may plan with (the device's, at most 48 KiB, less the selection's
 * counters). */
uint64_t va_scan_shared_bytes(const va_context *ctx);

/* Bytes of scratch one search step may use: a sixteenth of the largest device-local heap, 128 MiB
 * to 1 GiB, and no more than one binding can cover. */
uint64_t va_scan_budget(const va_context *ctx);

/* A small tensor bound whole from an aligned offset; *rem is its first element's index there. */
va_binding va_whole_binding(const va_context *ctx, const va_tensor *t, va_access access, uint32_t *rem);

/* Distance tables (pq_lut.comp): out rows (rows, m * ksub) f32, contiguous rows of stride ldo.
 * Row r is for query r of q, or with probes (a (nq, nprobe) u32 matrix) for the pair r =
 * q * nprobe + j with the query's residual to coarse[probes[q, j]]. ip: inner products instead
 * of squared distances; every entry is multiplied by scale. out_offset in bytes. */
va_status va_pq_lut(va_stream *s, const va_tensor *q, const va_tensor *cent, int64_t m, int nbits, int ip,
                    float scale, const va_tensor *coarse, const va_tensor *probes, int64_t nprobe,
                    va_buffer *out, uint64_t out_offset, int64_t ldo);

#endif
