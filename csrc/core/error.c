/* error.c — status codes and the per-thread message of the last failure. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static _Thread_local char last_error[1024];

const char *va_last_error(void) { return last_error; }

void va_clear_error(void) { last_error[0] = 0; }

va_status va_fail(va_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

static const char *vk_result_name(VkResult r) {
    switch (r) {
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_INVALID_EXTERNAL_HANDLE: return "VK_ERROR_INVALID_EXTERNAL_HANDLE";
    default: return "VkResult";
    }
}

va_status va_vk_fail(VkResult r, const char *what) {
    va_status s = VA_ERROR_INTERNAL;
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY) s = VA_ERROR_OUT_OF_DEVICE_MEMORY;
    else if (r == VK_ERROR_OUT_OF_HOST_MEMORY) s = VA_ERROR_OUT_OF_HOST_MEMORY;
    else if (r == VK_ERROR_DEVICE_LOST) s = VA_ERROR_DEVICE_LOST;
    else if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED)
        s = VA_ERROR_DEVICE_NOT_AVAILABLE;
    else if (r == VK_ERROR_EXTENSION_NOT_PRESENT || r == VK_ERROR_FEATURE_NOT_PRESENT ||
             r == VK_ERROR_LAYER_NOT_PRESENT)
        s = VA_ERROR_FEATURE_NOT_SUPPORTED;
    return va_fail(s, "%s failed: %s (%d)", what, vk_result_name(r), (int)r);
}

const char *va_status_name(va_status s) {
    switch (s) {
    case VA_SUCCESS: return "VA_SUCCESS";
    case VA_ERROR_INVALID_ARGUMENT: return "VA_ERROR_INVALID_ARGUMENT";
    case VA_ERROR_DEVICE_NOT_AVAILABLE: return "VA_ERROR_DEVICE_NOT_AVAILABLE";
    case VA_ERROR_FEATURE_NOT_SUPPORTED: return "VA_ERROR_FEATURE_NOT_SUPPORTED";
    case VA_ERROR_OUT_OF_DEVICE_MEMORY: return "VA_ERROR_OUT_OF_DEVICE_MEMORY";
    case VA_ERROR_OUT_OF_HOST_MEMORY: return "VA_ERROR_OUT_OF_HOST_MEMORY";
    case VA_ERROR_DEVICE_LOST: return "VA_ERROR_DEVICE_LOST";
    case VA_ERROR_INTERNAL: return "VA_ERROR_INTERNAL";
    }
    return "VA_ERROR_UNKNOWN";
}

size_t va_dtype_size(va_dtype t) {
    switch (t) {
    case VA_F32: case VA_I32: case VA_U32: return 4;
    case VA_F16: case VA_BF16: return 2;
    case VA_U8: return 1;
    case VA_I64: case VA_F64: return 8;
    }
    return 0;
}
