"""Vector quantizers: train(x), encode(x) -> uint8 codes, decode(codes) -> float32.

    sq = vaccel.ScalarQuantizer(128, bits=8)     # or bits=4 (two codes per byte), per_dim=False
    sq.train(xt)                                 # min / max per dimension
    codes = sq.encode(x)                         # (n, sq.code_size) uint8, on the GPU
    y = sq.decode(codes)                         # (n, 128) float32: bucket centres

    bq = vaccel.BinaryQuantizer(256)             # sign bits, numpy.packbits' layout
    codes = bq.encode(x); signs = bq.decode(codes)   # +1.0 / -1.0

Every quantizer derives from Quantizer (d, code_size, is_trained, train, encode, decode, argument
checks, NotTrainedError); encode and decode run on the Vulkan device (sq_codec.comp,
binary_codec.comp) or, on the CPU backend, as their NumPy reference in vaccel.cpu, which gives the
same codes and values bit for bit. Float16 input is read as float16; float64 and integers are
converted to float32 first; any strides are accepted.
"""

from __future__ import annotations

import numpy as np

from . import cpu, distances, runtime
from .errors import NotTrainedError
from .runtime import integer as _int

__all__ = ["Quantizer", "ScalarQuantizer", "BinaryQuantizer", "NotTrainedError"]


