/* vaccel.h — the public C interface of vaccel's core: contexts on a Vulkan device, pooled device
 * buffers, command streams that batch many dispatches into one submit, and the ops that record
 * into them. Usable from C without Python. Every function returns a va_status; on failure the
 * message is kept per thread and read with va_last_error(). Handles are opaque. */
#ifndef VACCEL_H
#define VACCEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VA_VERSION_MAJOR 0
#define VA_VERSION_MINOR 1
#define VA_VERSION_PATCH 0
#define VA_MAX_DIMS 4

typedef enum va_status {
    VA_SUCCESS = 0,
    VA_ERROR_INVALID_ARGUMENT = -1,
    VA_ERROR_DEVICE_NOT_AVAILABLE = -2,
    VA_ERROR_FEATURE_NOT_SUPPORTED = -3,
    VA_ERROR_OUT_OF_DEVICE_MEMORY = -4,
    VA_ERROR_OUT_OF_HOST_MEMORY = -5,
    VA_ERROR_DEVICE_LOST = -6,
    VA_ERROR_INTERNAL = -7
} va_status;

/* The message of the last failing call on this thread ("" if none). */
const char *va_last_error(void);
/* A fixed name for a status code ("VA_ERROR_OUT_OF_DEVICE_MEMORY"). */
const char *va_status_name(va_status s);

typedef enum va_dtype {
    VA_F32 = 0, VA_F16 = 1, VA_BF16 = 2, VA_U8 = 3, VA_I32 = 4, VA_U32 = 5, VA_I64 = 6, VA_F64 = 7
} va_dtype;
size_t va_dtype_size(va_dtype t);

typedef struct va_context va_context;
typedef struct va_buffer va_buffer;
typedef struct va_stream va_stream;

/* ---- devices and capabilities ---------------------------------------------------------- */

typedef enum va_device_type {
    VA_DEVICE_OTHER = 0, VA_DEVICE_INTEGRATED = 1, VA_DEVICE_DISCRETE = 2, VA_DEVICE_VIRTUAL = 3,
    VA_DEVICE_CPU = 4
} va_device_type;

typedef enum va_zero_copy {
    VA_ZERO_COPY_STAGING = 0,  /* host data goes through a staging buffer (one memcpy) */
    VA_ZERO_COPY_IMPORT = 1,   /* host pages are imported and DMA'd to device memory */
    VA_ZERO_COPY_UNIFIED = 2   /* host pages are imported and used in place by kernels */
} va_zero_copy;

#define VA_MAX_HEAPS 16
typedef struct va_heap_info {
    uint64_t size;
    uint64_t budget;  /* VK_EXT_memory_budget, or size when unknown */
    uint64_t usage;   /* by this process, when known */
    int device_local;
} va_heap_info;

typedef struct va_device_info {
    int index;
    char name[256];
    char driver_name[256];
    char driver_info[256];
    uint32_t vendor_id, device_id, driver_version, api_version; /* api_version: VK_MAKE_API_VERSION */
    uint8_t uuid[16];
    va_device_type type;
    uint32_t subgroup_size, min_subgroup_size, max_subgroup_size;
    int subgroup_size_control;     /* requiredSubgroupSize usable in compute */
    int subgroup_arithmetic;
    int subgroup_shuffle;               /* subgroupShuffleXor in compute shaders */
    uint32_t shared_memory_per_workgroup;
    uint32_t max_workgroup_invocations;
    uint32_t max_workgroup_count[3];
    uint64_t max_storage_buffer_range;
    uint64_t max_buffer_size;
    uint32_t min_storage_buffer_offset_alignment;
    int fp16, int8, bf16, fp64, int64;  /* shader arithmetic types */
    int storage_16bit, storage_8bit;    /* 16/8-bit types in storage buffers */
    int integer_dot_product;
    int cooperative_matrix;             /* VK_KHR_cooperative_matrix */
    int cooperative_matrix_nv2;         /* VK_NV_cooperative_matrix2 */
    /* The subgroup-scope float16 x float16 -> float32 shape (M x N x K) the GEMM kernels use,
     * from vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR; 0 when there is none. */
    uint32_t coopmat_m, coopmat_n, coopmat_k;
    /* bfloat16 x bfloat16 -> float32 at that same shape (VK_KHR_shader_bfloat16's cooperative
     * matrices, listed by the same query). */
    int coopmat_bf16;
    int external_memory_host;           /* VK_EXT_external_memory_host */
    uint64_t min_imported_host_pointer_alignment;
    int memory_budget;                  /* VK_EXT_memory_budget */
    int unified_memory;                 /* every device-local type is also host-visible */
    int device_local_host_visible;      /* a device-local host-visible type exists (ReBAR) */
    int timestamps;                     /* compute queue writes timestamps */
    float timestamp_period_ns;
    int transfer_queue;                 /* a queue family with transfer but no compute/graphics */
    va_zero_copy zero_copy;             /* the host-data path this device takes */
    uint64_t wait_spin_us;              /* a context's waits poll this long before they sleep */
    int pipeline_stats;                 /* VACCEL_PIPELINE_STATS=1 and the device reports them */
    int push_descriptors;               /* bindings pushed per dispatch (VK_KHR_push_descriptor) */
    uint32_t heap_count;
    va_heap_info heaps[VA_MAX_HEAPS];
} va_device_info;

