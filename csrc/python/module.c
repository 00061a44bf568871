/* module.c — the _vaccel extension: Context, Buffer and Stream types over the C core, operands
 * taken from any buffer-protocol object without copies (no NumPy headers), the GIL released while
 * the device works, and the one place where status codes become Python exceptions.
 * Built for the stable ABI (Python 3.11+), so one build serves every later version. */
#define Py_LIMITED_API 0x030B0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>
#include <string.h>

#include "../vaccel.h"

/* ---- module state: the exception types, set once by vaccel/errors.py ---- */
static PyObject *err_base, *err_device, *err_feature, *err_oom, *err_lost;

static PyObject *raise_status(va_status s) {
    const char *msg = va_last_error();
    if (!msg || !*msg) msg = va_status_name(s);
    PyObject *type = err_base ? err_base : PyExc_RuntimeError;
    switch (s) {
    case VA_ERROR_INVALID_ARGUMENT: type = PyExc_ValueError; break;
    case VA_ERROR_DEVICE_NOT_AVAILABLE: if (err_device) type = err_device; break;
    case VA_ERROR_FEATURE_NOT_SUPPORTED: if (err_feature) type = err_feature; break;
    case VA_ERROR_OUT_OF_DEVICE_MEMORY: type = err_oom ? err_oom : PyExc_MemoryError; break;
    case VA_ERROR_OUT_OF_HOST_MEMORY: type = PyExc_MemoryError; break;
    case VA_ERROR_DEVICE_LOST: if (err_lost) type = err_lost; break;
    default: break;
    }
    PyErr_SetString(type, msg);
    return NULL;
}

static PyObject *set_error_types(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *b, *d, *f, *o, *l;
    if (!PyArg_ParseTuple(args, "OOOOO", &b, &d, &f, &o, &l)) return NULL;
    PyObject **slots[5] = {&err_base, &err_device, &err_feature, &err_oom, &err_lost};
    PyObject *vals[5] = {b, d, f, o, l};
    for (int i = 0; i < 5; i++) {
        PyObject *old = *slots[i];
        *slots[i] = Py_NewRef(vals[i]);
        Py_XDECREF(old);
    }
    Py_RETURN_NONE;
}

/* ---- device info as a dict ---- */
static int put(PyObject *d, const char *k, PyObject *v) {
    if (!v) return -1;
    int r = PyDict_SetItemString(d, k, v);
    Py_DECREF(v);
    return r;
}

