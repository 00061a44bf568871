"""Tables for the terminal, the JSON document, and the regression check against a baseline."""

import datetime
import functools
import json
import os
import re
import subprocess
import sys

TIME_TOLERANCE = 0.10   # a case more than 10% slower (median) than its baseline is a regression
MEM_TOLERANCE = 0.05    # more than 5% more peak memory is a regression
MEM_NOISE_BYTES = 1 << 20

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def slug(name):
    s = re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-")
    return s or "unknown"


def fmt_time(s):
    if s is None:
        return "-"
    return f"{s * 1e3:.4g}"


def fmt_thr(v, unit):
    if v is None:
        return "-"
    if unit == "call/s":
        return f"{v:,.0f} call/s"
    if v >= 1e4:
        u = {"GFLOP/s": "TFLOP/s", "GB/s": "TB/s"}.get(unit, unit)
        return f"{v / 1e3:.3g} {u}"
    return f"{v:.3g} {unit}"


def fmt_bytes(b):
    if b is None:
        return "-"
    for unit, k in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= k:
            return f"{b / k:.3g} {unit}"
    return f"{int(b)} B"


def ratios_text(r):
    parts = [f"{k[len('ratio_vs_'):]} {v:.2f}x" for k, v in r.items() if k.startswith("ratio_vs_")]
    return "  ".join(parts)


HEADER = (f"{'case':<38} {'impl':<14} {'median ms':>10} {'min ms':>10} {'throughput':>16} "
          f"{'floor':>7} {'peak mem':>10}  vs peers (peer time / vaccel time)")


def format_records(records):
    lines = []
    for r in records:
        name = r["case"] if len(r["case"]) <= 38 else "…" + r["case"][-37:]
        if r.get("status") != "ok":
            tag = "SKIP" if r.get("status") == "skipped" else "ERROR"
            lines.append(f"{name:<38} {r['impl']:<14} {tag}: {r.get('reason', '')}")
            continue
        frac = r.get("fraction_of_floor")
        lines.append(
            f"{name:<38} {r['impl']:<14} {fmt_time(r['median_s']):>10} {fmt_time(r['min_s']):>10} "
            f"{fmt_thr(r.get('throughput'), r['unit']):>16} "
            f"{(f'{100 * frac:.1f}%' if frac is not None else '-'):>7} "
            f"{fmt_bytes(r.get('peak_mem_bytes')):>10}  {ratios_text(r)}")
    return "\n".join(lines)


@functools.lru_cache(maxsize=None)
def git_revision():
    """(revision, dirty) of the checkout; $VACCEL_GIT_REVISION, where set, names it instead (a copy
    sent to a GPU machine may carry a stale .git), and dirty is then unknown (None)."""
    if os.environ.get("VACCEL_GIT_REVISION"):
        return os.environ["VACCEL_GIT_REVISION"], None
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=10)
        if rev.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                                   text=True, timeout=10)
            return rev.stdout.strip(), bool(dirty.stdout.strip())
    except Exception:
        pass
    return os.environ.get("VACCEL_GIT_REVISION") or None, None


def document(peers, args, ceilings, records, complete=True):
    rev, dirty = git_revision()
    return {
        "complete": complete,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_revision": rev,
        "git_dirty": dirty,
        "command": [os.path.basename(sys.executable), "-m", "benchmarks"] + sys.argv[1:],
        "mode": "quick" if args.quick else "full",
        "versions": peers.versions(),
        "vaccel_info": peers.vaccel_info(),
        "vaccel_device": peers.vaccel_device_name() if peers.vaccel is not None else None,
        "host": peers.host_name(),
        "cpu_count": os.cpu_count(),
        "peers_missing": peers.missing,
        "ceilings": ceilings,
        "records": records,
    }


def _default(o):
    try:
        import numpy as np
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    return str(o)


def resolve_path(path, device_name):
    """A directory (or a path ending in '/') means <dir>/<device-slug>.json."""
    if path.endswith(os.sep) or os.path.isdir(path):
        return os.path.join(path, slug(device_name) + ".json")
    return path