/* Devices Vulkan offers, in the loader's order. Creates the process-wide instance on first use. */
va_status va_device_count(int *count);
va_status va_device_get_info(int index, va_device_info *info);

/* ---- contexts ---------------------------------------------------------------------------- */

typedef struct va_context_options {
    /* Device index ("1") or a case-insensitive substring of its name; NULL or "" picks
     * discrete > integrated > virtual > CPU. NULL also consults VACCEL_DEVICE. */
    const char *device;
    int validation;        /* enable VK_LAYER_KHRONOS_validation and record its messages */
    const char *cache_dir; /* pipeline cache folder; NULL: $XDG_CACHE_HOME/vaccel or ~/.cache/vaccel;
                              "" disables the disk cache */
} va_context_options;

va_status va_context_create(const va_context_options *opts, va_context **out);
/* Waits for the device, writes the pipeline cache, frees everything. */
void va_context_destroy(va_context *ctx);
va_status va_context_get_info(va_context *ctx, va_device_info *info);
/* Writes the pipeline cache now (also done by va_context_destroy). */
va_status va_context_save_cache(va_context *ctx);

typedef struct va_memory_stats {
    uint64_t device_bytes_reserved;  /* device-local blocks held by the pool */
    uint64_t device_bytes_in_use;    /* suballocated from them */
    uint64_t device_bytes_peak;      /* high-water mark of in_use since the last reset */
    uint64_t host_bytes_reserved;    /* staging blocks */
    uint64_t device_blocks, host_blocks;
    uint64_t imports;                /* host-memory imports made */
    uint64_t pipelines_created, pipeline_cache_hits; /* cache hits: pipelines found in memory */
    int disk_cache_loaded;           /* the on-disk pipeline cache was valid and used */
} va_memory_stats;
va_status va_context_memory_stats(va_context *ctx, va_memory_stats *out);
void va_context_reset_peak(va_context *ctx);

/* Validation messages recorded since the last call (validation contexts only). Copies up to
 * cap bytes of newline-separated messages into buf and returns the count through *count;
 * clears the list when clear != 0. */
va_status va_validation_messages(char *buf, size_t cap, int clear, int *count);

/* ---- buffers ---------------------------------------------------------------------------- */

/* A device buffer of size bytes, suballocated from the pool. Reference counted: streams that use
 * a buffer hold it until their work is done, so releasing early is safe. */
va_status va_buffer_create(va_context *ctx, uint64_t size, va_buffer **out);
/* A buffer in host-visible memory that the host writes through va_buffer_host_ptr and copies read
 * (staging for uploads the caller fills itself, e.g. from several threads). */
va_status va_buffer_create_staging(va_context *ctx, uint64_t size, va_buffer **out);
/* The host address of a host-visible buffer's first byte; NULL for device memory. */
void *va_buffer_host_ptr(const va_buffer *buf);
void va_buffer_retain(va_buffer *buf);
void va_buffer_release(va_buffer *buf);
uint64_t va_buffer_size(const va_buffer *buf);

/* ---- tensors ---------------------------------------------------------------------------- */

