"""The Python side of the runtime: backend choice, the lazily created device context, device
arrays (`Array`), batching (`batch()`), profiling (`profile()`), and the one function that turns
NumPy arrays and Arrays into the operand descriptors the extension takes (`run_op`)."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
import time

import numpy as np

from . import errors

try:
    from . import _vaccel
except ImportError as exc:  # the extension is not built: only the CPU backend works
    _vaccel = None
    _import_error = exc
else:
    _import_error = None
    errors.install(_vaccel)

log = logging.getLogger("vaccel")
_level = os.environ.get("VACCEL_LOG")
if _level:
    logging.basicConfig(format="%(name)s %(levelname)s: %(message)s")
    log.setLevel(_level.upper() if not _level.isdigit() else int(_level))

BACKENDS = ("auto", "vulkan", "cpu")

# NumPy dtype -> the core's dtype code.
_CODES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1, np.dtype(np.uint8): 3, np.dtype(np.int32): 4,
          np.dtype(np.uint32): 5, np.dtype(np.int64): 6}

# bfloat16 is NumPy's through ml_dtypes (the dtype JAX and others use), when it is installed.
try:
    import ml_dtypes as _ml_dtypes
    BFLOAT16 = np.dtype(_ml_dtypes.bfloat16)
    _CODES[BFLOAT16] = 2
except ImportError:  # pragma: no cover - depends on the environment
    BFLOAT16 = None


def is_bfloat16(dtype):
    return BFLOAT16 is not None and np.dtype(dtype) == BFLOAT16


def _env_flag(name):
    v = os.environ.get(name, "")
    return v not in ("", "0", "false", "False", "no")


class _Config:
    """Settings read from the environment at import; `backend` may be changed at run time."""

    def __init__(self):
        self._backend = os.environ.get("VACCEL_BACKEND", "auto").lower()
        if self._backend not in BACKENDS:
            log.warning("VACCEL_BACKEND=%r is not one of %s; using 'auto'", self._backend, BACKENDS)
            self._backend = "auto"
        self.device = os.environ.get("VACCEL_DEVICE") or None
        self.validation = _env_flag("VACCEL_VALIDATION")
        self.cache_dir = os.environ.get("VACCEL_CACHE_DIR")
        # Host data of one call beyond this many bytes is processed in blocks; None: half the
        # device-local heap's budget.
        limit = os.environ.get("VACCEL_DEVICE_MEMORY_LIMIT")
        self.device_memory_limit = int(limit) if limit else None

    @property
    def backend(self):
        return self._backend

    @backend.setter
    def backend(self, name):
        set_backend(name)

    def __repr__(self):
        return (f"vaccel.config(backend={self._backend!r}, device={self.device!r}, "
                f"validation={self.validation}, cache_dir={self.cache_dir!r})")


config = _Config()


class _State(threading.local):
    def __init__(self):
        self.stream = None
        self.batch_depth = 0
        self.profiles = []


_lock = threading.Lock()
_context = None
_context_error = None
_device_info = None
_state = _State()


def set_backend(name):
    """Choose 'auto' (Vulkan when a device works, else CPU), 'vulkan' or 'cpu'."""
    if not isinstance(name, str) or name.lower() not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    config._backend = name.lower()


def get_backend():
    """The backend ops run on now: 'vulkan' or 'cpu'."""
    if config._backend == "cpu":
        return "cpu"
    if config._backend == "vulkan":
        context()
        return "vulkan"
    try:
        context()
        return "vulkan"
    except (errors.DeviceNotAvailable, errors.FeatureNotSupported, ImportError) as exc:
        if config.device:
            raise  # a device was asked for by name or index: not finding it is an error
        log.info("no usable Vulkan device (%s); using the CPU backend", exc)
        return "cpu"


def context():
    """The process's device context, created on first use."""
    global _context, _context_error
    if _context is not None:
        return _context
    if _vaccel is None:
        raise ImportError(f"vaccel's extension is not built ({_import_error}); run `make build`")
    with _lock:
        if _context is None:
            if _context_error is not None and config._backend == "auto":
                raise _context_error
            try:
                ctx = _vaccel.Context(device=config.device, validation=config.validation,
                                      cache_dir=config.cache_dir)
            except errors.VaccelError as exc:
                _context_error = exc
                raise
            info = ctx.info()
            global _device_info
            _device_info = info
            log.info("device %s (%s, %s, Vulkan %s), zero-copy path: %s", info["name"], info["type"],
                     info["driver_name"], info["api_version"], info["zero_copy"])
            _context = ctx
    return _context


