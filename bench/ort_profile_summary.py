#!/usr/bin/env python3
"""Summarises an ONNX Runtime profile (the JSON trace ort.Options.ProfilePrefix writes).

For the last model_run in the file (or --run N, 0-based), prints the time per operator type
and the slowest nodes, with their input shapes. Pure standard library.

Usage: python3 bench/ort_profile_summary.py PROFILE.json [--run N] [--top 25]
"""
import argparse
import collections
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("profile")
    ap.add_argument("--run", type=int, default=-1, help="which model_run (default: the last)")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    events = json.load(open(args.profile))
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    if not runs:
        raise SystemExit("no model_run events")
    print(f"{len(runs)} runs: " + ", ".join(f"{r['dur'] / 1e6:.2f}s" for r in runs))
    run = runs[args.run]
    lo, hi = run["ts"], run["ts"] + run["dur"]
    nodes = [e for e in events if e.get("cat") == "Node" and lo <= e["ts"] <= hi
             and e.get("name", "").endswith("_kernel_time")]
    total = sum(e["dur"] for e in nodes)
    print(f"run {args.run}: wall {run['dur'] / 1e6:.2f}s, kernel time {total / 1e6:.2f}s in "
          f"{len(nodes)} kernels")
    by_op = collections.defaultdict(lambda: [0, 0])
    for e in nodes:
        op = e.get("args", {}).get("op_name", "?")
        by_op[op][0] += e["dur"]
        by_op[op][1] += 1
    print(f"\n{'op':32s} {'seconds':>9s} {'share':>7s} {'count':>7s}")
    for op, (d, c) in sorted(by_op.items(), key=lambda kv: -kv[1][0]):
        print(f"{op:32s} {d / 1e6:9.3f} {100 * d / total:6.1f}% {c:7d}")
    print(f"\nslowest {args.top} nodes:")
    for e in sorted(nodes, key=lambda e: -e["dur"])[: args.top]:
        a = e.get("args", {})
        shapes = a.get("input_type_shape", [])
        shapes = ",".join(str(list(s.values())[0]) for s in shapes)
        name = e["name"][: -len("_kernel_time")]
        print(f"{e['dur'] / 1e3:9.1f} ms  {a.get('op_name', '?'):16s} {name[:70]:70s} {shapes}")


if __name__ == "__main__":
    main()
