/* stream.c — command streams: many dispatches and copies recorded into one command buffer, a
 * barrier only where a command touches a range an unbarriered earlier command wrote (or writes
 * one it read), one submit and one wait; host operands (imported, staged or used in place), the
 * buffers a batch holds alive, and GPU timestamps per dispatch. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define VA_IMPORT_MIN ((uint64_t)1 << 20) /* below this, a memcpy beats pinning pages */
#define VA_QUERY_CAP 1024
/* Host results up to this size are written by the kernels straight into host-visible memory on a
 * discrete device (no device buffer, no copy and barrier after the work). */
#define VA_DIRECT_MAX ((uint64_t)64 << 10)

typedef struct access { VkBuffer buffer; uint64_t begin, end; int write; } access;
typedef struct host_copy { void *dst; const uint8_t *src; uint64_t size; } host_copy;
/* host NULL: ptr's pages are imported at submit, while the work before the copy runs */
typedef struct deferred_dl { va_buffer *dev; uint64_t dev_off; va_buffer *host; uint64_t host_off; uint64_t size; void *ptr; } deferred_dl;

struct va_stream {
    va_context *ctx;
    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;         /* the one being recorded: cmds[0], or cmds[1] for a split submit's tail */
    VkCommandBuffer cmds[2];
    VkFence fence;
    VkFence head_fence;          /* a split submit's first part (va_stream_submit) */
    int recording, submitted, split;
    VkDescriptorPool *dpools;
    uint32_t ndpools, dpool_cur;
    va_buffer **held;
    uint32_t nheld, held_cap;
    host_copy *copies;           /* memcpy into host memory after the wait */
    uint32_t ncopies, copies_cap;
    deferred_dl *dls;            /* device -> host-visible copies recorded at submit */
    uint32_t ndls, dls_cap;
    access *acc;
    uint32_t nacc, acc_cap;
    uint32_t pending;
    int profiling;
    VkQueryPool qpool;
    uint32_t nq;
    const char *qlabels[VA_QUERY_CAP / 2];
    va_dispatch_timing *last;
    uint32_t nlast, last_cap;
    va_stream_stats stats;
    int transfer;                /* on the transfer queue: copies only */
    va_buffer *counters;         /* va_stream_counters: zero between uses */
    uint64_t ncounters;
    int counters_zeroed;         /* a submitted fill has zeroed them (else the next use records one) */
    int counters_filling;        /* this batch records that fill */
};

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static va_status grow(void **arr, uint32_t *cap, uint32_t need, size_t elem) {
    if (need <= *cap) return VA_SUCCESS;
    uint32_t nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    void *p = realloc(*arr, nc * elem);
    if (!p) return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    *arr = p;
    *cap = nc;
    return VA_SUCCESS;
}

va_context *va_stream_context(va_stream *s) { return s->ctx; }