static PyObject *info_dict(const va_device_info *i) {
    static const char *types[] = {"other", "integrated", "discrete", "virtual", "cpu"};
    static const char *zc[] = {"staging", "import", "unified"};
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    char api[32], uuid[33];
    snprintf(api, sizeof api, "%u.%u.%u", (i->api_version >> 22) & 0x7fu, (i->api_version >> 12) & 0x3ffu,
             i->api_version & 0xfffu);
    for (int k = 0; k < 16; k++) snprintf(uuid + 2 * k, 3, "%02x", i->uuid[k]);
    const char *vendor = i->vendor_id == 0x10DE ? "NVIDIA" : i->vendor_id == 0x1002 ? "AMD"
                       : i->vendor_id == 0x8086 ? "Intel" : i->vendor_id == 0x106B ? "Apple"
                       : i->vendor_id == 0x10005 ? "Mesa" : i->vendor_id == 0x13B5 ? "ARM"
                       : i->vendor_id == 0x5143 ? "Qualcomm" : "unknown";
    int ok = put(d, "index", PyLong_FromLong(i->index)) == 0 &&
             put(d, "name", PyUnicode_FromString(i->name)) == 0 &&
             put(d, "vendor", PyUnicode_FromString(vendor)) == 0 &&
             put(d, "vendor_id", PyLong_FromUnsignedLong(i->vendor_id)) == 0 &&
             put(d, "device_id", PyLong_FromUnsignedLong(i->device_id)) == 0 &&
             put(d, "type", PyUnicode_FromString(types[i->type])) == 0 &&
             put(d, "driver_name", PyUnicode_FromString(i->driver_name)) == 0 &&
             put(d, "driver_info", PyUnicode_FromString(i->driver_info)) == 0 &&
             put(d, "driver_version", PyLong_FromUnsignedLong(i->driver_version)) == 0 &&
             put(d, "api_version", PyUnicode_FromString(api)) == 0 &&
             put(d, "uuid", PyUnicode_FromString(uuid)) == 0 &&
             put(d, "subgroup_size", PyLong_FromUnsignedLong(i->subgroup_size)) == 0 &&
             put(d, "min_subgroup_size", PyLong_FromUnsignedLong(i->min_subgroup_size)) == 0 &&
             put(d, "max_subgroup_size", PyLong_FromUnsignedLong(i->max_subgroup_size)) == 0 &&
             put(d, "subgroup_size_control", PyBool_FromLong(i->subgroup_size_control)) == 0 &&
             put(d, "subgroup_arithmetic", PyBool_FromLong(i->subgroup_arithmetic)) == 0 &&
             put(d, "subgroup_shuffle", PyBool_FromLong(i->subgroup_shuffle)) == 0 &&
             put(d, "shared_memory_per_workgroup", PyLong_FromUnsignedLong(i->shared_memory_per_workgroup)) == 0 &&
             put(d, "max_workgroup_invocations", PyLong_FromUnsignedLong(i->max_workgroup_invocations)) == 0 &&
             put(d, "max_storage_buffer_range", PyLong_FromUnsignedLongLong(i->max_storage_buffer_range)) == 0 &&
             put(d, "max_buffer_size", PyLong_FromUnsignedLongLong(i->max_buffer_size)) == 0 &&
             put(d, "fp16", PyBool_FromLong(i->fp16)) == 0 &&
             put(d, "int8", PyBool_FromLong(i->int8)) == 0 &&
             put(d, "bf16", PyBool_FromLong(i->bf16)) == 0 &&
             put(d, "fp64", PyBool_FromLong(i->fp64)) == 0 &&
             put(d, "int64", PyBool_FromLong(i->int64)) == 0 &&
             put(d, "storage_16bit", PyBool_FromLong(i->storage_16bit)) == 0 &&
             put(d, "storage_8bit", PyBool_FromLong(i->storage_8bit)) == 0 &&
             put(d, "integer_dot_product", PyBool_FromLong(i->integer_dot_product)) == 0 &&
             put(d, "cooperative_matrix", PyBool_FromLong(i->cooperative_matrix)) == 0 &&
             put(d, "cooperative_matrix_nv2", PyBool_FromLong(i->cooperative_matrix_nv2)) == 0 &&
             put(d, "cooperative_matrix_shape",
                 i->coopmat_m ? Py_BuildValue("(III)", i->coopmat_m, i->coopmat_n, i->coopmat_k)
                              : (Py_INCREF(Py_None), Py_None)) == 0 &&
             put(d, "cooperative_matrix_bf16", PyBool_FromLong(i->coopmat_bf16)) == 0 &&
             put(d, "external_memory_host", PyBool_FromLong(i->external_memory_host)) == 0 &&
             put(d, "min_imported_host_pointer_alignment",
                 PyLong_FromUnsignedLongLong(i->min_imported_host_pointer_alignment)) == 0 &&
             put(d, "memory_budget", PyBool_FromLong(i->memory_budget)) == 0 &&
             put(d, "unified_memory", PyBool_FromLong(i->unified_memory)) == 0 &&
             put(d, "device_local_host_visible", PyBool_FromLong(i->device_local_host_visible)) == 0 &&
             put(d, "timestamps", PyBool_FromLong(i->timestamps)) == 0 &&
             put(d, "timestamp_period_ns", PyFloat_FromDouble(i->timestamp_period_ns)) == 0 &&
             put(d, "transfer_queue", PyBool_FromLong(i->transfer_queue)) == 0 &&
             put(d, "zero_copy", PyUnicode_FromString(zc[i->zero_copy])) == 0 &&
             put(d, "wait_spin_us", PyLong_FromUnsignedLongLong(i->wait_spin_us)) == 0 &&
             put(d, "pipeline_stats", PyBool_FromLong(i->pipeline_stats)) == 0 &&
             put(d, "push_descriptors", PyBool_FromLong(i->push_descriptors)) == 0;
    if (!ok) { Py_DECREF(d); return NULL; }
    PyObject *heaps = PyList_New(0);
    if (!heaps) { Py_DECREF(d); return NULL; }
    for (uint32_t h = 0; h < i->heap_count; h++) {
        PyObject *hd = PyDict_New();
        if (!hd || put(hd, "size", PyLong_FromUnsignedLongLong(i->heaps[h].size)) ||
            put(hd, "budget", PyLong_FromUnsignedLongLong(i->heaps[h].budget)) ||
            put(hd, "usage", PyLong_FromUnsignedLongLong(i->heaps[h].usage)) ||
            put(hd, "device_local", PyBool_FromLong(i->heaps[h].device_local)) || PyList_Append(heaps, hd)) {
            Py_XDECREF(hd);
            Py_DECREF(heaps);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(hd);
    }
    if (put(d, "memory_heaps", heaps)) { Py_DECREF(d); return NULL; }
    return d;
}

static PyObject *devices(PyObject *self, PyObject *noargs) {
    (void)self; (void)noargs;
    int n = 0;
    va_status s;
    Py_BEGIN_ALLOW_THREADS
    s = va_device_count(&n);
    Py_END_ALLOW_THREADS
    if (s) return raise_status(s);
    PyObject *list = PyList_New(0);
    for (int i = 0; list && i < n; i++) {
        va_device_info info;
        if ((s = va_device_get_info(i, &info))) { Py_DECREF(list); return raise_status(s); }
        PyObject *d = info_dict(&info);
        if (!d || PyList_Append(list, d)) { Py_XDECREF(d); Py_DECREF(list); return NULL; }
        Py_DECREF(d);
    }
    return list;
}

static PyObject *validation_messages(PyObject *self, PyObject *args) {
    (void)self;
    int clear = 1;
    if (!PyArg_ParseTuple(args, "|p", &clear)) return NULL;
    static char buf[1 << 18];
    int count = 0;
    va_validation_messages(buf, sizeof buf, clear, &count);
    PyObject *text = PyUnicode_DecodeUTF8(buf, (Py_ssize_t)strlen(buf), "replace");
    if (!text) return NULL;
    PyObject *lines = PyUnicode_Splitlines(text, 0);
    Py_DECREF(text);
    if (lines && count > PyList_Size(lines)) {
        char more[64];
        snprintf(more, sizeof more, "(%d more validation messages)", count - (int)PyList_Size(lines));
        PyObject *m = PyUnicode_FromString(more);
        if (m) { PyList_Append(lines, m); Py_DECREF(m); }
    }
    return lines;
}

static PyObject *op_names(PyObject *self, PyObject *noargs) {
    (void)self; (void)noargs;
    PyObject *list = PyList_New(0);
    for (const char *const *n = va_op_names(); list && *n; n++) {
        PyObject *s = PyUnicode_FromString(*n);
        if (!s || PyList_Append(list, s)) { Py_XDECREF(s); Py_DECREF(list); return NULL; }
        Py_DECREF(s);
    }
    return list;
}

/* ---- Context ---- */
typedef struct { PyObject_HEAD va_context *ctx; } ContextObject;
typedef struct { PyObject_HEAD va_buffer *buf; PyObject *owner; uint64_t size; } BufferObject;
typedef struct {
    PyObject_HEAD
    va_stream *s;
    PyObject *owner;
    Py_buffer *views;      /* host memory the recorded work uses, released after the wait */
    Py_ssize_t nviews, cap;
    int busy;
} StreamObject;

static PyObject *ContextType, *BufferType, *StreamType;

static PyObject *context_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"device", "validation", "cache_dir", NULL};
    const char *device = NULL, *cache_dir = NULL;
    int validation = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|zpz", kwlist, &device, &validation, &cache_dir)) return NULL;
    va_context_options o = {device, validation, cache_dir};
    va_context *ctx = NULL;
    va_status s;
    Py_BEGIN_ALLOW_THREADS
    s = va_context_create(&o, &ctx);
    Py_END_ALLOW_THREADS
    if (s) return raise_status(s);
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    ContextObject *self = (ContextObject *)alloc(type, 0);
    if (!self) { va_context_destroy(ctx); return NULL; }
    self->ctx = ctx;
    return (PyObject *)self;
}

