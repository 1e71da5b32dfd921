"""Runs the fuzz targets of `targets.py` against the installed `dlpack` module.

    python fuzz/python/run.py --seconds N [--target NAME ...]

Each target runs in a child process of its own for N seconds (a crash then ends that target only,
and is reported with its signal): hypothesis generates inputs with a time budget, randomised
(`derandomize=False`, no example database), in rounds of 50 examples until the time is
up. A finding is shrunk by hypothesis and reported with its falsifying example; the target then
goes on. The report gives the executions and findings per target; the exit status is 1 if any
target found anything or crashed.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run_target(name, seconds):
    """In the child: fuzz one target; print one JSON line with the counts."""
    sys.path.insert(0, HERE)
    faulthandler.enable()
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    import targets

    targets.setup()
    body = targets.TARGETS[name]
    executions = 0
    findings = {}

    def counted(data):
        nonlocal executions
        executions += 1
        body(data)

    test = given(st.data())(counted)
    run = settings(
        max_examples=50,
        deadline=None,
        derandomize=False,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
        print_blob=False,
    )(test)
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline and len(findings) < 20:
        rounds += 1
        try:
            run()
        except targets.Finding as e:
            key = str(e).split("\n")[0]
            notes = "\n".join(getattr(e, "__notes__", []))
            findings.setdefault(key, notes)
        except Exception as e:  # noqa: BLE001 - the harness itself failed
            key = f"harness error: {type(e).__name__}: {e}"
            notes = "\n".join(getattr(e, "__notes__", []))
            findings.setdefault(key, notes)
    print(json.dumps({"target": name, "executions": executions, "rounds": rounds,
                      "findings": [{"finding": k, "example": v} for k, v in findings.items()]}),
          flush=True)


def main():
    sys.path.insert(0, HERE)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10, help="seconds per target")
    ap.add_argument("--target", action="append", help="run only these targets")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_target(args.child, args.seconds)
        return 0
    import targets

    names = args.target or list(targets.TARGETS)
    unknown = [n for n in names if n not in targets.TARGETS]
    if unknown:
        ap.error(f"unknown targets {unknown}; known: {list(targets.TARGETS)}")
    failed = False
    rows = []
    for name in names:
        start = time.monotonic()
        p = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--child", name,
             "--seconds", str(args.seconds)],
            capture_output=True, text=True,
        )
        took = time.monotonic() - start
        result = None
        for line in p.stdout.splitlines():
            if line.startswith("{"):
                result = json.loads(line)
        if p.returncode != 0 or result is None:
            failed = True
            print(f"[{name}] CRASHED: exit status {p.returncode}", flush=True)
            print(p.stderr[-4000:], flush=True)
            rows.append((name, "?", "crash"))
            continue
        n = len(result["findings"])
        failed |= n > 0
        for f in result["findings"]:
            print(f"[{name}] FINDING: {f['finding']}\n{f['example']}\n", flush=True)
        rate = result["executions"] / max(took, 1e-9)
        print(f"[{name}] {result['executions']} executions in {took:.0f} s ({rate:.0f}/s), "
              f"{n} findings", flush=True)
        rows.append((name, result["executions"], n))
    print("\ntarget                 executions  findings")
    for name, ex, n in rows:
        print(f"{name:<22} {ex!s:>10}  {n!s:>8}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
