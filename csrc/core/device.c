/* device.c — the process-wide Vulkan instance (with the validation layer on request), the
 * capability report of each physical device, device choice, and context creation/destruction. */
#include <ctype.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Structures of extensions newer than the oldest headers we build against (Debian 12 ships
 * 1.3.239). Layouts and sType values follow the Vulkan registry. */
#define VA_STYPE_COOPMAT_FEATURES_KHR ((VkStructureType)1000506000)
#define VA_STYPE_COOPMAT2_FEATURES_NV ((VkStructureType)1000593000)
#define VA_STYPE_BF16_FEATURES_KHR ((VkStructureType)1000141000)
typedef struct { VkStructureType sType; void *pNext; VkBool32 cooperativeMatrix, robust; } va_coopmat_features;
typedef struct { VkStructureType sType; void *pNext; VkBool32 f[7]; } va_coopmat2_features;
typedef struct { VkStructureType sType; void *pNext; VkBool32 type, dot, coopmat; } va_bf16_features;
/* VkCooperativeMatrixPropertiesKHR (newer than the headers Debian 12 ships). */
#define VA_STYPE_COOPMAT_PROPERTIES_KHR ((VkStructureType)1000506001)
typedef struct {
    VkStructureType sType;
    void *pNext;
    uint32_t m, n, k;
    uint32_t a_type, b_type, c_type, result_type; /* VkComponentTypeKHR: 0 float16, 1 float32 */
    VkBool32 saturating;
    uint32_t scope;                               /* VkScopeKHR: 3 subgroup */
} va_coopmat_props;
typedef VkResult (*va_coopmat_props_fn)(VkPhysicalDevice, uint32_t *, va_coopmat_props *);

static pthread_mutex_t instance_lock = PTHREAD_MUTEX_INITIALIZER;
static va_instance *the_instance;

/* ---- validation messages ---- */
static pthread_mutex_t msg_lock = PTHREAD_MUTEX_INITIALIZER;
static char *messages[VA_VALIDATION_MAX];
static int message_count, messages_dropped;

static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                   VkDebugUtilsMessageTypeFlagsEXT type,
                                                   const VkDebugUtilsMessengerCallbackDataEXT *d,
                                                   void *user) {
    (void)type; (void)user;
    if (!(sev & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                 VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)))
        return VK_FALSE;
    pthread_mutex_lock(&msg_lock);
    if (message_count < VA_VALIDATION_MAX) {
        const char *m = d && d->pMessage ? d->pMessage : "(no message)";
        messages[message_count] = strdup(m);
        if (messages[message_count]) message_count++;
    } else {
        messages_dropped++;
    }
    pthread_mutex_unlock(&msg_lock);
    return VK_FALSE;
}

va_status va_validation_messages(char *buf, size_t cap, int clear, int *count) {
    pthread_mutex_lock(&msg_lock);
    size_t used = 0;
    if (buf && cap) buf[0] = 0;
    for (int i = 0; i < message_count; i++) {
        size_t len = strlen(messages[i]);
        if (buf && used + len + 2 < cap) {
            memcpy(buf + used, messages[i], len);
            used += len;
            buf[used++] = '\n';
            buf[used] = 0;
        }
    }
    if (count) *count = message_count + messages_dropped;
    if (clear) {
        for (int i = 0; i < message_count; i++) free(messages[i]);
        message_count = 0;
        messages_dropped = 0;
    }
    pthread_mutex_unlock(&msg_lock);
    return VA_SUCCESS;
}

/* ---- instance ---- */
static int has_layer(const char *name) {
    uint32_t n = 0;
    vkEnumerateInstanceLayerProperties(&n, NULL);
    VkLayerProperties *p = calloc(n ? n : 1, sizeof *p);
    if (!p) return 0;
    vkEnumerateInstanceLayerProperties(&n, p);
    int found = 0;
    for (uint32_t i = 0; i < n; i++) found |= strcmp(p[i].layerName, name) == 0;
    free(p);
    return found;
}

static int has_instance_ext(const char *name) {
    uint32_t n = 0;
    vkEnumerateInstanceExtensionProperties(NULL, &n, NULL);
    VkExtensionProperties *p = calloc(n ? n : 1, sizeof *p);
    if (!p) return 0;
    vkEnumerateInstanceExtensionProperties(NULL, &n, p);
    int found = 0;
    for (uint32_t i = 0; i < n; i++) found |= strcmp(p[i].extensionName, name) == 0;
    free(p);
    return found;
}

