"""10^6 exchanges leave RSS within 1 MiB and the live-tensor counter at zero.

Each scenario runs in a fresh subprocess (clean RSS, no state from other tests).
DLPACK_LEAK_N overrides the number of exchanges (default 1_000_000)."""

import os
import subprocess
import sys
import textwrap

import pytest

from .conftest import NUMPY_DLPACK_1, NUMPY_DLPACK_1_REASON

N = int(os.environ.get("DLPACK_LEAK_N", "1000000"))
WARMUP = max(N // 10, 1000)
LIMIT = 1 << 20  # 1 MiB

_PRELUDE = """
import gc, os, sys, time
import numpy as np
import dlpack
from dlpack import _testing as T
PAGE = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE
"""

SCENARIOS = {
    "numpy-roundtrip": ("a = np.arange(100, dtype=np.float32)", "np.from_dlpack(dlpack.asdlpack(a))"),
    "numpy-readonly-roundtrip": ("a = np.arange(100.0); a.flags.writeable = False",
                                 "np.from_dlpack(dlpack.asdlpack(a))"),
    "unconsumed-capsules": ("a = np.arange(100, dtype=np.float32); o = dlpack.asdlpack(a)",
                            "o.__dlpack__(max_version=(1, 3)); o.__dlpack__()"),
    "bytes-roundtrip": ("b = bytes(100)", "np.from_dlpack(dlpack.asdlpack(b))"),
    "bytearray-buffer": ("b = bytearray(100)", "memoryview(dlpack.asdlpack(b)).release()"),
    "tensor-export": ("", "np.from_dlpack(T.arange(4))"),
    "rust-import-numpy": ("a = np.arange(100.0)", "T.take(a); T.take_borrowed(a)"),
    "torch-roundtrip": ("import torch; a = np.arange(100, dtype=np.float32); t = torch.arange(10)",
                        "torch.from_dlpack(dlpack.asdlpack(a)); T.take(t); T.take_borrowed(t)"),
    "torch-legacy-capsule": ("import torch; a = np.arange(100, dtype=np.float32)",
                             "torch.from_dlpack(dlpack.asdlpack(a).__dlpack__())"),
    "capsule-input": ("a = np.arange(100, dtype=np.float32)",
                      "np.from_dlpack(dlpack.asdlpack(a.__dlpack__(max_version=(1, 3))))"),
}


def _script(setup, stmt):
    body = f"""
{_PRELUDE}
{setup}
def loop(n):
    for _ in range(n):
        {stmt}
loop({WARMUP})
gc.collect()
r0 = rss()
t0 = time.perf_counter()
loop({N})
gc.collect()
r1 = rss()
secs = time.perf_counter() - t0
for _name in ("o", "a", "b", "t"):  # the setup's own long-lived objects
    globals().pop(_name, None)
gc.collect()
print("RESULT", r1 - r0, dlpack.live_tensors(), secs)
"""
    return textwrap.dedent(body)


# Scenarios that need numpy's DLPack 1.0 (a versioned capsule from numpy, or numpy asking for one
# to import a read-only export).
NEED_NUMPY_DLPACK_1 = {"numpy-readonly-roundtrip", "bytes-roundtrip", "capsule-input"}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_leak(scenario):
    if scenario in NEED_NUMPY_DLPACK_1 and not NUMPY_DLPACK_1:
        pytest.skip(NUMPY_DLPACK_1_REASON)
    setup, stmt = SCENARIOS[scenario]
    if "torch" in setup:
        pytest.importorskip("torch")
    proc = subprocess.run([sys.executable, "-c", _script(setup, stmt)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    _, growth, live, secs = line.split()
    growth, live = int(growth), int(live)
    assert live == 0, f"{scenario}: {live} managed tensors still alive after {N} exchanges"
    assert growth <= LIMIT, f"{scenario}: RSS grew by {growth} bytes over {N} exchanges ({float(secs):.1f} s)"