/* A strided view of a buffer. Strides are in elements; shape[ndim-1] is the fastest axis. */
typedef struct va_tensor {
    va_buffer *buf;
    uint64_t offset;                 /* bytes from the buffer's start */
    va_dtype dtype;
    int ndim;
    int64_t shape[VA_MAX_DIMS];
    int64_t strides[VA_MAX_DIMS];
} va_tensor;

/* ---- streams ------------------------------------------------------------------------------ */

va_status va_stream_create(va_context *ctx, va_stream **out);
/* A stream for uploads only (upload, copy), on the device's transfer queue where it has one, so
 * that they overlap the compute streams' work. Work that reads what it uploaded is submitted once
 * its wait has returned (each submit ends with its writes made available to the host, and a later
 * submit on any queue sees them). */
va_status va_stream_create_transfer(va_context *ctx, va_stream **out);
void va_stream_destroy(va_stream *s);
/* Host -> device copy. The bytes are read at record time or during the stream's work, so src must
 * stay valid and unchanged until va_stream_wait returns; uploads under 1 MiB are copied when
 * recorded, so their src may be freed on return (op planners upload small parameter blocks so). */
va_status va_stream_upload(va_stream *s, va_buffer *dst, uint64_t dst_offset, const void *src,
                           uint64_t size);
/* Device -> host copy, complete when va_stream_wait returns. */
va_status va_stream_download(va_stream *s, va_buffer *src, uint64_t src_offset, void *dst,
                             uint64_t size);
/* Device -> device copy through the copy kernel (sizes multiple of 4 bytes take the fast path). */
va_status va_stream_copy(va_stream *s, va_buffer *src, uint64_t src_offset, va_buffer *dst,
                         uint64_t dst_offset, uint64_t size);

/* VA_RESULT (with VA_WRITE, for host operands): a small result the op writes with plain stores only
 * (no atomics, no reads back), which a discrete device may write straight into host memory. */
typedef enum va_access { VA_READ = 1, VA_WRITE = 2, VA_READ_WRITE = 3, VA_RESULT = 4 } va_access;
/* Host memory as a device buffer for this stream's work: imported in place where the device is
 * unified, imported and copied by DMA where it can import, else staged. READ data is on the
 * device before the next recorded op; WRITE data reaches host memory when va_stream_wait returns.
 * The memory must stay valid until then. *buf is owned by the stream. */
va_status va_stream_host_operand(va_stream *s, void *ptr, uint64_t size, va_access access,
                                 va_buffer **buf, uint64_t *offset);
/* A scratch device buffer that lives until the stream's work is done. */
va_status va_stream_scratch(va_stream *s, uint64_t size, va_buffer **buf);
/* The stream's counters: at least count 32-bit words that read zero when the next recorded command
 * runs. Kernels that use them (a "last workgroup" ticket, say) must leave them zero again. A
 * dispatch binding them for writing is ordered after earlier users by the usual barrier. */
va_status va_stream_counters(va_stream *s, uint64_t count, va_buffer **buf);

/* Submit what was recorded (non-blocking); va_stream_wait submits if needed, waits once, finishes
 * host copies and resets the stream for reuse. */
va_status va_stream_submit(va_stream *s);
va_status va_stream_wait(va_stream *s);
/* Discards what was recorded and not yet submitted (after a failed op), or waits out what was
 * submitted; the stream is reusable afterwards. */
void va_stream_abort(va_stream *s);
/* Number of ops/dispatches recorded and not yet waited for. */
uint32_t va_stream_pending(const va_stream *s);

/* Profiling: GPU timestamps around each dispatch (when the device has timestamps). */
va_status va_stream_set_profiling(va_stream *s, int enabled);
typedef struct va_dispatch_timing {
    const char *label;   /* kernel name; valid while the context lives */
    double gpu_ns;       /* -1 when not measured */
} va_dispatch_timing;
/* Timings of the last waited-for batch; *count receives how many exist. */
va_status va_stream_timings(const va_stream *s, va_dispatch_timing *out, uint32_t cap,
                            uint32_t *count);