va_status va_instance_get(int validation, va_instance **out) {
    pthread_mutex_lock(&instance_lock);
    if (the_instance) {
        *out = the_instance;
        pthread_mutex_unlock(&instance_lock);
        return VA_SUCCESS;
    }
    va_instance *in = calloc(1, sizeof *in);
    if (!in) {
        pthread_mutex_unlock(&instance_lock);
        return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    }
    const char *layers[1];
    uint32_t nlayers = 0;
    const char *exts[4];
    uint32_t nexts = 0;
    VkInstanceCreateFlags flags = 0;
    if (validation) {
        if (!has_layer("VK_LAYER_KHRONOS_validation")) {
            free(in);
            pthread_mutex_unlock(&instance_lock);
            return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED,
                           "validation requested but VK_LAYER_KHRONOS_validation is not installed "
                           "(Debian: apt-get install vulkan-validationlayers)");
        }
        layers[nlayers++] = "VK_LAYER_KHRONOS_validation";
        exts[nexts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
        in->validation = 1;
    }
    if (has_instance_ext("VK_KHR_portability_enumeration")) {
        exts[nexts++] = "VK_KHR_portability_enumeration";
        flags |= 0x00000001; /* VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR */
    }
    uint32_t api = VK_API_VERSION_1_1;
    vkEnumerateInstanceVersion(&api);
    VkApplicationInfo app = {VK_STRUCTURE_TYPE_APPLICATION_INFO, NULL, "vaccel", 1, "vaccel", 1,
                             api >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : api};
    VkDebugUtilsMessengerCreateInfoEXT dbg = {VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
    dbg.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                          VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    dbg.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                      VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT;
    dbg.pfnUserCallback = on_validation;
    VkInstanceCreateInfo ci = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ci.pNext = validation ? &dbg : NULL;
    ci.flags = flags;
    ci.pApplicationInfo = &app;
    ci.enabledLayerCount = nlayers;
    ci.ppEnabledLayerNames = layers;
    ci.enabledExtensionCount = nexts;
    ci.ppEnabledExtensionNames = exts;
    VkResult r = vkCreateInstance(&ci, NULL, &in->instance);
    if (r != VK_SUCCESS) {
        free(in);
        pthread_mutex_unlock(&instance_lock);
        va_vk_fail(r, "vkCreateInstance");
        return va_fail(VA_ERROR_DEVICE_NOT_AVAILABLE,
                       "no Vulkan driver could be loaded (vkCreateInstance returned %d); install "
                       "a Vulkan driver, e.g. Debian's mesa-vulkan-drivers for the CPU", (int)r);
    }
    if (validation) {
        PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)
            vkGetInstanceProcAddr(in->instance, "vkCreateDebugUtilsMessengerEXT");
        if (create) create(in->instance, &dbg, NULL, &in->messenger);
    }
    vkEnumeratePhysicalDevices(in->instance, &in->physical_count, NULL);
    in->physical = calloc(in->physical_count ? in->physical_count : 1, sizeof(VkPhysicalDevice));
    if (!in->physical) {
        vkDestroyInstance(in->instance, NULL);
        free(in);
        pthread_mutex_unlock(&instance_lock);
        return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    }
    vkEnumeratePhysicalDevices(in->instance, &in->physical_count, in->physical);
    /* The instance lives for the process: contexts come and go, and tearing the instance down at
     * exit races with other libraries' atexit handlers in the same loader. */
    the_instance = in;
    *out = in;
    pthread_mutex_unlock(&instance_lock);
    return VA_SUCCESS;
}

/* ---- capability report ---- */
static int has_device_ext(const VkExtensionProperties *e, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(e[i].extensionName, name) == 0) return 1;
    return 0;
}

typedef struct va_features {
    VkPhysicalDeviceFeatures2 f2;
    VkPhysicalDeviceVulkan11Features v11;
    VkPhysicalDeviceVulkan12Features v12;
    VkPhysicalDeviceVulkan13Features v13;
    va_coopmat_features coop;
    va_coopmat2_features coop2;
    va_bf16_features bf16;
    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR exec;
    int has13, has_coop, has_coop2, has_bf16, has_host_import, has_budget, has_portability, has_exec, has_push;
} va_features;

/* Descriptors pushed into the command buffer (VK_KHR_push_descriptor) rather than allocated from
 * a pool and written per dispatch; VACCEL_PUSH_DESCRIPTORS=0 keeps the pool (for tests). */
static int push_descriptors_wanted(void) {
    const char *v = getenv("VACCEL_PUSH_DESCRIPTORS");
    return !(v && strcmp(v, "0") == 0);
}

