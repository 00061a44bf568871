/* memory.c — device memory: pools that suballocate large blocks (one VkBuffer per block, so a
 * buffer is a block plus an offset), dedicated blocks for large requests, host-memory import, and
 * the reference counting that lets streams keep buffers alive until their work is done. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define VA_BLOCK_DEFAULT ((uint64_t)64 << 20)
#define VA_ALIGN 256

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

static int find_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t bits,
                     VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid) {
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
        if ((bits & (1u << i)) && (f & want) == want && !(f & avoid)) return (int)i;
    }
    return -1;
}

static const VkBufferUsageFlags usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                        VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                        VK_BUFFER_USAGE_TRANSFER_DST_BIT;

va_status va_memory_init(va_context *ctx) {
    const VkPhysicalDeviceMemoryProperties *mp = &ctx->memprops;
    /* Which memory types can back a storage buffer at all. */
    VkBufferCreateInfo bci = {VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.size = 4096;
    bci.usage = usage;
    VkBuffer probe;
    VK_TRY(vkCreateBuffer(ctx->device, &bci, NULL, &probe), "vkCreateBuffer");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->device, probe, &req);
    vkDestroyBuffer(ctx->device, probe, NULL);
    uint32_t bits = req.memoryTypeBits;
    const VkMemoryPropertyFlags DL = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                                HV = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT,
                                HC = VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                CA = VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
    int dev = ctx->info.unified_memory ? find_type(mp, bits, DL | HV | HC, 0) : -1;
    if (dev < 0) dev = find_type(mp, bits, DL, HV);
    if (dev < 0) dev = find_type(mp, bits, DL, 0);
    if (dev < 0) dev = find_type(mp, bits, 0, 0);
    int up = find_type(mp, bits, HV | HC, DL);
    if (up < 0) up = find_type(mp, bits, HV | HC, 0);
    int down = find_type(mp, bits, HV | HC | CA, DL);
    if (down < 0) down = find_type(mp, bits, HV | HC | CA, 0);
    if (down < 0) down = up;
    if (dev < 0 || up < 0)
        return va_fail(VA_ERROR_DEVICE_NOT_AVAILABLE, "device '%s' has no usable memory types",
                       ctx->info.name);
    ctx->pools[VA_MEM_DEVICE].memory_type = (uint32_t)dev;
    ctx->pools[VA_MEM_UPLOAD].memory_type = (uint32_t)up;
    ctx->pools[VA_MEM_READBACK].memory_type = (uint32_t)down;
    for (int k = 0; k < VA_MEM_KINDS; k++) ctx->pools[k].valid = 1;
    ctx->block_size = VA_BLOCK_DEFAULT;
    if (ctx->block_size > ctx->info.max_buffer_size) ctx->block_size = ctx->info.max_buffer_size;
    return VA_SUCCESS;
}

static void block_free(va_context *ctx, va_block *b) {
    if (b->mapped && !b->imported) vkUnmapMemory(ctx->device, b->memory);
    if (b->buffer) vkDestroyBuffer(ctx->device, b->buffer, NULL);
    if (b->memory) vkFreeMemory(ctx->device, b->memory, NULL);
    free(b->free);
    free(b);
}

void va_memory_destroy(va_context *ctx) {
    for (int k = 0; k < VA_MEM_KINDS; k++) {
        va_block *b = ctx->pools[k].blocks;
        while (b) {
            va_block *n = b->next;
            block_free(ctx, b);
            b = n;
        }
        ctx->pools[k].blocks = NULL;
    }
}

static uint32_t heap_of(va_context *ctx, uint32_t type) {
    return ctx->memprops.memoryTypes[type].heapIndex;
}

/* Releases empty blocks: with keep, all but one spare shared block and the dedicated blocks kept
 * for reuse; without, every empty block (under memory pressure). Lock held. */