typedef struct va_stream_stats {
    uint64_t dispatches, submits, barriers, bytes_uploaded, bytes_downloaded;
    /* Host time (ns, cumulative): ending and submitting command buffers; waiting for them after
     * the submit; the host copies and the reset after the wait. */
    uint64_t submit_ns, wait_ns, finish_ns;
} va_stream_stats;
va_status va_stream_get_stats(const va_stream *s, va_stream_stats *out);

/* ---- ops ------------------------------------------------------------------------------------ */

typedef enum va_metric {
    VA_METRIC_SQEUCLIDEAN = 0, VA_METRIC_EUCLIDEAN = 1, VA_METRIC_COSINE = 2,
    VA_METRIC_INNER = 3, VA_METRIC_CITYBLOCK = 4, VA_METRIC_CHEBYSHEV = 5,
    VA_METRIC_MINKOWSKI = 6, VA_METRIC_HAMMING = 7, VA_METRIC_BITWISE_HAMMING = 8
} va_metric;

/* out[i, j] = metric(xa[i, :], xb[j, :]).  xa (m, d), xb (n, d): f32 or f16 (u8 for
 * BITWISE_HAMMING, whose d is a byte count and whose rows must be 4-byte aligned); out (m, n)
 * f32. Rows may be strided; the last axis must be contiguous. p is Minkowski's order. */
va_status va_cdist(va_stream *s, const va_tensor *xa, const va_tensor *xb, va_metric metric,
                   float p, const va_tensor *out);
/* out[i, :] = x[i, :] / ||x[i, :]||, zero rows stay zero. x (m, d) f32/f16; out (m, d) f32. */
va_status va_normalize(va_stream *s, const va_tensor *x, const va_tensor *out);
/* out[i] = sum_j x[i, j]^2. x (m, d) f32/f16; out (m,) f32. */
va_status va_row_sqnorms(va_stream *s, const va_tensor *x, const va_tensor *out);

/* values[i, :], indices[i, :] = the k best entries of x[i, :] (smallest, or largest when largest
 * != 0), sorted best first, ties by lower index, NaN after every number. x (m, n) f32 or f16 (where
 * the device reads 16-bit storage); values (m, k) f32; indices (m, k) u32, 0xFFFFFFFF (and +-inf
 * values) where fewer than k entries are allowed.
 * idx (m, n) u32, optional: the index reported for each entry (else column + idx_base).
 * mask, optional: u32 bitset; column j is allowed when bit mask_offset + j is set.
 * Long rows without idx or mask (n >= 16384, k up to about 2800) take a sampled filter path that
 * reads x about once; its results are exact too (rows it cannot settle are recomputed on the
 * device). VACCEL_TOPK_FILTER=0 turns it off, =1 takes it wherever it can run. */
va_status va_topk(va_stream *s, const va_tensor *x, int64_t k, int largest, const va_tensor *idx,
                  const va_tensor *mask, int64_t mask_offset, int64_t idx_base, const va_tensor *out_v,
                  const va_tensor *out_i);

/* The k nearest rows of db for each row of q under metric (cdist's metrics; INNER ranks largest
 * first): distances (nq, k) f32 and indices (nq, k) u32 into db, best first, ties by lower index,
 * 0xFFFFFFFF and +-inf where fewer than k rows are allowed. mask, optional: u32 bitset over db rows.
 * Works through distance tiles of bounded size; the nq x nb matrix is never formed. */
va_status va_knn(va_stream *s, const va_tensor *q, const va_tensor *db, va_metric metric, float p, int64_t k,
                 const va_tensor *mask, const va_tensor *out_d, const va_tensor *out_i);

/* va_knn for sqeuclidean, euclidean, inner and cosine, k <= 256 (va_knn_fused_supported), f32/f16
 * queries and database, no filter, at least one database row: the distance tiles keep only the
 * pairs within a bound taken from a random sample of the database, so the work is the GEMM plus
 * a few percent. overflow (nq,) u32: nonzero for a query whose candidate list overflowed (rare:
 * below about 1e-6 per query); its row of results is not valid and must be recomputed with va_knn. */
int va_knn_fused_supported(const va_context *ctx, va_metric metric, int64_t k);
va_status va_knn_fused(va_stream *s, const va_tensor *q, const va_tensor *db, va_metric metric, int64_t k,
                       const va_tensor *out_d, const va_tensor *out_i, const va_tensor *overflow);

