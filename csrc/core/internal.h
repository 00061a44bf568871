/* internal.h — what the core's files share and op planners use: the context and its device, the
 * memory pool, kernels (pipelines with specialization), and the dispatch recorder. Not public. */
#ifndef VACCEL_INTERNAL_H
#define VACCEL_INTERNAL_H

#include <pthread.h>
#include <vulkan/vulkan.h>

#include "../vaccel.h"

/* ---- errors (error.c) ---- */
va_status va_fail(va_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
va_status va_vk_fail(VkResult r, const char *what);
void va_clear_error(void);
#define VA_TRY(expr)                        \
    do {                                    \
        va_status va_try_s_ = (expr);       \
        if (va_try_s_ != VA_SUCCESS) return va_try_s_; \
    } while (0)
#define VK_TRY(expr, what)                  \
    do {                                    \
        VkResult vk_try_r_ = (expr);        \
        if (vk_try_r_ != VK_SUCCESS) return va_vk_fail(vk_try_r_, what); \
    } while (0)

/* ---- instance and devices (device.c) ---- */
typedef struct va_instance {
    VkInstance instance;
    int validation;
    VkDebugUtilsMessengerEXT messenger;
    uint32_t physical_count;
    VkPhysicalDevice *physical;
} va_instance;
va_status va_instance_get(int validation, va_instance **out);
va_status va_query_device(VkPhysicalDevice pd, int index, va_device_info *info);

/* ---- memory (memory.c) ---- */
typedef enum va_mem_kind {
    VA_MEM_DEVICE = 0,   /* device-local; host-visible too on unified devices */
    VA_MEM_UPLOAD = 1,   /* host-visible, write-combined is fine */
    VA_MEM_READBACK = 2, /* host-visible, cached preferred */
    VA_MEM_KINDS = 3
} va_mem_kind;

typedef struct va_block va_block;
typedef struct va_span { uint64_t offset, size; } va_span;

struct va_block {
    va_block *next;
    VkDeviceMemory memory;
    VkBuffer buffer;
    uint64_t size;
    void *mapped;            /* non-NULL when host-visible */
    va_span *free;           /* free list sorted by offset */
    uint32_t free_count, free_cap;
    uint64_t used;
    int dedicated;           /* one allocation of its own; freed when released */
    int imported;            /* wraps host memory */
};

typedef struct va_pool {
    va_block *blocks;
    uint32_t memory_type;
    int valid;
    uint64_t reserved, in_use, peak, nblocks;
    uint64_t cached;         /* bytes of empty dedicated blocks kept for reuse */
} va_pool;

struct va_buffer {
    va_context *ctx;
    va_block *block;
    uint64_t offset;         /* within block */
    uint64_t size;
    int refs;
    va_mem_kind kind;
};

va_status va_memory_init(va_context *ctx);
void va_memory_destroy(va_context *ctx);
va_status va_buffer_alloc(va_context *ctx, va_mem_kind kind, uint64_t size, va_buffer **out);
/* Imports [ptr, ptr+size) rounded out to the import alignment. */
va_status va_buffer_import(va_context *ctx, void *ptr, uint64_t size, va_buffer **out,
                           uint64_t *offset);
static inline void *va_buffer_map(const va_buffer *b) {
    return b->block->mapped ? (char *)b->block->mapped + b->offset : NULL;
}

/* ---- kernels (pipeline.c) ---- */
typedef struct va_spirv {
    const char *name;
    const uint32_t *code;
    size_t words;
} va_spirv;
extern const va_spirv va_spirv_table[];
extern const size_t va_spirv_count;

#define VA_MAX_SPEC 32
#define VA_MAX_BINDINGS 16
#define VA_PUSH_BYTES 128

typedef struct va_kernel {
    const char *name;
    uint32_t spec[VA_MAX_SPEC];
    uint32_t nspec;
    uint32_t required_subgroup;
    uint32_t nbindings;
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout layout;
    VkPipeline pipeline;
    uint32_t hash;               /* of name, spec and required_subgroup (pipeline.c) */
    struct va_kernel *next;      /* every kernel (ctx->kernels) */
    struct va_kernel *hnext;     /* the next in its ctx->kernel_table bucket */
} va_kernel;

#define VA_KERNEL_BUCKETS 256

/* The pipeline for shader `name` with specialization constants spec[0..nspec) (constant_id =
 * index; ids 0..2 are the workgroup size by convention). required_subgroup != 0 asks for that
 * subgroup size where the device allows it. Created once and kept. */
va_status va_kernel_get(va_context *ctx, const char *name, const uint32_t *spec, uint32_t nspec,
                        uint32_t required_subgroup, const va_kernel **out);
/* Whether the build embedded shader `name` (shaders needing a newer compiler may be left out). */
int va_kernel_available(const char *name);
va_status va_pipeline_init(va_context *ctx, const char *cache_dir);
void va_pipeline_destroy(va_context *ctx);

/* ---- context ---- */
#define VA_VALIDATION_MAX 256
struct va_context {
    va_instance *inst;
    VkPhysicalDevice physical;
    VkDevice device;
    VkQueue queue;
    uint32_t queue_family;
    /* Uploads that overlap compute: a transfer-only queue family (a DMA engine) where the device
     * has one, else the compute queue itself; device buffers are shared by both families. */
    VkQueue transfer_queue;
    uint32_t transfer_family;
    va_device_info info;
    VkPhysicalDeviceMemoryProperties memprops;
    pthread_mutex_t lock;          /* pool, kernels, queue */
    va_pool pools[VA_MEM_KINDS];
    uint64_t imports;
    uint64_t block_size;
    /* kernels */
    va_kernel *kernels;
    va_kernel *kernel_table[VA_KERNEL_BUCKETS];   /* the same, hashed for va_kernel_get */
    VkPipelineCache cache;
    char cache_path[1024];
    int cache_loaded;
    uint64_t pipelines_created, pipeline_hits;
    /* VACCEL_PIPELINE_STATS=1 where the device has VK_KHR_pipeline_executable_properties: each new
     * pipeline's compiler statistics (registers, shared and local memory...) go to stderr. */
    PFN_vkGetPipelineExecutablePropertiesKHR get_exec_props;
    PFN_vkGetPipelineExecutableStatisticsKHR get_exec_stats;
    PFN_vkCmdPushDescriptorSetKHR push_descriptor;   /* NULL: descriptor sets from pools */
    PFN_vkGetMemoryHostPointerPropertiesEXT get_host_ptr_props;
    /* The knn search's last shuffled sample of database rows (knn.c sample_rows), in host-visible
     * memory written once: the next search over as many rows reuses it. Under lock. */
    va_buffer *sample_map;
    int64_t sample_nb, sample_ns;
};

/* ---- streams (stream.c) ---- */
typedef struct va_binding {
    va_buffer *buf;
    uint64_t offset;     /* bytes, within buf */
    uint64_t size;       /* bytes; VK_WHOLE_SIZE for the rest of buf */
    va_access access;
} va_binding;

/* Keeps buf alive until the stream's recorded work has finished (or the stream is reset). */
va_status va_stream_hold(va_stream *s, va_buffer *buf);

/* Records one dispatch, with a barrier before it only if an earlier unbarriered command touches an
 * overlapping range in a conflicting way. Binding offsets need not be aligned: the aligned-down
 * window is bound and the remainder (in bytes) is returned in misalign[i] for the push constants. */
va_status va_stream_dispatch(va_stream *s, const va_kernel *k, const va_binding *b, uint32_t nb,
                             const void *push, uint32_t push_size, uint32_t gx, uint32_t gy,
                             uint32_t gz);
/* The aligned binding window for a byte offset: returns the offset that will be bound, and the
 * remainder in elements of elem_size (which the kernel adds to its indices). */
uint64_t va_align_binding(const va_context *ctx, uint64_t offset, uint32_t elem_size,
                          uint32_t *elem_remainder);
va_context *va_stream_context(va_stream *s);

/* ---- tensors (tensor.c) ---- */
/* Bytes from the first to one past the last element, or 0 when empty. */
uint64_t va_tensor_span(const va_tensor *t);
/* Validates a rank-2 view whose last axis is contiguous; names the argument on failure. */
va_status va_check_matrix(const va_tensor *t, const char *arg, va_dtype want0, va_dtype want1);
va_binding va_tensor_binding(const va_tensor *t, va_access access);
/* Rows [r0, r0+rows) (cols used of each) of a row-major matrix as one binding window, aligned down;
 * the element remainder of the alignment goes to *rem for the kernel's push constants. */
va_binding va_rows_binding(va_context *ctx, const va_tensor *t, int64_t r0, int64_t rows, int64_t cols,
                           va_access access, uint32_t *rem);
/* How many rows (stride ld, cols used) fit one binding window; 0 if not even one. */
int64_t va_rows_per_binding(const va_context *ctx, int64_t ld, int64_t cols, size_t es);

/* Per-row L2 of x (m, d) f32/f16: mode 0 squared norms, 2 inverse norms (0 for a zero row) into
 * out (m,) f32; mode 1 the normalised rows into out (m, d) f32 (cdist.c). */
va_status va_row_l2(va_stream *s, const va_tensor *x, const va_tensor *out, uint32_t mode);

/* The float16 GEMM on cooperative matrices (matmul.c): whether the device has them and they are not
 * turned off (VACCEL_NO_COOPMAT=1), and the tile shape: BM x BN x BK, subgroups of WM x WN. */
typedef struct va_coop_cfg { uint32_t bm, bn, bk, wm, wn; } va_coop_cfg;
int va_coopmat_enabled(const va_context *ctx);
va_coop_cfg va_coopmat_tiles(const va_context *ctx);
/* Each row's bound (knn_tau.comp, knn.c): for every row of the (rows, n) float32 matrix at the start
 * of `tile`, a value >= its k-th smallest entry (NaN ranking last), or with `largest` <= its k-th
 * largest, into tau[row]; no sort. The fused knn searches' bounds and topk's filter path. */
va_status va_tau_rows(va_stream *s, va_buffer *tile, int64_t rows, int64_t n, int64_t k, int largest,
                      va_buffer *tau);
/* Float16 operand rows for the tensor-core searches (knn.c, knn_coop_prep.comp; kmeans.c): rows
 * of `out` dpad halves apart from x's rows (row map[r] with a map), minus `shift` when given, times
 * `scale`; nrm: squared norms (before the scale), NaN where a float16 value is not finite (mode 1:
 * unit rows and inverse norms). With res: no float16 subnormals (stored as zeros), and res gets the
 * squared norm of each row's rounding residual (scaled row − its float16 copy). Rows from `valid`
 * to `rows` are zeros. */
va_status va_coop_prep(va_stream *s, const va_tensor *x, int64_t rows, int64_t valid, uint32_t dpad, uint32_t mode,
                       va_buffer *map, int64_t map_n, const va_tensor *shift, va_buffer *out, va_buffer *nrm,
                       va_buffer *res, float scale);

/* ---- quantized operands (ops/quantize.c, shared with cdist.c and knn.c) ---- */
/* Scalar-quantizer codes: rows of a U8 tensor (n, cw) with cw a multiple of 4 bytes holding
 * ceil(d * bits / 8) code bytes (zeros after them), row stride and offset multiples of 4; vmin and
 * step (d,) float32 contiguous. Element j decodes to vmin[j] + (c + 0.5) * step[j]. */
typedef struct va_sq_codes {
    const va_tensor *vmin, *step;
    int bits;          /* 8 or 4 */
    int64_t d;         /* elements per row */
} va_sq_codes;
va_status va_check_sq_codes(const va_tensor *codes, const va_sq_codes *sq);
/* Squared L2 norms (inverse = 0) or inverse norms (inverse = 1; inf for a zero row) of the decoded
 * rows, into out (n,) float32. */
va_status va_sq_row_norms(va_stream *s, const va_tensor *codes, const va_sq_codes *sq, int inverse,
                          const va_tensor *out);
/* va_cdist / va_knn with the database given as codes: queries (m, d) float32; metrics
 * sqeuclidean, euclidean, cosine and inner, computed against the decoded rows in float32. */
va_status va_cdist_sq(va_stream *s, const va_tensor *xa, const va_tensor *codes, const va_sq_codes *sq,
                      va_metric metric, const va_tensor *out);
/* va_knn_fused over scalar-quantizer codes (knn.c): queries float32, codes as above. */
va_status va_knn_fused_sq(va_stream *s, const va_tensor *q, const va_tensor *codes, const va_sq_codes *sq,
                          va_metric metric, int64_t k, const va_tensor *out_d, const va_tensor *out_i,
                          const va_tensor *overflow);
va_status va_knn_sq(va_stream *s, const va_tensor *q, const va_tensor *codes, const va_sq_codes *sq,
                    va_metric metric, int64_t k, const va_tensor *mask, const va_tensor *out_d,
                    const va_tensor *out_i);

/* Op registry generated by the build from VA_REGISTER_OP lines in csrc/ops/. */
typedef struct va_op_entry { const char *name; va_op_fn fn; } va_op_entry;
/* Makes fn reachable as op `name`: setup.py collects these lines into the generated table. */
#define VA_REGISTER_OP(name, fn)                                                                   \
    va_status va_op_##name(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out,      \
                           int n_out, const int64_t *ip, int n_i, const double *fp, int n_f);      \
    va_status va_op_##name(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out,      \
                           int n_out, const int64_t *ip, int n_i, const double *fp, int n_f) {     \
        return fn(s, in, n_in, out, n_out, ip, n_i, fp, n_f);                                      \
    }

static inline uint32_t va_ceil_div(uint64_t a, uint64_t b) { return (uint32_t)((a + b - 1) / b); }

#endif