static void context_dealloc(PyObject *o) {
    ContextObject *self = (ContextObject *)o;
    PyTypeObject *tp = Py_TYPE(o);
    if (self->ctx) {
        Py_BEGIN_ALLOW_THREADS
        va_context_destroy(self->ctx);
        Py_END_ALLOW_THREADS
    }
    freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    f(o);
    Py_DECREF(tp);
}

static PyObject *context_info(PyObject *o, PyObject *noargs) {
    (void)noargs;
    va_device_info info;
    va_status s = va_context_get_info(((ContextObject *)o)->ctx, &info);
    if (s) return raise_status(s);
    return info_dict(&info);
}

static PyObject *context_memory_stats(PyObject *o, PyObject *noargs) {
    (void)noargs;
    va_memory_stats m;
    va_status s = va_context_memory_stats(((ContextObject *)o)->ctx, &m);
    if (s) return raise_status(s);
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    if (put(d, "device_bytes_reserved", PyLong_FromUnsignedLongLong(m.device_bytes_reserved)) ||
        put(d, "device_bytes_in_use", PyLong_FromUnsignedLongLong(m.device_bytes_in_use)) ||
        put(d, "device_bytes_peak", PyLong_FromUnsignedLongLong(m.device_bytes_peak)) ||
        put(d, "host_bytes_reserved", PyLong_FromUnsignedLongLong(m.host_bytes_reserved)) ||
        put(d, "device_blocks", PyLong_FromUnsignedLongLong(m.device_blocks)) ||
        put(d, "host_blocks", PyLong_FromUnsignedLongLong(m.host_blocks)) ||
        put(d, "imports", PyLong_FromUnsignedLongLong(m.imports)) ||
        put(d, "pipelines_created", PyLong_FromUnsignedLongLong(m.pipelines_created)) ||
        put(d, "pipeline_cache_hits", PyLong_FromUnsignedLongLong(m.pipeline_cache_hits)) ||
        put(d, "disk_cache_loaded", PyBool_FromLong(m.disk_cache_loaded))) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static PyObject *context_reset_peak(PyObject *o, PyObject *noargs) {
    (void)noargs;
    va_context_reset_peak(((ContextObject *)o)->ctx);
    Py_RETURN_NONE;
}

static PyObject *context_save_cache(PyObject *o, PyObject *noargs) {
    (void)noargs;
    va_status s = va_context_save_cache(((ContextObject *)o)->ctx);
    if (s) return raise_status(s);
    Py_RETURN_NONE;
}

static PyObject *alloc_buffer(PyObject *o, PyObject *args, int staging) {
    unsigned long long size;
    if (!PyArg_ParseTuple(args, "K", &size)) return NULL;
    va_buffer *buf = NULL;
    va_status s;
    Py_BEGIN_ALLOW_THREADS
    s = staging ? va_buffer_create_staging(((ContextObject *)o)->ctx, size, &buf)
                : va_buffer_create(((ContextObject *)o)->ctx, size, &buf);
    Py_END_ALLOW_THREADS
    if (s) return raise_status(s);
    allocfunc alloc = (allocfunc)PyType_GetSlot((PyTypeObject *)BufferType, Py_tp_alloc);
    BufferObject *b = (BufferObject *)alloc((PyTypeObject *)BufferType, 0);
    if (!b) { va_buffer_release(buf); return NULL; }
    b->buf = buf;
    b->size = size;
    b->owner = Py_NewRef(o);
    return (PyObject *)b;
}

static PyObject *context_alloc(PyObject *o, PyObject *args) { return alloc_buffer(o, args, 0); }
static PyObject *context_alloc_staging(PyObject *o, PyObject *args) { return alloc_buffer(o, args, 1); }

static PyMethodDef context_methods[] = {
    {"info", context_info, METH_NOARGS, "Capability report of the context's device."},
    {"memory_stats", context_memory_stats, METH_NOARGS, "Pool and pipeline counters."},
    {"reset_peak", context_reset_peak, METH_NOARGS, "Restart the peak-memory high-water mark."},
    {"save_cache", context_save_cache, METH_NOARGS, "Write the pipeline cache to disk now."},
    {"alloc", context_alloc, METH_VARARGS, "alloc(nbytes) -> Buffer on the device."},
    {"alloc_staging", context_alloc_staging, METH_VARARGS,
     "alloc_staging(nbytes) -> Buffer in host-visible memory (see Buffer.host_view)."},
    {NULL, NULL, 0, NULL}};

static PyType_Slot context_slots[] = {
    {Py_tp_new, context_new}, {Py_tp_dealloc, context_dealloc}, {Py_tp_methods, context_methods},
    {Py_tp_doc, "Context(device=None, validation=False, cache_dir=None): a Vulkan device."}, {0, NULL}};
static PyType_Spec context_spec = {"vaccel._vaccel.Context", sizeof(ContextObject), 0, Py_TPFLAGS_DEFAULT,
                                   context_slots};

/* ---- Buffer ---- */
static void buffer_dealloc(PyObject *o) {
    BufferObject *self = (BufferObject *)o;
    PyTypeObject *tp = Py_TYPE(o);
    va_buffer_release(self->buf);
    Py_XDECREF(self->owner);
    freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    f(o);
    Py_DECREF(tp);
}

static PyObject *buffer_nbytes(PyObject *o, void *closure) {
    (void)closure;
    return PyLong_FromUnsignedLongLong(((BufferObject *)o)->size);
}

static PyGetSetDef buffer_getset[] = {{"nbytes", buffer_nbytes, NULL, "size in bytes", NULL},
                                      {NULL, NULL, NULL, NULL, NULL}};

/* The buffer protocol over a host-visible buffer's bytes (writable); the view holds the Buffer. */
static int buffer_getbuffer(PyObject *o, Py_buffer *view, int flags) {
    BufferObject *self = (BufferObject *)o;
    void *p = va_buffer_host_ptr(self->buf);
    if (!p) {
        PyErr_SetString(PyExc_BufferError, "buffer is not host-visible (Context.alloc_staging makes one)");
        view->obj = NULL;
        return -1;
    }
    return PyBuffer_FillInfo(view, o, p, (Py_ssize_t)self->size, 0, flags);
}

static PyObject *buffer_host_view(PyObject *o, PyObject *noargs) {
    (void)noargs;
    if (!va_buffer_host_ptr(((BufferObject *)o)->buf)) {
        PyErr_SetString(PyExc_ValueError, "buffer is not host-visible (Context.alloc_staging makes one)");
        return NULL;
    }
    return PyMemoryView_FromObject(o);
}

static PyMethodDef buffer_methods[] = {
    {"host_view", buffer_host_view, METH_NOARGS, "Writable memoryview of a host-visible buffer (it keeps the Buffer)."},
    {NULL, NULL, 0, NULL}};
static PyType_Slot buffer_slots[] = {{Py_tp_dealloc, buffer_dealloc}, {Py_tp_getset, buffer_getset},
                                     {Py_tp_methods, buffer_methods}, {Py_bf_getbuffer, buffer_getbuffer},
                                     {Py_tp_doc, "Device memory, from Context.alloc."}, {0, NULL}};
static PyType_Spec buffer_spec = {"vaccel._vaccel.Buffer", sizeof(BufferObject), 0, Py_TPFLAGS_DEFAULT,
                                  buffer_slots};

/* ---- Stream ---- */
static PyObject *stream_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"context", "transfer", NULL};
    PyObject *ctx;
    int transfer = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|p", kwlist, (PyTypeObject *)ContextType, &ctx, &transfer))
        return NULL;
    va_stream *s = NULL;
    va_status st = transfer ? va_stream_create_transfer(((ContextObject *)ctx)->ctx, &s)
                            : va_stream_create(((ContextObject *)ctx)->ctx, &s);
    if (st) return raise_status(st);
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    StreamObject *self = (StreamObject *)alloc(type, 0);
    if (!self) { va_stream_destroy(s); return NULL; }
    self->s = s;
    self->owner = Py_NewRef(ctx);
    return (PyObject *)self;
}