/* Quantizers (vaccel.ScalarQuantizer, vaccel.BinaryQuantizer). Codes are rows of a u8 tensor
 * (n, cw) whose width cw is a multiple of 4 bytes, rows and offset 4-byte aligned: the code's bytes,
 * then zeros. Float operands are f32 or f16 (n, d), rows strided, the last axis contiguous.
 *
 * Scalar quantizer, bits 8 (one byte per element) or 4 (two per byte, element 2i in the low nibble
 * of byte i): with vmin, scale, step (d,) f32 trained as scale = 2^bits / (vmax - vmin) and
 * step = (vmax - vmin) / 2^bits (scale 0 where vmax == vmin), element x of column j encodes to
 * t = (x - vmin[j]) * scale[j], c = t >= 0 ? min(floor(t), 2^bits - 1) : 0 (NaN -> 0) and decodes
 * to vmin[j] + (c + 0.5) * step[j], each operation rounded to f32 without fused multiply-adds. */
va_status va_sq_encode(va_stream *s, const va_tensor *x, const va_tensor *vmin, const va_tensor *scale, int bits,
                       const va_tensor *codes);
/* out (n, d) f32; d is out's width. */
va_status va_sq_decode(va_stream *s, const va_tensor *codes, const va_tensor *vmin, const va_tensor *step, int bits,
                       const va_tensor *out);
/* va_knn (metrics SQEUCLIDEAN, EUCLIDEAN, COSINE, INNER) between float32 queries q (nq, d) and the
 * decoded rows of codes, computed in float32 by distance tiles that decode the codes as they load
 * them (the database is never decoded into memory). Results as va_knn. */
va_status va_sq_knn(va_stream *s, const va_tensor *q, const va_tensor *codes, const va_tensor *vmin,
                    const va_tensor *step, int bits, va_metric metric, int64_t k, const va_tensor *mask,
                    const va_tensor *out_d, const va_tensor *out_i);
/* va_knn_fused over codes (k <= 256, no filter): the GEMM tiles decode the codes as they fetch
 * them and keep only pairs within a bound from a random sample of the database; overflow (nq,) u32
 * flags a query whose candidate list overflowed, whose row must be recomputed with va_sq_knn. */
va_status va_sq_knn_fused(va_stream *s, const va_tensor *q, const va_tensor *codes, const va_tensor *vmin,
                          const va_tensor *step, int bits, va_metric metric, int64_t k, const va_tensor *out_d,
                          const va_tensor *out_i, const va_tensor *overflow);
/* Binary quantizer: bit j set where x[j] > thresholds[j] (NaN -> 0), 8 elements per byte, element
 * 8i + b at bit 7 - b of byte i (little == 0: numpy.packbits' default) or at bit b (little != 0:
 * faiss's real_to_binary). Decoding gives +1.0 / -1.0; out (n, d) f32, d its width. */
va_status va_binary_encode(va_stream *s, const va_tensor *x, const va_tensor *thresholds, int little,
                           const va_tensor *codes);
va_status va_binary_decode(va_stream *s, const va_tensor *codes, int little, const va_tensor *out);
/* Exact k nearest database codes of each query code under the Hamming distance, fused (the
 * nq x nb distance matrix is never formed): q (nq, cb) and db (nb, cb) u8 code rows as above with
 * cb of 4 to 128 bytes; distances (nq, k) f32 (whole numbers), indices (nq, k) u32, best first,
 * ties to the lower row, 0xFFFFFFFF / +inf where fewer than k rows are allowed; mask optional as in
 * va_knn. Candidates within a per-query bound taken from a sample are kept, at most cap per query
 * (k <= cap); counts (nq,) u32 receives each query's number of candidates: a row whose count
 * exceeds cap may be incomplete and must be recomputed (e.g. by va_knn with BITWISE_HAMMING). */
va_status va_hamming_knn(va_stream *s, const va_tensor *q, const va_tensor *db, int64_t k, const va_tensor *mask,
                         int64_t cap, const va_tensor *out_d, const va_tensor *out_i, const va_tensor *out_count);