def baseline_paths(path, device_name):
    """The baseline files --compare reads: a file as given; for a directory, this device's
    <slug>.json and every <slug>-<part>.json beside it (a device's baseline may be written by
    several runs, each covering some case families with --only), oldest first."""
    if not (path.endswith(os.sep) or os.path.isdir(path)):
        return [path]
    s = slug(device_name)
    names = os.listdir(path) if os.path.isdir(path) else []
    found = [os.path.join(path, f) for f in names
             if f == s + ".json" or (f.startswith(s + "-") and f.endswith(".json"))]
    return sorted(found, key=lambda f: (_doc_date(f), f)) or [resolve_path(path, device_name)]


def _doc_date(path):
    try:
        with open(path) as f:
            return str(json.load(f).get("date", ""))
    except (OSError, ValueError):
        return ""


def merge_baselines(docs):
    """One baseline document from several of one device: for each (case, impl, device) the
    record of the newest document that has it."""
    if len(docs) == 1:
        return docs[0]
    recs = {}
    for d in docs:   # oldest first: newer records replace older ones
        for r in d.get("records", []):
            recs[(r["case"], r["impl"], r.get("device"))] = r
    last = docs[-1]
    revs = sorted({str(d.get("git_revision"))[:10] for d in docs})
    return {"date": last.get("date"), "git_revision": "+".join(revs), "vaccel_device": last.get("vaccel_device"),
            "records": list(recs.values())}


def write_json(doc, path):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=_default)
        f.write("\n")


def compare(records, baseline_doc, out=print):
    """Print deltas against a baseline; return the number of regressions."""
    base = {(r["case"], r["impl"], r.get("device")): r
            for r in baseline_doc.get("records", []) if r.get("status") == "ok"}
    rows, regressions, matched = [], 0, 0
    for r in records:
        if r.get("status") != "ok":
            continue
        b = base.get((r["case"], r["impl"], r.get("device")))
        if b is None:
            continue
        matched += 1
        dt = r["median_s"] / b["median_s"] - 1.0
        verdict = []
        counts = r["impl"].startswith("vaccel")   # peers' drift is shown, but fails nothing
        if dt > TIME_TOLERANCE:
            verdict.append("SLOWER")
        bm, nm = b.get("peak_mem_bytes"), r.get("peak_mem_bytes")
        dm = None
        if bm is not None and nm is not None:
            dm = (nm / bm - 1.0) if bm > 0 else (float("inf") if nm > 0 else 0.0)
            if nm > bm * (1 + MEM_TOLERANCE) and nm - bm > MEM_NOISE_BYTES:
                verdict.append("MORE MEMORY")
        if verdict and counts:
            regressions += 1
        text = ", ".join(verdict) or "ok"
        if verdict and not counts:
            text += " (peer: not counted)"
        rows.append((r["case"], r["impl"], b["median_s"], r["median_s"], dt, bm, nm, dm, text))
    out(f"\nComparison with baseline ({baseline_doc.get('date', '?')}, "
        f"rev {str(baseline_doc.get('git_revision'))[:10]}, device {baseline_doc.get('vaccel_device')}): "
        f"{matched} matching records; a vaccel record fails above +{TIME_TOLERANCE:.0%} median time "
        f"or +{MEM_TOLERANCE:.0%} peak memory")
    if not rows:
        out("  no record matches the baseline (same case, impl and device)")
        return 0
    out(f"{'case':<38} {'impl':<14} {'base ms':>10} {'now ms':>10} {'Δtime':>8} "
        f"{'base mem':>10} {'now mem':>10} {'Δmem':>8}  verdict")
    for case, impl, bt, nt, dt, bm, nm, dm, v in rows:
        name = case if len(case) <= 38 else "…" + case[-37:]
        dms = "-" if dm is None else f"{100 * dm:+.1f}%"
        out(f"{name:<38} {impl:<14} {fmt_time(bt):>10} {fmt_time(nt):>10} {100 * dt:>+7.1f}% "
            f"{fmt_bytes(bm):>10} {fmt_bytes(nm):>10} {dms:>8}  {v}")
    out(f"{regressions} regression(s)")
    return regressions