static void release_views(StreamObject *self) {
    for (Py_ssize_t i = 0; i < self->nviews; i++) PyBuffer_Release(&self->views[i]);
    self->nviews = 0;
}

static void stream_dealloc(PyObject *o) {
    StreamObject *self = (StreamObject *)o;
    PyTypeObject *tp = Py_TYPE(o);
    if (self->s) {
        Py_BEGIN_ALLOW_THREADS
        va_stream_abort(self->s);
        va_stream_destroy(self->s);
        Py_END_ALLOW_THREADS
    }
    release_views(self);
    PyMem_Free(self->views);
    Py_XDECREF(self->owner);
    freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    f(o);
    Py_DECREF(tp);
}

static Py_buffer *new_view(StreamObject *self) {
    if (self->nviews == self->cap) {
        Py_ssize_t nc = self->cap ? self->cap * 2 : 8;
        Py_buffer *n = PyMem_Realloc(self->views, nc * sizeof *n);
        if (!n) { PyErr_NoMemory(); return NULL; }
        self->views = n;
        self->cap = nc;
    }
    return &self->views[self->nviews];
}

static int enter(StreamObject *self) {
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "a vaccel stream is in use by another thread");
        return -1;
    }
    self->busy = 1;
    return 0;
}

/* Host memory of a buffer-protocol object, held until the stream's wait. */
static int host_view(StreamObject *self, PyObject *obj, int writable, void **ptr, Py_ssize_t *len) {
    Py_buffer *v = new_view(self);
    if (!v) return -1;
    if (PyObject_GetBuffer(obj, v, PyBUF_STRIDES | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    self->nviews++;
    *ptr = v->buf;
    *len = v->len;
    return 0;
}

/* Bytes from a view's first element to one past its last, from the exporter's own shape and
 * strides (for a strided view that is more than view->len); -1 for negative strides. */
static Py_ssize_t view_span(const Py_buffer *v) {
    if (!v->strides || v->ndim == 0) return v->len;
    Py_ssize_t last = 0;
    for (int i = 0; i < v->ndim; i++) {
        if (v->shape[i] == 0) return 0;
        if (v->strides[i] < 0) return -1;
        last += (v->shape[i] - 1) * v->strides[i];
    }
    return last + v->itemsize;
}

/* (target, offset, dtype, shape, strides) -> va_tensor. Host targets become stream operands. */
static int parse_operand(StreamObject *self, PyObject *desc, va_access acc, va_tensor *t, const char *what) {
    PyObject *target, *shape, *strides;
    unsigned long long offset;
    int dtype;
    if (!PyTuple_Check(desc) || !PyArg_ParseTuple(desc, "OKiOO", &target, &offset, &dtype, &shape, &strides)) {
        PyErr_Format(PyExc_TypeError, "%s: expected (target, offset, dtype, shape, strides)", what);
        return -1;
    }
    memset(t, 0, sizeof *t);
    t->dtype = (va_dtype)dtype;
    if (va_dtype_size(t->dtype) == 0) { PyErr_Format(PyExc_ValueError, "%s: bad dtype", what); return -1; }
    Py_ssize_t nd = PySequence_Size(shape);
    if (nd < 0 || nd > VA_MAX_DIMS || PySequence_Size(strides) != nd) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s: shape and strides must be sequences of equal length <= %d", what,
                     VA_MAX_DIMS);
        return -1;
    }
    t->ndim = (int)nd;
    for (Py_ssize_t i = 0; i < nd; i++) {
        PyObject *a = PySequence_GetItem(shape, i), *b = PySequence_GetItem(strides, i);
        t->shape[i] = a ? PyLong_AsLongLong(a) : -1;
        t->strides[i] = b ? PyLong_AsLongLong(b) : -1;
        Py_XDECREF(a);
        Py_XDECREF(b);
        if (PyErr_Occurred()) return -1;
        if (t->shape[i] < 0 || t->strides[i] < 0) {
            PyErr_Format(PyExc_ValueError, "%s: negative shape or stride", what);
            return -1;
        }
    }
    t->offset = offset;
    if (PyObject_TypeCheck(target, (PyTypeObject *)BufferType)) {
        t->buf = ((BufferObject *)target)->buf;
        return 0;
    }
    void *ptr;
    Py_ssize_t len;
    if (host_view(self, target, acc & VA_WRITE, &ptr, &len) < 0) return -1;
    uint64_t span = 0, last = 0;
    len = view_span(&self->views[self->nviews - 1]);
    if (len < 0) {
        PyErr_Format(PyExc_ValueError, "%s: views with negative strides are not supported", what);
        return -1;
    }
    int empty = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] == 0) empty = 1;
        else last += (uint64_t)(t->shape[i] - 1) * (uint64_t)t->strides[i];
    }
    span = empty ? 0 : (last + 1) * va_dtype_size(t->dtype);
    if (offset + span > (uint64_t)len) {
        PyErr_Format(PyExc_ValueError, "%s: view reaches past the end of its host buffer", what);
        return -1;
    }
    va_buffer *buf;
    uint64_t boff;
    va_status st;
    Py_BEGIN_ALLOW_THREADS
    st = va_stream_host_operand(self->s, (char *)ptr + offset, span ? span : 4, acc, &buf, &boff);
    Py_END_ALLOW_THREADS
    if (st) { raise_status(st); return -1; }
    t->buf = buf;
    t->offset = boff;
    return 0;
}