def _padded_width(nbytes):
    """Code rows on the device are whole 32-bit words."""
    return max(4, (nbytes + 3) // 4 * 4)


def padded_codes(codes, width):
    """uint8 code rows (n, code_size) as the kernels read them: C-contiguous rows of `width` bytes
    (a multiple of 4), zeros after the code, 4-byte aligned. No copy when they already are."""
    n, cs = codes.shape
    if cs == width and codes.flags.c_contiguous and codes.ctypes.data % 4 == 0:
        return codes
    out = np.zeros((n, width), np.uint8)
    out[:, :cs] = codes
    return out


class Quantizer:
    """What every vaccel quantizer has: d (input dimensions), code_size (bytes per code),
    is_trained, train(x), encode(x) -> (n, code_size) uint8, decode(codes) -> (n, d) float32.
    Subclasses implement _train, _encode and _decode on checked arguments."""

    def __init__(self, d):
        d = _int(d, "d")
        if d < 1:
            raise ValueError(f"d must be at least 1, got {d}")
        self._d = d

    @property
    def d(self):
        return self._d

    @property
    def code_size(self):
        raise NotImplementedError

    @property
    def is_trained(self):
        raise NotImplementedError

    def __repr__(self):
        return f"vaccel.{type(self).__name__}(d={self._d}, trained={self.is_trained})"

    # ---- argument checks shared by the subclasses ---------------------------------------------

    def _require_trained(self, what):
        if not self.is_trained:
            raise NotTrainedError(f"{type(self).__name__}.{what}: the quantizer is not trained; call train(x) first")

    def _floats(self, x, name):
        """x as the kernels read it: a 2-D NumPy array of d columns, float16 where the device keeps
        float16, else float32."""
        if runtime._is_array(x):
            x = x.numpy()
        a = distances._matrix(x, name)
        if a.shape[1] != self._d:
            raise ValueError(f"{name} must have shape (n, {self._d}), got {a.shape}")
        keep16 = a.dtype == np.float16 and runtime.get_backend() == "vulkan" and distances._keeps_float16(a)
        if a.dtype != np.float32 and not keep16:
            with np.errstate(over="ignore"):
                a = a.astype(np.float32)
        return a

    def _codes(self, codes, name="codes"):
        if runtime._is_array(codes):
            codes = codes.numpy()
        if codes is None:
            raise TypeError(f"{name} must be an array, got None")
        c = np.asarray(codes)
        if c.dtype != np.uint8:
            raise TypeError(f"{name} must be uint8 codes, got dtype {c.dtype}")
        if c.ndim != 2 or c.shape[1] != self.code_size:
            raise ValueError(f"{name} must have shape (n, {self.code_size}), got {c.shape}")
        return c

    # ---- the interface ----------------------------------------------------------------------------

    def train(self, x):
        """Learn the quantizer's parameters from the rows of x (n, d); returns self."""
        self._train(self._floats(x, "x"))
        return self

    def encode(self, x):
        """Codes of the rows of x (n, d): (n, code_size) uint8."""
        self._require_trained("encode")
        x = self._floats(x, "x")
        width = _padded_width(self.code_size)
        if x.shape[0] == 0:
            return np.empty((0, self.code_size), np.uint8)
        if runtime.get_backend() == "cpu":
            return self._encode_cpu(x)
        out = self._encode_rows(x, width)
        return out if width == self.code_size else np.ascontiguousarray(out[:, :self.code_size])

    def decode(self, codes):
        """The vectors codes stand for: (n, d) float32."""
        self._require_trained("decode")
        c = self._codes(codes)
        out = np.empty((c.shape[0], self._d), np.float32)
        if c.shape[0] == 0:
            return out
        if runtime.get_backend() == "cpu":
            return self._decode_cpu(c)
        self._decode_rows(padded_codes(c, _padded_width(self.code_size)), out)
        return out

    def _encode_rows(self, x, width):
        """Device encode of checked rows into padded code rows (n, width)."""
        raise NotImplementedError

    def _decode_rows(self, padded, out):
        raise NotImplementedError

    def _encode_cpu(self, x):
        raise NotImplementedError

    def _decode_cpu(self, codes):
        raise NotImplementedError


class ScalarQuantizer(Quantizer):
    """Uniform scalar quantizer on the trained range, like faiss's ScalarQuantizer with QT_8bit /
    QT_4bit (per_dim=True) or QT_8bit_uniform / QT_4bit_uniform (per_dim=False).

    train(x) takes vmin_j = min x[:, j] and vmax_j = max x[:, j] (per_dim=False: the global min and
    max for every j). With L = 2^bits levels, each computed in float32:
        scale_j = L / (vmax_j - vmin_j)      (0 for a constant dimension)
        step_j  = (vmax_j - vmin_j) / L
        code    c = min(floor((x - vmin_j) * scale_j), L - 1) if that product is >= 0, else 0
                (values below vmin and NaN -> 0, above vmax -> L - 1)
        decode  vmin_j + (c + 0.5) * step_j, the centre of bucket c.
    The range is cut into L equal buckets. faiss cuts it into L - 1 (c = floor((L - 1) t) for
    t = (x - vmin) / (vmax - vmin) in [0, 1], decoded to (c + 0.5) / (L - 1), so its last code is
    reached only at vmax and decodes half a step above it); the reconstruction error is of the same
    order: in mean square, (L - 1)^2 / L^2 of faiss's, 0.99 for 8 bits, 0.88 for 4 bits.

    bits=8: one byte per element; bits=4: two per byte, element 2i in the low nibble of byte i
    (faiss's layout); code_size = d or ceil(d / 2).
    """

    def __init__(self, d, bits=8, per_dim=True):
        super().__init__(d)
        bits = _int(bits, "bits")
        if bits not in (8, 4):
            raise ValueError(f"bits must be 8 or 4, got {bits}")
        if not isinstance(per_dim, (bool, np.bool_)):
            raise TypeError(f"per_dim must be a bool, got {per_dim!r}")
        self._bits = bits
        self._per_dim = bool(per_dim)
        self._vmin = self._vmax = self._scale = self._step = None
        self._dev = None         # device copies (vmin, scale, step), made on first use

    @property
    def bits(self):
        return self._bits

    @property
    def per_dim(self):
        return self._per_dim

    @property
    def code_size(self):
        return self._d if self._bits == 8 else (self._d + 1) // 2

    @property
    def is_trained(self):
        return self._vmin is not None

    @property
    def vmin(self):
        """Trained lower ends (d,) float32 (None before training)."""
        return None if self._vmin is None else self._vmin.copy()

    @property
    def vmax(self):
        return None if self._vmax is None else self._vmax.copy()

    @property
    def step(self):
        """Bucket widths (d,) float32: (vmax - vmin) / 2^bits."""
        return None if self._step is None else self._step.copy()

    def __repr__(self):
        return (f"vaccel.ScalarQuantizer(d={self._d}, bits={self._bits}, per_dim={self._per_dim}, "
                f"trained={self.is_trained})")

    def _train(self, x):
        if x.shape[0] == 0:
            raise ValueError("x: training needs at least one row")
        st = _statistics(x)
        lo, hi = np.asarray(st["min"], np.float32), np.asarray(st["max"], np.float32)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise ValueError("x: training data must be finite (it holds NaN or inf)")
        if not self._per_dim:
            lo = np.full(self._d, lo.min(), np.float32)
            hi = np.full(self._d, hi.max(), np.float32)
        self._set_range(lo, hi)

    def _set_range(self, vmin, vmax):
        """Trained state from (d,) float32 vmin <= vmax (finite, with a finite difference)."""
        vmin = np.ascontiguousarray(vmin, np.float32)
        vmax = np.ascontiguousarray(vmax, np.float32)
        with np.errstate(over="ignore"):
            rng = vmax - vmin
        if not np.isfinite(rng).all():
            raise ValueError("x: the range max - min overflows float32")
        levels = cpu._sq_levels(self._bits)
        with np.errstate(divide="ignore", over="ignore"):
            scale = np.where(rng > 0, levels / np.where(rng > 0, rng, 1), 0).astype(np.float32)
        self._vmin, self._vmax = vmin, vmax
        self._scale = scale
        self._step = (rng / levels).astype(np.float32)
        self._dev = None

    def _device_params(self):
        if self._dev is None:
            self._dev = tuple(runtime.asarray(a) for a in (self._vmin, self._scale, self._step))
        return self._dev

    def _encode_rows(self, x, width):
        out = np.empty((x.shape[0], width), np.uint8)
        vmin, scale, _ = self._device_params()
        runtime.run_op("sq_encode", (x, vmin, scale), (out,), (self._bits,),
                       names={("in", 0): "x", ("out", 0): "codes"})
        return out

    def _decode_rows(self, padded, out):
        vmin, _, step = self._device_params()
        runtime.run_op("sq_decode", (padded, vmin, step), (out,), (self._bits,),
                       names={("in", 0): "codes", ("out", 0): "out"})

    def _encode_cpu(self, x):
        return cpu.sq_encode(x, self._vmin, self._scale, self._bits)

    def _decode_cpu(self, codes):
        return cpu.sq_decode(codes, self._vmin, self._step, self._bits, self._d)


class BinaryQuantizer(Quantizer):
    """One bit per dimension: bit j is set where x[j] > t_j, with t_j = 0 (threshold='zero', the
    sign; no training needed) or the training data's per-dimension median (threshold='median',
    trained by train(x)). NaN gives a clear bit. decode() gives +1.0 for a set bit, -1.0 for a clear
    one. code_size = ceil(d / 8).

    Bit order (bitorder): 'big' (default) is numpy.packbits' default: element 8i + b is bit 7 - b of
    byte i, the most significant bit first, so np.unpackbits(codes, axis=1) gives the bits back in
    element order. 'little' puts it at bit b, the order of faiss's real_to_binary / fvecs2bitvecs.
    Hamming distances between codes of one quantizer do not depend on the order.
    """

    def __init__(self, d, threshold="zero", bitorder="big"):
        super().__init__(d)
        if threshold not in ("zero", "median"):
            raise ValueError(f"threshold must be 'zero' or 'median', got {threshold!r}")
        if bitorder not in ("big", "little"):
            raise ValueError(f"bitorder must be 'big' or 'little', got {bitorder!r}")
        self._threshold = threshold
        self._bitorder = bitorder
        self._t = np.zeros(d, np.float32) if threshold == "zero" else None
        self._dev = None

    @property
    def threshold(self):
        return self._threshold

    @property
    def bitorder(self):
        return self._bitorder

    @property
    def thresholds(self):
        """Per-dimension thresholds (d,) float32 (None before a 'median' quantizer is trained)."""
        return None if self._t is None else self._t.copy()

    @property
    def code_size(self):
        return (self._d + 7) // 8

    @property
    def is_trained(self):
        return self._t is not None

    def __repr__(self):
        return (f"vaccel.BinaryQuantizer(d={self._d}, threshold={self._threshold!r}, "
                f"bitorder={self._bitorder!r}, trained={self.is_trained})")

    def _train(self, x):
        if self._threshold == "zero":
            return                       # the sign needs no training
        if x.shape[0] == 0:
            raise ValueError("x: training needs at least one row")
        x = np.asarray(x, np.float32)
        if not np.isfinite(x).all():
            raise ValueError("x: training data must be finite (it holds NaN or inf)")
        self._t = np.ascontiguousarray(np.median(x, axis=0), np.float32)
        self._dev = None

    def _thresholds_dev(self):
        if self._dev is None:
            self._dev = runtime.asarray(self._t)
        return self._dev

    def _encode_rows(self, x, width):
        out = np.empty((x.shape[0], width), np.uint8)
        runtime.run_op("binary_encode", (x, self._thresholds_dev()), (out,), (int(self._bitorder == "little"),),
                       names={("in", 0): "x", ("out", 0): "codes"})
        return out

    def _decode_rows(self, padded, out):
        runtime.run_op("binary_decode", (padded,), (out,), (int(self._bitorder == "little"),),
                       names={("in", 0): "codes", ("out", 0): "out"})

    def _encode_cpu(self, x):
        return cpu.binary_encode(x, self._t, self._bitorder)

    def _decode_cpu(self, codes):
        return cpu.binary_decode(codes, self._d, self._bitorder)


def _statistics(x):
    """Per-column min and max in one pass (a GPU reduction on the Vulkan backend)."""
    from .reductions import statistics
    return statistics(x, axis=0)