static va_status stream_create(va_context *ctx, int transfer, va_stream **out) {
    va_clear_error();
    *out = NULL;
    va_stream *s = calloc(1, sizeof *s);
    if (!s) return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    s->ctx = ctx;
    s->transfer = transfer;
    VkCommandPoolCreateInfo cp = {VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    cp.flags = VK_COMMAND_POOL_CREATE_TRANSIENT_BIT;
    cp.queueFamilyIndex = transfer ? ctx->transfer_family : ctx->queue_family;
    VkResult r = vkCreateCommandPool(ctx->device, &cp, NULL, &s->cmd_pool);
    if (r != VK_SUCCESS) { free(s); return va_vk_fail(r, "vkCreateCommandPool"); }
    VkCommandBufferAllocateInfo ai = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = s->cmd_pool;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 2;
    r = vkAllocateCommandBuffers(ctx->device, &ai, s->cmds);
    s->cmd = s->cmds[0];
    VkFenceCreateInfo fi = {VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if (r == VK_SUCCESS) r = vkCreateFence(ctx->device, &fi, NULL, &s->fence);
    if (r == VK_SUCCESS) r = vkCreateFence(ctx->device, &fi, NULL, &s->head_fence);
    if (r != VK_SUCCESS) { va_stream_destroy(s); return va_vk_fail(r, "stream creation"); }
    *out = s;
    return VA_SUCCESS;
}

va_status va_stream_create(va_context *ctx, va_stream **out) { return stream_create(ctx, 0, out); }

va_status va_stream_create_transfer(va_context *ctx, va_stream **out) { return stream_create(ctx, 1, out); }

static void release_held(va_stream *s) {
    for (uint32_t i = 0; i < s->nheld; i++) va_buffer_release(s->held[i]);
    s->nheld = 0;
}

/* Back to an empty stream: the caller has made sure the device is done with its commands. */
static void reset(va_stream *s) {
    va_context *ctx = s->ctx;
    release_held(s);
    s->ncopies = s->ndls = s->nacc = s->pending = 0;
    s->nq = 0;
    s->recording = s->submitted = 0;
    s->counters_filling = 0;
    if (s->split) vkResetFences(ctx->device, 1, &s->head_fence);
    s->split = 0;
    s->cmd = s->cmds[0];
    vkResetCommandPool(ctx->device, s->cmd_pool, 0);
    for (uint32_t i = 0; i < s->ndpools; i++) vkResetDescriptorPool(ctx->device, s->dpools[i], 0);
    s->dpool_cur = 0;
    vkResetFences(ctx->device, 1, &s->fence);
}

void va_stream_destroy(va_stream *s) {
    if (!s) return;
    va_context *ctx = s->ctx;
    if (s->submitted) vkWaitForFences(ctx->device, 1, &s->fence, VK_TRUE, UINT64_MAX);
    if (s->split) vkWaitForFences(ctx->device, 1, &s->head_fence, VK_TRUE, UINT64_MAX);
    release_held(s);
    if (s->counters) va_buffer_release(s->counters);
    for (uint32_t i = 0; i < s->ndpools; i++) vkDestroyDescriptorPool(ctx->device, s->dpools[i], NULL);
    if (s->qpool) vkDestroyQueryPool(ctx->device, s->qpool, NULL);
    if (s->fence) vkDestroyFence(ctx->device, s->fence, NULL);
    if (s->head_fence) vkDestroyFence(ctx->device, s->head_fence, NULL);
    if (s->cmd_pool) vkDestroyCommandPool(ctx->device, s->cmd_pool, NULL);
    free(s->dpools); free(s->held); free(s->copies); free(s->dls); free(s->acc); free(s->last);
    free(s);
}

static va_status hold(va_stream *s, va_buffer *b) {
    VA_TRY(grow((void **)&s->held, &s->held_cap, s->nheld + 1, sizeof *s->held));
    va_buffer_retain(b);
    s->held[s->nheld++] = b;
    return VA_SUCCESS;
}

va_status va_stream_hold(va_stream *s, va_buffer *buf) {
    va_clear_error();
    return hold(s, buf);
}

static va_status begin(va_stream *s) {
    if (s->submitted)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "stream was submitted; wait for it before recording more");
    if (s->recording) return VA_SUCCESS;
    VkCommandBufferBeginInfo bi = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    VK_TRY(vkBeginCommandBuffer(s->cmd, &bi), "vkBeginCommandBuffer");
    s->recording = 1;
    if (s->profiling && s->qpool) vkCmdResetQueryPool(s->cmd, s->qpool, 0, VA_QUERY_CAP);
    return VA_SUCCESS;
}

/* Registers the ranges a command touches, inserting one global compute/transfer barrier first if
 * any of them conflicts with what was touched since the last barrier. */
static va_status track(va_stream *s, const access *a, uint32_t n) {
    int conflict = 0;
    for (uint32_t i = 0; i < n && !conflict; i++)
        for (uint32_t j = 0; j < s->nacc && !conflict; j++) {
            const access *o = &s->acc[j];
            if (o->buffer == a[i].buffer && o->begin < a[i].end && a[i].begin < o->end &&
                (o->write || a[i].write))
                conflict = 1;
        }
    if (conflict) {
        VkMemoryBarrier mb = {VK_STRUCTURE_TYPE_MEMORY_BARRIER};
        mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
        mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
        VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
        if (s->transfer) {   /* a transfer-only queue knows no shader stages */
            mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
            mb.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
            st = VK_PIPELINE_STAGE_TRANSFER_BIT;
        }
        vkCmdPipelineBarrier(s->cmd, st, st, 0, 1, &mb, 0, NULL, 0, NULL);
        s->nacc = 0;
        s->stats.barriers++;
    }
    VA_TRY(grow((void **)&s->acc, &s->acc_cap, s->nacc + n, sizeof *s->acc));
    memcpy(s->acc + s->nacc, a, n * sizeof *a);
    s->nacc += n;
    return VA_SUCCESS;
}

static access range_of(const va_buffer *b, uint64_t off, uint64_t size, int write) {
    uint64_t start = b->offset + off;
    return (access){b->block->buffer, start, start + size, write};
}

static va_status record_copy(va_stream *s, va_buffer *src, uint64_t so, va_buffer *dst, uint64_t dof,
                             uint64_t size) {
    VA_TRY(begin(s));
    access a[2] = {range_of(src, so, size, 0), range_of(dst, dof, size, 1)};
    VA_TRY(track(s, a, 2));
    VkBufferCopy c = {src->offset + so, dst->offset + dof, size};
    vkCmdCopyBuffer(s->cmd, src->block->buffer, dst->block->buffer, 1, &c);
    VA_TRY(hold(s, src));
    VA_TRY(hold(s, dst));
    return VA_SUCCESS;
}

static va_status check_range(const va_buffer *b, uint64_t off, uint64_t size, const char *what) {
    if (!b) return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s: null buffer", what);
    if (off > b->size || size > b->size - off)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s: range [%llu, %llu) outside a buffer of %llu bytes",
                       what, (unsigned long long)off, (unsigned long long)(off + size),
                       (unsigned long long)b->size);
    return VA_SUCCESS;
}

