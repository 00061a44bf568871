"""python3 -m benchmarks: measure vaccel against its peers on this machine.

  python3 -m benchmarks --quick                      small sizes, a couple of minutes on lavapipe
  python3 -m benchmarks --json benchmarks/baselines/ full run, JSON to <device-slug>.json
  python3 -m benchmarks --only 'cdist/(sq)?euclidean' --compare benchmarks/baselines/
  python3 -m benchmarks --list

Exit status: 0 fine; 1 a regression against --compare; 2 a vaccel implementation failed its
correctness check or raised (peer failures are reported but do not change the status).
"""

import argparse
import json
import os
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, one input set, fewer repeats")
    p.add_argument("--only", metavar="PATTERN",
                   help="run only cases whose name matches this regex (or substring)")
    p.add_argument("--device", help="vaccel device selector, passed as VACCEL_DEVICE")
    p.add_argument("--json", metavar="FILE",
                   help="write results as JSON (a directory: <dir>/<device-slug>.json)")
    p.add_argument("--plots", metavar="DIR", help="write plots here (needs matplotlib)")
    p.add_argument("--compare", metavar="BASELINE",
                   help="baseline JSON (or directory holding <device-slug>.json); exit 1 on a "
                        "case >10%% slower or >5%% more peak memory")
    p.add_argument("--repeats", type=int, help="timed calls per implementation (default 5 quick, 10 full)")
    p.add_argument("--budget", type=float,
                   help="seconds of timed calls per implementation before stopping early "
                        "(at least 3 calls; default 2 quick, 20 full)")
    p.add_argument("--list", action="store_true", help="list the cases and implementations, run nothing")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.device:
        os.environ["VACCEL_DEVICE"] = args.device
    repeats = args.repeats or (5 if args.quick else 10)
    budget = args.budget if args.budget is not None else (2.0 if args.quick else 20.0)

    from . import ceilings as ceil_mod
    from .harness import Context, load_cases, run_case, select
    from .peers import Peers
    from .report import HEADER, compare, document, format_records, resolve_path, write_json

    peers = Peers.load()
    ctx = Context(quick=args.quick, peers=peers)
    cases = select(load_cases(ctx), args.only)

    if args.list:
        for c in cases:
            impls = ", ".join(i.name for i in c.impls)
            print(f"{c.name:<40} {impls}")
            for name, why in c.skipped.items():
                print(f"{'':<40}   ({name}: {why})")
        return 0

    print(f"vaccel benchmarks ({'quick' if args.quick else 'full'}), {len(cases)} case(s)")
    if peers.vaccel is None:
        print(f"  vaccel NOT importable: {peers.missing.get('vaccel')}")
    else:
        info = peers.vaccel_info() or {}
        dev = info.get("device") or {}
        line = f"  vaccel {info.get('version', '?')} backend {info.get('backend', '?')}"
        if dev:
            line += (f": {dev.get('name', '?')} ({dev.get('driver_name', '?')} "
                     f"{dev.get('driver_info', '')}, Vulkan {dev.get('api_version', '?')})")
        print(line)
        if info.get("backend") != "vulkan":
            print("  WARNING: vaccel runs on its CPU backend (no usable Vulkan device"
                  + (f" for VACCEL_DEVICE={os.environ['VACCEL_DEVICE']}" if os.environ.get("VACCEL_DEVICE") else "")
                  + "): its rows measure the NumPy reference, not a GPU")
    print(f"  host: {peers.host_name()}, {os.cpu_count()} CPUs")
    print(f"  peers: {', '.join(peers.available())}")
    if peers.missing:
        print("  missing: " + "; ".join(f"{k} ({v.splitlines()[0][:60]})" for k, v in peers.missing.items()))

    t0 = time.perf_counter()
    print("measuring ceilings ...", flush=True)
    ctx.ceilings = ceil_mod.measure(peers, args.quick)
    print(ceil_mod.describe(ctx.ceilings))

    print()
    print(HEADER)
    print("-" * len(HEADER))
    records = []
    for case in cases:
        recs = run_case(case, ctx, repeats, budget)
        records.extend(recs)
        if recs:
            print(format_records(recs), flush=True)
        else:
            print(f"{case.name:<38} (no implementation available here)", flush=True)
    print(f"\n{len(records)} records in {time.perf_counter() - t0:.1f} s")

    doc = document(peers, args, ctx.ceilings, records)
    device_name = doc.get("vaccel_device") or "unknown"
    if args.json:
        path = resolve_path(args.json, device_name)
        write_json(doc, path)
        print(f"JSON written to {path}")
    if args.plots:
        from .plots import write_plots
        for path in write_plots(doc, args.plots):
            print(f"plot written to {path}")

    status = 0
    bad = [r for r in records if r.get("status") == "error" and r["impl"].startswith("vaccel")]
    if bad:
        print(f"\n{len(bad)} vaccel implementation(s) failed:")
        for r in bad:
            print(f"  {r['case']} {r['impl']}: {r.get('reason')}")
        status = 2
    if args.compare:
        path = resolve_path(args.compare, device_name)
        try:
            with open(path) as f:
                base = json.load(f)
        except (OSError, ValueError) as e:
            print(f"\ncannot read baseline {path}: {e}")
            return 1
        if compare(records, base) and status == 0:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