/* Dense math. c = a·b (c += a·b when accumulate): a (m, k) or (batch, m, k), b (k, n) or
 * (batch, k, n), c (m, n) or (batch, m, n); a batch of 1 broadcasts. a and b float32 or float16,
 * either of their last two axes contiguous (a transposed view costs nothing); c float32, or
 * float16 for float16 a and b; float32 accumulation. Float16 runs on cooperative matrices where the
 * device has them (VACCEL_NO_COOPMAT=1 turns that off). */
va_status va_matmul(va_stream *s, const va_tensor *a, const va_tensor *b, const va_tensor *c, int accumulate);
/* y = a·x: a as in va_matmul, x (batch or 1, k) float32, y (batch, m) float32. */
va_status va_matvec(va_stream *s, const va_tensor *a, const va_tensor *x, const va_tensor *y);
/* out = aᵀ over the last two axes: a (rows, cols) or (batch, rows, cols), out (batch, cols, rows);
 * 16- or 32-bit elements, last axes contiguous. */
va_status va_transpose(va_stream *s, const va_tensor *a, const va_tensor *out);

/* out = a program of elementwise instructions over in[0..nin) (1..6 tensors of out's shape, float32
 * or float16, any non-negative strides: 0 broadcasts a dim) and scalars k[0..nk) (nk <= 16), in one
 * pass. prog: nprog <= 24 instruction words (op | dst << 6 | a << 10 | b << 16 | c << 22; sources
 * 0..15 registers, inputs preloaded in 0..nin-1; 16..31 scalars); result: the register written to
 * out (float32 or float16). Opcodes are listed in shaders/elementwise.comp. */
va_status va_elementwise(va_stream *s, const uint32_t *prog, int nprog, int result, const va_tensor *in, int nin,
                         const float *k, int nk, const va_tensor *out);

/* out[i, :] = softmax(x[i, :]) = exp(x[i, :] - max) / sum(exp(x[i, :] - max)); a row holding NaN,
 * +inf or only -inf is NaN. x (m, n) f32 or f16, any non-negative strides; out (m, n) of x's dtype,
 * rows contiguous. */
va_status va_softmax(va_stream *s, const va_tensor *x, const va_tensor *out);
/* out[i, :] = (x[i, :] - mean) / sqrt(var + eps) * weight + bias (biased variance). x and out as
 * va_softmax; weight and bias optional contiguous f32 vectors of n elements. */
va_status va_layer_norm(va_stream *s, const va_tensor *x, const va_tensor *weight, const va_tensor *bias, float eps,
                        const va_tensor *out);

/* k-means. x (n, d) float32 or float16, any row stride, last axis contiguous, possibly larger than
 * one binding (taken in windows of rows). Centres (k, d) float32, rows contiguous. `shift` (d)
 * float32 is subtracted from every row of x first (centring keeps the GEMM form accurate when the
 * data sit far from the origin; centres are then given in the shifted frame); NULL: none.
 * Labels are uint32 (int32 accepted), distances float32; vectors contiguous. */

/* The nearest centre of every row: labels[i] = argmin_j ‖x_i − shift − c_j‖², scored in the GEMM
 * form ‖c_j‖² − 2 x_i·c_j in float32 (equal scores: the lowest j, so duplicated centres resolve to
 * the first; distinct centres closer than float32 rounding of the scores are near-ties), and
 * dists[i] = that squared distance recomputed directly from the coordinates (no GEMM-form
 * cancellation). One fused kernel: GEMM tiles of x·cᵀ whose epilogue keeps a running argmin per row;
 * no n x k matrix exists. cnorms: ‖c_j‖² (k) or NULL (computed); dists may be NULL. Rows holding
 * NaN get an unspecified label. */
va_status va_kmeans_assign(va_stream *s, const va_tensor *x, const va_tensor *centres, const va_tensor *cnorms,
                           const va_tensor *shift, const va_tensor *labels, const va_tensor *dists);