/* VACCEL_PIPELINE_STATS=1: report each pipeline's compiler statistics (a tuning aid). */
static int pipeline_stats_wanted(void) {
    const char *v = getenv("VACCEL_PIPELINE_STATS");
    return v && strcmp(v, "1") == 0;
}

/* Fills f with what the device offers, chaining only structures the device knows. */
static void query_features(VkPhysicalDevice pd, uint32_t api, const VkExtensionProperties *ext,
                           uint32_t next, va_features *f) {
    memset(f, 0, sizeof *f);
    f->f2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
    f->v11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES;
    f->v12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES;
    f->v13.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES;
    f->coop.sType = VA_STYPE_COOPMAT_FEATURES_KHR;
    f->coop2.sType = VA_STYPE_COOPMAT2_FEATURES_NV;
    f->bf16.sType = VA_STYPE_BF16_FEATURES_KHR;
    f->has13 = api >= VK_API_VERSION_1_3;
    f->has_coop = has_device_ext(ext, next, "VK_KHR_cooperative_matrix");
    f->has_coop2 = has_device_ext(ext, next, "VK_NV_cooperative_matrix2");
    f->has_bf16 = has_device_ext(ext, next, "VK_KHR_shader_bfloat16");
    f->has_host_import = has_device_ext(ext, next, VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME);
    f->has_budget = has_device_ext(ext, next, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    f->has_portability = has_device_ext(ext, next, "VK_KHR_portability_subset");
    f->has_push = push_descriptors_wanted() && has_device_ext(ext, next, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
    f->exec.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR;
    f->has_exec = pipeline_stats_wanted() &&
                  has_device_ext(ext, next, VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
    void **tail = &f->f2.pNext;
#define CHAIN(s) do { *tail = &(s); tail = &(s).pNext; } while (0)
    CHAIN(f->v11);
    CHAIN(f->v12);
    if (f->has13) CHAIN(f->v13);
    if (f->has_coop) CHAIN(f->coop);
    if (f->has_coop2) CHAIN(f->coop2);
    if (f->has_bf16) CHAIN(f->bf16);
    if (f->has_exec) CHAIN(f->exec);
#undef CHAIN
    vkGetPhysicalDeviceFeatures2(pd, &f->f2);
}

static void copy_str(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

/* Picks the float16 -> float32 subgroup shape for the GEMM kernels: 16x16x16 where offered (the
 * common one on NVIDIA and AMD), else the offered one with the most work per instruction whose
 * sides are multiples of 8 (the kernels' 16-byte shared-memory addressing). */
static void coopmat_shape(VkPhysicalDevice pd, va_device_info *info, int bf16_coopmat) {
    if (!the_instance) return;
    va_coopmat_props_fn fn = (va_coopmat_props_fn)vkGetInstanceProcAddr(
        the_instance->instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
    if (!fn) return;
    uint32_t n = 0;
    if (fn(pd, &n, NULL) != VK_SUCCESS || n == 0) return;
    va_coopmat_props *p = calloc(n, sizeof *p);
    if (!p) return;
    for (uint32_t i = 0; i < n; i++) p[i].sType = VA_STYPE_COOPMAT_PROPERTIES_KHR;
    if (fn(pd, &n, p) == VK_SUCCESS) {
        uint64_t best = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (p[i].a_type != 0 || p[i].b_type != 0 || p[i].c_type != 1 || p[i].result_type != 1 ||
                p[i].scope != 3 || p[i].saturating || p[i].m % 8 || p[i].n % 8 || p[i].k % 8)
                continue;
            uint64_t score = (uint64_t)p[i].m * p[i].n * p[i].k;
            if (p[i].m == 16 && p[i].n == 16 && p[i].k == 16) score = UINT64_MAX;
            if (score > best) {
                best = score;
                info->coopmat_m = p[i].m;
                info->coopmat_n = p[i].n;
                info->coopmat_k = p[i].k;
            }
        }
        /* VK_COMPONENT_TYPE_BFLOAT16_KHR = 1000141000 */
        for (uint32_t i = 0; best && bf16_coopmat && i < n; i++)
            if (p[i].a_type == 1000141000 && p[i].b_type == 1000141000 && p[i].c_type == 1 &&
                p[i].result_type == 1 && p[i].scope == 3 && !p[i].saturating && p[i].m == info->coopmat_m &&
                p[i].n == info->coopmat_n && p[i].k == info->coopmat_k)
                info->coopmat_bf16 = 1;
    }
    free(p);
}

va_status va_query_device(VkPhysicalDevice pd, int index, va_device_info *info) {
    memset(info, 0, sizeof *info);
    info->index = index;
    VkPhysicalDeviceProperties base;
    vkGetPhysicalDeviceProperties(pd, &base);
    uint32_t next = 0;
    vkEnumerateDeviceExtensionProperties(pd, NULL, &next, NULL);
    VkExtensionProperties *ext = calloc(next ? next : 1, sizeof *ext);
    if (!ext) return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    vkEnumerateDeviceExtensionProperties(pd, NULL, &next, ext);

    va_features f;
    query_features(pd, base.apiVersion, ext, next, &f);

    VkPhysicalDeviceProperties2 p2 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    VkPhysicalDeviceVulkan11Properties p11 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES};
    VkPhysicalDeviceVulkan12Properties p12 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES};
    VkPhysicalDeviceVulkan13Properties p13 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_PROPERTIES};
    VkPhysicalDeviceExternalMemoryHostPropertiesEXT ph = {
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT};
    VkPhysicalDeviceMaintenance4Properties pm4 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES};
    p2.pNext = &p11;
    p11.pNext = &p12;
    void **tail = &p12.pNext;
    if (f.has13) { *tail = &p13; tail = &p13.pNext; *tail = &pm4; tail = &pm4.pNext; }
    if (f.has_host_import) { *tail = &ph; tail = &ph.pNext; }
    vkGetPhysicalDeviceProperties2(pd, &p2);

    copy_str(info->name, sizeof info->name, base.deviceName);
    copy_str(info->driver_name, sizeof info->driver_name, p12.driverName);
    copy_str(info->driver_info, sizeof info->driver_info, p12.driverInfo);
    info->vendor_id = base.vendorID;
    info->device_id = base.deviceID;
    info->driver_version = base.driverVersion;
    info->api_version = base.apiVersion;
    memcpy(info->uuid, p11.deviceUUID, 16);
    switch (base.deviceType) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: info->type = VA_DEVICE_DISCRETE; break;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: info->type = VA_DEVICE_INTEGRATED; break;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: info->type = VA_DEVICE_VIRTUAL; break;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: info->type = VA_DEVICE_CPU; break;
    default: info->type = VA_DEVICE_OTHER;
    }
    info->subgroup_size = p11.subgroupSize;
    info->min_subgroup_size = info->max_subgroup_size = p11.subgroupSize;
    info->subgroup_arithmetic =
        (p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
        (p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    info->subgroup_shuffle =
        (p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
        (p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
    if (f.has13) {
        info->min_subgroup_size = p13.minSubgroupSize;
        info->max_subgroup_size = p13.maxSubgroupSize;
        info->subgroup_size_control = f.v13.subgroupSizeControl && f.v13.computeFullSubgroups &&
                                      (p13.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT);
        info->integer_dot_product = f.v13.shaderIntegerDotProduct;
        info->max_buffer_size = pm4.maxBufferSize;
    }
    info->shared_memory_per_workgroup = base.limits.maxComputeSharedMemorySize;
    info->max_workgroup_invocations = base.limits.maxComputeWorkGroupInvocations;
    for (int i = 0; i < 3; i++) info->max_workgroup_count[i] = base.limits.maxComputeWorkGroupCount[i];
    info->max_storage_buffer_range = base.limits.maxStorageBufferRange;
    if (!info->max_buffer_size) info->max_buffer_size = (uint64_t)1 << 31;
    info->min_storage_buffer_offset_alignment = (uint32_t)base.limits.minStorageBufferOffsetAlignment;
    info->fp16 = f.v12.shaderFloat16;
    info->int8 = f.v12.shaderInt8;
    info->fp64 = f.f2.features.shaderFloat64;
    info->int64 = f.f2.features.shaderInt64;
    info->bf16 = f.has_bf16 && f.bf16.type;
    info->storage_16bit = f.v11.storageBuffer16BitAccess;
    info->storage_8bit = f.v12.storageBuffer8BitAccess;
    info->cooperative_matrix = f.has_coop && f.coop.cooperativeMatrix;
    /* VkPhysicalDeviceCooperativeMatrix2FeaturesNV: f[0] workgroup scope, f[1] flexible dimensions,
     * f[5] tensor addressing: what matmul_cm2 uses. */
    info->cooperative_matrix_nv2 = f.has_coop2 && f.coop2.f[0] && f.coop2.f[1] && f.coop2.f[5];
    if (info->cooperative_matrix) coopmat_shape(pd, info, info->bf16 && f.bf16.coopmat);
    info->external_memory_host = f.has_host_import;
    info->min_imported_host_pointer_alignment = f.has_host_import ? ph.minImportedHostPointerAlignment : 0;
    info->memory_budget = f.has_budget;
    info->timestamps = base.limits.timestampComputeAndGraphics;
    info->timestamp_period_ns = base.limits.timestampPeriod;

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties qf[32];
    if (nq > 32) nq = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, qf);
    for (uint32_t i = 0; i < nq; i++) {
        VkQueueFlags fl = qf[i].queueFlags;
        if ((fl & VK_QUEUE_TRANSFER_BIT) && !(fl & (VK_QUEUE_COMPUTE_BIT | VK_QUEUE_GRAPHICS_BIT)))
            info->transfer_queue = 1;
        if ((fl & VK_QUEUE_COMPUTE_BIT) && qf[i].timestampValidBits == 0) info->timestamps = 0;
    }

    VkPhysicalDeviceMemoryProperties2 mp = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2};
    VkPhysicalDeviceMemoryBudgetPropertiesEXT mb = {
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    if (f.has_budget) mp.pNext = &mb;
    vkGetPhysicalDeviceMemoryProperties2(pd, &mp);
    const VkPhysicalDeviceMemoryProperties *m = &mp.memoryProperties;
    info->heap_count = m->memoryHeapCount < VA_MAX_HEAPS ? m->memoryHeapCount : VA_MAX_HEAPS;
    for (uint32_t i = 0; i < info->heap_count; i++) {
        info->heaps[i].size = m->memoryHeaps[i].size;
        info->heaps[i].device_local = !!(m->memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT);
        info->heaps[i].budget = f.has_budget ? mb.heapBudget[i] : m->memoryHeaps[i].size;
        info->heaps[i].usage = f.has_budget ? mb.heapUsage[i] : 0;
    }
    int device_local_types = 0, device_local_visible = 0;
    for (uint32_t i = 0; i < m->memoryTypeCount; i++) {
        VkMemoryPropertyFlags fl = m->memoryTypes[i].propertyFlags;
        if (fl & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) {
            device_local_types++;
            if (fl & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) device_local_visible++;
        }
    }
    info->device_local_host_visible = device_local_visible > 0;
    /* Unified: all device memory is host memory (CPU drivers, most integrated GPUs). A large
     * device-local host-visible heap on a discrete GPU (ReBAR) does not make it unified. */
    info->unified_memory = device_local_types > 0 && device_local_visible == device_local_types &&
                           info->type != VA_DEVICE_DISCRETE;
    if (info->external_memory_host)
        info->zero_copy = info->unified_memory ? VA_ZERO_COPY_UNIFIED : VA_ZERO_COPY_IMPORT;
    else
        info->zero_copy = VA_ZERO_COPY_STAGING;
    /* VACCEL_ZERO_COPY=staging or =import forces that path (for testing it on any device). */
    const char *zc = getenv("VACCEL_ZERO_COPY");
    if (zc && strcmp(zc, "staging") == 0) info->zero_copy = VA_ZERO_COPY_STAGING;
    if (zc && strcmp(zc, "import") == 0 && info->external_memory_host) info->zero_copy = VA_ZERO_COPY_IMPORT;
    free(ext);
    return VA_SUCCESS;
}

va_status va_device_count(int *count) {
    va_instance *in;
    const char *v = getenv("VACCEL_VALIDATION");
    VA_TRY(va_instance_get(v && *v && strcmp(v, "0") != 0, &in));
    *count = (int)in->physical_count;
    return VA_SUCCESS;
}

va_status va_device_get_info(int index, va_device_info *info) {
    va_instance *in;
    const char *v = getenv("VACCEL_VALIDATION");
    VA_TRY(va_instance_get(v && *v && strcmp(v, "0") != 0, &in));
    if (index < 0 || (uint32_t)index >= in->physical_count)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "device index %d out of range (%u devices)",
                       index, in->physical_count);
    return va_query_device(in->physical[index], index, info);
}

/* ---- device choice ---- */
static int type_rank(va_device_type t) {
    switch (t) {
    case VA_DEVICE_DISCRETE: return 4;
    case VA_DEVICE_INTEGRATED: return 3;
    case VA_DEVICE_VIRTUAL: return 2;
    case VA_DEVICE_CPU: return 1;
    default: return 0;
    }
}

static int contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == n) return 1;
    }
    return n == 0;
}

