"""Work larger than the device allows is split, never refused; the pipeline cache on disk is
used when valid and replaced when damaged."""
import os

import numpy as np
import pytest

import vaccel
from vaccel import cpu, runtime


@pytest.fixture
def small_device_limit():
    old = vaccel.config.device_memory_limit
    vaccel.config.device_memory_limit = 1 << 20  # 1 MiB: every case below needs several blocks
    yield
    vaccel.config.device_memory_limit = old


@pytest.mark.parametrize("shape", [(300, 5000, 64), (3, 70000, 8), (20000, 7, 33)])
@pytest.mark.parametrize("metric", ["sqeuclidean", "cityblock"])
def test_cdist_in_blocks_when_host_data_exceeds_device_limit(small_device_limit, rng, shape, metric):
    m, n, d = shape
    xa = rng.standard_normal((m, d)).astype(np.float32)
    xb = rng.standard_normal((n, d)).astype(np.float32)
    assert (m * d + n * d + m * n) * 4 > vaccel.config.device_memory_limit
    got = vaccel.cdist(xa, xb, metric)
    want = cpu.cdist(xa, xb, metric)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * d)


def test_cdist_blocks_into_out(small_device_limit, rng):
    xa = rng.standard_normal((500, 16)).astype(np.float32)
    xb = rng.standard_normal((3000, 16)).astype(np.float32)
    out = np.full((500, 3000), -1.0, np.float32)
    assert vaccel.cdist(xa, xb, "euclidean", out=out) is out
    np.testing.assert_allclose(out, cpu.cdist(xa, xb, "euclidean"), rtol=1e-4, atol=1e-4)


def test_normalize_in_blocks_when_host_data_exceeds_device_limit(small_device_limit, rng):
    x = rng.standard_normal((30000, 24)).astype(np.float32)
    x[5] = 0.0
    assert x.nbytes * 2 > vaccel.config.device_memory_limit
    np.testing.assert_allclose(vaccel.normalize(x), cpu.normalize(x), rtol=1e-6, atol=1e-7)
    out = np.empty_like(x)
    assert vaccel.normalize(x[:, ::1], out=out) is out
    np.testing.assert_allclose(out, cpu.normalize(x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("metric", ["sqeuclidean", "inner", "cityblock"])
def test_knn_streams_a_host_database_larger_than_the_device_limit(small_device_limit, rng, metric):
    q = rng.standard_normal((7, 32)).astype(np.float32)
    db = rng.standard_normal((40000, 32)).astype(np.float32)   # 5 MiB: several blocks
    db[123] = q[0]                                              # an exact hit across blocks
    for k, filt in ((10, None), (300, None), (20, rng.random(40000) < 0.05)):
        D, I = vaccel.knn(q, db, k, metric, filter=filt)
        RD, RI = cpu.knn(q, db, k, metric, filter=filt)
        np.testing.assert_allclose(D, RD, rtol=1e-4, atol=1e-4)
        assert (I != RI).mean() < 0.01


def _context(tmp_path):
    return runtime._vaccel.Context(device=vaccel.config.device, validation=vaccel.config.validation,
                                   cache_dir=str(tmp_path))


def test_pipeline_cache_written_and_reused(tmp_path, rng):
    vaccel.get_backend()  # a device context exists
    ctx = _context(tmp_path)
    x = rng.standard_normal((4, 8)).astype(np.float32)
    s = runtime._vaccel.Stream(ctx)
    out = np.empty(4, np.float32)
    s.run("row_sqnorms", ((x, 0, 0, x.shape, (8, 1)),), ((out, 0, 0, (4,), (1,)),))
    s.wait()
    np.testing.assert_allclose(out, (x.astype(np.float64) ** 2).sum(1), rtol=1e-6)
    ctx.save_cache()
    files = [f for f in os.listdir(tmp_path) if f.startswith("pipelines-")]
    assert len(files) == 1
    del s, ctx
    ctx2 = _context(tmp_path)
    assert ctx2.memory_stats()["disk_cache_loaded"] is True


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "empty"])
def test_damaged_pipeline_cache_is_ignored_and_replaced(tmp_path, rng, damage):
    vaccel.get_backend()
    ctx = _context(tmp_path)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    s = runtime._vaccel.Stream(ctx)
    out = np.empty(3, np.float32)
    s.run("row_sqnorms", ((x, 0, 0, x.shape, (5, 1)),), ((out, 0, 0, (3,), (1,)),))
    s.wait()
    ctx.save_cache()
    del s, ctx
    (path,) = [tmp_path / f for f in os.listdir(tmp_path) if f.startswith("pipelines-")]
    data = bytearray(path.read_bytes())
    if damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    elif damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped":
        data[len(data) - 7] ^= 0x5A
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    ctx = _context(tmp_path)
    assert ctx.memory_stats()["disk_cache_loaded"] is False
    s = runtime._vaccel.Stream(ctx)
    s.run("row_sqnorms", ((x, 0, 0, x.shape, (5, 1)),), ((out, 0, 0, (3,), (1,)),))
    s.wait()
    np.testing.assert_allclose(out, (x.astype(np.float64) ** 2).sum(1), rtol=1e-6)
    ctx.save_cache()
    del s, ctx
    assert _context(tmp_path).memory_stats()["disk_cache_loaded"] is True


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.uint8])
@pytest.mark.parametrize("n,rows", [(1000, 300), (999, 1000), (1, 1), (4096, 1024)])
def test_host_blocks_bring_every_row_in_order(rng, dtype, n, rows):
    x = (rng.standard_normal((n, 13)) * 50).astype(dtype)
    seen = []
    for j0, block in runtime.HostBlocks(x, rows):
        assert isinstance(block, vaccel.Array) and block.dtype == x.dtype
        assert block.shape == (min(rows, n - j0), 13)
        # work recorded on the block (a device op) sees its upload
        assert np.array_equal(block.numpy(), x[j0:j0 + rows])
        if dtype != np.uint8:
            assert np.array_equal(np.asarray(vaccel.multiply(block, 1.0)), x[j0:j0 + rows].astype(np.float32))
        seen.append(j0)
    assert seen == list(range(0, n, rows))


