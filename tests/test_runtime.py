# Runtime surface: capability report, backend choice, device arrays, batches, exceptions.

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import vaccel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BOOL_KEYS = ["fp16", "int8", "bf16", "storage_16bit", "integer_dot_product", "cooperative_matrix",
             "cooperative_matrix_nv2", "external_memory_host", "unified_memory", "timestamps"]
INT_KEYS = ["subgroup_size", "shared_memory_per_workgroup", "max_storage_buffer_range"]
STR_KEYS = ["name", "vendor", "driver_name", "api_version", "uuid"]


def check_device(dev):
    assert isinstance(dev, dict)
    for key in STR_KEYS:
        assert isinstance(dev[key], str), (key, dev[key])
    assert dev["name"]
    assert dev["type"] in ("discrete", "integrated", "virtual", "cpu", "other")
    assert re.fullmatch(r"\d+\.\d+\.\d+", dev["api_version"]), dev["api_version"]
    assert re.fullmatch(r"[0-9a-fA-F]{32}", dev["uuid"]), dev["uuid"]
    for key in INT_KEYS:
        assert isinstance(dev[key], int) and not isinstance(dev[key], bool), (key, dev[key])
        assert dev[key] > 0, (key, dev[key])
    for key in BOOL_KEYS:
        assert isinstance(dev[key], bool), (key, dev[key])
    assert dev["zero_copy"] in ("unified", "import", "staging")
    heaps = dev["memory_heaps"]
    assert isinstance(heaps, list) and heaps
    for heap in heaps:
        assert isinstance(heap["size"], int) and heap["size"] > 0
        assert isinstance(heap["device_local"], bool)
        assert heap["budget"] is None or (isinstance(heap["budget"], int) and heap["budget"] >= 0)
    assert any(h["device_local"] for h in heaps)
    if dev["zero_copy"] == "unified":
        assert dev["unified_memory"]


def test_info():
    info = vaccel.info()
    assert isinstance(info, dict)
    assert info["backend"] in ("vulkan", "cpu")
    assert info["backend"] == vaccel.get_backend()
    assert isinstance(info["version"], str) and info["version"]
    # This suite runs where a Vulkan driver exists (lavapipe at least): auto must pick it.
    assert info["backend"] == "vulkan"
    check_device(info["device"])


def test_devices():
    devs = vaccel.devices()
    assert isinstance(devs, list) and devs
    for dev in devs:
        check_device(dev)
    assert vaccel.info()["device"]["uuid"] in [d["uuid"] for d in devs]


def test_info_under_cpu_backend():
    vaccel.set_backend("cpu")
    info = vaccel.info()
    assert info["backend"] == "cpu"
    assert info["device"] is None or isinstance(info["device"], dict)


def test_module_info_command():
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "vaccel", "info"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert vaccel.info()["device"]["name"] in proc.stdout, proc.stdout


def test_set_backend_round_trip():
    try:
        vaccel.set_backend("cpu")
        assert vaccel.get_backend() == "cpu"
        vaccel.set_backend("vulkan")
        assert vaccel.get_backend() == "vulkan"
        vaccel.set_backend("cpu")
        vaccel.set_backend("auto")
        assert vaccel.get_backend() == "vulkan"
        assert vaccel.get_backend() == vaccel.info()["backend"]
    finally:
        vaccel.set_backend("auto")


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int32, np.int64,
                                   np.uint8])
@pytest.mark.parametrize("shape", [(0,), (5,), (3, 4), (0, 7), (7, 0), (1, 1), (2, 3, 4),
                                   (1000, 33)], ids=str)