static void stream_fail(StreamObject *self) {
    va_stream_abort(self->s);
    release_views(self);
}

static PyObject *stream_run(PyObject *o, PyObject *args) {
    StreamObject *self = (StreamObject *)o;
    const char *name;
    PyObject *ins, *outs, *ips = NULL, *fps = NULL, *names = NULL;
    int results = 0;
    if (!PyArg_ParseTuple(args, "sOO|OOOp", &name, &ins, &outs, &ips, &fps, &names, &results)) return NULL;
    va_op_fn fn = va_op_find(name);
    if (!fn) return PyErr_Format(PyExc_ValueError, "no op named '%s'", name);
    if (!PyTuple_Check(ins) || !PyTuple_Check(outs) || PyTuple_Size(ins) > 8 || PyTuple_Size(outs) > 8)
        return PyErr_Format(PyExc_TypeError, "inputs and outputs must be tuples of at most 8 operands");
    int64_t ip[16];
    double fp[16];
    int ni = 0, nf = 0;
    if (ips && ips != Py_None) {
        Py_ssize_t n = PySequence_Size(ips);
        for (Py_ssize_t i = 0; i < n && i < 16; i++) {
            PyObject *v = PySequence_GetItem(ips, i);
            ip[ni++] = v ? PyLong_AsLongLong(v) : 0;
            Py_XDECREF(v);
        }
    }
    if (fps && fps != Py_None) {
        Py_ssize_t n = PySequence_Size(fps);
        for (Py_ssize_t i = 0; i < n && i < 16; i++) {
            PyObject *v = PySequence_GetItem(fps, i);
            fp[nf++] = v ? PyFloat_AsDouble(v) : 0;
            Py_XDECREF(v);
        }
    }
    if (PyErr_Occurred()) return NULL;
    if (enter(self) < 0) return NULL;
    va_tensor tin[8], tout[8];
    Py_ssize_t nin = PyTuple_Size(ins), nout = PyTuple_Size(outs);
    for (Py_ssize_t i = 0; i < nin + nout; i++) {
        char label[64];
        snprintf(label, sizeof label, "%s %zd", i < nin ? "input" : "output", i < nin ? i : i - nin);
        const char *what = label;
        if (names && PyTuple_Check(names) && i < PyTuple_Size(names)) {
            const char *n = PyUnicode_AsUTF8AndSize(PyTuple_GetItem(names, i), NULL);
            if (n) what = n;
            else PyErr_Clear();
        }
        int r = i < nin ? parse_operand(self, PyTuple_GetItem(ins, i), VA_READ, &tin[i], what)
                        : parse_operand(self, PyTuple_GetItem(outs, i - nin), results ? VA_WRITE | VA_RESULT : VA_WRITE,
                                        &tout[i - nin], what);
        if (r < 0) goto fail;
    }
    va_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fn(self->s, tin, (int)nin, tout, (int)nout, ip, ni, fp, nf);
    Py_END_ALLOW_THREADS
    if (st) { raise_status(st); goto fail; }
    self->busy = 0;
    Py_RETURN_NONE;
fail:
    stream_fail(self);
    self->busy = 0;
    return NULL;
}

