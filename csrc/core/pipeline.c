/* pipeline.c — kernels: the embedded SPIR-V registry, compute pipelines specialised by constants
 * (workgroup and tile sizes chosen per device by the planners), required subgroup sizes, and the
 * VkPipelineCache kept on disk per device UUID and driver version, checked before it is trusted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define CACHE_MAGIC 0x48434156u /* "VACH" */
#define CACHE_VERSION 1u

typedef struct cache_header {
    uint32_t magic, version;
    uint8_t uuid[16];
    uint32_t driver_version, vendor_id, device_id, reserved;
    uint64_t size, checksum;
} cache_header;

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ull; }
    return h;
}

static int mkdirs(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* Reads the cache file if its header matches this device and driver and its checksum holds. */
static void *load_cache(va_context *ctx, size_t *size) {
    *size = 0;
    FILE *f = fopen(ctx->cache_path, "rb");
    if (!f) return NULL;
    cache_header h;
    void *data = NULL;
    if (fread(&h, sizeof h, 1, f) != 1) goto bad;
    if (h.magic != CACHE_MAGIC || h.version != CACHE_VERSION ||
        memcmp(h.uuid, ctx->info.uuid, 16) != 0 || h.driver_version != ctx->info.driver_version ||
        h.vendor_id != ctx->info.vendor_id || h.device_id != ctx->info.device_id ||
        h.size == 0 || h.size > ((uint64_t)256 << 20))
        goto bad;
    data = malloc(h.size);
    if (!data || fread(data, 1, h.size, f) != h.size) goto bad;
    if (fnv1a(data, h.size) != h.checksum) goto bad;
    /* Vulkan's own header inside must agree too. */
    if (h.size < 32) goto bad;
    const uint8_t *v = data;
    uint32_t vk_len, vk_ver, vk_vendor, vk_device;
    memcpy(&vk_len, v, 4); memcpy(&vk_ver, v + 4, 4); memcpy(&vk_vendor, v + 8, 4); memcpy(&vk_device, v + 12, 4);
    if (vk_len < 32 || vk_ver != 1 || vk_vendor != ctx->info.vendor_id || vk_device != ctx->info.device_id)
        goto bad;
    fclose(f);
    *size = h.size;
    return data;
bad:
    free(data);
    fclose(f);
    return NULL;
}

va_status va_context_save_cache(va_context *ctx) {
    if (!ctx || !ctx->cache || !ctx->cache_path[0]) return VA_SUCCESS;
    size_t size = 0;
    if (vkGetPipelineCacheData(ctx->device, ctx->cache, &size, NULL) != VK_SUCCESS || size == 0)
        return VA_SUCCESS;
    uint8_t *data = malloc(size);
    if (!data) return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    if (vkGetPipelineCacheData(ctx->device, ctx->cache, &size, data) != VK_SUCCESS) {
        free(data);
        return VA_SUCCESS;
    }
    cache_header h = {CACHE_MAGIC, CACHE_VERSION, {0}, ctx->info.driver_version, ctx->info.vendor_id,
                      ctx->info.device_id, 0, size, fnv1a(data, size)};
    memcpy(h.uuid, ctx->info.uuid, 16);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", ctx->cache_path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(&h, sizeof h, 1, f) == 1 && fwrite(data, 1, size, f) == size;
    if (f) ok = (fclose(f) == 0) && ok;
    free(data);
    /* Written whole then renamed: a reader never sees half a file. A failure to write the cache
     * is not an error of the computation, so it is not reported as one. */
    if (ok) rename(tmp, ctx->cache_path);
    else unlink(tmp);
    return VA_SUCCESS;
}

va_status va_pipeline_init(va_context *ctx, const char *cache_dir) {
    char dir[900] = {0};
    if (cache_dir) {
        snprintf(dir, sizeof dir, "%s", cache_dir);
    } else {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg && *xdg) snprintf(dir, sizeof dir, "%s/vaccel", xdg);
        else if (home && *home) snprintf(dir, sizeof dir, "%s/.cache/vaccel", home);
    }
    size_t size = 0;
    void *data = NULL;
    if (dir[0] && mkdirs(dir) == 0) {
        char uuid[33];
        for (int i = 0; i < 16; i++) snprintf(uuid + 2 * i, 3, "%02x", ctx->info.uuid[i]);
        snprintf(ctx->cache_path, sizeof ctx->cache_path, "%s/pipelines-%s-%08x.bin", dir, uuid,
                 ctx->info.driver_version);
        data = load_cache(ctx, &size);
    }
    VkPipelineCacheCreateInfo ci = {VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
    ci.initialDataSize = size;
    ci.pInitialData = data;
    VkResult r = vkCreatePipelineCache(ctx->device, &ci, NULL, &ctx->cache);
    if (r != VK_SUCCESS && data) {
        /* The driver refused the data: start empty; the file is rewritten on save. */
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        r = vkCreatePipelineCache(ctx->device, &ci, NULL, &ctx->cache);
        free(data);
        data = NULL;
    }
    ctx->cache_loaded = data != NULL;
    free(data);
    VK_TRY(r, "vkCreatePipelineCache");
    return VA_SUCCESS;
}

void va_pipeline_destroy(va_context *ctx) {
    va_context_save_cache(ctx);
    va_kernel *k = ctx->kernels;
    while (k) {
        va_kernel *n = k->next;
        vkDestroyPipeline(ctx->device, k->pipeline, NULL);
        vkDestroyPipelineLayout(ctx->device, k->layout, NULL);
        vkDestroyDescriptorSetLayout(ctx->device, k->set_layout, NULL);
        free(k);
        k = n;
    }
    ctx->kernels = NULL;
    memset(ctx->kernel_table, 0, sizeof ctx->kernel_table);
    if (ctx->cache) vkDestroyPipelineCache(ctx->device, ctx->cache, NULL);
    ctx->cache = VK_NULL_HANDLE;
}

/* Bindings in descriptor set 0, read from the module's OpDecorate ... Binding instructions. */
static uint32_t count_bindings(const va_spirv *sp) {
    uint32_t max = 0, i = 5;
    int any = 0;
    while (i < sp->words) {
        uint32_t w = sp->code[i], len = w >> 16, op = w & 0xffff;
        if (len == 0) break;
        if (op == 71 /* OpDecorate */ && len >= 4 && sp->code[i + 2] == 33 /* Binding */) {
            any = 1;
            if (sp->code[i + 3] > max) max = sp->code[i + 3];
        }
        i += len;
    }
    return any ? max + 1 : 0;
}

static const va_spirv *find_spirv(const char *name) {
    for (size_t i = 0; i < va_spirv_count; i++)
        if (strcmp(va_spirv_table[i].name, name) == 0) return &va_spirv_table[i];
    return NULL;
}

int va_kernel_available(const char *name) { return find_spirv(name) != NULL; }

/* VACCEL_PIPELINE_STATS=1: one line per executable of a new pipeline on stderr, its name and
 * specialization constants, then what the driver's compiler reports (register count, shared and
 * local memory, ...). */
static void report_stats(va_context *ctx, const va_kernel *k) {
    VkPipelineInfoKHR pi = {VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR};
    pi.pipeline = k->pipeline;
    uint32_t ne = 0;
    if (ctx->get_exec_props(ctx->device, &pi, &ne, NULL) != VK_SUCCESS) return;
    for (uint32_t e = 0; e < ne && e < 4; e++) {
        VkPipelineExecutableInfoKHR ei = {VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR};
        ei.pipeline = k->pipeline;
        ei.executableIndex = e;
        VkPipelineExecutableStatisticKHR st[32];
        uint32_t n = 32;
        for (uint32_t i = 0; i < n; i++) st[i] = (VkPipelineExecutableStatisticKHR){VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR};
        VkResult r = ctx->get_exec_stats(ctx->device, &ei, &n, st);
        if (r != VK_SUCCESS && r != VK_INCOMPLETE) continue;
        char line[2048];
        size_t len = 0;
#define APPEND(...)                                                                         \
    do {                                                                                    \
        if (len < sizeof line) {                                                            \
            int w_ = snprintf(line + len, sizeof line - len, __VA_ARGS__);                   \
            len = w_ < 0 ? sizeof line : len + (size_t)w_;                                  \
        }                                                                                   \
    } while (0)
        APPEND("vaccel pipeline stats: %s [", k->name);
        for (uint32_t i = 0; i < k->nspec; i++) APPEND("%s%u", i ? "," : "", k->spec[i]);
        APPEND("]");
        for (uint32_t i = 0; i < n; i++) {
            switch (st[i].format) {
            case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR:
                APPEND(" | %s=%u", st[i].name, (unsigned)st[i].value.b32); break;
            case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR:
                APPEND(" | %s=%lld", st[i].name, (long long)st[i].value.i64); break;
            case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR:
                APPEND(" | %s=%llu", st[i].name, (unsigned long long)st[i].value.u64); break;
            default:
                APPEND(" | %s=%g", st[i].name, st[i].value.f64); break;
            }
        }
#undef APPEND
        fprintf(stderr, "%s\n", line);
    }
}

/* FNV-1a over the name, the constants and the subgroup size. */
static uint32_t kernel_hash(const char *name, const uint32_t *spec, uint32_t nspec, uint32_t required_subgroup) {
    uint32_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) h = (h ^ *c) * 16777619u;
    for (uint32_t i = 0; i < nspec; i++) h = (h ^ spec[i]) * 16777619u;
    h = (h ^ nspec) * 16777619u;
    return (h ^ required_subgroup) * 16777619u;
}