def device_info():
    """The context device's capability report, read once (info() refreshes the memory figures)."""
    context()
    return _device_info


def device_memory_limit():
    """Bytes one call may place on the device before its host data is split into blocks."""
    if config.device_memory_limit:
        return int(config.device_memory_limit)
    heaps = [h for h in device_info()["memory_heaps"] if h["device_local"]] or device_info()["memory_heaps"]
    return max(h["budget"] for h in heaps) // 2


def in_batch():
    """True inside `with vaccel.batch():`."""
    return _state.batch_depth > 0


def memory_stats(reset_peak=False):
    """Device pool figures (bytes reserved, in use, peak; blocks; imports; pipelines). With
    reset_peak, the peak restarts from the current use after being read."""
    ctx = context()
    stats = ctx.memory_stats()
    if reset_peak:
        ctx.reset_peak()
    return stats


class HostBlocks:
    """Row blocks of a host array brought to the device one after another, the upload of the next
    block overlapping the work on the current one. Iterate to get (first row, Array of the block's
    rows); the Array is valid until the next step. Outside a batch only.

    A helper thread uploads block b + 1 (into the second of two device buffers) while the caller
    works on block b: it copies the rows, a chunk at a time, into two host-visible staging buffers
    used in turn (memcpy by a few threads, the GIL released), and each chunk goes to the device
    with a copy on the transfer queue (a DMA engine; on a device without one, the compute queue)
    while the next chunk is being copied. Nothing the driver does per block (pinning the caller's
    pages took 12 ms per 356 MB on an H100, serialised with the search's own calls) is on the way.
    VACCEL_STREAM_OVERLAP=0 uploads each block only once the work on the previous one is done (for
    measuring what the overlap gains)."""

    CHUNK = 64 << 20      # bytes of a staging buffer
    # Host threads copying a chunk: the copy is what bounds the stream (H100 host, 16 cores: 2 / 4
    # / 8 threads gave 173 / 100 / 80 ms for the uploads of 2 GB, 64 MiB chunks; 16 and 256 MiB no
    # better), so half the cores, up to 8.
    THREADS = max(1, min(8, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                             else os.cpu_count() or 2) // 2))
    POOL_MIN = 4 << 20    # chunks smaller than this are copied by one thread

    def __init__(self, host, rows):
        self.host = host
        self.rows = max(1, int(rows))
        self.n = host.shape[0]
        self.tail = host.shape[1:]
        self.row_bytes = host.dtype.itemsize * int(np.prod(self.tail, dtype=np.int64))

    def _block_bytes(self, j0):
        block = self.host[j0:j0 + self.rows]
        if not block.flags.c_contiguous:
            block = np.ascontiguousarray(block)
        return block.reshape(-1).view(np.uint8)

    def _upload(self, t, stage, views, buf, j0, pool, stop=None):
        """Rows j0.. into buf through the staging buffers: chunk c + 1 is copied on the host while
        chunk c's copy to the device runs. Returns once the block is on the device (or, once stop
        is set, after the chunk in flight)."""
        src = self._block_bytes(j0)
        ch = views[0].nbytes
        try:
            for c, off in enumerate(range(0, src.nbytes, ch)):
                if stop is not None and stop.is_set():
                    break
                m = min(ch, src.nbytes - off)
                view = views[c % 2]
                part = -(-m // self.THREADS)
                if pool is None or m <= part:
                    np.copyto(view[:m], src[off:off + m])
                else:
                    list(pool.map(lambda a: np.copyto(view[a:min(m, a + part)], src[off + a:off + min(m, a + part)]),
                                  range(0, m, part)))
                if t.pending():
                    t.wait()         # chunk c - 1 is on the device: its staging buffer is free next
                t.copy(stage[c % 2], 0, buf, off, m)
                t.submit()
        except BaseException:
            t.abort()                # waits for what was submitted, drops what was recorded
            raise
        if t.pending():
            t.wait()

    def __iter__(self):
        if in_batch():
            raise RuntimeError("HostBlocks streams outside a batch only")
        if self.n == 0:
            return
        ctx = context()
        # A transfer stream of this iteration's own (made anew: well under a millisecond): its
        # helper thread drives it, and two iterations may run at once (a zip of two, or a
        # streamed search inside one).
        t = _vaccel.Stream(ctx, transfer=True)
        starts = list(range(0, self.n, self.rows))
        nbytes = max(4, min(self.rows, self.n) * self.row_bytes)
        bufs = [ctx.alloc(nbytes), ctx.alloc(nbytes) if len(starts) > 1 else None]
        ch = min(nbytes, self.CHUNK)
        stage = [ctx.alloc_staging(ch), ctx.alloc_staging(ch)]
        views = [np.frombuffer(b.host_view(), np.uint8) for b in stage]
        pool = _copy_pool(self.THREADS) if ch >= self.POOL_MIN and self.THREADS > 1 else None
        if os.environ.get("VACCEL_STREAM_OVERLAP", "1") == "0":
            for b, j0 in enumerate(starts):
                self._upload(t, stage, views, bufs[b % 2], j0, pool)
                yield j0, Array(bufs[b % 2], (min(self.rows, self.n - j0),) + self.tail, self.host.dtype)
            return
        yield from self._overlapped(t, stage, views, bufs, starts, pool)

    def _overlapped(self, t, stage, views, bufs, starts, pool):
        ready = [threading.Event() for _ in starts]     # block b is on the device
        done = [threading.Event() for _ in starts]      # the caller is through with block b
        stop = threading.Event()
        failed = []

        def uploader():
            b = 0
            try:
                for b, j0 in enumerate(starts):
                    if b >= 2:
                        done[b - 2].wait()              # its device buffer is free again
                    if stop.is_set():
                        return
                    self._upload(t, stage, views, bufs[b % 2], j0, pool, stop)
                    ready[b].set()
            except BaseException as exc:  # noqa: BLE001 -- handed to the caller's thread
                failed.append((b, exc))                 # blocks before b were delivered or are ready
                for e in ready[b:]:
                    e.set()

        helper = threading.Thread(target=uploader, name="vaccel-upload", daemon=True)
        helper.start()
        try:
            for b, j0 in enumerate(starts):
                ready[b].wait()
                if failed and b >= failed[0][0]:
                    raise failed[0][1]
                yield j0, Array(bufs[b % 2], (min(self.rows, self.n - j0),) + self.tail, self.host.dtype)
                done[b].set()
        finally:
            stop.set()
            for e in done:
                e.set()
            if threading.current_thread() is not helper:   # (closed by the collector there)
                helper.join()


_copy_pools = {}


def _copy_pool(threads):
    """The process's pool of host-copy threads (HostBlocks' staging copies), made on first use and
    shared by every stream of blocks (the executor is thread-safe)."""
    with _lock:
        pool = _copy_pools.get(threads)
        if pool is None:
            from concurrent.futures import ThreadPoolExecutor
            pool = _copy_pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="vaccel-copy")
        return pool


def _stream():
    if _state.stream is None:
        _state.stream = _vaccel.Stream(context())
        if _state.profiles:
            _state.stream.set_profiling(True)
    return _state.stream


def info():
    """A dict: backend, version, and the chosen device's capability report (None on CPU)."""
    from . import __version__
    backend = get_backend()
    out = {"backend": backend, "version": __version__, "device": None}
    if backend == "vulkan":
        ctx = context()
        out["device"] = ctx.info()
        out["memory"] = ctx.memory_stats()
    return out


def devices():
    """Capability reports of every Vulkan device, in the loader's order ([] without a driver)."""
    if _vaccel is None:
        return []
    try:
        return _vaccel.devices()
    except errors.DeviceNotAvailable:
        return []


def validation_messages(clear=True):
    """Khronos validation-layer messages recorded since the last call (VACCEL_VALIDATION=1)."""
    if _vaccel is None:
        return []
    return _vaccel.validation_messages(clear)


def _fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def report():
    """The text of `python3 -m vaccel info`."""
    from . import __version__
    lines = [f"vaccel {__version__}"]
    try:
        backend = get_backend()
    except errors.VaccelError as exc:
        backend = f"unavailable ({exc})"
    lines.append(f"backend: {backend}   (VACCEL_BACKEND={config._backend})")
    chosen = context().info()["index"] if backend == "vulkan" else None
    devs = devices()
    if not devs:
        lines.append("no Vulkan devices" + (f" ({_import_error})" if _import_error else ""))
    for d in devs:
        mark = "*" if d["index"] == chosen else " "
        lines.append(f"{mark} device {d['index']}: {d['name']} [{d['type']}, {d['vendor']}]")
        lines.append(f"    driver {d['driver_name']} {d['driver_info']}, Vulkan {d['api_version']}")
        sg = f"{d['subgroup_size']}" + (f" ({d['min_subgroup_size']}-{d['max_subgroup_size']}, size control)"
                                         if d["subgroup_size_control"] else "")
        lines.append(f"    subgroup {sg}, shared memory {_fmt_bytes(d['shared_memory_per_workgroup'])}/workgroup, "
                     f"max binding {_fmt_bytes(d['max_storage_buffer_range'])}")
        feats = [k for k in ("fp16", "int8", "bf16", "fp64", "storage_16bit", "storage_8bit", "integer_dot_product",
                             "cooperative_matrix", "cooperative_matrix_nv2", "timestamps", "transfer_queue")
                 if d[k]]
        if d.get("cooperative_matrix_shape"):
            feats.append("coopmat %dx%dx%d f16" % tuple(d["cooperative_matrix_shape"])
                         + (" bf16" if d.get("cooperative_matrix_bf16") else ""))
        lines.append("    features: " + ", ".join(feats))
        lines.append(f"    memory: zero-copy path '{d['zero_copy']}'"
                     + (", unified" if d["unified_memory"] else "")
                     + (", device-local host-visible" if d["device_local_host_visible"] else ""))
        for i, h in enumerate(d["memory_heaps"]):
            lines.append(f"      heap {i}: {_fmt_bytes(h['size'])}{' device-local' if h['device_local'] else ''}, "
                         f"budget {_fmt_bytes(h['budget'])}")
    return "\n".join(lines)


# ---- operands ---------------------------------------------------------------------------------

def _is_array(x):
    return isinstance(x, Array)


def integer(value, name):
    """value (an int or NumPy integer) as a Python int; TypeError naming the argument for anything
    else, bools included."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def numeric(x, name, bfloat16=False):
    """x as an operand of an op: an Array passes through, anything else becomes a NumPy array of
    numbers; TypeError naming the argument otherwise. bfloat16 values (ml_dtypes) become float32
    (exactly) unless the op takes them (bfloat16=True)."""
    if _is_array(x):
        if not bfloat16 and is_bfloat16(x.dtype):
            return asarray(x.numpy().astype(np.float32))
        return x
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    try:
        a = np.asarray(x)
    except Exception as exc:
        raise TypeError(f"{name} must be array-like: {exc}") from None
    if is_bfloat16(a.dtype):
        return a if bfloat16 else a.astype(np.float32)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {a.dtype}")
    return a


def deliver(r, out, want_array):
    """A result computed on the host (the CPU backend) delivered as the Vulkan path would: into
    out (NumPy array or Array), or as an Array when the inputs were Arrays."""
    if out is not None:
        if _is_array(out):
            out._assign(r)
        else:
            out[...] = r
        return out
    return asarray(r) if want_array else r


@functools.lru_cache(maxsize=256)
def _elem_strides(strides, item):
    """Byte strides in elements, or None if one is negative."""
    e = tuple(s // item for s in strides)
    return e if all(s >= 0 for s in e) else None


def host_operand(x, name, strided=False):
    """A NumPy array as (target, offset, dtype code, shape, strides in elements); copies only when
    the view cannot be described (reversed or non-unit inner stride, misaligned, or sparse).
    strided: the op takes any non-negative strides (0 included: broadcast dims), so only reversed,
    misaligned or sparse views are copied."""
    code = _CODES.get(x.dtype)
    if code is None:
        raise TypeError(f"{name}: dtype {x.dtype} is not supported on the device")
    item = x.itemsize
    if x.flags.c_contiguous and x.flags.aligned:   # the common case, without the checks below
        strides = _elem_strides(x.strides, item)
        if strides is not None:                     # (a size-1 dim may carry any stride)
            return (x, 0, code, x.shape, strides), x
    ok = all(s >= 0 and s % item == 0 for s in x.strides) and x.ctypes.data % item == 0
    if ok and x.ndim and x.size:
        span = sum((n - 1) * s for n, s in zip(x.shape, x.strides)) + item
        if strided:
            stored = item
            for n, s in zip(x.shape, x.strides):
                stored *= n if s else 1   # a broadcast dim stores its elements once
            ok = span <= 2 * stored + 4096
        else:
            ok = (x.shape[-1] <= 1 or x.strides[-1] == item) and span <= 2 * x.nbytes + 4096
    if not ok:
        x = np.ascontiguousarray(x)
    strides = tuple(s // item for s in x.strides)
    return (x, 0, _CODES[x.dtype], x.shape, strides), x


def operand(x, name, strided=False):
    if _is_array(x):
        return (x._buf, x._offset, _CODES[x.dtype], x.shape, x._strides), x
    return host_operand(x, name, strided)


def _labels(n_in, n_out, names):
    """The operands' names for messages: names[("in", i)] / names[("out", i)], else "input i" /
    "output i"."""
    labels = _default_labels(n_in, n_out)
    if not names:
        return labels
    labels = list(labels)
    for (kind, i), name in names.items():
        if kind == "in" and 0 <= i < n_in:
            labels[i] = name
        elif kind == "out" and 0 <= i < n_out:
            labels[n_in + i] = name
    return tuple(labels)


@functools.lru_cache(maxsize=64)
def _default_labels(n_in, n_out):
    return tuple([f"input {i}" for i in range(n_in)] + [f"output {i}" for i in range(n_out)])


def run_op(op, inputs, outputs, iparams=(), fparams=(), names=None, strided=False, results=False):
    """Records op on the current stream and, outside a batch, waits for it. inputs/outputs are
    NumPy arrays or Arrays; host outputs must be C-contiguous and writable. strided: the op reads
    inputs of any non-negative strides (see host_operand). results: the op writes its outputs with
    plain stores only (no atomics, no reads back), so small host outputs may be written straight
    into host-visible memory on a discrete device (no copy after the work)."""
    labels = _labels(len(inputs), len(outputs), names)
    stream = _stream()
    ins = tuple([operand(x, labels[i], strided)[0] for i, x in enumerate(inputs)])
    n = len(inputs)
    outs = tuple([operand(x, labels[n + i])[0] for i, x in enumerate(outputs)])
    try:
        stream.run(op, ins, outs, tuple(iparams), tuple(map(float, fparams)), labels, results)
    except BaseException:
        _discard_batch(stream)
        raise
    if _state.batch_depth == 0:
        _finish(stream)


def _discard_batch(stream):
    """After a failed op: drop the batch's other work too, so nothing half-done runs."""
    stream.abort()
    if _state.batch_depth:
        log.warning("an op failed inside vaccel.batch(); the batch's earlier work was discarded")


def _finish(stream):
    if not _state.profiles:
        stream.wait()
        return
    t0 = time.perf_counter()
    stream.wait()
    if _state.profiles:
        timings = stream.timings()
        stats = stream.stats()
        for p in _state.profiles:
            p._record(timings, stats, time.perf_counter() - t0)


# ---- device arrays ----------------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def c_strides(shape):
    """The strides (in elements) of a C-contiguous array of this shape (a tuple of ints)."""
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(strides))


