"""pydlpack's names over device memory, on the gpu-sim simulator (skipped with
test_gpu.py's reason without it): asdlpack_cuda_array_interface takes the device id
from the pointer (pydlpack: always 0) and makes each consumer's stream wait on the
interface's stream (pydlpack: ignored); impl_cls keeps the stream contract."""

import pytest

import dlpack

from .test_gpu import CUDA, N, ONE_EXCHANGE, CAIOnly, Streams, _t, consumer_read, sync_calls
from .test_gpu import sim  # noqa: F401  (fixture)


@pytest.mark.parametrize("make", [
    pytest.param(lambda b: dlpack.asdlpack_cuda_array_interface(CAIOnly(b)), id="cai"),
    pytest.param(lambda b: dlpack.asdlpack_dlpack(b, dlpack.DLManagedTensorVersioned),
                 id="dlpack-versioned"),
])
def test_pydlpack_names_keep_the_stream_contract_on_device_1(sim, make):  # noqa: F811
    streams = Streams("cuda", device=1)
    try:
        warm = _t.DeviceBuffer(N, device=1)
        warm.fill_on(streams.a, 1)
        make(warm).__dlpack__(stream=streams.b, max_version=(1, 3))
        consumer_read(sim, streams.b, warm)

        buf = _t.DeviceBuffer(N, device=1)
        buf.fill_on(streams.a, 5)  # the producer's pending work, on A
        obj = make(buf)
        assert obj.__dlpack_device__() == (CUDA, 1)
        sim.reset_counters()
        cap = obj.__dlpack__(stream=streams.b, max_version=(1, 3))
        assert sync_calls(sim) == ONE_EXCHANGE
        consumer_read(sim, streams.b, buf)
        assert sim.races() == []
        d = dlpack.todict(cap)
        assert d["dl_tensor"]["device"] == {"device_type": "DLCUDA", "device_id": 1}
        assert d["dl_tensor"]["data"] == buf.ptr
        del obj, cap, buf, warm
    finally:
        streams.close()