def test_asarray_round_trip(rng, dtype, shape):
    x = (np.abs(rng.standard_normal(shape)) * 50).astype(dtype)
    # float64 is documented to live on the device as float32 (vaccel computes in float32).
    stored = np.dtype(np.float32) if np.dtype(dtype) == np.float64 else np.dtype(dtype)
    a = vaccel.asarray(x)
    assert isinstance(a, vaccel.Array)
    assert a.shape == shape and isinstance(a.shape, tuple)
    assert a.dtype == stored
    assert a.ndim == len(shape)
    assert a.size == x.size
    assert a.nbytes == x.size * stored.itemsize
    back = a.numpy()
    assert isinstance(back, np.ndarray) and back.dtype == stored and back.shape == shape
    np.testing.assert_array_equal(back, x.astype(stored))
    np.testing.assert_array_equal(np.asarray(a), x.astype(stored))


def test_asarray_view_and_dtype(rng):
    x = rng.standard_normal((20, 30))
    view = x[::2, 1::3].astype(np.float32)[:, ::-1]
    np.testing.assert_array_equal(vaccel.asarray(view).numpy(), view)
    a = vaccel.asarray(x, dtype=np.float16)
    assert a.dtype == np.float16
    np.testing.assert_array_equal(a.numpy(), x.astype(np.float16))
    a = vaccel.asarray(x, dtype=np.float32)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a.numpy(), x.astype(np.float32))
    again = vaccel.asarray(a)
    np.testing.assert_array_equal(again.numpy(), a.numpy())


def test_empty():
    a = vaccel.empty((3, 4))
    assert isinstance(a, vaccel.Array)
    assert a.shape == (3, 4) and a.dtype == np.float32 and a.nbytes == 48
    assert a.numpy().shape == (3, 4)
    b = vaccel.empty((0,), np.uint8)
    assert b.shape == (0,) and b.size == 0
    c = vaccel.empty(5, np.float16)
    assert c.shape == (5,) and c.dtype == np.float16


def test_copy_is_independent(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    a = vaccel.asarray(x)
    b = a.copy()
    assert isinstance(b, vaccel.Array) and b is not a
    assert b.shape == a.shape and b.dtype == a.dtype
    np.testing.assert_array_equal(b.numpy(), x)
    p = rng.standard_normal((2, 4)).astype(np.float32)
    q = rng.standard_normal((3, 4)).astype(np.float32)
    vaccel.cdist(p, q, "sqeuclidean", out=a)          # overwrite the original
    vaccel.synchronize()
    assert not np.array_equal(a.numpy(), x)
    np.testing.assert_array_equal(b.numpy(), x)


def test_synchronize():
    vaccel.synchronize()
    vaccel.cdist(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32))
    vaccel.synchronize()
    vaccel.synchronize()


def test_batch_dependent_ops(rng):
    x = rng.standard_normal((65, 33)).astype(np.float32)
    y = rng.standard_normal((40, 33)).astype(np.float32)
    plain_n = vaccel.normalize(x)
    plain_d = vaccel.cdist(plain_n, vaccel.normalize(y), "cosine")
    with vaccel.batch():
        nx = vaccel.normalize(x)
        ny = vaccel.normalize(vaccel.asarray(y))
        d = vaccel.cdist(nx, ny, "cosine")
        e = vaccel.cdist(nx, nx, "sqeuclidean")
    np.testing.assert_allclose(np.asarray(nx), plain_n, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(d), plain_d, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(e), vaccel.cdist(plain_n, plain_n, "sqeuclidean"),
                               rtol=1e-5, atol=1e-6)
    for r in (nx, ny, d, e):
        assert isinstance(r, vaccel.Array), type(r)


def test_batch_on_cpu_backend(rng):
    vaccel.set_backend("cpu")
    x = rng.standard_normal((12, 7)).astype(np.float32)
    with vaccel.batch():
        nx = vaccel.normalize(x)
        d = vaccel.cdist(nx, nx, "euclidean")
    np.testing.assert_allclose(np.asarray(nx), x / np.linalg.norm(x, axis=1, keepdims=True),
                               rtol=1e-6)
    assert np.abs(np.diagonal(np.asarray(d))).max() <= 1e-5