va_status va_stream_upload(va_stream *s, va_buffer *dst, uint64_t dst_offset, const void *src,
                           uint64_t size) {
    va_clear_error();
    VA_TRY(check_range(dst, dst_offset, size, "upload"));
    if (size == 0) return VA_SUCCESS;
    s->stats.bytes_uploaded += size;
    void *mapped = va_buffer_map(dst);
    if (mapped && !s->recording) {
        /* Nothing recorded yet can be reading or writing it: write in place. */
        memcpy((char *)mapped + dst_offset, src, size);
        return VA_SUCCESS;
    }
    va_buffer *staging = NULL;
    uint64_t soff = 0;
    va_status st;
    if (size >= VA_IMPORT_MIN && s->ctx->info.external_memory_host &&
        va_buffer_import(s->ctx, (void *)src, size, &staging, &soff) == VA_SUCCESS) {
        /* DMA straight from the caller's pages. */
    } else {
        va_clear_error();
        VA_TRY(va_buffer_alloc(s->ctx, VA_MEM_UPLOAD, size, &staging));
        memcpy(va_buffer_map(staging), src, size);
    }
    st = record_copy(s, staging, soff, dst, dst_offset, size);
    va_buffer_release(staging); /* held by the stream now, or freed on failure */
    return st;
}

static va_status add_host_copy(va_stream *s, void *dst, const void *src, uint64_t size) {
    VA_TRY(grow((void **)&s->copies, &s->copies_cap, s->ncopies + 1, sizeof *s->copies));
    s->copies[s->ncopies++] = (host_copy){dst, src, size};
    return VA_SUCCESS;
}

/* A device -> host-visible copy recorded at submit, once every op that writes the source is in. */
static va_status add_deferred(va_stream *s, va_buffer *dev, uint64_t doff, va_buffer *host,
                              uint64_t hoff, uint64_t size) {
    VA_TRY(grow((void **)&s->dls, &s->dls_cap, s->ndls + 1, sizeof *s->dls));
    VA_TRY(hold(s, dev));
    if (host) VA_TRY(hold(s, host));
    s->dls[s->ndls++] = (deferred_dl){dev, doff, host, hoff, size, NULL};
    return VA_SUCCESS;
}

va_status va_stream_download(va_stream *s, va_buffer *src, uint64_t src_offset, void *dst,
                             uint64_t size) {
    va_clear_error();
    VA_TRY(check_range(src, src_offset, size, "download"));
    if (size == 0) return VA_SUCCESS;
    s->stats.bytes_downloaded += size;
    void *mapped = va_buffer_map(src);
    if (mapped) {
        VA_TRY(hold(s, src));
        return add_host_copy(s, dst, (char *)mapped + src_offset, size);
    }
    va_buffer *host = NULL;
    uint64_t hoff = 0;
    if (size >= VA_IMPORT_MIN && s->ctx->info.external_memory_host &&
        va_buffer_import(s->ctx, dst, size, &host, &hoff) == VA_SUCCESS) {
        va_status st = record_copy(s, src, src_offset, host, hoff, size);
        va_buffer_release(host);
        return st;
    }
    va_clear_error();
    VA_TRY(va_buffer_alloc(s->ctx, VA_MEM_READBACK, size, &host));
    va_status st = record_copy(s, src, src_offset, host, 0, size);
    if (!st) st = add_host_copy(s, dst, va_buffer_map(host), size);
    va_buffer_release(host);
    return st;
}