static int get_buffer_arg(PyObject *obj, va_buffer **out) {
    if (!PyObject_TypeCheck(obj, (PyTypeObject *)BufferType)) {
        PyErr_SetString(PyExc_TypeError, "expected a vaccel Buffer");
        return -1;
    }
    *out = ((BufferObject *)obj)->buf;
    return 0;
}

static PyObject *stream_transfer(PyObject *o, PyObject *args, int upload) {
    StreamObject *self = (StreamObject *)o;
    PyObject *bobj, *host;
    unsigned long long off;
    if (!PyArg_ParseTuple(args, "OKO", &bobj, &off, &host)) return NULL;
    va_buffer *buf;
    if (get_buffer_arg(bobj, &buf) < 0) return NULL;
    if (enter(self) < 0) return NULL;
    void *ptr;
    Py_ssize_t len;
    if (host_view(self, host, !upload, &ptr, &len) < 0) { self->busy = 0; return NULL; }
    va_status st;
    Py_BEGIN_ALLOW_THREADS
    st = upload ? va_stream_upload(self->s, buf, off, ptr, (uint64_t)len)
                : va_stream_download(self->s, buf, off, ptr, (uint64_t)len);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (st) { stream_fail(self); return raise_status(st); }
    Py_RETURN_NONE;
}