va_status va_kernel_get(va_context *ctx, const char *name, const uint32_t *spec, uint32_t nspec,
                        uint32_t required_subgroup, const va_kernel **out) {
    if (nspec > VA_MAX_SPEC) return va_fail(VA_ERROR_INTERNAL, "too many specialization constants");
    if (required_subgroup && !ctx->info.subgroup_size_control) required_subgroup = 0;
    if (required_subgroup &&
        (required_subgroup < ctx->info.min_subgroup_size || required_subgroup > ctx->info.max_subgroup_size))
        required_subgroup = 0;
    uint32_t hash = kernel_hash(name, spec, nspec, required_subgroup);
    pthread_mutex_lock(&ctx->lock);
    for (va_kernel *k = ctx->kernel_table[hash % VA_KERNEL_BUCKETS]; k; k = k->hnext) {
        if (k->hash == hash && k->nspec == nspec && k->required_subgroup == required_subgroup &&
            strcmp(k->name, name) == 0 && memcmp(k->spec, spec, nspec * sizeof *spec) == 0) {
            ctx->pipeline_hits++;
            *out = k;
            pthread_mutex_unlock(&ctx->lock);
            return VA_SUCCESS;
        }
    }
    pthread_mutex_unlock(&ctx->lock);

    const va_spirv *sp = find_spirv(name);
    if (!sp) return va_fail(VA_ERROR_INTERNAL, "no embedded shader named '%s'", name);
    va_kernel *k = calloc(1, sizeof *k);
    if (!k) return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    k->name = sp->name;
    memcpy(k->spec, spec, nspec * sizeof *spec);
    k->nspec = nspec;
    k->required_subgroup = required_subgroup;
    k->hash = hash;
    k->nbindings = count_bindings(sp);
    VkDescriptorSetLayoutBinding lb[VA_MAX_BINDINGS];
    if (k->nbindings > VA_MAX_BINDINGS) { free(k); return va_fail(VA_ERROR_INTERNAL, "too many bindings"); }
    for (uint32_t i = 0; i < k->nbindings; i++) {
        lb[i] = (VkDescriptorSetLayoutBinding){i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1,
                                               VK_SHADER_STAGE_COMPUTE_BIT, NULL};
    }
    VkDescriptorSetLayoutCreateInfo dl = {VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    dl.bindingCount = k->nbindings;
    dl.pBindings = lb;
    if (ctx->push_descriptor) dl.flags = VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR;
    VkResult r = vkCreateDescriptorSetLayout(ctx->device, &dl, NULL, &k->set_layout);
    if (r != VK_SUCCESS) { free(k); return va_vk_fail(r, "vkCreateDescriptorSetLayout"); }
    VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, VA_PUSH_BYTES};
    VkPipelineLayoutCreateInfo pl = {VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    pl.setLayoutCount = 1;
    pl.pSetLayouts = &k->set_layout;
    pl.pushConstantRangeCount = 1;
    pl.pPushConstantRanges = &pr;
    r = vkCreatePipelineLayout(ctx->device, &pl, NULL, &k->layout);
    if (r != VK_SUCCESS) {
        vkDestroyDescriptorSetLayout(ctx->device, k->set_layout, NULL);
        free(k);
        return va_vk_fail(r, "vkCreatePipelineLayout");
    }
    VkShaderModuleCreateInfo sm = {VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    sm.codeSize = sp->words * 4;
    sm.pCode = sp->code;
    VkShaderModule mod;
    r = vkCreateShaderModule(ctx->device, &sm, NULL, &mod);
    if (r != VK_SUCCESS) {
        vkDestroyPipelineLayout(ctx->device, k->layout, NULL);
        vkDestroyDescriptorSetLayout(ctx->device, k->set_layout, NULL);
        free(k);
        return va_vk_fail(r, "vkCreateShaderModule");
    }
    VkSpecializationMapEntry me[VA_MAX_SPEC];
    for (uint32_t i = 0; i < nspec; i++) me[i] = (VkSpecializationMapEntry){i, i * 4, 4};
    VkSpecializationInfo si = {nspec, me, nspec * 4, k->spec};
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfo rs = {
        VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO};
    rs.requiredSubgroupSize = required_subgroup;
    VkComputePipelineCreateInfo ci = {VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    ci.stage.module = mod;
    ci.stage.pName = "main";
    ci.stage.pSpecializationInfo = nspec ? &si : NULL;
    if (required_subgroup) {
        ci.stage.pNext = &rs;
        ci.stage.flags = VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT;
    }
    /* Grids beyond the device's workgroup-count limit are split into vkCmdDispatchBase calls. */
    ci.flags = VK_PIPELINE_CREATE_DISPATCH_BASE_BIT;
    if (ctx->get_exec_stats) ci.flags |= VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR;
    ci.layout = k->layout;
    r = vkCreateComputePipelines(ctx->device, ctx->cache, 1, &ci, NULL, &k->pipeline);
    vkDestroyShaderModule(ctx->device, mod, NULL);
    if (r != VK_SUCCESS) {
        vkDestroyPipelineLayout(ctx->device, k->layout, NULL);
        vkDestroyDescriptorSetLayout(ctx->device, k->set_layout, NULL);
        free(k);
        return va_vk_fail(r, "vkCreateComputePipelines");
    }
    if (ctx->get_exec_stats) report_stats(ctx, k);
    pthread_mutex_lock(&ctx->lock);
    /* Another thread may have made the same kernel meanwhile; keeping both is harmless. */
    k->next = ctx->kernels;
    ctx->kernels = k;
    k->hnext = ctx->kernel_table[hash % VA_KERNEL_BUCKETS];
    ctx->kernel_table[hash % VA_KERNEL_BUCKETS] = k;
    ctx->pipelines_created++;
    pthread_mutex_unlock(&ctx->lock);
    *out = k;
    return VA_SUCCESS;
}