/* Where a download into host memory ptr lands: ptr's own pages, imported (large ranges, where the
 * device can), else a readback buffer copied to ptr after the wait. The stream holds *host. */
static va_status download_target(va_stream *s, void *ptr, uint64_t size, va_buffer **host, uint64_t *hoff) {
    va_context *ctx = s->ctx;
    *hoff = 0;
    if (size >= VA_IMPORT_MIN && ctx->info.external_memory_host &&
        va_buffer_import(ctx, ptr, size, host, hoff) == VA_SUCCESS) {
        va_status st = hold(s, *host);
        va_buffer_release(*host);
        return st;
    }
    va_clear_error();
    *hoff = 0;
    VA_TRY(va_buffer_alloc(ctx, VA_MEM_READBACK, size, host));
    va_status st = hold(s, *host);
    va_buffer_release(*host);
    if (!st) st = add_host_copy(s, ptr, va_buffer_map(*host), size);
    return st;
}

va_status va_stream_host_operand(va_stream *s, void *ptr, uint64_t size, va_access access,
                                 va_buffer **buf, uint64_t *offset) {
    va_clear_error();
    *buf = NULL;
    *offset = 0;
    va_context *ctx = s->ctx;
    if (s->submitted)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "stream was submitted; wait for it before recording more");
    if (size == 0) size = 4;
    if (ctx->info.zero_copy == VA_ZERO_COPY_UNIFIED && size >= 4096 &&
        va_buffer_import(ctx, ptr, size, buf, offset) == VA_SUCCESS) {
        /* Kernels read and write the caller's pages in place. */
        va_status st = hold(s, *buf);
        va_buffer_release(*buf);
        return st;
    }
    va_clear_error();
    if ((access & VA_RESULT) && !(access & VA_READ) && size <= VA_DIRECT_MAX && !s->transfer && ctx->info.zero_copy != VA_ZERO_COPY_UNIFIED) {
        /* A small result on a discrete device, written with plain stores: the kernels write it over
         * the bus into a readback buffer, copied to ptr after the wait (no device buffer, and no
         * copy with its barrier after the work). */
        s->stats.bytes_downloaded += size;
        return download_target(s, ptr, size, buf, offset);
    }
    va_buffer *dev;
    VA_TRY(va_buffer_alloc(ctx, VA_MEM_DEVICE, size, &dev));
    va_status st = hold(s, dev);
    va_buffer_release(dev);
    if (st) return st;
    if (access & VA_READ) VA_TRY(va_stream_upload(s, dev, 0, ptr, size));
    if (access & VA_WRITE) {
        s->stats.bytes_downloaded += size;
        /* Device memory the host can map is read back in place only where it is the host's own
         * (unified); a discrete GPU's mappable device memory (a BAR) reads slowly. */
        void *mapped = ctx->info.zero_copy == VA_ZERO_COPY_UNIFIED ? va_buffer_map(dev) : NULL;
        if (mapped) {
            VA_TRY(add_host_copy(s, ptr, mapped, size));
        } else {
            va_buffer *host = NULL;
            uint64_t hoff = 0;
            if (size >= VA_IMPORT_MIN && ctx->info.external_memory_host && !s->transfer) {
                /* Imported at submit, while the work before the copy runs (va_stream_submit). */
                VA_TRY(add_deferred(s, dev, 0, NULL, 0, size));
                s->dls[s->ndls - 1].ptr = ptr;
            } else {
                VA_TRY(download_target(s, ptr, size, &host, &hoff));
                VA_TRY(add_deferred(s, dev, 0, host, hoff, size));
            }
        }
    }
    *buf = dev;
    return VA_SUCCESS;
}

va_status va_stream_scratch(va_stream *s, uint64_t size, va_buffer **buf) {
    VA_TRY(va_buffer_alloc(s->ctx, VA_MEM_DEVICE, size, buf));
    va_status st = hold(s, *buf);
    va_buffer_release(*buf);
    if (st) *buf = NULL;
    return st;
}