def view(x, shape, strides, writeable=True):
    """x (Array or ndarray) seen with a new shape and element strides, no copy."""
    if _is_array(x):
        return Array._from_parts(x._buf, tuple(shape), x.dtype, x._offset, tuple(strides))
    if x.flags.c_contiguous and tuple(strides) == c_strides(tuple(shape)):
        return x.reshape(shape)    # the common case, much cheaper than as_strided
    return np.lib.stride_tricks.as_strided(x, shape, tuple(s * x.itemsize for s in strides), writeable=writeable)


class Array:
    """An array in device memory. `.numpy()` (or `np.asarray`) brings it back."""

    __slots__ = ("_buf", "_offset", "shape", "dtype", "_strides", "__weakref__")

    def __init__(self, buf, shape, dtype, offset=0, strides=None):
        self._buf = buf
        self._offset = offset
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self._strides = c_strides(self.shape) if strides is None else tuple(strides)

    @classmethod
    def _from_parts(cls, buf, shape, dtype, offset, strides):
        """An Array over buf from values already normalised (tuples of ints, a NumPy dtype): the
        constructor without its checks, for the ops' hot paths."""
        a = cls.__new__(cls)
        a._buf, a.shape, a.dtype, a._offset, a._strides = buf, shape, dtype, offset, strides
        return a

    @property
    def ndim(self):
        return len(self.shape)

    def _c_contiguous(self):
        return self._strides == c_strides(self.shape)

    @property
    def size(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def nbytes(self):
        return self.size * self.dtype.itemsize

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self):
        return f"vaccel.Array(shape={self.shape}, dtype={self.dtype})"

    def numpy(self):
        """A NumPy copy of the contents (finishing any batch that writes them)."""
        out = np.empty(self.shape, self.dtype)
        if self.size == 0:
            return out
        stream = _stream()
        contiguous = self._c_contiguous()
        if contiguous:
            stream.download(self._buf, self._offset, out.reshape(-1).view(np.uint8))
        else:
            # Rows of a strided 2-D view: one download of the covering span, then a NumPy view.
            item = self.dtype.itemsize
            span = (sum((n - 1) * s for n, s in zip(self.shape, self._strides)) + 1)
            flat = np.empty(span, self.dtype)
            stream.download(self._buf, self._offset, flat.view(np.uint8))
            _finish(stream)
            view = np.lib.stride_tricks.as_strided(flat, self.shape, tuple(s * item for s in self._strides))
            out[...] = view
            return out
        _finish(stream)
        return out

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def __getitem__(self, key):
        """Views along the first axis: a[i], a[i:j], a[i:j:k] (k > 0), without copying."""
        if not self.shape:
            raise IndexError("a 0-d vaccel.Array cannot be indexed")
        n = self.shape[0]
        item = self.dtype.itemsize
        if isinstance(key, (int, np.integer)):
            i = int(key) + (n if key < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"index {key} is out of bounds for axis 0 with size {n}")
            return Array(self._buf, self.shape[1:], self.dtype, self._offset + i * self._strides[0] * item,
                         self._strides[1:])
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step <= 0:
                raise IndexError("vaccel.Array slices need a positive step")
            count = max(0, (stop - start + step - 1) // step)
            return Array(self._buf, (count,) + self.shape[1:], self.dtype,
                         self._offset + start * self._strides[0] * item,
                         (self._strides[0] * step,) + self._strides[1:])
        raise TypeError("vaccel.Array supports an int or a slice along the first axis; use .numpy() for more")

    def _assign(self, values):
        """Upload host values into this (contiguous) array."""
        a = np.ascontiguousarray(values, dtype=self.dtype).reshape(self.shape)
        if not self._c_contiguous():
            raise ValueError("cannot assign into a strided vaccel.Array view")
        if a.size:
            stream = _stream()
            stream.upload(self._buf, self._offset, a.reshape(-1).view(np.uint8))
            if _state.batch_depth == 0:
                _finish(stream)

    def copy(self):
        """A device-side copy (through the copy kernel)."""
        if not self._c_contiguous():
            return asarray(self.numpy())
        out = empty(self.shape, self.dtype)
        stream = _stream()
        stream.copy(self._buf, self._offset, out._buf, 0, self.nbytes)
        if _state.batch_depth == 0:
            _finish(stream)
        return out


def _device_dtype(dtype):
    dt = np.dtype(dtype)
    if dt == np.float64:
        return np.dtype(np.float32)   # vaccel computes in float32; documented
    if dt == np.bool_:
        return np.dtype(np.uint8)
    if dt not in _CODES:
        raise TypeError(f"dtype {dt} cannot live on the device (supported: {sorted(str(d) for d in _CODES)})")
    return dt


def empty(shape, dtype=np.float32):
    """An uninitialised device array."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must be non-negative, got {shape}")
    dt = _device_dtype(dtype)
    nbytes = dt.itemsize
    for s in shape:
        nbytes *= s
    if nbytes >= 1 << 62:
        raise ValueError(f"shape {shape} of {dt} is too large ({nbytes} bytes)")
    # Arrays live on the device whichever backend computes: context() raises DeviceNotAvailable
    # when there is none.
    buf = context().alloc(max(nbytes, 4))
    return Array(buf, shape, dt)


def asarray(x, dtype=None):
    """Copy a NumPy array (or anything np.asarray takes) to the device; an Array passes through."""
    if _is_array(x):
        if dtype is None or np.dtype(dtype) == x.dtype:
            return x
        return asarray(x.numpy(), dtype)
    a = np.asarray(x, dtype=dtype)
    dt = _device_dtype(a.dtype)
    a = np.ascontiguousarray(a, dtype=dt)
    out = empty(a.shape, dt)
    if a.size:
        stream = _stream()
        stream.upload(out._buf, 0, a.reshape(-1).view(np.uint8))
        if _state.batch_depth == 0:
            _finish(stream)
    return out


def synchronize():
    """Wait for all recorded work (also ends the work queued so far in a batch)."""
    if _state.stream is not None and _state.stream.pending():
        _finish(_state.stream)


@contextlib.contextmanager
def batch():
    """Record every op inside the block into one submit; one wait at the end. Results are Arrays
    whose values are ready when the block exits (or on .numpy(), which finishes the batch early)."""
    if get_backend() != "vulkan":
        yield
        return
    stream = _stream()
    _state.batch_depth += 1
    try:
        yield
    except BaseException:
        _state.batch_depth -= 1
        if _state.batch_depth == 0:
            stream.abort()
        raise
    _state.batch_depth -= 1
    if _state.batch_depth == 0:
        _finish(stream)


class Profile:
    """Collected by `with vaccel.profile() as p:` — GPU time per dispatch, dispatch/submit counts,
    bytes moved, pipeline-cache hits and peak pool memory. A dispatch's GPU time runs from the end
    of everything recorded before it to its own end: what it adds to its batch, so the times of a
    batch sum to its GPU time even where independent dispatches overlap."""

    def __init__(self):
        self.dispatches = []      # (kernel, gpu_ns)
        self.submits = 0
        self.wall_s = 0.0
        self._stats0 = None
        self.stats = {}
        self.memory = {}

    def _record(self, timings, stats, wall):
        self.dispatches.extend(timings)
        self.submits += 1
        self.wall_s += wall
        self.stats = stats

    def summary(self):
        by = {}
        for k, ns in self.dispatches:
            n, t = by.get(k, (0, 0.0))
            by[k] = (n + 1, t + max(ns, 0.0))
        lines = [f"{'kernel':<24}{'calls':>8}{'gpu ms':>12}"]
        for k, (n, t) in sorted(by.items(), key=lambda kv: -kv[1][1]):
            lines.append(f"{k:<24}{n:>8}{t / 1e6:>12.3f}")
        s = self.to_dict()
        lines.append(f"submits {s['submits']}, dispatches {s['dispatch_count']}, barriers {s['barriers']}, "
                     f"uploaded {s['bytes_uploaded']} B, downloaded {s['bytes_downloaded']} B, "
                     f"peak device memory {s['peak_device_bytes']} B, pipelines created {s['pipelines_created']}, "
                     f"pipeline cache hits {s['pipeline_cache_hits']}")
        text = "\n".join(lines)
        print(text)
        return text

    def to_dict(self):
        s0 = self._stats0 or {}
        st = self.stats or s0
        m = self.memory
        return {
            "dispatches": [{"kernel": k, "gpu_ns": ns} for k, ns in self.dispatches],
            "dispatch_count": st.get("dispatches", 0) - s0.get("dispatches", 0),
            "submits": st.get("submits", 0) - s0.get("submits", 0),
            "barriers": st.get("barriers", 0) - s0.get("barriers", 0),
            "bytes_uploaded": st.get("bytes_uploaded", 0) - s0.get("bytes_uploaded", 0),
            "bytes_downloaded": st.get("bytes_downloaded", 0) - s0.get("bytes_downloaded", 0),
            "peak_device_bytes": m.get("device_bytes_peak", 0),
            "pipelines_created": m.get("pipelines_created", 0) - m.get("pipelines_created0", 0),
            "pipeline_cache_hits": m.get("pipeline_cache_hits", 0) - m.get("pipeline_cache_hits0", 0),
            "wall_s": self.wall_s,
            # Host time of the waits (first submit to last wait), split: submitting, waiting for
            # the device after the submit, and the host copies and reset after it.
            "host_submit_s": (st.get("submit_ns", 0) - s0.get("submit_ns", 0)) / 1e9,
            "host_wait_s": (st.get("wait_ns", 0) - s0.get("wait_ns", 0)) / 1e9,
            "host_finish_s": (st.get("finish_ns", 0) - s0.get("finish_ns", 0)) / 1e9,
        }

    def to_json(self, path):
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2)


@contextlib.contextmanager
def profile():
    """Profile the vaccel work inside the block (GPU timestamps; off and free otherwise)."""
    p = Profile()
    if get_backend() != "vulkan":
        yield p
        return
    synchronize()
    ctx = context()
    stream = _stream()
    mem0 = ctx.memory_stats()
    ctx.reset_peak()
    stream.set_profiling(True)
    p._stats0 = stream.stats()
    _state.profiles.append(p)
    try:
        yield p
        synchronize()
    finally:
        _state.profiles.remove(p)
        if not _state.profiles:
            stream.set_profiling(False)
        mem = ctx.memory_stats()
        mem["pipelines_created0"] = mem0["pipelines_created"]
        mem["pipeline_cache_hits0"] = mem0["pipeline_cache_hits"]
        p.memory = mem
        p.stats = stream.stats()
