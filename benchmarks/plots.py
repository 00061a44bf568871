"""Plots (matplotlib, optional): at most four PNG files, whatever the number of cases.

throughput.png   one panel per op measured at two sizes or more (cdist/<metric>, ...): one line
                 per implementation, x = the case's size (m*n*d for cdist, bytes for transfers),
                 y = throughput
roofline.png     one panel per side (device, host): achieved GFLOP/s against arithmetic intensity
                 (flops / minimal bytes) of every case with both, under the measured bandwidth
                 and GEMM ceilings of that side
runtime.png      the runtime cases as bars: tiny-call latency (µs per call) and transfer rates
                 (GB/s), one bar per implementation
recall_qps.png   approximate search (records carrying a recall figure and params.nq: the pq family):
                 one panel per op (ivfpq/<nb>/nlist=..., ivfflat/..., pq-index/...), queries per
                 second against recall, one line per implementation through its nprobe values;
                 recall is 1-recall@10 (recall_1_at_10: the exact nearest neighbour among the 10
                 returned) where the records carry it, else 10-recall@10 (recall_at_10), and the
                 axis label says which
"""

import math
import os
from collections import defaultdict

from .ceilings import bandwidth


def _grid(n):
    cols = min(n, 2)
    return int(math.ceil(n / cols)), cols


