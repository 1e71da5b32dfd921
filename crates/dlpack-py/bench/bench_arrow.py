"""Per-call cost of the Arrow exchanges of the `dlpack` module (feature `arrow`), beside
pyarrow's own DLPack and NumPy paths, on 1M-element float64 arrays (no path copies, so the
times do not grow with the length).

Usage (inside the test venv, with the release wheel installed as `cargo xtask test` does):

    python crates/dlpack-py/bench/bench_arrow.py

Method: as bench_exchange.py, in short: per case a loop of >= 0.02 s, 21 repeats interleaved
round-robin over the cases, each keeping its best; ns per call.
"""

from __future__ import annotations

import timeit

import numpy as np
import pyarrow as pa

import dlpack

N = 1 << 20
REPEATS = 21


class ArrowArrayOnly:
    """An object that speaks only `__arrow_c_array__`."""

    def __init__(self, array):
        self.array = array

    def __arrow_c_array__(self, requested_schema=None):
        return self.array.__arrow_c_array__(requested_schema)


def cases():
    import torch

    values = np.arange(N, dtype=np.float64)
    arr = pa.array(values)
    only = ArrowArrayOnly(arr)
    out = {
        "torch.from_dlpack(pa_array)  [pyarrow's __dlpack__]": lambda: torch.from_dlpack(arr),
        "torch.from_dlpack(asdlpack(pa_array))  [forwards]": (
            lambda: torch.from_dlpack(dlpack.asdlpack(arr))),
        "asdlpack(pa_array)": lambda: dlpack.asdlpack(arr),
        "asdlpack(__arrow_c_array__ object)": lambda: dlpack.asdlpack(only),
        "torch.from_dlpack(asdlpack(__arrow_c_array__ object))": (
            lambda: torch.from_dlpack(dlpack.asdlpack(only))),
        "pa.array(numpy)  [pyarrow's own]": lambda: pa.array(values),
        "pa.array(asdlpack(numpy))  [our __arrow_c_array__]": (
            lambda: pa.array(dlpack.asdlpack(values))),
    }
    try:
        import polars as pl

        series = pl.Series(values)
        out["asdlpack(polars.Series)  [__arrow_c_stream__]"] = lambda: dlpack.asdlpack(series)
        out["torch.from_dlpack(asdlpack(polars.Series))"] = (
            lambda: torch.from_dlpack(dlpack.asdlpack(series)))
    except ImportError:
        pass
    return out


def main():
    table = cases()
    timers = {}
    for name, fn in table.items():
        t = timeit.Timer(fn)
        n, _ = t.autorange()
        loops = max(1, int(n * 0.02 / max(t.timeit(n), 1e-9)))
        timers[name] = (t, loops)
    best = {name: float("inf") for name in table}
    for _ in range(REPEATS):
        for name, (t, loops) in timers.items():
            best[name] = min(best[name], t.timeit(loops) / loops * 1e9)
    width = max(map(len, table))
    for name, ns in best.items():
        print(f"{name:<{width}}  {ns:10.0f} ns")


if __name__ == "__main__":
    main()