static va_status choose_device(va_instance *in, const char *sel, int *chosen) {
    if (in->physical_count == 0)
        return va_fail(VA_ERROR_DEVICE_NOT_AVAILABLE,
                       "no Vulkan device found; install a driver (mesa-vulkan-drivers gives lavapipe on the CPU)");
    va_device_info info;
    if (sel && *sel) {
        char *end;
        long idx = strtol(sel, &end, 10);
        if (*end == 0) {
            if (idx < 0 || (uint32_t)idx >= in->physical_count)
                return va_fail(VA_ERROR_DEVICE_NOT_AVAILABLE,
                               "device %ld requested but only %u Vulkan devices exist", idx,
                               in->physical_count);
            *chosen = (int)idx;
            return VA_SUCCESS;
        }
        for (uint32_t i = 0; i < in->physical_count; i++) {
            VA_TRY(va_query_device(in->physical[i], (int)i, &info));
            if (contains_ci(info.name, sel)) { *chosen = (int)i; return VA_SUCCESS; }
        }
        return va_fail(VA_ERROR_DEVICE_NOT_AVAILABLE, "no Vulkan device name contains '%s'", sel);
    }
    int best = -1, best_rank = -1;
    for (uint32_t i = 0; i < in->physical_count; i++) {
        VA_TRY(va_query_device(in->physical[i], (int)i, &info));
        if (info.api_version < VK_API_VERSION_1_2) continue;
        int r = type_rank(info.type);
        if (r > best_rank) { best = (int)i; best_rank = r; }
    }
    if (best < 0)
        return va_fail(VA_ERROR_DEVICE_NOT_AVAILABLE, "no Vulkan 1.2 device found");
    *chosen = best;
    return VA_SUCCESS;
}