def test_batch_value_ready_on_numpy_inside_block(rng):
    x = rng.standard_normal((10, 6)).astype(np.float32)
    with vaccel.batch():
        nx = vaccel.normalize(vaccel.asarray(x))
        inside = nx.numpy()
        d = vaccel.cdist(nx, nx, "euclidean")
    np.testing.assert_allclose(inside, vaccel.normalize(x), rtol=1e-6, atol=1e-7)
    assert np.abs(np.diagonal(d.numpy())).max() <= 1e-5


def test_batch_exception_leaves_context_usable(rng):
    x = rng.standard_normal((10, 6)).astype(np.float32)
    with pytest.raises(RuntimeError, match="inside batch"):
        with vaccel.batch():
            vaccel.normalize(x)
            raise RuntimeError("inside batch")
    np.testing.assert_allclose(vaccel.normalize(x),
                               x / np.linalg.norm(x, axis=1, keepdims=True), rtol=1e-5)


def test_exception_hierarchy():
    assert issubclass(vaccel.VaccelError, Exception)
    for exc in (vaccel.DeviceNotAvailable, vaccel.FeatureNotSupported, vaccel.OutOfDeviceMemory,
                vaccel.DeviceLost):
        assert issubclass(exc, vaccel.VaccelError), exc
    assert issubclass(vaccel.OutOfDeviceMemory, MemoryError)
    with pytest.raises(MemoryError):
        raise vaccel.OutOfDeviceMemory("test")


@pytest.mark.parametrize("n", [1, 3, 4, 5, 1023, 4096, 4097, 100003, 3_000_001])
def test_array_copy_sizes_and_offsets(rng, n):
    """The copy kernel's vector path (aligned) and word path (offset views), every tail length."""
    x = rng.standard_normal(n).astype(np.float32)
    a = vaccel.asarray(x)
    np.testing.assert_array_equal(a.copy().numpy(), x)
    if n > 1:
        np.testing.assert_array_equal(a[1:].copy().numpy(), x[1:])


_HOST_PATHS_CHILD = r"""
import numpy as np, scipy.spatial.distance as sd, vaccel
rng = np.random.default_rng(5)
a = rng.standard_normal((700, 33)).astype(np.float32)
b = rng.standard_normal((900, 33)).astype(np.float32)
for _ in range(2):   # outputs of 2.5 MB: past the import threshold
    got = vaccel.cdist(a, b)
    np.testing.assert_allclose(got, sd.cdist(a, b), rtol=1e-4, atol=1e-4)
with vaccel.batch():   # several large host results in one submit
    x = vaccel.cdist(a, b, "sqeuclidean")
    y = vaccel.cdist(b, a, "cityblock")
np.testing.assert_allclose(np.asarray(x), sd.cdist(a, b, "sqeuclidean"), rtol=1e-4, atol=1e-3)
np.testing.assert_allclose(np.asarray(y), sd.cdist(b, a, "cityblock"), rtol=1e-4, atol=1e-3)
# Small results written straight into host memory (reductions: plain stores), next to larger ones.
x = rng.standard_normal((30000, 3)).astype(np.float32)
dx = vaccel.asarray(x)
for _ in range(3):
    for src in (x, dx):
        assert abs(float(vaccel.sum(src)) - float(x.sum(dtype=np.float64))) < 1e-3
        assert vaccel.argmax(src) == np.argmax(x)
        np.testing.assert_allclose(vaccel.mean(src, axis=0), x.mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(vaccel.max(src, axis=1), x.max(axis=1))   # 120 KB: through the device
        st = vaccel.statistics(src, axis=0)
        np.testing.assert_allclose(st["var"], x.var(axis=0), rtol=1e-4)
# The other ops that write small results straight to host memory, from NumPy and device arrays.
p = rng.standard_normal((40, 24)).astype(np.float32)
q = rng.standard_normal((24, 30)).astype(np.float32)
v = rng.standard_normal(24).astype(np.float32)
for src_p, src_q in ((p, q), (vaccel.asarray(p), vaccel.asarray(q))):
    np.testing.assert_allclose(np.asarray(vaccel.matmul(src_p, src_q)), p @ q, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(vaccel.matvec(src_p, v)), p @ v, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(vaccel.transpose(src_p)), p.T)
    np.testing.assert_allclose(np.asarray(vaccel.cdist(src_p, p[:7])), sd.cdist(p, p[:7]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(vaccel.exp(src_p)), np.exp(p), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(vaccel.add(src_p, 1.5)), p + 1.5, rtol=1e-6)
    e = np.exp(p - p.max(axis=1, keepdims=True))
    np.testing.assert_allclose(np.asarray(vaccel.softmax(src_p)), e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    mu, var = p.mean(axis=1, keepdims=True), p.var(axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(vaccel.layer_norm(src_p)), (p - mu) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)
with vaccel.batch():
    s0 = vaccel.sum(dx, axis=0)
    m1 = vaccel.min(dx)
np.testing.assert_allclose(s0, x.sum(axis=0, dtype=np.float64), rtol=1e-6, atol=1e-3)
assert m1 == x.min()
D, I = vaccel.knn(a, b, 600)   # D and I past the threshold
R = np.argsort(sd.cdist(a, b, "sqeuclidean"), axis=1, kind="stable")[:, :600]
assert (I == R).mean() > 0.999
msgs = vaccel.validation_messages()
assert not msgs, msgs[:5]
print("ok", vaccel.info()["device"]["zero_copy"])
"""


