# vaccel.ScalarQuantizer and vaccel.BinaryQuantizer: codes and decoded values equal to NumPy
# references bit for bit (the formula written out here, independently of vaccel.cpu, and vaccel.cpu
# itself on both backends), reconstruction error against faiss's ScalarQuantizer, bit order against
# numpy.packbits and faiss.real_to_binary, awkward shapes and dtypes, untrained use and bad arguments.

import numpy as np
import pytest

import vaccel
from vaccel import cpu

from helpers import device_array


def sq_reference(x, vmin, vmax, bits):
    """The documented formula, elementwise in float32: codes (n, d) unpacked and decoded values."""
    L = np.float32(2 ** bits)
    x = np.asarray(x).astype(np.float32)
    rng = (vmax - vmin).astype(np.float32)
    scale = np.where(rng > 0, L / np.where(rng > 0, rng, 1), 0).astype(np.float32)
    step = (rng / L).astype(np.float32)
    codes = np.zeros(x.shape, np.uint8)
    for (i, j), v in np.ndenumerate(x):
        with np.errstate(invalid="ignore", over="ignore"):
            t = np.float32(np.float32(v - vmin[j]) * scale[j])
        if t >= 0:
            codes[i, j] = int(min(np.floor(t), L - 1))
    dec = (vmin + (codes.astype(np.float32) + np.float32(0.5)) * step).astype(np.float32)
    return codes, dec