def _axes(plt, n, w=6.0, h=4.2):
    rows, cols = _grid(n)
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _save(fig, outdir, name, written):
    path = os.path.join(outdir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    written.append(path)


# The recall figures a record may carry, in the order the recall-vs-QPS plot prefers them.
RECALL_FIGURES = (("recall_1_at_10", "1-recall@10 (exact nearest neighbour among the 10 returned)"),
                  ("recall_at_10", "10-recall@10 (exact 10 nearest among the 10 returned)"))


def recall_figure(record):
    """The key of the recall figure a record is plotted by (RECALL_FIGURES' first it carries), or
    None."""
    return next((key for key, _ in RECALL_FIGURES if record.get(key) is not None), None)


def recall_axis_label(records, op):
    """The recall axis label of op's panel: the figure its records are plotted by."""
    keys = {recall_figure(r) for r in records if r.get("op") == op} - {None}
    labels = dict(RECALL_FIGURES)
    if len(keys) == 1:
        return labels[keys.pop()]
    return "recall: 1-recall@10 where recorded, else 10-recall@10"


def recall_qps_points(records):
    """{op: {impl: [(recall, queries per second, nprobe or None)]}} of the ok records that carry a
    recall figure (recall_figure) and params.nq, sorted by nprobe (the order a curve is drawn in)."""
    out = defaultdict(lambda: defaultdict(list))
    for r in records:
        p = r.get("params") or {}
        key = recall_figure(r)
        if r.get("status") != "ok" or key is None or not p.get("nq") or not r.get("median_s"):
            continue
        out[r["op"]][r["impl"]].append((float(r[key]), p["nq"] / r["median_s"], p.get("nprobe")))
    for impls in out.values():
        for pts in impls.values():
            pts.sort(key=lambda t: (t[2] is None, t[2] or 0, t[0]))
    return out


def write_plots(doc, outdir, log=print):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError:
        log("plots: matplotlib is not installed; no plots written (pip install matplotlib)")
        return []
    os.makedirs(outdir, exist_ok=True)
    records = [r for r in doc["records"] if r.get("status") == "ok"]
    written = []
    device = doc.get("vaccel_device") or "?"

    # -- throughput against size, one panel per op ----------------------------------------------
    by_op = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.get("size") and r.get("throughput") and r.get("unit") != "call/s":
            by_op[r["op"]][r["impl"]].append((r["size"], r["throughput"], r["unit"]))
    ops = [op for op, impls in sorted(by_op.items())
           if len({p[0] for pts in impls.values() for p in pts}) >= 2]   # one size: see the table
    if ops:
        fig, axes = _axes(plt, len(ops))
        for ax, op in zip(axes, ops):
            unit = None
            for impl, pts in sorted(by_op[op].items()):
                pts.sort()
                unit = pts[0][2]
                vac = impl.startswith("vaccel")
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o" if vac else "--.", label=impl,
                        linewidth=2 if vac else 1)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("m*n*d" if op.startswith("cdist") else "size")
            ax.set_ylabel(unit or "")
            ax.set_title(op, fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"throughput on {device}", fontsize=11)
        _save(fig, outdir, "throughput.png", written)
        plt.close(fig)

    # -- rooflines ------------------------------------------------------------------------------
    c = doc.get("ceilings") or {}
    sides = []
    for side in ("device", "host"):
        bw, rate = bandwidth(c, side), c.get(f"{side}_gemm_GFLOPs")
        pts = [r for r in records if r.get("where") == side and r.get("flops") and r.get("bytes")
               and r.get("unit") == "GFLOP/s"]
        if pts and bw and rate:
            sides.append((side, bw, rate, pts))
    if sides:
        fig, axes = _axes(plt, len(sides))
        for ax, (side, bw, rate, pts) in zip(axes, sides):
            ais = [r["flops"] / r["bytes"] for r in pts]
            lo, hi = min(ais + [1.0]) / 4, max(ais + [rate / bw]) * 4
            xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
            ax.plot(xs, [min(bw * x, rate) for x in xs], "k-", linewidth=1.5,
                    label=f"ceilings: {bw:,.0f} GB/s copy, {rate:,.0f} GFLOP/s GEMM")
            for impl in sorted({r["impl"] for r in pts}):
                sel = [r for r in pts if r["impl"] == impl]
                ax.scatter([r["flops"] / r["bytes"] for r in sel],
                           [r["flops"] / r["median_s"] / 1e9 for r in sel],
                           label=impl, marker="o" if impl.startswith("vaccel") else "x", s=24)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("arithmetic intensity (flop / byte)")
            ax.set_ylabel("GFLOP/s achieved")
            ax.set_title(f"{side}: {device if side == 'device' else doc.get('host', '')}", fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle("roofline", fontsize=11)
        _save(fig, outdir, "roofline.png", written)
        plt.close(fig)

    # -- runtime cases as bars ------------------------------------------------------------------
    rt = [r for r in records if r.get("family") == "runtime"]
    panels = []
    lat = [r for r in rt if r.get("unit") == "call/s"]
    if lat:
        panels.append(("latency: " + ", ".join(sorted({r["case"].rsplit("/", 1)[-1] for r in lat})),
                       [(r["impl"], r["median_s"] * 1e6) for r in lat], "µs per call (lower is better)"))
    for op in sorted({r["op"] for r in rt if r.get("unit") == "GB/s"}):
        sel = [r for r in rt if r["op"] == op and r.get("throughput")]
        if sel:
            panels.append((f"{op} ({', '.join(sorted({r['case'].rsplit('/', 1)[-1] for r in sel}))})",
                           [(r["impl"], r["throughput"]) for r in sel], "GB/s (higher is better)"))
    if panels:
        fig, axes = _axes(plt, len(panels), w=5.5, h=3.6)
        for ax, (title, bars, ylabel) in zip(axes, panels):
            names = [b[0] for b in bars]
            ax.bar(range(len(bars)), [b[1] for b in bars],
                   color=["tab:blue" if n.startswith("vaccel") else "tab:gray" for n in names])
            ax.set_xticks(range(len(bars)))
            ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
            if bars and min(b[1] for b in bars) > 0 and max(b[1] for b in bars) / min(b[1] for b in bars) > 50:
                ax.set_yscale("log")
            ax.set_ylabel(ylabel, fontsize=8)
            ax.set_title(title, fontsize=9)
            ax.grid(True, axis="y", alpha=0.3)
        fig.suptitle(f"runtime on {device}", fontsize=11)
        _save(fig, outdir, "runtime.png", written)
        plt.close(fig)

    # -- recall against queries per second (approximate search) --------------------------------
    curves = recall_qps_points(records)
    if curves:
        ops = sorted(curves)
        fig, axes = _axes(plt, len(ops))
        for ax, op in zip(axes, ops):
            for impl, pts in sorted(curves[op].items()):
                vac = impl.startswith("vaccel")
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o" if vac else "--x", label=impl,
                        linewidth=2 if vac else 1)
                for rec, qps, nprobe in pts:
                    if nprobe is not None and vac:
                        ax.annotate(str(nprobe), (rec, qps), textcoords="offset points", xytext=(3, 3), fontsize=6)
            ax.set_yscale("log")
            ax.set_xlabel(recall_axis_label(records, op), fontsize=8)
            ax.set_ylabel("queries / s (higher is better)")
            ax.set_title(op + (" (labels: nprobe)" if any(p[2] is not None for v in curves[op].values() for p in v)
                               else ""), fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"recall vs queries per second on {device}", fontsize=11)
        _save(fig, outdir, "recall_qps.png", written)
        plt.close(fig)
    return written
