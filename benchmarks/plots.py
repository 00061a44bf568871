"""Plots (matplotlib, optional): throughput against size per op, and rooflines.

throughput_<op>.png   one line per implementation, x = the case's size (m*n*d for cdist, bytes
                      for transfers), y = throughput
roofline_<side>.png   achieved GFLOP/s against arithmetic intensity (flops / minimal bytes) of
                      every case with both, under the measured bandwidth and GEMM ceilings of
                      the device (or of the host, for the CPU peers)
"""

import os
from collections import defaultdict

from .report import slug


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

    by_op = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.get("size") and r.get("throughput"):
            by_op[r["op"]][r["impl"]].append((r["size"], r["throughput"], r["unit"]))
    for op, impls in sorted(by_op.items()):
        if len({p[0] for pts in impls.values() for p in pts}) < 2:
            continue    # one size only: the table says it all
        fig, ax = plt.subplots(figsize=(7, 4.5))
        unit = None
        for impl, pts in sorted(impls.items()):
            pts.sort()
            unit = pts[0][2]
            style = "-o" if impl.startswith("vaccel") else "--."
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=impl,
                    linewidth=2 if impl.startswith("vaccel") else 1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("m*n*d" if op.startswith("cdist") else "size")
        ax.set_ylabel(unit or "")
        ax.set_title(f"{op} on {device}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        path = os.path.join(outdir, f"throughput_{slug(op)}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)

    c = doc.get("ceilings") or {}
    for side in ("device", "host"):
        bw, rate = c.get(f"{side}_copy_GBps"), c.get(f"{side}_gemm_GFLOPs")
        pts = [r for r in records if r.get("where") == side and r.get("flops") and r.get("bytes")
               and r.get("unit") == "GFLOP/s"]
        if not pts or not bw or not rate:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ais = [r["flops"] / r["bytes"] for r in pts]
        lo, hi = min(ais + [1.0]) / 4, max(ais + [rate / bw]) * 4
        xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
        ax.plot(xs, [min(bw * x, rate) for x in xs], "k-", linewidth=1.5,
                label=f"ceilings: {bw:,.0f} GB/s copy, {rate:,.0f} GFLOP/s GEMM")
        for impl in sorted({r["impl"] for r in pts}):
            sel = [r for r in pts if r["impl"] == impl]
            ax.scatter([r["flops"] / r["bytes"] for r in sel], [r["flops"] / r["median_s"] / 1e9 for r in sel],
                       label=impl, marker="o" if impl.startswith("vaccel") else "x", s=24)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("arithmetic intensity (flop / byte)")
        ax.set_ylabel("GFLOP/s achieved")
        ax.set_title(f"roofline, {side}: {device if side == 'device' else doc.get('host', '')}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        path = os.path.join(outdir, f"roofline_{side}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written
