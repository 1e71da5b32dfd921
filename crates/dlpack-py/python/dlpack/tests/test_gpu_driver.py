"""The GPU stream contract from Python, needing only a driver: the real CUDA driver, or the
gpu-sim simulator standing in for it. Results are read back through the driver (no
inspection API), so the same tests run on real hardware (``cargo xtask test-gpu``) and on
the simulator (``cargo xtask test``). Without a driver they skip, unless
``DLPACK_REQUIRE_DRIVER`` is set: then they fail.
"""

from __future__ import annotations

import gc
import os
import threading

import pytest

import dlpack

_t = pytest.importorskip("dlpack._testing")
if not hasattr(_t, "DeviceBuffer"):
    pytest.skip("this build of dlpack has no device support", allow_module_level=True)
if not _t.driver_present("cuda"):
    if os.environ.get("DLPACK_REQUIRE_DRIVER"):
        raise RuntimeError("DLPACK_REQUIRE_DRIVER is set, but no CUDA driver can be loaded")
    pytest.skip("skipped: no CUDA driver (libcuda.so) here", allow_module_level=True)

N = 1 << 16
CUDA = 2


@pytest.fixture
def streams():
    a, b = _t.stream_create(0, "cuda"), _t.stream_create(0, "cuda")
    yield a, b
    gc.collect()  # buffers first: their frees are ordered after these streams
    _t.stream_destroy(a, 0, "cuda")
    _t.stream_destroy(b, 0, "cuda")


@pytest.mark.parametrize("how", ["buffer", "tensor", "asdlpack"])
def test_the_consumer_sees_the_producers_writes(streams, how):
    a, b = streams
    for value in (1, 2, 3):
        buf = _t.DeviceBuffer(N, stream=a)
        buf.fill_on(a, value)  # pending work on A
        producer = {"buffer": buf, "tensor": buf.tensor, "asdlpack": dlpack.asdlpack(buf)}[how]
        cap = producer.__dlpack__(stream=b, max_version=(1, 3))
        info = dlpack.capsule_info(cap)
        assert info["device"] == (CUDA, 0) and info["data"] == buf.ptr
        assert buf.download(b) == bytes([value]) * N  # read on B, ordered after A
        del cap, producer, buf


def test_per_thread_consumer_released_on_another_thread(streams):
    a, _ = streams
    for value in range(4):
        buf = _t.DeviceBuffer(N, stream=a)
        buf.fill_on(a, value)
        box = [dlpack.asdlpack(buf.__dlpack__(stream=2, max_version=(1, 3)))]
        assert buf.download(2) == bytes([value]) * N  # the consumer's per-thread stream
        del buf
        worker = threading.Thread(target=lambda: (box.clear(), gc.collect()))
        worker.start()
        worker.join()


def test_numpy_reads_a_host_copy(streams):
    np = pytest.importorskip("numpy")
    if np.lib.NumpyVersion(np.__version__) < "2.1.0":
        pytest.skip(f"np.from_dlpack(device=...) needs numpy >= 2.1, not {np.__version__}")
    a, _ = streams
    buf = _t.DeviceBuffer(N, stream=a)
    buf.fill_on(a, 9)
    host = np.from_dlpack(buf, device="cpu")
    assert host.shape == (N,) and (host == 9).all()
