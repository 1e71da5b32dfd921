"""Per-call cost of the `dlpack` module's exchanges, beside numpy, pydlpack, nanobind and dlpark.

Usage (inside the test venv, after `maturin develop --profile wheel`):

    python crates/dlpack-py/bench/bench_exchange.py            # full run (~2 min), report only
    python crates/dlpack-py/bench/bench_exchange.py --check    # exit 1 when a "must" bound fails
    python crates/dlpack-py/bench/bench_exchange.py --quick    # smoke run (~15 s)
    python crates/dlpack-py/bench/bench_exchange.py --anchors-dir <target>/bench-anchors/python

Method: warm-up over all cases, per case a loop count of >= 0.02 s, then 41 repeats interleaved
round-robin over all cases, each case keeping its best; ns per call.  Many short repeats find a
quiet moment for every case on a host whose speed drifts (this VM's drifted by up to 2x between
runs); with the 5 repeats of >= 0.2 s of shared/bench/nanobind/time_nanobind.py (`--harness`,
imported by path when found) two runs of one build differed by 2x.  "overhead" is the case
minus its reference (the module's own `_testing.noop(1)`, or the producer's own `__dlpack__`); for
other producers the bound is on take(x) - x.__dlpack__(max_version=(1, 3)) - (noop(1) - pass): what
the import adds to the #[pyfunction] call and to the producer's own work.  Reported beside it: the
same call made from Rust with the capsule dropped unconsumed (`_testing.call_dlpack`, the floor of any
compiled consumer), the import's own work over that call, and numpy's np.from_dlpack(x) over the
producer's call (a peer compiled consumer).

Peer anchors: the bounds of the borrowed import (`B take_borrowed(numpy)`, `B take_borrowed(torch)`)
are what a peer's import adds over a no-op function of its own module, measured in the same run:
nanobind's `take(nb::ndarray<>)` of a numpy array, dlpark's `python::from_dlpack` of a torch tensor
(through torch's C exchange API).  `cargo xtask bench` builds both modules from bench/anchors/ into
<target>/bench-anchors/python and passes that folder (--anchors-dir or DLPACK_BENCH_ANCHORS_DIR).
When an anchor module is missing or fails its check, the bound falls back to the fixed number
(ANCHOR_NUMPY_NS / ANCHOR_TORCH_NS, measured once on another day), with a loud note.
pydlpack 0.2.1 is loaded from <sys.prefix>/peers/pydlpack (or DLPACK_TEST_PYDLPACK_DIR) under the
name `pydlpack`, because it also imports as `dlpack`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import sys
import time
import timeit

import numpy as np

import dlpack
from dlpack import _testing as T

HERE = os.path.dirname(os.path.abspath(__file__))

# fixed anchors, the fallback when an anchor module is not there (ns of overhead over a no-op
# call, measured once on this machine kind)
ANCHOR_NUMPY_NS = 75.0    # nanobind 3.1 take(numpy array)
ANCHOR_TORCH_NS = 70.0    # dlpark, torch via the exchange API
# the anchor modules of bench/anchors/ (name in the tables, module)
ANCHOR_MODULES = (("nanobind", "nanobind_anchor"), ("dlpark", "dlpark_anchor"))
GOAL_IMPORT_NS = 40.0
MUST_OTHER_PRODUCER_NS = 60.0


# --------------------------------------------------------------------------------------
# harness: time_nanobind.py on request (--harness), else the built-in method
# --------------------------------------------------------------------------------------
def _find_harness():
    cands = [os.environ.get("DLPACK_BENCH_HARNESS")]
    root = os.path.abspath(os.path.join(HERE, "..", "..", ".."))  # repo root
    cands += [os.path.join(root, "shared", "bench", "nanobind", "time_nanobind.py"),
              os.path.join(root, "..", "shared", "bench", "nanobind", "time_nanobind.py")]
    for c in cands:
        if c and os.path.exists(c):
            try:
                spec = importlib.util.spec_from_file_location("time_nanobind", c)
                mod = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(mod)
                return mod, c
            except Exception as e:  # e.g. torch missing
                print(f"note: cannot import {c}: {e}", file=sys.stderr)
    return None, None


def _warmup(cases, seconds):
    timers = [timeit.Timer(stmt, globals=g) for _g, _l, stmt, g, _n in cases]
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for t in timers:
            t.timeit(number=200)


def _run(cases, repeat=5, min_time=0.2):
    timers = []
    for _group, label, stmt, g, ref in cases:
        t = timeit.Timer(stmt, globals=g)
        number = 1
        while True:
            dt = t.timeit(number)
            if dt >= min_time:
                break
            number *= 10 if dt < min_time / 10 else 2
        timers.append((label, t, number, ref))
    best = {label: float("inf") for label, *_ in timers}
    for _ in range(repeat):
        for label, t, number, _ref in timers:
            best[label] = min(best[label], t.timeit(number=number) / number * 1e9)
    return {label: (best[label], number, None if ref is None else best[label] - best[ref])
            for label, _t, number, ref in timers}


# --------------------------------------------------------------------------------------
# peers
# --------------------------------------------------------------------------------------
def load_pydlpack():
    dirs = [os.environ.get("DLPACK_TEST_PYDLPACK_DIR"), os.path.join(sys.prefix, "peers", "pydlpack")]
    for d in dirs:
        if d and os.path.exists(os.path.join(d, "dlpack", "__init__.py")):
            init = os.path.join(d, "dlpack", "__init__.py")
            spec = importlib.util.spec_from_file_location(
                "pydlpack", init, submodule_search_locations=[os.path.dirname(init)])
            mod = importlib.util.module_from_spec(spec)
            sys.modules["pydlpack"] = mod
            spec.loader.exec_module(mod)
            assert sys.modules["dlpack"] is dlpack
            return mod
    return None


def loud(message):
    rule = "!" * 78
    print(f"\n{rule}\n" + "\n".join(f"!!!  {line}" for line in message.splitlines()) + f"\n{rule}\n",
          file=sys.stderr)


def load_anchors(anchors_dir, samples):
    """{name: module} of the anchor modules found in `anchors_dir` whose take(x) returns x.ndim
    for each of `samples`; a loud note for each one missing or wrong."""
    if not anchors_dir:
        loud("no anchors folder (--anchors-dir / DLPACK_BENCH_ANCHORS_DIR): the import bounds use\n"
             "the FIXED anchors, measured once on another day (`cargo xtask bench` builds them)")
        return {}
    if not os.path.isdir(anchors_dir):
        loud(f"anchors folder {anchors_dir} does not exist: the import bounds use the FIXED anchors")
        return {}
    sys.path.insert(0, anchors_dir)
    out = {}
    for name, module in ANCHOR_MODULES:
        try:
            m = importlib.import_module(module)
            for x in samples:
                got = m.take(x)
                if got != x.ndim or m.noop(1) != 1:
                    raise ValueError(f"take({type(x).__name__} of ndim {x.ndim}) returned {got}")
        except Exception as e:  # ImportError, or an anchor that does not import correctly
            loud(f"{name} anchor ({module} in {anchors_dir}) not usable: {type(e).__name__}: {e}\n"
                 f"its bound falls back to the FIXED anchor")
            continue
        out[name] = m
    return out


def anchor_versions():
    """Versions of the anchors' libraries: nanobind's Python package (which built the module) and
    the dlpark of the anchor crate's Cargo.lock."""
    out = []
    try:
        import nanobind
        out.append(f"nanobind {nanobind.__version__}")
    except ImportError:
        pass
    try:
        with open(os.path.join(HERE, "anchors", "dlpark", "Cargo.lock")) as f:
            lock = f.read()
        out.append("dlpark " + lock.split('name = "dlpark"\nversion = "', 1)[1].split('"', 1)[0])
    except (OSError, IndexError):
        pass
    return out