static void trim_pool(va_context *ctx, va_pool *p, int keep) {
    va_block **pp = &p->blocks;
    int spare = 0;
    while (*pp) {
        va_block *b = *pp;
        int drop = b->used == 0 && (!keep || (!b->dedicated && spare++));
        if (drop) {
            *pp = b->next;
            p->reserved -= b->size;
            p->nblocks--;
            if (b->dedicated) p->cached -= b->size;
            block_free(ctx, b);
        } else {
            pp = &b->next;
        }
    }
}

/* Large buffers come and go in loops (a result per call): their blocks are kept for reuse up to a
 * quarter of the heap, and given back when an allocation would otherwise fail. */
static uint64_t cache_cap(va_context *ctx, va_pool *p) {
    uint64_t heap = ctx->memprops.memoryHeaps[ctx->memprops.memoryTypes[p->memory_type].heapIndex].size;
    return heap / 4;
}

/* Buffers are used by the compute queue and, where the device has a separate one, by the transfer
 * queue (uploads that overlap compute): shared by both families, no ownership transfers. */
static void share_queues(const va_context *ctx, VkBufferCreateInfo *bci, uint32_t fams[2]) {
    if (ctx->transfer_family == ctx->queue_family) return;
    fams[0] = ctx->queue_family;
    fams[1] = ctx->transfer_family;
    bci->sharingMode = VK_SHARING_MODE_CONCURRENT;
    bci->queueFamilyIndexCount = 2;
    bci->pQueueFamilyIndices = fams;
}