def pack4(codes):
    """Two 4-bit codes per byte, element 2i in the low nibble of byte i."""
    n, d = codes.shape
    out = np.zeros((n, (d + 1) // 2), np.uint8)
    for j in range(d):
        out[:, j // 2] |= (codes[:, j] << (4 * (j % 2))).astype(np.uint8)
    return out


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("d", [1, 2, 7, 33])
def test_sq_matches_formula(backend, rng, bits, d):
    xt = rng.standard_normal((200, d)).astype(np.float32) * rng.uniform(0.1, 10, d).astype(np.float32)
    sq = vaccel.ScalarQuantizer(d, bits=bits)
    assert not sq.is_trained and sq.train(xt) is sq and sq.is_trained
    np.testing.assert_array_equal(sq.vmin, xt.min(0))
    np.testing.assert_array_equal(sq.vmax, xt.max(0))
    assert sq.code_size == (d if bits == 8 else (d + 1) // 2)
    # Values inside, at the ends of and outside the range, NaN and inf.
    x = np.concatenate([rng.standard_normal((40, d)).astype(np.float32) * 3, xt.min(0, keepdims=True),
                        xt.max(0, keepdims=True)])
    x[0, 0], x[1, -1], x[2, 0] = np.nan, np.inf, -np.inf
    codes = sq.encode(x)
    ref_codes, ref_dec = sq_reference(x, sq.vmin, sq.vmax, bits)
    assert codes.dtype == np.uint8 and codes.shape == (len(x), sq.code_size)
    np.testing.assert_array_equal(codes, ref_codes if bits == 8 else pack4(ref_codes))
    assert ref_codes[0, 0] == 0 and ref_codes[1, -1] == 2 ** bits - 1 and ref_codes[2, 0] == 0
    assert (ref_codes[-2] == 0).all() and (ref_codes[-1] == 2 ** bits - 1).all()
    dec = sq.decode(codes)
    assert dec.dtype == np.float32 and dec.shape == x.shape
    np.testing.assert_array_equal(dec, ref_dec)
    # Inside the range, a decoded value is the centre of its bucket: within half a step.
    inside = (x >= sq.vmin) & (x <= sq.vmax)
    err = np.abs(dec - x)[inside]
    assert (err <= np.broadcast_to(sq.step * 0.5001 + 1e-6, x.shape)[inside]).all()
    np.testing.assert_array_equal(codes, cpu.sq_encode(x, sq.vmin, sq._scale, bits))


@pytest.mark.parametrize("bits", [8, 4])
def test_sq_dtypes_and_views(rng, bits):
    d = 12
    base = rng.standard_normal((300, 2 * d)).astype(np.float64)
    sq = vaccel.ScalarQuantizer(d, bits=bits).train(base[:, :d])
    ref = sq.encode(np.ascontiguousarray(base[:, :d], np.float32))
    np.testing.assert_array_equal(sq.encode(base[:, :d]), ref)                 # float64
    np.testing.assert_array_equal(sq.encode(base[::-1, :d]), ref[::-1])               # reversed rows
    strided = np.asfortranarray(base)[:, :d]                                    # non-contiguous
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(sq.encode(strided), ref)
    np.testing.assert_array_equal(sq.encode(base[::3, :d]), ref[::3])
    h = base[:, :d].astype(np.float16)                                          # float16 read as is
    np.testing.assert_array_equal(sq.encode(h), cpu.sq_encode(h.astype(np.float32), sq.vmin, sq._scale, bits))
    np.testing.assert_array_equal(sq.encode(device_array(base[:, :d].astype(np.float32))), ref)
    np.testing.assert_array_equal(sq.encode(np.arange(d)[None, :]), sq.encode(np.arange(d, dtype=np.float32)[None]))
    codes = np.zeros((5, 2 * sq.code_size), np.uint8)
    codes[:, ::2] = ref[:5]                                                     # strided codes
    np.testing.assert_array_equal(sq.decode(codes[:, ::2]), sq.decode(ref[:5]))
    assert sq.encode(np.empty((0, d))).shape == (0, sq.code_size)
    assert sq.decode(np.empty((0, sq.code_size), np.uint8)).shape == (0, d)


def test_sq_global_range_and_constant_dims(backend, rng):
    x = rng.standard_normal((100, 5)).astype(np.float32)
    x[:, 2] = 1.5                                        # a constant dimension
    sq = vaccel.ScalarQuantizer(5, per_dim=False).train(x)
    assert (sq.vmin == x.min()).all() and (sq.vmax == x.max()).all()
    per = vaccel.ScalarQuantizer(5).train(x)
    assert per.step[2] == 0
    codes = per.encode(x)
    assert (codes[:, 2] == 0).all()
    np.testing.assert_array_equal(per.decode(codes)[:, 2], np.float32(1.5))
    np.testing.assert_array_equal(sq.decode(sq.encode(x)), sq_reference(x, sq.vmin, sq.vmax, 8)[1])


@pytest.mark.parametrize("bits,uniform", [(8, False), (4, False), (8, True), (4, True)])
def test_sq_error_against_faiss(rng, bits, uniform):
    faiss = pytest.importorskip("faiss")
    d = 32
    for x in (rng.standard_normal((4000, d)).astype(np.float32),
              rng.uniform(-2, 5, (4000, d)).astype(np.float32) * rng.uniform(0.5, 2, d).astype(np.float32)):
        xt, xe = x[:3000], x[3000:]
        qt = {(8, False): faiss.ScalarQuantizer.QT_8bit, (4, False): faiss.ScalarQuantizer.QT_4bit,
              (8, True): faiss.ScalarQuantizer.QT_8bit_uniform, (4, True): faiss.ScalarQuantizer.QT_4bit_uniform}
        fq = faiss.ScalarQuantizer(d, qt[(bits, uniform)])
        fq.train(xt)
        assert fq.code_size == vaccel.ScalarQuantizer(d, bits).code_size
        mse_f = float(((fq.decode(fq.compute_codes(xe)) - xe) ** 2).mean())
        sq = vaccel.ScalarQuantizer(d, bits=bits, per_dim=not uniform).train(xt)
        mse_v = float(((sq.decode(sq.encode(xe)) - xe) ** 2).mean())
        # 2^bits buckets against faiss's 2^bits - 1: (L-1)^2 / L^2 of faiss's error, 0.99 and 0.88.
        expect = ((2 ** bits - 1) / 2 ** bits) ** 2
        assert expect * 0.95 <= mse_v / mse_f <= min(1.03, expect * 1.05), (mse_v, mse_f)


@pytest.mark.parametrize("bitorder", ["big", "little"])
@pytest.mark.parametrize("d", [1, 7, 8, 33, 256])
def test_binary_matches_packbits(backend, rng, d, bitorder):
    x = rng.standard_normal((70, d)).astype(np.float32)
    x[0, 0] = np.nan
    x[1, -1] = 0.0
    x[2, 0] = -0.0
    bq = vaccel.BinaryQuantizer(d, bitorder=bitorder)
    assert bq.is_trained and bq.code_size == (d + 7) // 8
    codes = bq.encode(x)
    assert codes.dtype == np.uint8 and codes.shape == (70, (d + 7) // 8)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(codes, np.packbits(x > 0, axis=1, bitorder=bitorder))
    dec = bq.decode(codes)
    assert dec.dtype == np.float32
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(dec, np.where(x > 0, 1.0, -1.0))
    np.testing.assert_array_equal(bq.encode(x.astype(np.float16)), bq.encode(x.astype(np.float16).astype(np.float32)))
    np.testing.assert_array_equal(bq.encode(x.astype(np.float64)), codes)
    np.testing.assert_array_equal(bq.encode(np.asfortranarray(x)), codes)


def test_binary_little_order_is_faiss(rng):
    faiss = pytest.importorskip("faiss")
    x = rng.standard_normal((9, 40)).astype(np.float32)
    ref = np.zeros((9, 5), np.uint8)
    signs = (x > 0).astype(np.float32)         # kept alive across the call
    faiss.real_to_binary(x.size, faiss.swig_ptr(signs), faiss.swig_ptr(ref))
    np.testing.assert_array_equal(vaccel.BinaryQuantizer(40, bitorder="little").encode(x), ref)


def test_binary_median_thresholds(backend, rng):
    x = rng.standard_normal((301, 20)).astype(np.float32) + np.arange(20, dtype=np.float32)
    bq = vaccel.BinaryQuantizer(20, threshold="median")
    assert not bq.is_trained
    bq.train(x)
    np.testing.assert_array_equal(bq.thresholds, np.median(x, axis=0).astype(np.float32))
    codes = bq.encode(x)
    np.testing.assert_array_equal(codes, np.packbits(x > bq.thresholds, axis=1))
    assert abs(np.unpackbits(codes, axis=1, count=20).mean() - 0.5) < 0.01     # medians split the bits evenly


def test_not_trained(backend):
    assert issubclass(vaccel.NotTrainedError, vaccel.VaccelError)
    assert issubclass(vaccel.NotTrainedError, RuntimeError)
    for q in (vaccel.ScalarQuantizer(4), vaccel.ScalarQuantizer(4, bits=4),
              vaccel.BinaryQuantizer(4, threshold="median")):
        with pytest.raises(vaccel.NotTrainedError, match="train"):
            q.encode(np.zeros((2, 4), np.float32))
        with pytest.raises(vaccel.NotTrainedError):
            q.decode(np.zeros((2, q.code_size), np.uint8))


def test_argument_checks(rng):
    with pytest.raises(ValueError, match="bits"):
        vaccel.ScalarQuantizer(4, bits=3)
    with pytest.raises(TypeError, match="bits"):
        vaccel.ScalarQuantizer(4, bits=8.0)
    with pytest.raises(ValueError, match="d"):
        vaccel.ScalarQuantizer(0)
    with pytest.raises(TypeError, match="d"):
        vaccel.BinaryQuantizer("8")
    with pytest.raises(TypeError, match="per_dim"):
        vaccel.ScalarQuantizer(4, per_dim="yes")
    with pytest.raises(ValueError, match="threshold"):
        vaccel.BinaryQuantizer(4, threshold="mean")
    with pytest.raises(ValueError, match="bitorder"):
        vaccel.BinaryQuantizer(4, bitorder="middle")
    sq = vaccel.ScalarQuantizer(4)
    with pytest.raises(ValueError, match="x"):
        sq.train(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="x"):
        sq.train(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="at least one row"):
        sq.train(np.zeros((0, 4), np.float32))
    with pytest.raises(ValueError, match="finite"):
        sq.train(np.array([[0, 1, np.nan, 2]], np.float32))
    with pytest.raises(ValueError, match="finite"):
        sq.train(np.array([[0, 1, np.inf, 2]], np.float32))
    with pytest.raises(TypeError, match="x"):
        sq.train(np.array([["a"] * 4]))
    sq.train(rng.standard_normal((10, 4)))
    with pytest.raises(ValueError, match="x"):
        sq.encode(np.zeros((3, 3), np.float32))
    with pytest.raises(TypeError, match="codes"):
        sq.decode(np.zeros((3, 4), np.int32))
    with pytest.raises(ValueError, match="codes"):
        sq.decode(np.zeros((3, 5), np.uint8))
    assert "ScalarQuantizer" in repr(sq) and "BinaryQuantizer" in repr(vaccel.BinaryQuantizer(3))
