"""python3 -m benchmarks: measure vaccel against its peers on this machine.

  python3 -m benchmarks --quick                      small sizes, a couple of minutes on lavapipe
  python3 -m benchmarks --json benchmarks/baselines/ full run, JSON to <device-slug>.json
  python3 -m benchmarks --only 'cdist/(sq)?euclidean' --compare benchmarks/baselines/
  python3 -m benchmarks --list
  python3 -m benchmarks --only '4096x1000000x128|latency|copy'   headline, tiny-call latency and
                                                     copy cases only (ceilings are always measured)

Cases run in order of importance (the headline cdist, the tiny-call latency and the copy first),
so a run cut short by --max-time loses the least; the JSON file is rewritten after every case
("complete": false until the end), so even a killed run leaves what it measured.

Exit status: 0 fine; 1 a regression against --compare; 2 a vaccel implementation failed its
correctness check or raised (peer failures are reported but do not change the status); 3 the
Khronos validation layer (VACCEL_VALIDATION=1) reported messages during the run.
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
                   help="baseline JSON, or a directory holding this device's <device-slug>.json and "
                        "<device-slug>-<part>.json files (merged, newest record per case); exit 1 on "
                        "a case >10%% slower or >5%% more peak memory")
    p.add_argument("--repeats", type=int, help="timed calls per implementation (default 5 quick, 10 full)")
    p.add_argument("--budget", type=float,
                   help="seconds of timed calls per implementation before stopping early "
                        "(at least 3 calls; default 2 quick, 20 full)")
    p.add_argument("--max-time", type=float, metavar="SECONDS",
                   help="stop starting new cases after this many seconds (the rest are recorded "
                        "as skipped); a case already started runs to its end")
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
    from .report import HEADER, baseline_paths, compare, document, format_records, merge_baselines, resolve_path, \
        write_json

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
    device_name = peers.vaccel_device_name() if peers.vaccel is not None else "unknown"
    json_path = resolve_path(args.json, device_name) if args.json else None
    records = []
    while cases:
        case = cases.pop(0)      # dropped once run: its inputs and cached references go with it
        if args.max_time is not None and time.perf_counter() - t0 > args.max_time:
            recs = [dict(case=case.name, family=case.family, op=case.op, impl=i.name,
                         params=dict(case.params), unit=case.unit, status="skipped",
                         reason=f"--max-time {args.max_time:g} s reached") for i in case.impls]
            print(f"{case.name:<38} SKIP: --max-time {args.max_time:g} s reached", flush=True)
        else:
            recs = run_case(case, ctx, repeats, budget)
            if recs:
                print(format_records(recs), flush=True)
            else:
                print(f"{case.name:<38} (no implementation available here)", flush=True)
        records.extend(recs)
        del case
        if json_path:
            write_json(document(peers, args, ctx.ceilings, records, complete=False), json_path)
    print(f"\n{len(records)} records in {time.perf_counter() - t0:.1f} s")

    messages = validation_messages(peers)
    doc = document(peers, args, ctx.ceilings, records, complete=True)
    doc["validation_messages"] = messages
    if json_path:
        write_json(doc, json_path)
        print(f"JSON written to {json_path}")
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
        docs = []
        for path in baseline_paths(args.compare, doc.get("vaccel_device") or "unknown"):
            try:
                with open(path) as f:
                    docs.append(json.load(f))
            except (OSError, ValueError) as e:
                print(f"\ncannot read baseline {path}: {e}")
                return 1
        base = merge_baselines(docs)
        if compare(records, base) and status == 0:
            status = 1
    if messages:
        print(f"\n{len(messages)} Vulkan validation message(s) during the run:")
        for m in messages[:50]:
            print(f"  validation: {m}")
        status = 3
    return status


def validation_messages(peers):
    """The Khronos validation layer's messages of this run (empty unless VACCEL_VALIDATION=1)."""
    if peers.vaccel is None or not hasattr(peers.vaccel, "validation_messages"):
        return []
    try:
        return [str(m) for m in peers.vaccel.validation_messages()]
    except Exception as e:  # noqa: BLE001
        return [f"(could not read validation messages: {type(e).__name__}: {e})"]


if __name__ == "__main__":
    sys.exit(main())