static PyObject *stream_upload(PyObject *o, PyObject *args) { return stream_transfer(o, args, 1); }
static PyObject *stream_download(PyObject *o, PyObject *args) { return stream_transfer(o, args, 0); }

static PyObject *stream_copy(PyObject *o, PyObject *args) {
    StreamObject *self = (StreamObject *)o;
    PyObject *a, *b;
    unsigned long long so, dof, n;
    if (!PyArg_ParseTuple(args, "OKOKK", &a, &so, &b, &dof, &n)) return NULL;
    va_buffer *src, *dst;
    if (get_buffer_arg(a, &src) < 0 || get_buffer_arg(b, &dst) < 0) return NULL;
    if (enter(self) < 0) return NULL;
    va_status st;
    Py_BEGIN_ALLOW_THREADS
    st = va_stream_copy(self->s, src, so, dst, dof, n);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (st) { stream_fail(self); return raise_status(st); }
    Py_RETURN_NONE;
}

static PyObject *stream_submit(PyObject *o, PyObject *noargs) {
    (void)noargs;
    StreamObject *self = (StreamObject *)o;
    if (enter(self) < 0) return NULL;
    va_status st;
    Py_BEGIN_ALLOW_THREADS
    st = va_stream_submit(self->s);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (st) { stream_fail(self); return raise_status(st); }
    Py_RETURN_NONE;
}

