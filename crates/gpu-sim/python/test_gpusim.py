"""Smoke test of gpusim.py against the simulator (pytest, or `python3 test_gpusim.py`).

Needs the folder with the libcuda.so / libamdhip64.so.6 symlinks on LD_LIBRARY_PATH; skips
(pytest) or exits 0 with a message (script) when the simulator is not loadable.
"""

import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gpusim import LoadError, Sim  # noqa: E402


def _sim():
    try:
        return Sim.load()
    except LoadError as e:
        try:
            import pytest

            pytest.skip(str(e))
        except ImportError:
            print(f"skipped: {e}")
            sys.exit(0)


def test_unordered_kernels_race_and_compute():
    sim = _sim()
    sim.reset()
    cu = ctypes.CDLL("libcuda.so", mode=ctypes.RTLD_GLOBAL)
    assert cu.cuInit(0) == 0
    ctx = ctypes.c_void_p()
    assert cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), 0) == 0
    assert cu.cuCtxSetCurrent(ctx) == 0
    a, b = ctypes.c_void_p(), ctypes.c_void_p()
    assert cu.cuStreamCreate(ctypes.byref(a), 1) == 0
    assert cu.cuStreamCreate(ctypes.byref(b), 1) == 0
    p = ctypes.c_uint64()
    assert cu.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(8)) == 0
    ptr = p.value

    def fill(k):
        assert k.store(ptr, bytes(range(8)))

    seen = []

    def read(k):
        seen.append(k.load(ptr, 8))

    assert sim.launch_kernel(a.value, "fill", writes=[(ptr, 8)], fn=fill) == 0
    assert sim.launch_kernel(b.value, "read", reads=[(ptr, 8)], fn=read) == 0
    assert seen == [bytes(range(8))]
    races = sim.races()
    assert len(races) == 1 and "fill#" in races[0] and "read#" in races[0], races
    assert sim.call_count("cuStreamCreate") == 2
    assert sim.counters()["cuMemAlloc_v2"] == 1
    assert sim.take_reports()["races"] == races
    assert sim.races() == []


def test_hip_name_reaches_the_same_simulator():
    sim = _sim()
    sim.reset()
    sim.set_device_count(3)
    hip = ctypes.CDLL("libamdhip64.so.6")
    n = ctypes.c_int()
    assert hip.hipGetDeviceCount(ctypes.byref(n)) == 0
    assert n.value == 3
    assert sim.call_count("hipGetDeviceCount") == 1
    sim.reset()


if __name__ == "__main__":
    test_unordered_kernels_race_and_compute()
    test_hip_name_reaches_the_same_simulator()
    print("ok")