/* ---- context ---- */
static va_status create_device(va_context *ctx) {
    VkPhysicalDevice pd = ctx->physical;
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties qf[32];
    if (nq > 32) nq = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, qf);
    /* A compute queue, preferring one without graphics (dedicated compute), else any. */
    int fam = -1;
    for (uint32_t i = 0; i < nq; i++)
        if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && fam < 0) fam = (int)i;
    if (fam < 0) return va_fail(VA_ERROR_DEVICE_NOT_AVAILABLE, "device has no compute queue");
    ctx->queue_family = (uint32_t)fam;
    /* A transfer-only family (a DMA engine) for uploads that overlap compute, unless
     * VACCEL_NO_TRANSFER_QUEUE says otherwise; without one uploads share the compute queue. */
    const char *no_tq = getenv("VACCEL_NO_TRANSFER_QUEUE");
    int tfam = -1;
    for (uint32_t i = 0; i < nq && !(no_tq && *no_tq && strcmp(no_tq, "0") != 0); i++)
        if ((qf[i].queueFlags & VK_QUEUE_TRANSFER_BIT) && !(qf[i].queueFlags & (VK_QUEUE_COMPUTE_BIT | VK_QUEUE_GRAPHICS_BIT)) &&
            qf[i].queueCount > 0 && tfam < 0)
            tfam = (int)i;
    ctx->transfer_family = tfam >= 0 ? (uint32_t)tfam : ctx->queue_family;

    uint32_t next = 0;
    vkEnumerateDeviceExtensionProperties(pd, NULL, &next, NULL);
    VkExtensionProperties *ext = calloc(next ? next : 1, sizeof *ext);
    if (!ext) return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    vkEnumerateDeviceExtensionProperties(pd, NULL, &next, ext);
    va_features have;
    VkPhysicalDeviceProperties base;
    vkGetPhysicalDeviceProperties(pd, &base);
    query_features(pd, base.apiVersion, ext, next, &have);

    /* Enable only what kernels use, and only where offered. */
    va_features en;
    memset(&en, 0, sizeof en);
    en.f2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
    en.v11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES;
    en.v12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES;
    en.v13.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES;
    en.coop.sType = VA_STYPE_COOPMAT_FEATURES_KHR;
    en.coop2.sType = VA_STYPE_COOPMAT2_FEATURES_NV;
    en.bf16.sType = VA_STYPE_BF16_FEATURES_KHR;
    en.f2.features.shaderInt64 = have.f2.features.shaderInt64;
    en.f2.features.shaderInt16 = have.f2.features.shaderInt16;
    en.f2.features.shaderFloat64 = have.f2.features.shaderFloat64;
    en.v11.storageBuffer16BitAccess = have.v11.storageBuffer16BitAccess;
    en.v12.storageBuffer8BitAccess = have.v12.storageBuffer8BitAccess;
    en.v12.shaderFloat16 = have.v12.shaderFloat16;
    en.v12.shaderInt8 = have.v12.shaderInt8;
    en.v12.hostQueryReset = have.v12.hostQueryReset;
    en.v12.vulkanMemoryModel = have.v12.vulkanMemoryModel;
    en.v12.vulkanMemoryModelDeviceScope = have.v12.vulkanMemoryModelDeviceScope;
    en.v12.shaderSubgroupExtendedTypes = have.v12.shaderSubgroupExtendedTypes;
    en.v13.subgroupSizeControl = have.v13.subgroupSizeControl;
    en.v13.computeFullSubgroups = have.v13.computeFullSubgroups;
    en.v13.maintenance4 = have.v13.maintenance4;
    en.v13.shaderIntegerDotProduct = have.v13.shaderIntegerDotProduct;
    en.v13.synchronization2 = have.v13.synchronization2;
    en.coop.cooperativeMatrix = have.coop.cooperativeMatrix;
    memcpy(en.coop2.f, have.coop2.f, sizeof en.coop2.f);
    en.bf16.type = have.bf16.type;
    en.bf16.dot = have.bf16.dot;
    en.bf16.coopmat = have.bf16.coopmat;
    void **tail = &en.f2.pNext;