static va_status block_create(va_context *ctx, va_mem_kind kind, uint64_t size, int dedicated,
                              va_block **out) {
    va_pool *p = &ctx->pools[kind];
    /* Respect the heap's size (or budget): drivers that over-commit would otherwise fail later,
     * or page, instead of reporting the shortage here. */
    uint32_t heap = heap_of(ctx, p->memory_type);
    uint64_t held = 0;
    for (int k = 0; k < VA_MEM_KINDS; k++)
        if (heap_of(ctx, ctx->pools[k].memory_type) == heap) held += ctx->pools[k].reserved;
    uint64_t limit = ctx->memprops.memoryHeaps[heap].size;
    if (held + size > limit) {
        for (int k = 0; k < VA_MEM_KINDS; k++) trim_pool(ctx, &ctx->pools[k], 0);
        held = 0;
        for (int k = 0; k < VA_MEM_KINDS; k++)
            if (heap_of(ctx, ctx->pools[k].memory_type) == heap) held += ctx->pools[k].reserved;
        if (held + size > limit)
            return va_fail(VA_ERROR_OUT_OF_DEVICE_MEMORY,
                           "out of device memory: %llu bytes requested, %llu of the heap's %llu in use",
                           (unsigned long long)size, (unsigned long long)held,
                           (unsigned long long)limit);
    }
    va_block *b = calloc(1, sizeof *b);
    if (!b) return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    b->size = size;
    b->dedicated = dedicated;
    VkBufferCreateInfo bci = {VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.size = size;
    bci.usage = usage;
    uint32_t fams[2];
    share_queues(ctx, &bci, fams);
    VkResult r = vkCreateBuffer(ctx->device, &bci, NULL, &b->buffer);
    if (r != VK_SUCCESS) { block_free(ctx, b); return va_vk_fail(r, "vkCreateBuffer"); }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->device, b->buffer, &req);
    VkMemoryAllocateInfo mai = {VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    mai.allocationSize = req.size;
    mai.memoryTypeIndex = p->memory_type;
    r = vkAllocateMemory(ctx->device, &mai, NULL, &b->memory);
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) {
        for (int k = 0; k < VA_MEM_KINDS; k++) trim_pool(ctx, &ctx->pools[k], 0);
        r = vkAllocateMemory(ctx->device, &mai, NULL, &b->memory);
    }
    if (r != VK_SUCCESS) {
        block_free(ctx, b);
        if (r == VK_ERROR_OUT_OF_HOST_MEMORY) r = VK_ERROR_OUT_OF_DEVICE_MEMORY;
        va_vk_fail(r, "vkAllocateMemory");
        return va_fail(VA_ERROR_OUT_OF_DEVICE_MEMORY, "out of device memory allocating %llu bytes",
                       (unsigned long long)size);
    }
    r = vkBindBufferMemory(ctx->device, b->buffer, b->memory, 0);
    if (r != VK_SUCCESS) { block_free(ctx, b); return va_vk_fail(r, "vkBindBufferMemory"); }
    if (ctx->memprops.memoryTypes[p->memory_type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) {
        r = vkMapMemory(ctx->device, b->memory, 0, VK_WHOLE_SIZE, 0, &b->mapped);
        if (r != VK_SUCCESS) { block_free(ctx, b); return va_vk_fail(r, "vkMapMemory"); }
    }
    b->free_cap = 8;
    b->free = malloc(b->free_cap * sizeof *b->free);
    if (!b->free) { block_free(ctx, b); return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory"); }
    b->free[0].offset = 0;
    b->free[0].size = size;
    b->free_count = 1;
    b->next = p->blocks;
    p->blocks = b;
    p->reserved += size;
    p->nblocks++;
    *out = b;
    return VA_SUCCESS;
}

/* First fit within a block; returns 1 and the offset on success. */
static int block_take(va_block *b, uint64_t size, uint64_t *offset) {
    for (uint32_t i = 0; i < b->free_count; i++) {
        va_span *s = &b->free[i];
        if (s->size >= size) {
            *offset = s->offset;
            s->offset += size;
            s->size -= size;
            if (s->size == 0) {
                memmove(s, s + 1, (b->free_count - i - 1) * sizeof *s);
                b->free_count--;
            }
            b->used += size;
            return 1;
        }
    }
    return 0;
}

static int block_give(va_block *b, uint64_t offset, uint64_t size) {
    uint32_t i = 0;
    while (i < b->free_count && b->free[i].offset < offset) i++;
    int merge_prev = i > 0 && b->free[i - 1].offset + b->free[i - 1].size == offset;
    int merge_next = i < b->free_count && offset + size == b->free[i].offset;
    if (merge_prev && merge_next) {
        b->free[i - 1].size += size + b->free[i].size;
        memmove(&b->free[i], &b->free[i + 1], (b->free_count - i - 1) * sizeof *b->free);
        b->free_count--;
    } else if (merge_prev) {
        b->free[i - 1].size += size;
    } else if (merge_next) {
        b->free[i].offset = offset;
        b->free[i].size += size;
    } else {
        if (b->free_count == b->free_cap) {
            va_span *n = realloc(b->free, 2 * b->free_cap * sizeof *n);
            if (!n) return 0; /* the span leaks inside the block; it is reclaimed with the block */
            b->free = n;
            b->free_cap *= 2;
        }
        memmove(&b->free[i + 1], &b->free[i], (b->free_count - i) * sizeof *b->free);
        b->free[i].offset = offset;
        b->free[i].size = size;
        b->free_count++;
    }
    b->used -= size;
    return 1;
}

va_status va_buffer_alloc(va_context *ctx, va_mem_kind kind, uint64_t size, va_buffer **out) {
    *out = NULL;
    if (size == 0) size = 4;
    if (size > ctx->info.max_buffer_size)
        return va_fail(VA_ERROR_OUT_OF_DEVICE_MEMORY,
                       "buffer of %llu bytes exceeds the device's largest buffer (%llu bytes)",
                       (unsigned long long)size, (unsigned long long)ctx->info.max_buffer_size);
    uint64_t align = ctx->info.min_storage_buffer_offset_alignment > VA_ALIGN
                         ? ctx->info.min_storage_buffer_offset_alignment : VA_ALIGN;
    uint64_t need = align_up(size, align);
    va_buffer *buf = calloc(1, sizeof *buf);
    if (!buf) return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    pthread_mutex_lock(&ctx->lock);
    va_pool *p = &ctx->pools[kind];
    va_block *b = NULL;
    uint64_t off = 0;
    va_status s = VA_SUCCESS;
    if (need > ctx->block_size / 2) {
        for (b = p->blocks; b; b = b->next)
            if (b->dedicated && b->used == 0 && b->size >= need && b->size - need <= need / 4) break;
        if (b) {
            p->cached -= b->size;
            block_take(b, need, &off);
        } else {
            s = block_create(ctx, kind, need, 1, &b);
            if (!s) block_take(b, need, &off);
        }
    } else {
        for (b = p->blocks; b; b = b->next)
            if (!b->dedicated && block_take(b, need, &off)) break;
        if (!b) {
            s = block_create(ctx, kind, ctx->block_size, 0, &b);
            if (!s) block_take(b, need, &off);
        }
    }
    if (s) {
        pthread_mutex_unlock(&ctx->lock);
        free(buf);
        return s;
    }
    p->in_use += need;
    if (p->in_use > p->peak) p->peak = p->in_use;
    pthread_mutex_unlock(&ctx->lock);
    buf->ctx = ctx;
    buf->block = b;
    buf->offset = off;
    buf->size = size;
    buf->refs = 1;
    buf->kind = kind;
    *out = buf;
    return VA_SUCCESS;
}

va_status va_buffer_create(va_context *ctx, uint64_t size, va_buffer **out) {
    va_clear_error();
    if (!ctx || !out) return va_fail(VA_ERROR_INVALID_ARGUMENT, "null argument");
    return va_buffer_alloc(ctx, VA_MEM_DEVICE, size, out);
}

va_status va_buffer_create_staging(va_context *ctx, uint64_t size, va_buffer **out) {
    va_clear_error();
    if (!ctx || !out) return va_fail(VA_ERROR_INVALID_ARGUMENT, "null argument");
    return va_buffer_alloc(ctx, VA_MEM_UPLOAD, size, out);
}

void *va_buffer_host_ptr(const va_buffer *buf) { return buf ? va_buffer_map(buf) : NULL; }

va_status va_buffer_import(va_context *ctx, void *ptr, uint64_t size, va_buffer **out,
                           uint64_t *offset) {
    *out = NULL;
    if (!ctx->info.external_memory_host || !ctx->get_host_ptr_props)
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "host memory import not supported");
    uint64_t a = ctx->info.min_imported_host_pointer_alignment;
    uintptr_t base = (uintptr_t)ptr / a * a;
    uint64_t span = align_up((uintptr_t)ptr + size - base, a);
    VkMemoryHostPointerPropertiesEXT hp = {VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT};
    VK_TRY(ctx->get_host_ptr_props(ctx->device,
                                   VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT,
                                   (void *)base, &hp),
           "vkGetMemoryHostPointerPropertiesEXT");
    va_block *b = calloc(1, sizeof *b);
    va_buffer *buf = calloc(1, sizeof *buf);
    if (!b || !buf) { free(b); free(buf); return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory"); }
    b->size = span;
    b->dedicated = 1;
    b->imported = 1;
    VkExternalMemoryBufferCreateInfo ext = {VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO};
    ext.handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT;
    VkBufferCreateInfo bci = {VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.pNext = &ext;
    bci.size = span;
    bci.usage = usage;
    uint32_t fams[2];
    share_queues(ctx, &bci, fams);
    VkResult r = vkCreateBuffer(ctx->device, &bci, NULL, &b->buffer);
    if (r != VK_SUCCESS) { block_free(ctx, b); free(buf); return va_vk_fail(r, "vkCreateBuffer(import)"); }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->device, b->buffer, &req);
    int type = find_type(&ctx->memprops, hp.memoryTypeBits & req.memoryTypeBits,
                         VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT, 0);
    if (type < 0) {
        block_free(ctx, b);
        free(buf);
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "no memory type can import this host pointer");
    }
    VkImportMemoryHostPointerInfoEXT imp = {VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT};
    imp.handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT;
    imp.pHostPointer = (void *)base;
    VkMemoryAllocateInfo mai = {VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    mai.pNext = &imp;
    mai.allocationSize = span;
    mai.memoryTypeIndex = (uint32_t)type;
    r = vkAllocateMemory(ctx->device, &mai, NULL, &b->memory);
    if (r != VK_SUCCESS) { block_free(ctx, b); free(buf); return va_vk_fail(r, "vkAllocateMemory(import)"); }
    r = vkBindBufferMemory(ctx->device, b->buffer, b->memory, 0);
    if (r != VK_SUCCESS) { block_free(ctx, b); free(buf); return va_vk_fail(r, "vkBindBufferMemory(import)"); }
    b->mapped = (void *)base;
    b->used = span;
    pthread_mutex_lock(&ctx->lock);
    ctx->imports++;
    pthread_mutex_unlock(&ctx->lock);
    buf->ctx = ctx;
    buf->block = b;
    buf->offset = 0;
    buf->size = span;
    buf->refs = 1;
    buf->kind = VA_MEM_READBACK;
    *offset = (uint64_t)((uintptr_t)ptr - base);
    *out = buf;
    return VA_SUCCESS;
}

void va_buffer_retain(va_buffer *buf) {
    if (buf) __atomic_add_fetch(&buf->refs, 1, __ATOMIC_RELAXED);
}

void va_buffer_release(va_buffer *buf) {
    if (!buf || __atomic_sub_fetch(&buf->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    va_context *ctx = buf->ctx;
    va_block *b = buf->block;
    if (b->imported) {
        block_free(ctx, b);
        free(buf);
        return;
    }
    uint64_t align = ctx->info.min_storage_buffer_offset_alignment > VA_ALIGN
                         ? ctx->info.min_storage_buffer_offset_alignment : VA_ALIGN;
    uint64_t need = align_up(buf->size ? buf->size : 4, align);
    pthread_mutex_lock(&ctx->lock);
    va_pool *p = &ctx->pools[buf->kind];
    block_give(b, buf->offset, need);
    p->in_use -= need;
    if (b->used == 0) {
        if (b->dedicated) {
            p->cached += b->size;
            if (p->cached > cache_cap(ctx, p)) trim_pool(ctx, p, 0);
        } else {
            trim_pool(ctx, p, 1);
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    free(buf);
}

uint64_t va_buffer_size(const va_buffer *buf) { return buf ? buf->size : 0; }

va_status va_context_memory_stats(va_context *ctx, va_memory_stats *out) {
    if (!ctx || !out) return va_fail(VA_ERROR_INVALID_ARGUMENT, "null argument");
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&ctx->lock);
    out->device_bytes_reserved = ctx->pools[VA_MEM_DEVICE].reserved;
    out->device_bytes_in_use = ctx->pools[VA_MEM_DEVICE].in_use;
    out->device_bytes_peak = ctx->pools[VA_MEM_DEVICE].peak;
    out->host_bytes_reserved = ctx->pools[VA_MEM_UPLOAD].reserved + ctx->pools[VA_MEM_READBACK].reserved;
    out->device_blocks = ctx->pools[VA_MEM_DEVICE].nblocks;
    out->host_blocks = ctx->pools[VA_MEM_UPLOAD].nblocks + ctx->pools[VA_MEM_READBACK].nblocks;
    out->imports = ctx->imports;
    out->pipelines_created = ctx->pipelines_created;
    out->pipeline_cache_hits = ctx->pipeline_hits;
    out->disk_cache_loaded = ctx->cache_loaded;
    pthread_mutex_unlock(&ctx->lock);
    return VA_SUCCESS;
}

void va_context_reset_peak(va_context *ctx) {
    pthread_mutex_lock(&ctx->lock);
    for (int k = 0; k < VA_MEM_KINDS; k++) ctx->pools[k].peak = ctx->pools[k].in_use;
    pthread_mutex_unlock(&ctx->lock);
}