static PyObject *stream_wait(PyObject *o, PyObject *noargs) {
    (void)noargs;
    StreamObject *self = (StreamObject *)o;
    if (enter(self) < 0) return NULL;
    va_status st;
    Py_BEGIN_ALLOW_THREADS
    st = va_stream_wait(self->s);
    Py_END_ALLOW_THREADS
    release_views(self);
    self->busy = 0;
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *stream_abort(PyObject *o, PyObject *noargs) {
    (void)noargs;
    StreamObject *self = (StreamObject *)o;
    Py_BEGIN_ALLOW_THREADS
    va_stream_abort(self->s);
    Py_END_ALLOW_THREADS
    release_views(self);
    Py_RETURN_NONE;
}

static PyObject *stream_pending(PyObject *o, PyObject *noargs) {
    (void)noargs;
    return PyLong_FromUnsignedLong(va_stream_pending(((StreamObject *)o)->s));
}

static PyObject *stream_set_profiling(PyObject *o, PyObject *args) {
    int on;
    if (!PyArg_ParseTuple(args, "p", &on)) return NULL;
    va_status st = va_stream_set_profiling(((StreamObject *)o)->s, on);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *stream_timings(PyObject *o, PyObject *noargs) {
    (void)noargs;
    StreamObject *self = (StreamObject *)o;
    uint32_t n = 0;
    va_stream_timings(self->s, NULL, 0, &n);
    va_dispatch_timing *t = PyMem_Calloc(n ? n : 1, sizeof *t);
    if (!t) return PyErr_NoMemory();
    va_stream_timings(self->s, t, n, &n);
    PyObject *list = PyList_New(0);
    for (uint32_t i = 0; list && i < n; i++) {
        PyObject *item = Py_BuildValue("(sd)", t[i].label, t[i].gpu_ns);
        if (!item || PyList_Append(list, item)) { Py_XDECREF(item); Py_CLEAR(list); }
        else Py_DECREF(item);
    }
    PyMem_Free(t);
    return list;
}

static PyObject *stream_stats(PyObject *o, PyObject *noargs) {
    (void)noargs;
    va_stream_stats st;
    va_stream_get_stats(((StreamObject *)o)->s, &st);
    return Py_BuildValue("{sKsKsKsKsKsKsKsK}", "dispatches", st.dispatches, "submits", st.submits, "barriers",
                         st.barriers, "bytes_uploaded", st.bytes_uploaded, "bytes_downloaded",
                         st.bytes_downloaded, "submit_ns", st.submit_ns, "wait_ns", st.wait_ns, "finish_ns",
                         st.finish_ns);
}

static PyMethodDef stream_methods[] = {
    {"run", stream_run, METH_VARARGS, "run(op, inputs, outputs, iparams=(), fparams=(), names=(), results=False): record an op; results: its "
     "host outputs are small results written with plain stores (see VA_RESULT)."},
    {"upload", stream_upload, METH_VARARGS, "upload(buffer, offset, host): record a host->device copy."},
    {"download", stream_download, METH_VARARGS, "download(buffer, offset, host): device->host, done at wait."},
    {"copy", stream_copy, METH_VARARGS, "copy(src, src_offset, dst, dst_offset, nbytes) on the device."},
    {"submit", stream_submit, METH_NOARGS, "Submit what was recorded."},
    {"wait", stream_wait, METH_NOARGS, "Submit if needed, wait once, finish host copies."},
    {"abort", stream_abort, METH_NOARGS, "Discard what was recorded."},
    {"pending", stream_pending, METH_NOARGS, "Number of recorded, unfinished commands."},
    {"set_profiling", stream_set_profiling, METH_VARARGS, "Enable GPU timestamps per dispatch."},
    {"timings", stream_timings, METH_NOARGS, "[(kernel, gpu_ns)] of the last waited batch."},
    {"stats", stream_stats, METH_NOARGS, "Counters: dispatches, submits, barriers, bytes moved; host ns in submit, wait, finish."},
    {NULL, NULL, 0, NULL}};

static PyType_Slot stream_slots[] = {
    {Py_tp_new, stream_new}, {Py_tp_dealloc, stream_dealloc}, {Py_tp_methods, stream_methods},
    {Py_tp_doc, "Stream(context, transfer=False): records ops into one submit (transfer: uploads on the "
                "transfer queue)."}, {0, NULL}};
static PyType_Spec stream_spec = {"vaccel._vaccel.Stream", sizeof(StreamObject), 0, Py_TPFLAGS_DEFAULT,
                                  stream_slots};

/* ---- module ---- */
static PyMethodDef module_methods[] = {
    {"devices", devices, METH_NOARGS, "Capability reports of all Vulkan devices."},
    {"validation_messages", validation_messages, METH_VARARGS, "validation_messages(clear=True) -> [str]"},
    {"op_names", op_names, METH_NOARGS, "Names of the registered ops."},
    {"set_error_types", set_error_types, METH_VARARGS, "Install the exception classes (vaccel.errors)."},
    {NULL, NULL, 0, NULL}};

static int module_exec(PyObject *m) {
    ContextType = PyType_FromSpec(&context_spec);
    BufferType = PyType_FromSpec(&buffer_spec);
    StreamType = PyType_FromSpec(&stream_spec);
    if (!ContextType || !BufferType || !StreamType) return -1;
    if (PyModule_AddObjectRef(m, "Context", ContextType) < 0) return -1;
    if (PyModule_AddObjectRef(m, "Buffer", BufferType) < 0) return -1;
    if (PyModule_AddObjectRef(m, "Stream", StreamType) < 0) return -1;
    static const char *names[] = {"F32", "F16", "BF16", "U8", "I32", "U32", "I64", "F64"};
    for (int i = 0; i < 8; i++)
        if (PyModule_AddIntConstant(m, names[i], i) < 0) return -1;
    static const char *metrics[] = {"sqeuclidean", "euclidean", "cosine", "inner", "cityblock",
                                    "chebyshev", "minkowski", "hamming", "bitwise_hamming"};
    PyObject *md = PyDict_New();
    for (int i = 0; md && i < 9; i++) put(md, metrics[i], PyLong_FromLong(i));
    if (!md || PyModule_AddObject(m, "METRICS", md) < 0) { Py_XDECREF(md); return -1; }
    return 0;
}

static PyModuleDef_Slot module_slots[] = {{Py_mod_exec, module_exec}, {0, NULL}};
static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_vaccel",
                                        "vaccel's C core: contexts, buffers, streams, ops.", 0,
                                        module_methods, module_slots, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__vaccel(void) { return PyModuleDef_Init(&module_def); }