#define CHAIN(s) do { *tail = &(s); tail = &(s).pNext; } while (0)
    CHAIN(en.v11);
    CHAIN(en.v12);
    if (have.has13) CHAIN(en.v13);
    if (have.has_coop && have.coop.cooperativeMatrix) CHAIN(en.coop);
    if (have.has_coop2 && have.coop2.f[0]) CHAIN(en.coop2);
    if (have.has_bf16 && have.bf16.type) CHAIN(en.bf16);
    int exec = have.has_exec && have.exec.pipelineExecutableInfo;
    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR en_exec = {
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
    en_exec.pipelineExecutableInfo = VK_TRUE;
    if (exec) CHAIN(en_exec);
#undef CHAIN

    const char *exts[10];
    uint32_t ne = 0;
    if (have.has_host_import) exts[ne++] = VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME;
    if (have.has_budget) exts[ne++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
    if (have.has_portability) exts[ne++] = "VK_KHR_portability_subset";
    if (have.has_coop && have.coop.cooperativeMatrix) exts[ne++] = "VK_KHR_cooperative_matrix";
    if (have.has_coop2 && have.coop2.f[0]) exts[ne++] = "VK_NV_cooperative_matrix2";
    if (have.has_bf16 && have.bf16.type) exts[ne++] = "VK_KHR_shader_bfloat16";
    if (exec) exts[ne++] = VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME;
    if (have.has_push) exts[ne++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
    free(ext);

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci[2] = {{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO},
                                      {VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO}};
    qci[0].queueFamilyIndex = ctx->queue_family;
    qci[0].queueCount = 1;
    qci[0].pQueuePriorities = &prio;
    qci[1] = qci[0];
    qci[1].queueFamilyIndex = ctx->transfer_family;
    VkDeviceCreateInfo dci = {VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    dci.pNext = &en.f2;
    dci.queueCreateInfoCount = ctx->transfer_family != ctx->queue_family ? 2 : 1;
    dci.pQueueCreateInfos = qci;
    dci.enabledExtensionCount = ne;
    dci.ppEnabledExtensionNames = exts;
    VK_TRY(vkCreateDevice(pd, &dci, NULL, &ctx->device), "vkCreateDevice");
    vkGetDeviceQueue(ctx->device, ctx->queue_family, 0, &ctx->queue);
    vkGetDeviceQueue(ctx->device, ctx->transfer_family, 0, &ctx->transfer_queue);
    if (exec) {
        ctx->get_exec_props = (PFN_vkGetPipelineExecutablePropertiesKHR)vkGetDeviceProcAddr(
            ctx->device, "vkGetPipelineExecutablePropertiesKHR");
        ctx->get_exec_stats = (PFN_vkGetPipelineExecutableStatisticsKHR)vkGetDeviceProcAddr(
            ctx->device, "vkGetPipelineExecutableStatisticsKHR");
        if (!ctx->get_exec_props || !ctx->get_exec_stats) ctx->get_exec_props = NULL, ctx->get_exec_stats = NULL;
    }
    if (have.has_push) {
        VkPhysicalDevicePushDescriptorPropertiesKHR pp = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PUSH_DESCRIPTOR_PROPERTIES_KHR};
        VkPhysicalDeviceProperties2 p2 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &pp};
        vkGetPhysicalDeviceProperties2(pd, &p2);
        if (pp.maxPushDescriptors >= VA_MAX_BINDINGS)
            ctx->push_descriptor = (PFN_vkCmdPushDescriptorSetKHR)vkGetDeviceProcAddr(ctx->device, "vkCmdPushDescriptorSetKHR");
    }
    if (have.has_host_import)
        ctx->get_host_ptr_props = (PFN_vkGetMemoryHostPointerPropertiesEXT)vkGetDeviceProcAddr(
            ctx->device, "vkGetMemoryHostPointerPropertiesEXT");
    return VA_SUCCESS;
}

/* A blocking fence wait on NVIDIA's driver returns 40-60 us after the work ends, and the host
 * thread that slept then runs its next call's Python at half speed (H100 host, measured: add over
 * 2^28 floats 1.29 ms a call blocking, 1.15 polling, for 1.06 ms of GPU time): 10 % of a
 * bandwidth-bound op on a large array. So a wait first polls the fence, as CUDA's default
 * synchronisation does, for up to 10 ms, then blocks. Not on a CPU device (the polling thread
 * would take a core that lavapipe's workers need) nor where this process may use fewer than four
 * cores. VACCEL_SPIN_US (digits: microseconds, at most 60 s; 0: never) sets it on any device. */
static uint64_t wait_spin_us(const va_device_info *info) {
    const char *v = getenv("VACCEL_SPIN_US");
    if (v && *v >= '0' && *v <= '9') {
        char *end;
        unsigned long long us = strtoull(v, &end, 10);
        if (*end == '\0') return us < 60000000ull ? (uint64_t)us : 60000000ull;
    }
    if (info->type == VA_DEVICE_CPU) return 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) cores = CPU_COUNT(&set);
    return cores >= 4 ? 10000 : 0;
}