va_status va_stream_counters(va_stream *s, uint64_t count, va_buffer **buf) {
    if (s->transfer) return va_fail(VA_ERROR_INTERNAL, "a transfer stream has no counters");
    if (count == 0) count = 1;
    if (count > s->ncounters) {
        uint64_t n = s->ncounters ? s->ncounters : 256;
        while (n < count) n *= 2;
        va_buffer *b;
        VA_TRY(va_buffer_alloc(s->ctx, VA_MEM_DEVICE, n * 4, &b));
        if (s->counters) {
            va_status st = hold(s, s->counters);   /* work recorded before may still use them */
            if (st) { va_buffer_release(b); return st; }
            va_buffer_release(s->counters);
        }
        s->counters = b;
        s->ncounters = n;
        s->counters_zeroed = s->counters_filling = 0;
    }
    if (!s->counters_zeroed && !s->counters_filling) {
        VA_TRY(begin(s));
        access a = range_of(s->counters, 0, s->ncounters * 4, 1);
        VA_TRY(track(s, &a, 1));
        vkCmdFillBuffer(s->cmd, s->counters->block->buffer, s->counters->offset, s->ncounters * 4, 0);
        s->counters_filling = 1;
    }
    VA_TRY(hold(s, s->counters));
    *buf = s->counters;
    return VA_SUCCESS;
}

uint64_t va_align_binding(const va_context *ctx, uint64_t offset, uint32_t elem_size,
                          uint32_t *elem_remainder) {
    uint64_t a = ctx->info.min_storage_buffer_offset_alignment ? ctx->info.min_storage_buffer_offset_alignment : 1;
    uint64_t base = offset / a * a;
    *elem_remainder = (uint32_t)((offset - base) / elem_size);
    return base;
}

static va_status descriptor_set(va_stream *s, const va_kernel *k, VkDescriptorSet *out) {
    va_context *ctx = s->ctx;
    for (;;) {
        if (s->dpool_cur == s->ndpools) {
            VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 256 * VA_MAX_BINDINGS};
            VkDescriptorPoolCreateInfo ci = {VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
            ci.maxSets = 256;
            ci.poolSizeCount = 1;
            ci.pPoolSizes = &ps;
            VkDescriptorPool *np = realloc(s->dpools, (s->ndpools + 1) * sizeof *np);
            if (!np) return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
            s->dpools = np;
            VK_TRY(vkCreateDescriptorPool(ctx->device, &ci, NULL, &s->dpools[s->ndpools]),
                   "vkCreateDescriptorPool");
            s->ndpools++;
        }
        VkDescriptorSetAllocateInfo ai = {VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
        ai.descriptorPool = s->dpools[s->dpool_cur];
        ai.descriptorSetCount = 1;
        ai.pSetLayouts = &k->set_layout;
        VkResult r = vkAllocateDescriptorSets(ctx->device, &ai, out);
        if (r == VK_SUCCESS) return VA_SUCCESS;
        if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL)
            return va_vk_fail(r, "vkAllocateDescriptorSets");
        s->dpool_cur++;
    }
}