def test_host_blocks_leaving_early_and_strided_hosts(rng):
    x = rng.standard_normal((5000, 40)).astype(np.float32)
    for j0, block in runtime.HostBlocks(x, 700):
        if j0 >= 1400:
            break                       # the upload in flight is waited for; the stream stays usable
    view = x[:, ::2]                    # not contiguous: each block is copied before its upload
    got = np.concatenate([b.numpy() for _, b in runtime.HostBlocks(view, 1234)])
    assert np.array_equal(got, view)
    with vaccel.batch():
        with pytest.raises(RuntimeError, match="outside a batch"):
            next(iter(runtime.HostBlocks(x, 100)))


@pytest.mark.parametrize("overlap", ["1", "0"])
def test_host_blocks_through_small_staging_chunks(monkeypatch, rng, overlap):
    """Blocks larger than a staging buffer go in several chunks, each copied into the two staging
    buffers in turn by a pool of threads (here with tiny chunks and pool), with the uploads of the
    next block on a helper thread (or, VACCEL_STREAM_OVERLAP=0, in line)."""
    monkeypatch.setattr(runtime.HostBlocks, "CHUNK", 1001)
    monkeypatch.setattr(runtime.HostBlocks, "POOL_MIN", 0)
    monkeypatch.setattr(runtime.HostBlocks, "THREADS", 3)    # parts of uneven length too
    monkeypatch.setenv("VACCEL_STREAM_OVERLAP", overlap)
    x = rng.standard_normal((3001, 17)).astype(np.float32)
    for rows in (300, 3001, 7):
        seen = []
        for j0, block in runtime.HostBlocks(x, rows):
            assert np.array_equal(np.asarray(vaccel.multiply(block, 2.0)), 2 * x[j0:j0 + rows])
            seen.append(j0)
        assert seen == list(range(0, 3001, rows))
    D, I = vaccel.knn(x[:50], x, 5)
    assert (I[:, 0] == np.arange(50)).all()


def test_host_blocks_upload_failure_reaches_the_caller(monkeypatch, rng):
    x = rng.standard_normal((1000, 8)).astype(np.float32)
    real = runtime.HostBlocks._upload

    def failing(self, t, stage, views, buf, j0, pool, stop=None):
        if j0 >= 400:
            raise MemoryError("planted upload failure")
        return real(self, t, stage, views, buf, j0, pool, stop)
    monkeypatch.setattr(runtime.HostBlocks, "_upload", failing)
    seen = []
    with pytest.raises(MemoryError, match="planted"):
        for j0, block in runtime.HostBlocks(x, 200):
            seen.append(j0)
    assert seen == [0, 200]
    monkeypatch.setattr(runtime.HostBlocks, "_upload", real)
    got = np.concatenate([b.numpy() for _, b in runtime.HostBlocks(x, 300)])   # still usable
    assert np.array_equal(got, x)


def test_host_blocks_side_by_side_and_abandoned(monkeypatch, rng):
    """Two streams of blocks at once from one thread (each has its own transfer stream and helper),
    one left after its first block and dropped without being closed: nothing hangs, and every
    block seen is right."""
    monkeypatch.setattr(runtime.HostBlocks, "CHUNK", 4096)
    monkeypatch.setattr(runtime.HostBlocks, "POOL_MIN", 0)
    monkeypatch.setattr(runtime.HostBlocks, "THREADS", 2)
    x = rng.standard_normal((2000, 33)).astype(np.float32)
    y = rng.standard_normal((1500, 33)).astype(np.float32)
    for (i, a), (j, b) in zip(runtime.HostBlocks(x, 300), runtime.HostBlocks(y, 250)):
        assert np.array_equal(a.numpy(), x[i:i + 300]) and np.array_equal(b.numpy(), y[j:j + 250])
    it = iter(runtime.HostBlocks(x, 100))
    j0, first = next(it)
    assert j0 == 0 and np.array_equal(first.numpy(), x[:100])
    del it, first
    import gc
    gc.collect()
    got = np.concatenate([b.numpy() for _, b in runtime.HostBlocks(x, 700)])
    assert np.array_equal(got, x)


def test_staging_buffer_view_keeps_it_alive():
    ctx = runtime.context()
    view = ctx.alloc_staging(4096).host_view()      # the Buffer itself is not kept here
    import gc
    gc.collect()
    view[:4] = b"abcd"
    assert bytes(view[:4]) == b"abcd"
    buf = ctx.alloc_staging(64)
    a = np.frombuffer(buf, np.uint8)                 # the buffer protocol directly
    a[:] = 9
    assert bytes(buf.host_view()[:3]) == b"\t\t\t"


def test_knn_streams_blocks_on_the_fused_path(small_device_limit, rng):
    # enough queries and rows for the fused (and, with cooperative matrices, tensor-core) path
    q = rng.standard_normal((300, 24)).astype(np.float32)
    db = rng.standard_normal((30000, 24)).astype(np.float32)
    for data in (db, db.astype(np.float16)):
        D, I = vaccel.knn(q, data, 10)
        RD, RI = cpu.knn(q, data.astype(np.float32), 10, "sqeuclidean")
        np.testing.assert_allclose(D, RD, rtol=1e-4, atol=1e-4)
        assert (I != RI).mean() < 0.01