/* One Lloyd iteration, recorded as one piece of work: labels_out/dists_out = the assignment of x to
 * `centres` (as va_kmeans_assign, with `shift`), then centres_out[j] = Σ w_i (x_i − shift) / Σ w_i
 * over the rows labelled j. A centre with no weight keeps its position and is counted as empty
 * (the caller re-seeds it). Sums are exact 64-bit fixed point, so the result does not depend on
 * the order of the rows: no float atomics, the same bits on every run. scales (d + 1) float32:
 * powers of two per column of x (and for the weights, last) such that Σ_i |w_i (x_ij − shift_j)|
 * scale_j < 2^62 (and Σ w_i scale_d < 2^62). weights (n) float32 >= 0 or NULL (all 1).
 * labels_prev: the previous labels (n), or NULL on the first iteration. aux_out (2k + 4) 32-bit
 * words: per-centre weights (float), per-centre squared shifts ‖c_new − c‖² (float), then the
 * statistics: rows whose label changed (uint32), empty centres (uint32), inertia Σ w_i dists_i
 * (float, against `centres`), total squared shift (float). stats_out (4 words) or NULL receives a
 * copy of those statistics. centres_out may be centres itself; labels_out must not overlap
 * labels_prev. */
va_status va_kmeans_lloyd_step(va_stream *s, const va_tensor *x, const va_tensor *weights, const va_tensor *shift,
                               const va_tensor *scales, const va_tensor *centres, const va_tensor *labels_prev,
                               const va_tensor *centres_out, const va_tensor *labels_out, const va_tensor *dists_out,
                               const va_tensor *aux_out, const va_tensor *stats_out);

/* va_kmeans_lloyd_step with Hamerly's bounds: the same results (labels, distances, centres,
 * statistics, to the bit), computing the distances to every centre only for the rows whose bounds
 * cannot prove that their centre stays the nearest under float32 rounding. lower (n) float32: one
 * lower bound per row of its distance to every other centre, written by every call and read by the
 * next. centres_prev: the centres of the previous call's assignment (labels_prev its labels), or
 * both NULL on the first call (a full assignment that starts the bounds). stats_out (5 words): the
 * four statistics, then the rows assigned in full. */
va_status va_kmeans_lloyd_step_bounded(va_stream *s, const va_tensor *x, const va_tensor *weights,
                                       const va_tensor *shift, const va_tensor *scales, const va_tensor *centres,
                                       const va_tensor *centres_prev, const va_tensor *labels_prev,
                                       const va_tensor *lower, const va_tensor *centres_out,
                                       const va_tensor *labels_out, const va_tensor *dists_out,
                                       const va_tensor *aux_out, const va_tensor *stats_out);

/* va_kmeans_assign (with `shift`, distances required) through the same bounds: labels_prev,
 * centres_prev and lower as va_kmeans_lloyd_step_bounded. listed_out (1 word) or NULL: the rows
 * assigned in full. */
va_status va_kmeans_assign_bounded(va_stream *s, const va_tensor *x, const va_tensor *shift,
                                   const va_tensor *centres, const va_tensor *centres_prev,
                                   const va_tensor *labels_prev, const va_tensor *lower, const va_tensor *labels_out,
                                   const va_tensor *dists_out, const va_tensor *listed_out);

/* Greedy k-means++ seeding (k = centres_out rows), every step on the device: centre 0 is row
 * `first`; each later step draws `trials` candidates with probability ∝ w·D² (D: distance to the
 * nearest centre so far; thresholds uniforms[(step - 1) * trials + t] * potential, located with
 * numpy.searchsorted's rule) and keeps the one that lowers the potential most. centres_out (k, d)
 * float32 in the shifted frame; indices_out (k) the chosen rows. shift (d) float32, required. */
va_status va_kmeans_plusplus(va_stream *s, const va_tensor *x, const va_tensor *weights, const va_tensor *shift,
                             int64_t first, const va_tensor *uniforms, int64_t trials, const va_tensor *centres_out,
                             const va_tensor *indices_out);

/* out[q, :] = x[indices[q], :] − shift (float32), indices (m) uint32 rows of x; shift may be NULL. */
va_status va_kmeans_gather(va_stream *s, const va_tensor *x, const va_tensor *indices, const va_tensor *shift,
                           const va_tensor *out);