@pytest.mark.parametrize("path", ["import", "staging"])
def test_host_result_paths(path):
    """Large host results on each path the device may take (VACCEL_ZERO_COPY forces it, in a child
    process since it is read when the context is made): on 'import' the work is submitted first and
    the result pages imported while it runs, their copies in a second submit (stream.c)."""
    if vaccel.get_backend() != "vulkan":
        pytest.skip("the Vulkan backend's host paths")
    if path == "import" and not vaccel.info()["device"].get("external_memory_host"):
        pytest.skip("the device cannot import host memory")
    assert _run_child(_HOST_PATHS_CHILD, VACCEL_ZERO_COPY=path) == ["ok", path]


def _run_child(script, **env):
    """Runs script in a fresh Python with env added (settings read when a context is made); its
    stdout split into words."""
    env = dict(os.environ, **env)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.split()


_POOL_CHILD = r"""
import numpy as np, scipy.spatial.distance as sd, vaccel
rng = np.random.default_rng(3)
a = rng.standard_normal((300, 20)).astype(np.float32)
b = rng.standard_normal((40, 20)).astype(np.float32)
for _ in range(2):
    with vaccel.batch():   # several kernels, bindings and dispatches in one command buffer
        x = vaccel.asarray(a)
        d = vaccel.cdist(x, b)
        m = vaccel.matmul(x, b.T)
        e = vaccel.exp(m)
    np.testing.assert_allclose(d.numpy(), sd.cdist(a, b), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(m.numpy(), a @ b.T, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(e.numpy(), np.exp(a @ b.T), rtol=1e-4)
    assert abs(float(vaccel.sum(a)) - float(a.sum(dtype=np.float64))) < 1e-3
    D, I = vaccel.knn(b, a, 5)
    np.testing.assert_array_equal(I, np.argsort(sd.cdist(b, a, "sqeuclidean"), axis=1, kind="stable")[:, :5])
msgs = vaccel.validation_messages()
assert not msgs, msgs[:5]
print("ok", vaccel.info()["device"]["push_descriptors"])
"""


