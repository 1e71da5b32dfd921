"""mpi4py's device path on our producers, on the gpu-sim simulator.

For memory that is not on the host, mpi4py 4.1 (``asdlpack.pxi``) asks the producer for
``__dlpack__(stream=-1, max_version=(1, 0), copy=False)`` after the buffer protocol was
refused: -1 means "the consumer orders the work itself", so the producer must make no
synchronisation call at all, and must share its device pointer (no copy). mpi4py then
refuses to read the memory from the host (``buffer is not CPU-accessible``). Moving device
memory needs a CUDA-aware MPI library, which PyPI's MPICH wheel is not and which needs a
real GPU: these tests check the protocol exchange (``MPI.buffer``), not a device transfer.
"""

from __future__ import annotations

import pytest

import dlpack

from .test_gpu import N, NO_SYNC, PRODUCERS, _t, cuda, sim, sync_calls  # noqa: F401

MPI = pytest.importorskip("mpi4py.MPI")


class Spy:
    """A producer that records the keywords of every ``__dlpack__`` call it forwards."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = []

    def __dlpack_device__(self):
        return self.inner.__dlpack_device__()

    def __dlpack__(self, **kwargs):
        self.calls.append(kwargs)
        return self.inner.__dlpack__(**kwargs)


@pytest.mark.parametrize("how", list(PRODUCERS))
def test_mpi_buffer_asks_stream_minus_one_and_gets_no_sync(sim, cuda, how):
    buf = _t.DeviceBuffer(N)
    buf.fill_on(cuda.a, 5)  # pending producer work: any ordering would show as a call
    obj = PRODUCERS[how](buf)
    spy = Spy(obj)
    sim.reset_counters()
    seen = MPI.buffer(spy)
    assert spy.calls == [{"stream": -1, "max_version": (1, 0), "copy": False}]
    assert sync_calls(sim) == NO_SYNC
    assert seen.address == buf.ptr and seen.nbytes == N  # the device memory, shared
    with pytest.raises(BufferError, match="not CPU-accessible"):
        seen.tobytes()
    del seen
    # mpi4py on the object itself: it tries our buffer export first (refused: device
    # memory), then __dlpack__(stream=-1). Neither may order or block anything.
    sim.reset_counters()
    direct = MPI.buffer(obj)
    assert direct.address == buf.ptr
    assert sync_calls(sim) == NO_SYNC, "a refused buffer request or stream=-1 synchronised"
    del direct


@pytest.mark.parametrize("how", [how for how in PRODUCERS if how != "buffer"])
def test_buffer_request_on_device_memory_makes_no_driver_call(sim, cuda, how):
    # The buffer protocol is what mpi4py (and memoryview, and NumPy) try first; on device
    # memory it is refused, without asking the producer for a capsule on any stream.
    buf = _t.DeviceBuffer(N)
    buf.fill_on(cuda.a, 6)
    obj = PRODUCERS[how](buf)  # (the testing buffer itself has no buffer export)
    sim.reset_counters()
    with pytest.raises(BufferError, match=r"host memory.*kDLCUDA"):
        memoryview(obj)
    assert sync_calls(sim) == NO_SYNC
    assert sum(sim.counters().values()) == 0, sim.counters()
    assert dlpack.capsule_info(obj.__dlpack__(stream=-1, max_version=(1, 3)))["data"] == buf.ptr
