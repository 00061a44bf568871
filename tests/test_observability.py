"""vaccel.profile() and vaccel.memory_stats(): what they report, and that repeated calls leave no
device memory behind."""
import json

import numpy as np

import vaccel


def test_profile_records_dispatches_and_traffic(rng, tmp_path):
    xa = rng.standard_normal((300, 40)).astype(np.float32)
    xb = rng.standard_normal((500, 40)).astype(np.float32)

    def work():
        d = vaccel.cdist(xa, xb, "sqeuclidean")
        with vaccel.batch():
            a = vaccel.asarray(xa)
            n = vaccel.normalize(a)
            e = vaccel.cdist(n, n, "inner")
        return d, e

    work()  # every pipeline exists before the profile
    with vaccel.profile() as p:
        d, e = work()
    s = p.to_dict()
    kernels = [k["kernel"] for k in s["dispatches"]]
    assert kernels.count("cdist_tile") == 2 and "row_l2" in kernels
    assert all(k["gpu_ns"] > 0 for k in s["dispatches"]) or not vaccel.info()["device"]["timestamps"]
    assert s["submits"] == 2  # one per unbatched call, one for the whole batch
    assert s["dispatch_count"] == len(s["dispatches"])
    if vaccel.info()["device"]["zero_copy"] == "unified":
        # Host arrays are used in place: only asarray's copy moves bytes.
        assert s["bytes_uploaded"] == xa.nbytes and s["bytes_downloaded"] == 0
    else:
        assert s["bytes_uploaded"] >= 2 * xa.nbytes + xb.nbytes
        assert s["bytes_downloaded"] >= d.nbytes
    assert s["peak_device_bytes"] > 0
    # Host time of the two waits: submitting, waiting and finishing, within the profile's wall time.
    parts = (s["host_submit_s"], s["host_wait_s"], s["host_finish_s"])
    assert all(t > 0 for t in parts) and sum(parts) <= s["wall_s"] * 1.01 + 1e-4
    assert s["pipelines_created"] == 0 and s["pipeline_cache_hits"] > 0
    text = p.summary()
    assert "cdist_tile" in text and "submits 2" in text
    p.to_json(tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text())["submits"] == 2
    np.testing.assert_allclose(e.numpy(), np.clip(vaccel.cpu.cdist(xa, xa, "cosine") * -1 + 1, -2, 2),
                               atol=2e-5)


def test_no_device_memory_left_behind(rng):
    xa = rng.standard_normal((200, 64)).astype(np.float32)
    xb = rng.standard_normal((3000, 64)).astype(np.float32)
    for metric in ("sqeuclidean", "cosine", "cityblock"):
        vaccel.cdist(xa, xb, metric)
    vaccel.normalize(xb)
    before = vaccel.memory_stats()["device_bytes_in_use"]
    for _ in range(5):
        for metric in ("sqeuclidean", "cosine", "cityblock"):
            vaccel.cdist(xa, xb, metric)
        a = vaccel.asarray(xb)
        vaccel.cdist(a, a, "euclidean").numpy()
        vaccel.normalize(a).copy().numpy()
        del a
    assert vaccel.memory_stats()["device_bytes_in_use"] == before


def test_memory_stats_peak_reset():
    a = vaccel.empty((1 << 20,), np.float32)
    s = vaccel.memory_stats(reset_peak=True)
    assert s["device_bytes_peak"] >= s["device_bytes_in_use"] >= a.nbytes
    del a
    assert vaccel.memory_stats()["device_bytes_peak"] <= s["device_bytes_in_use"]