@pytest.mark.parametrize("push", ["0", "1"])
def test_descriptor_paths(push):
    """Bindings pushed into the command buffer (VK_KHR_push_descriptor, the default where the device
    has it) and written into sets from a pool (VACCEL_PUSH_DESCRIPTORS=0, or a device without it)."""
    if vaccel.get_backend() != "vulkan":
        pytest.skip("the Vulkan backend's descriptor paths")
    words = _run_child(_POOL_CHILD, VACCEL_PUSH_DESCRIPTORS=push)
    assert words[0] == "ok"
    if push == "0":
        assert words[1] == "False"
    else:
        # lavapipe and NVIDIA's driver both have VK_KHR_push_descriptor: the default must use it.
        name = vaccel.info()["device"]["name"].lower()
        if "llvmpipe" in name or "nvidia" in name:
            assert words[1] == "True"


_STATS_CHILD = r"""
import numpy as np, vaccel
x = np.arange(12, dtype=np.float32).reshape(3, 4)
assert np.allclose(vaccel.matmul(x, x.T), x @ x.T) and vaccel.sum(x) == 66
print("ok", vaccel.info()["device"]["pipeline_stats"])
"""


def test_pipeline_stats(backend, tmp_path):
    """VACCEL_PIPELINE_STATS=1: where the device reports compiler statistics
    (VK_KHR_pipeline_executable_properties), each new pipeline's go to stderr, named; elsewhere
    nothing changes."""
    if backend != "vulkan":
        pytest.skip("a Vulkan setting")
    env = dict(os.environ, VACCEL_PIPELINE_STATS="1", VACCEL_CACHE_DIR=str(tmp_path))
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", _STATS_CHILD], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    words = proc.stdout.split()
    assert words[0] == "ok"
    lines = [l for l in proc.stderr.splitlines() if l.startswith("vaccel pipeline stats: ")]
    if words[1] == "True":
        names = {l.split()[3] for l in lines}
        assert any(n.startswith("reduce") for n in names) and any(n.startswith("matmul") for n in names), \
            proc.stderr[-3000:]
        assert all(" | " in l for l in lines)
    else:
        assert words[1] == "False" and not lines
    if os.environ.get("VACCEL_PIPELINE_STATS") != "1":
        assert vaccel.info()["device"]["pipeline_stats"] is False   # this process did not ask


_WAIT_CHILD = r"""
import os, numpy as np, vaccel
want = int(os.environ["VACCEL_SPIN_US"])
assert vaccel.info()["device"]["wait_spin_us"] == want, vaccel.info()["device"]["wait_spin_us"]
rng = np.random.default_rng(9)
x = rng.standard_normal((3000, 257)).astype(np.float32)
y = rng.standard_normal((3000, 257)).astype(np.float32)
dx, dy = vaccel.asarray(x), vaccel.asarray(y)
for _ in range(3):   # one wait per op: short ones end while polling, longer ones after it
    np.testing.assert_allclose(vaccel.add(dx, dy).numpy(), x + y, rtol=1e-6)
    np.testing.assert_allclose(vaccel.sum(dx), x.sum(dtype=np.float64), rtol=1e-5)
    D, I = vaccel.knn(x[:200], y, 10)
    ref = np.argsort(((x[:200, None, :] - y[None]) ** 2).sum(-1), axis=1, kind="stable")[:, :10]
    assert (I == ref).mean() > 0.999
with vaccel.batch():
    z = vaccel.exp(vaccel.multiply(dx, 0.25))
np.testing.assert_allclose(z.numpy(), np.exp(x * 0.25), rtol=1e-5)
msgs = vaccel.validation_messages()
assert not msgs, msgs[:5]
print("ok")
"""


@pytest.mark.parametrize("spin_us", ["0", "1", "2000000"])
def test_wait_polls_then_sleeps(spin_us):
    """Waits poll the fence for VACCEL_SPIN_US microseconds before sleeping (stream.c spin_on; read
    when the context is made, so in a child process): never (0), giving up at once (1), and long
    enough for every op here to finish while polling."""
    if vaccel.get_backend() != "vulkan":
        pytest.skip("the Vulkan backend's waits")
    assert _run_child(_WAIT_CHILD, VACCEL_SPIN_US=spin_us) == ["ok"]