va_status va_stream_dispatch(va_stream *s, const va_kernel *k, const va_binding *b, uint32_t nb,
                             const void *push, uint32_t push_size, uint32_t gx, uint32_t gy,
                             uint32_t gz) {
    va_context *ctx = s->ctx;
    if (s->transfer) return va_fail(VA_ERROR_INTERNAL, "a transfer stream records copies only (%s)", k->name);
    if (nb != k->nbindings)
        return va_fail(VA_ERROR_INTERNAL, "kernel %s takes %u bindings, %u given", k->name,
                       k->nbindings, nb);
    if (push_size > VA_PUSH_BYTES) return va_fail(VA_ERROR_INTERNAL, "push constants too large");
    if (gx == 0 || gy == 0 || gz == 0) return VA_SUCCESS;
    VA_TRY(begin(s));
    VkDescriptorSet set = VK_NULL_HANDLE;
    if (!ctx->push_descriptor) VA_TRY(descriptor_set(s, k, &set));
    VkDescriptorBufferInfo bi[VA_MAX_BINDINGS];
    VkWriteDescriptorSet w[VA_MAX_BINDINGS];
    access a[VA_MAX_BINDINGS];
    for (uint32_t i = 0; i < nb; i++) {
        va_buffer *buf = b[i].buf;
        uint64_t size = b[i].size == VK_WHOLE_SIZE ? buf->size - b[i].offset : b[i].size;
        if (size == 0) size = 4 <= buf->size - b[i].offset ? 4 : buf->size - b[i].offset;
        if (b[i].offset > buf->size || size > buf->size - b[i].offset || size == 0)
            return va_fail(VA_ERROR_INTERNAL, "kernel %s binding %u outside its buffer", k->name, i);
        if (size > ctx->info.max_storage_buffer_range)
            return va_fail(VA_ERROR_INTERNAL, "kernel %s binding %u: %llu bytes exceed the binding range",
                           k->name, i, (unsigned long long)size);
        bi[i] = (VkDescriptorBufferInfo){buf->block->buffer, buf->offset + b[i].offset, size};
        w[i] = (VkWriteDescriptorSet){VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        w[i].dstSet = set;
        w[i].dstBinding = i;
        w[i].descriptorCount = 1;
        w[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        w[i].pBufferInfo = &bi[i];
        a[i] = range_of(buf, b[i].offset, size, (b[i].access & VA_WRITE) != 0);
        VA_TRY(hold(s, buf));
    }
    if (!ctx->push_descriptor) vkUpdateDescriptorSets(ctx->device, nb, w, 0, NULL);
    VA_TRY(track(s, a, nb));
    vkCmdBindPipeline(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k->pipeline);
    if (ctx->push_descriptor)   /* after the pipeline: layouts differ between kernels */
        ctx->push_descriptor(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k->layout, 0, nb, w);
    else
        vkCmdBindDescriptorSets(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k->layout, 0, 1, &set, 0, NULL);
    if (push_size) {
        uint8_t pc[VA_PUSH_BYTES] = {0};
        memcpy(pc, push, push_size);
        vkCmdPushConstants(s->cmd, k->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, VA_PUSH_BYTES, pc);
    }
    int timed = s->profiling && s->qpool && s->nq + 2 <= VA_QUERY_CAP;
    /* Both timestamps at the bottom of the pipe: the first is written once everything recorded
     * before has finished, so a dispatch's time is what it adds to the batch. (A top-of-pipe start
     * is written as soon as the previous commands have started: dispatches that overlap then each
     * count their neighbours' time too, and the sum exceeds the batch.) */
    if (timed) vkCmdWriteTimestamp(s->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s->qpool, s->nq);
    const uint32_t *lim = ctx->info.max_workgroup_count;
    for (uint32_t z = 0; z < gz; z += lim[2])
        for (uint32_t y = 0; y < gy; y += lim[1])
            for (uint32_t x = 0; x < gx; x += lim[0]) {
                uint32_t cx = gx - x < lim[0] ? gx - x : lim[0];
                uint32_t cy = gy - y < lim[1] ? gy - y : lim[1];
                uint32_t cz = gz - z < lim[2] ? gz - z : lim[2];
                vkCmdDispatchBase(s->cmd, x, y, z, cx, cy, cz);
            }
    if (timed) {
        vkCmdWriteTimestamp(s->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s->qpool, s->nq + 1);
        s->qlabels[s->nq / 2] = k->name;
        s->nq += 2;
    }
    s->pending++;
    s->stats.dispatches++;
    return VA_SUCCESS;
}

va_status va_stream_copy(va_stream *s, va_buffer *src, uint64_t src_offset, va_buffer *dst,
                         uint64_t dst_offset, uint64_t size) {
    va_clear_error();
    VA_TRY(check_range(src, src_offset, size, "copy source"));
    VA_TRY(check_range(dst, dst_offset, size, "copy destination"));
    if (size == 0) return VA_SUCCESS;
    va_context *ctx = s->ctx;
    if (size % 4 || src_offset % 4 || dst_offset % 4 || s->transfer) {
        /* Odd sizes: the transfer engine handles bytes. */
        va_status st = record_copy(s, src, src_offset, dst, dst_offset, size);
        if (!st) s->pending++;
        return st;
    }
    /* The copy kernel: one binding window per chunk of the binding range. */
    const va_kernel *k;
    uint32_t spec[1] = {256};
    VA_TRY(va_kernel_get(ctx, "copy", spec, 1, 0, &k));
    uint64_t range = ctx->info.max_storage_buffer_range / 4096 * 4096 - 4096;
    for (uint64_t done = 0; done < size;) {
        uint64_t n = size - done < range ? size - done : range;
        uint32_t ra, rb;
        uint64_t sa = va_align_binding(ctx, src_offset + done, 4, &ra);
        uint64_t da = va_align_binding(ctx, dst_offset + done, 4, &rb);
        va_binding bind[2] = {{src, sa, n + ra * 4, VA_READ}, {dst, da, n + rb * 4, VA_WRITE}};
        uint32_t words = (uint32_t)(n / 4);
        uint32_t groups = va_ceil_div(words, 256 * 16); /* copy.comp: 16 words per thread */
        uint32_t gx = groups < 65535 ? groups : 65535;
        uint32_t gy = va_ceil_div(groups, gx);
        uint32_t pc[4] = {words, ra, rb, gx};
        VA_TRY(va_stream_dispatch(s, k, bind, 2, pc, sizeof pc, gx, gy, 1));
        done += n;
    }
    return VA_SUCCESS;
}

/* Ends the command buffer being recorded (with a barrier that makes its writes visible to the host)
 * and submits it with fence. On failure the stream is reset. */
static va_status submit_cmd(va_stream *s, VkFence fence) {
    va_context *ctx = s->ctx;
    VkMemoryBarrier mb = {VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = (s->transfer ? 0 : VK_ACCESS_SHADER_WRITE_BIT) | VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(s->cmd, (s->transfer ? 0 : VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT) | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    VkResult r = vkEndCommandBuffer(s->cmd);
    if (r != VK_SUCCESS) {
        va_status st = va_vk_fail(r, "vkEndCommandBuffer");
        va_stream_abort(s);
        return st;
    }
    s->recording = 0;
    VkSubmitInfo si = {VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &s->cmd;
    pthread_mutex_lock(&ctx->lock);
    r = vkQueueSubmit(s->transfer ? ctx->transfer_queue : ctx->queue, 1, &si, fence);
    pthread_mutex_unlock(&ctx->lock);
    if (r != VK_SUCCESS) {
        va_status st = va_vk_fail(r, "vkQueueSubmit");
        va_stream_abort(s);
        return st;
    }
    return VA_SUCCESS;
}

static va_status stream_submit(va_stream *s);

va_status va_stream_submit(va_stream *s) {
    va_clear_error();
    if (s->submitted) return VA_SUCCESS;
    uint64_t t0 = now_ns();
    va_status st = stream_submit(s);
    s->stats.submit_ns += now_ns() - t0;
    return st;
}

static va_status stream_submit(va_stream *s) {
    int lazy = 0;
    for (uint32_t i = 0; i < s->ndls; i++) lazy |= s->dls[i].host == NULL;
    if (lazy && s->recording) {
        /* A split submit: the work recorded so far goes to the device now, the host pages of the
         * large downloads are imported (pinned) while it runs, and their copies follow in a second
         * command buffer, after a barrier (submission order makes it wait for the first). */
        VA_TRY(submit_cmd(s, s->head_fence));
        s->split = 1;
        s->cmd = s->cmds[1];
        VkCommandBufferBeginInfo bi = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
        bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
        VkResult br = vkBeginCommandBuffer(s->cmd, &bi);
        va_status st = br == VK_SUCCESS ? VA_SUCCESS : va_vk_fail(br, "vkBeginCommandBuffer");
        if (!st) {
            s->recording = 1;
            VkMemoryBarrier mb = {VK_STRUCTURE_TYPE_MEMORY_BARRIER};
            mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
            mb.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT;
            vkCmdPipelineBarrier(s->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                                 VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
            s->nacc = 0;
        }
        for (uint32_t i = 0; !st && i < s->ndls; i++) {
            deferred_dl *d = &s->dls[i];
            if (!d->host && (st = download_target(s, d->ptr, d->size, &d->host, &d->host_off)) != VA_SUCCESS) break;
            st = record_copy(s, d->dev, d->dev_off, d->host, d->host_off, d->size);
        }
        s->ndls = 0;
        if (!st) st = submit_cmd(s, s->fence);
        else va_stream_abort(s);
        if (st) return st;
        s->submitted = 1;
        s->stats.submits++;
        return VA_SUCCESS;
    }
    for (uint32_t i = 0; i < s->ndls; i++) {
        deferred_dl *d = &s->dls[i];
        VA_TRY(record_copy(s, d->dev, d->dev_off, d->host, d->host_off, d->size));
    }
    s->ndls = 0;
    if (!s->recording) return VA_SUCCESS; /* nothing on the device; host copies finish at wait */
    VA_TRY(submit_cmd(s, s->fence));
    s->submitted = 1;
    s->stats.submits++;
    return VA_SUCCESS;
}

static void collect_timings(va_stream *s) {
    s->nlast = 0;
    if (!s->profiling || !s->qpool || s->nq == 0) return;
    uint64_t ts[VA_QUERY_CAP];
    VkResult r = vkGetQueryPoolResults(s->ctx->device, s->qpool, 0, s->nq, sizeof ts, ts,
                                       sizeof ts[0], VK_QUERY_RESULT_64_BIT);
    if (grow((void **)&s->last, &s->last_cap, s->nq / 2, sizeof *s->last)) return;
    for (uint32_t i = 0; i < s->nq / 2; i++) {
        s->last[i].label = s->qlabels[i];
        s->last[i].gpu_ns = r == VK_SUCCESS
                                ? (double)(ts[2 * i + 1] - ts[2 * i]) * s->ctx->info.timestamp_period_ns
                                : -1.0;
    }
    s->nlast = s->nq / 2;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Polls the fence every 2 us for up to info.wait_spin_us before the blocking wait (see
 * wait_spin_us in device.c). A poll costs about 0.4 us on NVIDIA's driver (measured on the H100
 * host): the gap keeps the driver from being hammered and adds at most 2 us to a wait. */
static void spin_on(const va_context *ctx, VkFence fence) {
    uint64_t spin = ctx->info.wait_spin_us * 1000;
    if (!spin) return;
    uint64_t t0 = now_ns(), next = t0;
    for (;;) {
        uint64_t t = now_ns();
        if (t - t0 >= spin) return;
        if (t >= next) {
            if (vkGetFenceStatus(ctx->device, fence) != VK_NOT_READY) return;
            next = t + 2000;
        }
        cpu_relax();
    }
}

va_status va_stream_wait(va_stream *s) {
    va_clear_error();
    va_status st = va_stream_submit(s);
    if (st) { va_stream_abort(s); return st; }
    uint64_t t0 = now_ns();
    if (s->submitted) {
        VkFence f[2] = {s->fence, s->head_fence};
        spin_on(s->ctx, s->fence);
        VkResult r = vkWaitForFences(s->ctx->device, s->split ? 2 : 1, f, VK_TRUE, UINT64_MAX);
        if (r != VK_SUCCESS) {
            st = va_vk_fail(r, "vkWaitForFences");
            s->submitted = 0;
            reset(s);
            return st;
        }
    }
    uint64_t t1 = now_ns();
    if (s->counters_filling && s->submitted) s->counters_zeroed = 1;
    for (uint32_t i = 0; i < s->ncopies; i++) memcpy(s->copies[i].dst, s->copies[i].src, s->copies[i].size);
    collect_timings(s);
    reset(s);
    s->stats.wait_ns += t1 - t0;
    s->stats.finish_ns += now_ns() - t1;
    return VA_SUCCESS;
}

void va_stream_abort(va_stream *s) {
    if (!s) return;
    if (s->submitted) vkWaitForFences(s->ctx->device, 1, &s->fence, VK_TRUE, UINT64_MAX);
    else if (s->recording) vkEndCommandBuffer(s->cmd);
    if (s->split) vkWaitForFences(s->ctx->device, 1, &s->head_fence, VK_TRUE, UINT64_MAX);
    reset(s);
}

uint32_t va_stream_pending(const va_stream *s) { return s->pending + s->ncopies; }

va_status va_stream_set_profiling(va_stream *s, int enabled) {
    if (s->recording || s->submitted)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "profiling can change only between batches");
    s->profiling = enabled && !s->transfer && s->ctx->info.timestamps;
    if (s->profiling && !s->qpool) {
        VkQueryPoolCreateInfo qi = {VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
        qi.queryType = VK_QUERY_TYPE_TIMESTAMP;
        qi.queryCount = VA_QUERY_CAP;
        VK_TRY(vkCreateQueryPool(s->ctx->device, &qi, NULL, &s->qpool), "vkCreateQueryPool");
    }
    return VA_SUCCESS;
}

va_status va_stream_timings(const va_stream *s, va_dispatch_timing *out, uint32_t cap,
                            uint32_t *count) {
    *count = s->nlast;
    for (uint32_t i = 0; i < s->nlast && i < cap; i++) out[i] = s->last[i];
    return VA_SUCCESS;
}

va_status va_stream_get_stats(const va_stream *s, va_stream_stats *out) {
    *out = s->stats;
    return VA_SUCCESS;
}