class PyProducer:
    """A plain Python producer wrapping numpy (its __dlpack__ is Python code)."""

    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        return self.a.__dlpack__(stream=stream, max_version=max_version, dl_device=dl_device, copy=copy)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


# --------------------------------------------------------------------------------------
def build(args):
    cases = []   # (group, label, stmt, globals, reference label or None)
    checks = []  # (label, kind, value-fn(results) -> float, bound, "ratio"/"ns", describe)
    pyd = load_pydlpack()
    if pyd is None:
        print("note: pydlpack 0.2.1 not found; its cases are left out", file=sys.stderr)
    a = np.arange(256, dtype=np.float32)  # 1 KiB
    ba = bytearray(1024)
    by = bytes(1024)
    g = dict(np=np, dlpack=dlpack, T=T, pyd=pyd, a=a, ba=ba, by=by)

    # --- A: np.from_dlpack(asdlpack(x)) against numpy and pydlpack
    for key, x, own_stmt, own_label in (
            ("numpy", "a", "np.from_dlpack(a)", "np.from_dlpack(a)"),
            ("bytearray", "ba", "np.frombuffer(ba, dtype=np.uint8)", "np.frombuffer(bytearray)"),
            ("bytes", "by", "np.frombuffer(by, dtype=np.uint8)", "np.frombuffer(bytes)")):
        own = f"A {key}: numpy own: {own_label}"
        ours = f"A {key}: np.from_dlpack(dlpack.asdlpack(x))"
        cases += [("A", own, own_stmt, g, None),
                  ("A", ours, f"np.from_dlpack(dlpack.asdlpack({x}))", g, None)]
        checks.append((ours, "goal", lambda r, o=ours, n=own: r[o][0] / r[n][0], 1.5, "x numpy",
                       "ratio to numpy's own"))
        checks.append((ours, "must", lambda r, o=ours, n=own: r[o][0] / r[n][0], 2.0, "x numpy",
                       "ratio to numpy's own"))
        if pyd is not None:
            peer = f"A {key}: np.from_dlpack(pydlpack.asdlpack(x))"
            cases.append(("A", peer, f"np.from_dlpack(pyd.asdlpack({x}))", g, None))
            checks.append((ours, "must>=", lambda r, o=ours, p=peer: r[p][0] / r[o][0], 30.0,
                           "x faster than pydlpack", "pydlpack / ours"))

    # --- B: Rust import overhead over a no-op #[pyfunction] of the same module
    noop = "B dlpack._testing.noop(1)"
    cases.append(("B", noop, "T.noop(1)", g, None))
    try:
        import torch
        t = torch.arange(256, dtype=torch.float32)
        g["t"] = t
    except ImportError:
        torch = None
        print("note: torch not installed; torch cases left out", file=sys.stderr)
    xs = {"numpy": "a", "torch": "t"}
    # the peer anchors: each module's take(x) over its own noop(1), timed in the same run
    samples = [np.zeros((2, 3, 4), dtype=np.float32)] + ([torch.zeros(2, 3)] if torch else [])
    anchors = load_anchors(args.anchors_dir, samples)
    anchor_cases = []
    for name, m in anchors.items():
        gm = dict(g, m=m)
        mnoop = f"B {name}: noop(1)"
        anchor_cases.append(("B", mnoop, "m.noop(1)", gm, None))
        for what in ("numpy", "torch") if name == "nanobind" else ("torch", "numpy"):
            if xs[what] in g:
                anchor_cases.append(("B", f"B {name}: take({what})", f"m.take({xs[what]})", gm, mnoop))
        if name == "dlpark" and "t" in g and hasattr(m, "take_borrowed"):
            anchor_cases.append(("B", "B dlpark: take_borrowed(torch)", "m.take_borrowed(t)", gm, mnoop))
    # the bound of each borrowed import: the peer's same-run overhead, else the fixed number
    anchor_used = []  # (what, which anchor, why, fn(results) -> ns over its noop)
    for what, peer, fixed, fixed_who in (("numpy", "nanobind", ANCHOR_NUMPY_NS, "nanobind 3.1"),
                                         ("torch", "dlpark", ANCHOR_TORCH_NS, "dlpark")):
        if xs[what] not in g:
            continue
        if peer in anchors and peer == "dlpark" and hasattr(anchors[peer], "take_borrowed"):
            # dlpark's fastest torch import: owned (from_dlpack) or borrowed
            # (ExchangeApi::with_tensor_view_no_sync), whichever is cheaper in this run
            anchor_used.append((what, f"{peer} fastest of take/take_borrowed({what}), same run", "",
                                lambda r, w=what: min(r[f"B dlpark: take({w})"][2],
                                                      r[f"B dlpark: take_borrowed({w})"][2])))
        elif peer in anchors:
            anchor_used.append((what, f"{peer} take({what}), same run", "",
                                lambda r, l=f"B {peer}: take({what})": r[l][2]))
        else:
            anchor_used.append((what, f"FIXED {fixed:.0f} ns",
                                f"{fixed_who}, measured once; the {peer} anchor is not loaded",
                                lambda r, v=fixed: v))
    for what, anchor_what, _why, anchor in anchor_used:
        x = xs[what]
        # The bounds hold for the import a #[pyfunction] taking a tensor for the call makes:
        # borrowed (NumPy's own fields; torch's dltensor_from_py_object_no_sync), which the
        # issue allows where honest. The owning import (a PyTensor that may outlive the call)
        # is reported against the same numbers.
        for fn, kind in (("take_borrowed", "must"), ("take", "info")):
            label = f"B {fn}({what})"
            cases.append(("B", label, f"T.{fn}({x})", g, noop))
            checks.append((label, "goal" if kind == "must" else "info",
                           lambda r, l=label: r[l][2], GOAL_IMPORT_NS, "ns over noop", "overhead"))
            checks.append((label, kind, lambda r, l=label: r[l][2], anchor, "ns over noop",
                           f"overhead; anchor: {anchor_what}"))
            if not anchor_what.startswith("FIXED"):
                fixed = ANCHOR_NUMPY_NS if what == "numpy" else ANCHOR_TORCH_NS
                checks.append((label, "info", lambda r, l=label: r[l][2], fixed, "ns over noop",
                               "overhead; the fixed anchor of another day"))
    cases += anchor_cases

    # other producers: the import's overhead over the producer's own __dlpack__(max_version=(1, 3)):
    # take(x) costs the timing loop + the #[pyfunction] call + the producer's call + the import's
    # own work, and x.__dlpack__(...) the loop + the producer's call; the bound is on the import's
    # own work: take(x) - x.__dlpack__(max_version=(1, 3)) - (noop(1) - the empty statement).
    floor = "B (empty statement)"
    cases.append(("B", floor, "pass", g, None))
    others = [("PyProducer(numpy)", PyProducer(a))]
    try:
        import jax
        import jax.numpy as jnp
        others.append(("jax", jnp.arange(256, dtype=jnp.float32)))
    except ImportError:
        pass
    def beyond_call_floor(label):
        """The case's overhead over its reference, less the #[pyfunction] call floor."""
        return lambda r: r[label][2] - (r[noop][0] - r[floor][0])

    for what, x in others:
        gx = dict(g, x=x)
        own = f"B {what}: x.__dlpack__(max_version=(1, 3))"
        label = f"B take({what})"
        # where it goes: calling the producer from compiled code at all (the interpreter is
        # re-entered from C instead of inlining a Python-to-Python call), then the import's own
        # work on the capsule; and a peer C consumer (numpy) over the same producer
        call = f"B call({what}) (C call only)"
        peer = f"B np.from_dlpack({what})"
        cases += [("B", own, "x.__dlpack__(max_version=(1, 3))", gx, None),
                  ("B", label, "T.take(x)", gx, own),
                  ("B", call, "T.call_dlpack(x)", gx, own),
                  ("B", peer, "np.from_dlpack(x)", gx, own)]
        over = "ns over the call + own __dlpack__"
        checks += [
            (label, "must", beyond_call_floor(label), MUST_OTHER_PRODUCER_NS, over,
             "take - own call - (noop - empty)"),
            (call, "info", beyond_call_floor(call), MUST_OTHER_PRODUCER_NS, over,
             "the C call alone: call - own call - (noop - empty)"),
            (label, "info", lambda r, l=label, c=call: r[l][0] - r[c][0], MUST_OTHER_PRODUCER_NS,
             "ns", "the import's own work: take - call"),
            (peer, "info", lambda r, p=peer: r[p][2], MUST_OTHER_PRODUCER_NS,
             "ns over own __dlpack__", "numpy as the consumer: np.from_dlpack - own call"),
        ]

    # --- C: 1 KiB vs 1 GiB (zero-copy: the size must not matter)
    big = np.empty(1 << 28, dtype=np.float32)  # 1 GiB, pages never touched
    g["big"] = big
    for stmt, what in (("np.from_dlpack(dlpack.asdlpack({}))", "np.from_dlpack(asdlpack(x))"),
                       ("T.take({})", "take(x)")):
        small_l = f"C {what} 1 KiB"
        big_l = f"C {what} 1 GiB"
        cases += [("C", small_l, stmt.format("a"), g, None), ("C", big_l, stmt.format("big"), g, None)]
        checks.append((big_l, "must", lambda r, b=big_l, s=small_l: r[b][0] / r[s][0], 1.2,
                       "x the 1 KiB time", "ratio 1 GiB / 1 KiB"))
    return cases, checks, anchor_used


