# The benchmark suite still runs end to end: one small cdist case and the tiny-call latency case,
# in a separate process (the CLI as a user calls it), with the validation layer on there too.
# Only that it runs, checks its results and writes its JSON is asserted; never a timing.

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_benchmarks_quick_run_writes_checked_json(tmp_path):
    out = tmp_path / "b.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # On unless the run turned it off (conftest sets it to 1 by default; a GPU machine without the
    # layer runs the tests with 0): with it on, the CLI exits 3 if the layer reports anything.
    env.setdefault("VACCEL_VALIDATION", "1")
    cmd = [sys.executable, "-m", "benchmarks", "--quick",
           "--only", "cdist/sqeuclidean/64x1000x32|runtime/latency",
           "--repeats", "2", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    log = f"$ {' '.join(cmd)}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, log

    doc = json.loads(out.read_text())
    for key in ("vaccel_device", "git_revision", "versions", "ceilings", "records"):
        assert key in doc, f"metadata key {key!r} missing\n{log}"
    assert doc["complete"] is True
    assert doc["versions"].get("numpy") and doc["versions"].get("vaccel"), doc["versions"]
    assert doc["validation_messages"] == []

    cases = {r["case"] for r in doc["records"]}
    assert cases == {"cdist/sqeuclidean/64x1000x32", "runtime/latency/cdist-8x8x8"}, cases
    vaccel_ok = [r for r in doc["records"] if r["impl"] == "vaccel" and r.get("status") == "ok"]
    assert {r["case"] for r in vaccel_ok} == cases, log
    for r in vaccel_ok:
        assert r["median_s"] > 0 and r["repeats"] >= 2, r
        assert r["correct"] is True, r


def test_compare_merges_a_devices_baseline_parts(tmp_path):
    # --compare with a directory reads <slug>.json and every <slug>-<part>.json of this device
    # (the newest record of each case wins) and counts a vaccel record >10% slower, or using >5%
    # more memory, as a regression; peers' drift is shown but not counted.
    sys.path.insert(0, REPO)
    try:
        from benchmarks.report import baseline_paths, compare, merge_baselines
    finally:
        sys.path.remove(REPO)

    def rec(case, impl, t, mem=None):
        return {"case": case, "impl": impl, "device": "gpu", "status": "ok", "median_s": t,
                "peak_mem_bytes": mem}

    old = {"date": "2026-01-01T00:00:00", "git_revision": "aaa", "vaccel_device": "Dev X",
           "records": [rec("a/1", "vaccel", 1.0), rec("b/1", "vaccel", 1.0)]}
    new = {"date": "2026-02-01T00:00:00", "git_revision": "bbb", "vaccel_device": "Dev X",
           "records": [rec("b/1", "vaccel", 2.0), rec("c/1", "vaccel", 1.0, 1 << 30),
                       rec("c/1", "torch-cuda", 1.0)]}
    other = {"date": "2026-03-01T00:00:00", "records": [rec("a/1", "vaccel", 100.0)]}
    (tmp_path / "dev-x.json").write_text(json.dumps(new))
    (tmp_path / "dev-x-search.json").write_text(json.dumps(old))
    (tmp_path / "dev-y.json").write_text(json.dumps(other))
    paths = baseline_paths(str(tmp_path), "Dev X")
    assert [os.path.basename(p) for p in paths] == ["dev-x-search.json", "dev-x.json"]
    base = merge_baselines([json.loads(open(p).read()) for p in paths])
    got = {(r["case"], r["impl"]): r["median_s"] for r in base["records"]}
    assert got == {("a/1", "vaccel"): 1.0, ("b/1", "vaccel"): 2.0, ("c/1", "vaccel"): 1.0,
                   ("c/1", "torch-cuda"): 1.0}

    lines = []
    now = [rec("a/1", "vaccel", 1.05), rec("b/1", "vaccel", 2.3), rec("c/1", "vaccel", 1.0, 2 << 30),
           rec("c/1", "torch-cuda", 5.0)]
    assert compare(now, base, out=lines.append) == 2   # b/1 15% slower, c/1 twice the memory
    text = "\n".join(lines)
    assert "SLOWER" in text and "MORE MEMORY" in text and "peer: not counted" in text
    assert compare([rec("a/1", "vaccel", 1.05)], base, out=lines.append) == 0