/* Product quantization. A product quantizer splits d into m sub-vectors of d/m; sub-quantizer j
 * has 2^nbits centroids, held as centroids (m * 2^nbits, d / m) f32: row j * 2^nbits + c is
 * centroid c of sub-quantizer j. A code is m sub-codes of nbits bits (1..8) in an LSB-first bit
 * stream (faiss's layout), padded to (m * nbits + 31) / 32 u32 words per row.
 * tables (nq, m * 2^nbits) f32: entry (j, c) of query i is ||q_j - centroid_jc||^2
 * (SQEUCLIDEAN) or q_j . centroid_jc (INNER), the sub-vector q_j = q[i, j*d/m : (j+1)*d/m]. */
va_status va_pq_tables(va_stream *s, const va_tensor *q, const va_tensor *centroids, int64_t m, int nbits,
                       va_metric metric, const va_tensor *out);
/* The k best codes of codes (nb, words) for each query of q (nq, d) by asymmetric distance: the
 * sum over j of the tables' entry (j, code_j) (squared distance to the decoded code, or its inner
 * product for INNER, largest first). distances (nq, k) f32, indices (nq, k) u32 rows of codes, best
 * first, ties by lower row; where fewer than k rows are allowed the index is 0xFFFFFFFF (and the
 * distance NaN). mask, optional: u32 bitset over rows. The selection runs inside the scan; no
 * nq x nb intermediate exists. half_tables != 0: the tables are held as float16 (scaled per query
 * by a power of two), two queries' entries per lookup, four entries summed in float16 before
 * float32 where the device has shaderFloat16: faster, distances within ~2e-3 relative (used when
 * at least two queries share a workgroup). */
va_status va_pq_search(va_stream *s, const va_tensor *q, const va_tensor *centroids, const va_tensor *codes,
                       int64_t m, int nbits, va_metric metric, int64_t k, const va_tensor *mask, int half_tables,
                       const va_tensor *out_d, const va_tensor *out_i);

/* An inverted-file index as stored on the device: nlist coarse centroids; list l holds the rows
 * (slots) [lists[l, 0], lists[l, 0] + lists[l, 1]) of vectors (IVF-Flat: (slots, d) f32) or of
 * codes (IVF-PQ: the product-quantization codes of x - centroids[l], as for va_pq_search, with
 * pq_centroids). pq_term, optional (SQEUCLIDEAN IVF-PQ): (nlist, m * 2^nbits) f32, entry (l; j, c)
 * = ||centroid_jc||^2 + 2 centroids[l]_j . centroid_jc (faiss's precomputed tables); without it
 * a table per (query, list) pair is computed. */
typedef struct va_ivf_index {
    va_metric metric;              /* SQEUCLIDEAN or INNER (largest first) */
    const va_tensor *centroids;    /* (nlist, d) f32 */
    const va_tensor *lists;        /* (nlist, 2) u32: first slot, count */
    const va_tensor *vectors;      /* IVF-Flat, else NULL */
    const va_tensor *codes;        /* IVF-PQ, else NULL: (slots, (m * nbits + 31) / 32) u32 */
    const va_tensor *pq_centroids; /* IVF-PQ: (m * 2^nbits, d / m) f32 */
    const va_tensor *pq_term;      /* IVF-PQ, optional */
    int64_t m;
    int nbits;
} va_ivf_index;
/* For each query of q (nq, d): the nprobe lists whose centroids are best for it (va_knn), then the
 * k best rows of those lists: exact distances (IVF-Flat) or asymmetric distances to x's
 * reconstruction centroid + decoded residual (IVF-PQ). distances (nq, k) f32, indices (nq, k) u32
 * slots, best first, ties by lower slot; 0xFFFFFFFF (and NaN) where fewer than k rows are allowed
 * in the probed lists. mask, optional: u32 bitset over slots. One workgroup per (query, list) pair
 * selects its k best as it scans; a topk merges the pairs. */
va_status va_ivf_search(va_stream *s, const va_ivf_index *index, const va_tensor *q, int64_t nprobe, int64_t k,
                        const va_tensor *mask, const va_tensor *out_d, const va_tensor *out_i);

/* Ops by name, for bindings: the same ops with integer and float parameters by position. */
typedef va_status (*va_op_fn)(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out,
                              int n_out, const int64_t *iparams, int n_i, const double *fparams,
                              int n_f);
va_op_fn va_op_find(const char *name);
/* Names of all registered ops, NULL-terminated. */
const char *const *va_op_names(void);

#ifdef __cplusplus
}
#endif
#endif