def versions():
    out = [f"python {platform.python_version()}", f"numpy {np.__version__}",
           f"dlpack {getattr(dlpack, '__version__', '?')}"]
    for name in ("torch", "jax"):
        m = sys.modules.get(name)
        if m is not None:
            out.append(f"{name} {getattr(m, '__version__', '?')}")
    return ", ".join(out + anchor_versions()) + f", {platform.machine()}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 when a 'must' bound fails")
    ap.add_argument("--quick", action="store_true", help="fast smoke run (less warm-up, fewer repeats)")
    ap.add_argument("--anchors-dir", default=os.environ.get("DLPACK_BENCH_ANCHORS_DIR"),
                    help="folder of the anchor modules nanobind_anchor and dlpark_anchor "
                         "(cargo xtask bench builds them into <target>/bench-anchors/python)")
    ap.add_argument("--warmup", type=float, default=None, help="warm-up seconds (default 15, quick 1)")
    ap.add_argument("--repeat", type=int, default=None, help="interleaved repeats (default 41, quick 3)")
    ap.add_argument("--min-time", type=float, default=0.02, help="seconds per repeat (default 0.02)")
    ap.add_argument("--harness", action="store_true",
                    help="time with shared/bench/nanobind/time_nanobind.py (5 repeats of >= 0.2 s)")
    args = ap.parse_args(argv)

    repeat = args.repeat or (3 if args.quick else 41)
    min_time = args.min_time
    harness, hpath = _find_harness() if args.harness else (None, None)
    if args.harness and harness is None:
        print("note: time_nanobind.py not found; the built-in method is used", file=sys.stderr)
    cases, checks, anchor_used = build(args)
    warm = args.warmup if args.warmup is not None else (1.0 if args.quick else 15.0)
    print(f"# dlpack exchange benchmark\n\n{versions()}")
    method = (f"{hpath}: best of 5 interleaved repeats, >= 0.2 s each" if harness is not None
              else f"best of {repeat} interleaved repeats, >= {min_time:g} s each")
    print(f"method: {method}; warm-up {warm:.0f} s\n")
    if harness is not None:
        harness.warmup(cases, seconds=warm)
        res = harness.run(cases)
    else:
        _warmup(cases, warm)
        res = _run(cases, repeat=repeat, min_time=min_time)

    # table of cases
    print("| case | ns/call | overhead ns |")
    print("| --- | ---: | ---: |")
    for _g, label, *_ in cases:
        ns, _n, ovh = res[label]
        print(f"| {label} | {ns:.1f} | {'' if ovh is None else f'{ovh:+.1f}'} |")

    # the anchors the import bounds use
    print("\n| import bound | anchor | ns over its noop |")
    print("| --- | --- | ---: |")
    for what, anchor_what, why, anchor in anchor_used:
        print(f"| B take_borrowed({what}) | {anchor_what}{f' ({why})' if why else ''} "
              f"| {anchor(res):+.1f} |")

    # table of checks
    print("\n| case | ns | overhead | ratio/value | target | result |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    must_failed = []
    for label, kind, fn, bound, unit, what in checks:
        v = fn(res)
        bound = bound(res) if callable(bound) else bound
        ns, _n, ovh = res[label]
        if kind == "must>=":
            ok = v >= bound
            target = f"must >= {bound:.4g} {unit}"
        elif kind == "info":
            ok = v <= bound
            target = f"(reported) {bound:.4g} {unit}"
        else:
            ok = v <= bound
            target = f"{kind} <= {bound:.4g} {unit}"
        verdict = ("PASS" if ok else "FAIL") if kind != "info" else ("within" if ok else "above")
        if not ok and kind.startswith("must"):
            must_failed.append((label, what, v, bound))
        print(f"| {label} | {ns:.1f} | {'' if ovh is None else f'{ovh:+.1f}'} | {v:.2f} ({what}) "
              f"| {target} | {verdict} |")
    print()
    if must_failed:
        print(f"{len(must_failed)} 'must' bound(s) failed:")
        for label, what, v, bound in must_failed:
            print(f"  - {label}: {what} = {v:.2f}, bound {bound:.4g}")
    else:
        print("all 'must' bounds hold")
    if args.check and must_failed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