va_status va_context_create(const va_context_options *opts, va_context **out) {
    va_clear_error();
    *out = NULL;
    va_context_options def = {0};
    if (!opts) opts = &def;
    va_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    pthread_mutex_init(&ctx->lock, NULL);
    va_status s = va_instance_get(opts->validation, &ctx->inst);
    if (s) goto fail;
    const char *sel = opts->device;
    if (!sel) sel = getenv("VACCEL_DEVICE");
    int idx = -1;
    s = choose_device(ctx->inst, sel, &idx);
    if (s) goto fail;
    ctx->physical = ctx->inst->physical[idx];
    s = va_query_device(ctx->physical, idx, &ctx->info);
    if (s) goto fail;
    if (ctx->info.api_version < VK_API_VERSION_1_2) {
        s = va_fail(VA_ERROR_DEVICE_NOT_AVAILABLE, "device '%s' offers Vulkan %u.%u; vaccel needs 1.2",
                    ctx->info.name, VK_API_VERSION_MAJOR(ctx->info.api_version),
                    VK_API_VERSION_MINOR(ctx->info.api_version));
        goto fail;
    }
    vkGetPhysicalDeviceMemoryProperties(ctx->physical, &ctx->memprops);
    s = create_device(ctx);
    if (s) goto fail;
    s = va_memory_init(ctx);
    if (s) goto fail;
    s = va_pipeline_init(ctx, opts->cache_dir);
    if (s) goto fail;
    ctx->info.wait_spin_us = wait_spin_us(&ctx->info);
    ctx->info.pipeline_stats = ctx->get_exec_stats != NULL;
    ctx->info.push_descriptors = ctx->push_descriptor != NULL;
    *out = ctx;
    return VA_SUCCESS;
fail:
    va_context_destroy(ctx);
    return s;
}

void va_context_destroy(va_context *ctx) {
    if (!ctx) return;
    if (ctx->device) {
        vkDeviceWaitIdle(ctx->device);
        if (ctx->sample_map) va_buffer_release(ctx->sample_map);
        ctx->sample_map = NULL;
        va_pipeline_destroy(ctx);
        va_memory_destroy(ctx);
        vkDestroyDevice(ctx->device, NULL);
    }
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

va_status va_context_get_info(va_context *ctx, va_device_info *info) {
    if (!ctx || !info) return va_fail(VA_ERROR_INVALID_ARGUMENT, "null argument");
    /* Refresh the budget figures, which change as memory is used. */
    va_device_info fresh;
    if (va_query_device(ctx->physical, ctx->info.index, &fresh) == VA_SUCCESS) {
        memcpy(ctx->info.heaps, fresh.heaps, sizeof fresh.heaps);
    }
    *info = ctx->info;
    return VA_SUCCESS;
}
