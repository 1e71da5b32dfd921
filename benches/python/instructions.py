"""The Python exchange paths of crates/dlpack-py/bench/bench_exchange.py, for counting instructions.

Run by `cargo xtask bench --instructions` under

    valgrind --tool=callgrind --collect-atstart=no python instructions.py --helper <libtoggle.so>

For each path, the statement runs `--warm-up` times, then `--rounds` times in a loop called
through the C function `dlpack_bench_measured` of the helper library (benches/python/toggle.c):
callgrind collects while that loop runs and then dumps, naming the dump after the path, so each
dump holds one path's loop. The first dump is the empty statement (the loop's own
cost and the ctypes call into it), which xtask subtracts: what is left, over the rounds, is the
instructions per call of the statement. The garbage collector is off while a loop runs, and
xtask sets PYTHONHASHSEED=0, so two runs of one build agree to a few instructions per call.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib.util
import os
import sys

import numpy as np

import dlpack
from dlpack import _testing as T

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH_EXCHANGE = os.path.join(HERE, "..", "..", "crates", "dlpack-py", "bench", "bench_exchange.py")

#: The measured loop's floor, subtracted from every path by xtask; always first.
EMPTY = "(empty statement)"


def bench_exchange():
    """crates/dlpack-py/bench/bench_exchange.py as a module (for its Python producer)."""
    spec = importlib.util.spec_from_file_location("bench_exchange", BENCH_EXCHANGE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def paths():
    """[(name, statement, globals)]: our cases of bench_exchange.py, the empty statement first."""
    a = np.arange(256, dtype=np.float32)  # 1 KiB
    g = dict(np=np, dlpack=dlpack, T=T, a=a, ba=bytearray(1024), by=bytes(1024),
             big=np.empty(1 << 28, dtype=np.float32))  # 1 GiB, pages never touched
    out = [(EMPTY, "pass", g), ("noop(1) (the #[pyfunction] call)", "T.noop(1)", g)]
    for what, x in (("numpy", "a"), ("bytearray", "ba"), ("bytes", "by")):
        out.append((f"np.from_dlpack(asdlpack({what}))", f"np.from_dlpack(dlpack.asdlpack({x}))", g))
    producers = [("numpy", a)]
    try:
        import torch
        producers.append(("torch", torch.arange(256, dtype=torch.float32)))
    except ImportError:
        print("note: torch not installed; its paths are left out", file=sys.stderr)
    for what, x in producers:
        gx = dict(g, x=x)
        out += [(f"take_borrowed({what})", "T.take_borrowed(x)", gx),
                (f"take({what})", "T.take(x)", gx)]
    others = [("PyProducer(numpy)", bench_exchange().PyProducer(a))]
    try:
        import jax.numpy as jnp
        others.append(("jax", jnp.arange(256, dtype=jnp.float32)))
    except ImportError:
        print("note: jax not installed; its paths are left out", file=sys.stderr)
    for what, x in others:
        gx = dict(g, x=x)
        out += [(f"take({what})", "T.take(x)", gx),
                (f"call_dlpack({what}) (the C call only)", "T.call_dlpack(x)", gx)]
    out += [("np.from_dlpack(asdlpack(numpy 1 GiB))", "np.from_dlpack(dlpack.asdlpack(big))", g),
            ("take(numpy 1 GiB)", "T.take(big)", g)]
    return out


def loop(statement, g):
    """A function running `statement` n times in a for loop (as timeit does: no call per round)."""
    namespace = {}
    exec(f"def run(_n):\n    for _ in range(_n):\n        {statement}\n", g, namespace)
    return namespace["run"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--helper", help="the shared library of toggle.c")
    ap.add_argument("--rounds", type=int, default=2000)
    ap.add_argument("--warm-up", type=int, default=300)
    args = ap.parse_args(argv)
    cases = paths()
    measured = ctypes.CDLL(args.helper).dlpack_bench_measured
    measured.restype = None
    measured.argtypes = [ctypes.CFUNCTYPE(None), ctypes.c_char_p]
    for name, statement, g in cases:
        run = loop(statement, g)
        run(args.warm_up)
        callback = ctypes.CFUNCTYPE(None)(lambda: run(args.rounds))
        gc.collect()
        gc.disable()
        measured(callback, name.encode())
        gc.enable()
    return 0


if __name__ == "__main__":
    sys.exit(main())
