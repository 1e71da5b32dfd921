"""The GPU stream contract, from Python through the module, on the gpu-sim simulator.

A producer writes on stream A, a consumer reads on stream B: no race when the
consumer passes ``__dlpack__(stream=B)``, a race reported with ``stream=-1``; the
legacy (1) and per-thread (2) default streams; stream 0 refused on CUDA, 1 and 2
on ROCm (``ValueError``); host copies through ``dl_device=(kDLCPU, 0)``; the device
id taken from the pointer of a ``__cuda_array_interface__``; device memory freed
only after the consumer's last use. Per exchange between distinct streams: exactly
one event record and one stream wait, no event created after warm-up, no
host-blocking call; same stream or ``-1``: no sync call at all.

Device memory comes from ``dlpack._testing.DeviceBuffer`` (a testing helper). The
simulator (``crates/gpu-sim``) is found through ``GPUSIM_LIB_DIR`` (``cargo xtask
test`` sets it and puts the folder on ``LD_LIBRARY_PATH``); its Python wrapper
``gpusim.py`` is loaded by path. Without the simulator and without a driver, the
whole file is skipped.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import os
import pathlib
import threading

import pytest

import dlpack

_t = pytest.importorskip("dlpack._testing")
if not hasattr(_t, "DeviceBuffer"):
    pytest.skip("this build of dlpack has no device support", allow_module_level=True)

_SIM_DIR = os.environ.get("GPUSIM_LIB_DIR")
if not _SIM_DIR and not (_t.driver_present("cuda") or _t.driver_present("rocm")):
    pytest.skip(
        "no GPU: GPUSIM_LIB_DIR is unset (run `cargo xtask test`, or build gpu-sim and set "
        "GPUSIM_LIB_DIR and LD_LIBRARY_PATH to its symlink folder) and no CUDA/ROCm driver "
        "is present",
        allow_module_level=True,
    )

IS_COPIED = 0x2
N = 256
CUDA, ROCM = 2, 10


def _find_gpusim_py():
    """``crates/gpu-sim/python/gpusim.py``: beside this checkout, or named by GPUSIM_PY."""
    env = os.environ.get("GPUSIM_PY")
    if env:
        return pathlib.Path(env)
    here = pathlib.Path(__file__).resolve()
    starts = [*here.parents, pathlib.Path.cwd(), *pathlib.Path.cwd().parents]
    if _SIM_DIR:
        starts += list(pathlib.Path(_SIM_DIR).resolve().parents)
    for d in starts:
        p = d / "crates" / "gpu-sim" / "python" / "gpusim.py"
        if p.is_file():
            return p
    return None


def _load_sim():
    if not _SIM_DIR:
        return None
    path = _find_gpusim_py()
    if path is None:
        pytest.skip("gpusim.py not found (set GPUSIM_PY to crates/gpu-sim/python/gpusim.py)")
    spec = importlib.util.spec_from_file_location("gpusim", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_gpusim = _load_sim()


@pytest.fixture
def sim():
    """The simulator, fresh; checks that nothing leaked into the error log."""
    if _gpusim is None:
        pytest.skip("counters and race reports need the simulator (GPUSIM_LIB_DIR)")
    s = _gpusim.Sim.load()
    gc.collect()
    s.reset()
    _t.forget_pooled_events()  # the reset destroyed the events our pools held
    yield s
    gc.collect()
    assert s.errors() == [], s.errors()


class Streams:
    def __init__(self, backend, device=0):
        self.backend, self.device = backend, device
        self.a = _t.stream_create(device, backend)
        self.b = _t.stream_create(device, backend)

    def close(self):
        gc.collect()  # buffers first: their free is ordered after these streams
        _t.stream_destroy(self.a, self.device, self.backend)
        _t.stream_destroy(self.b, self.device, self.backend)


@pytest.fixture
def cuda(sim):
    s = Streams("cuda")
    yield s
    s.close()


@pytest.fixture
def rocm(sim):
    s = Streams("rocm")
    yield s
    s.close()


class CAIOnly:
    """Exposes only a ``__cuda_array_interface__`` (like Numba/CuPy arrays without DLPack)."""

    def __init__(self, buf):
        self.buf = buf  # keeps the memory alive
        self.__cuda_array_interface__ = buf.__cuda_array_interface__


def sync_calls(sim):
    return {
        "record": sim.call_count("cuEventRecord") + sim.call_count("cuEventRecordWithFlags")
        + sim.call_count("hipEventRecord"),
        "wait": sim.call_count("cuStreamWaitEvent") + sim.call_count("hipStreamWaitEvent"),
        "create": sim.call_count("cuEventCreate") + sim.call_count("hipEventCreate")
        + sim.call_count("hipEventCreateWithFlags"),
        "blocking": sim.blocking_count(),
    }


ONE_EXCHANGE = {"record": 1, "wait": 1, "create": 0, "blocking": 0}
NO_SYNC = {"record": 0, "wait": 0, "create": 0, "blocking": 0}


def consumer_read(sim, stream, buf, backend="cuda"):
    """A consumer kernel on ``stream`` reading the whole buffer (on CUDA's default
    streams, which need a current context, a copy to the host on that stream)."""
    if backend == "cuda" and stream in (1, 2):
        buf.download(stream)
        return
    rc = sim.launch_kernel(
        stream, "consumer", reads=[(buf.ptr, buf.nbytes)],
        backend=_gpusim.CUDA if backend == "cuda" else _gpusim.HIP,
    )
    assert rc == 0


# The producers under test: the helper buffer itself, the dlpack.Tensor it exports,
# asdlpack forwarding to the buffer, and asdlpack adapting its __cuda_array_interface__
# (producer stream = the CAI `stream` key).
PRODUCERS = {
    "buffer": lambda buf: buf,
    "tensor": lambda buf: buf.tensor,
    "asdlpack_forward": lambda buf: dlpack.asdlpack(buf),
    "asdlpack_cai": lambda buf: dlpack.asdlpack(CAIOnly(buf)),
}


@pytest.mark.parametrize("how", list(PRODUCERS))
def test_distinct_streams_one_record_one_wait_no_race(sim, cuda, how):
    # Warm-up on another buffer: fill the event pool.
    warm = _t.DeviceBuffer(N)
    warm.fill_on(cuda.a, 1)
    PRODUCERS[how](warm).__dlpack__(stream=cuda.b, max_version=(1, 3))
    consumer_read(sim, cuda.b, warm)
    assert sim.races() == []

    buf = _t.DeviceBuffer(N)
    buf.fill_on(cuda.a, 7)  # the producer's pending work, on A
    obj = PRODUCERS[how](buf)
    sim.reset_counters()
    cap = obj.__dlpack__(stream=cuda.b, max_version=(1, 3))
    assert sync_calls(sim) == ONE_EXCHANGE
    consumer_read(sim, cuda.b, buf)
    assert sim.races() == []
    info = dlpack.capsule_info(cap)
    assert info["device"] == (CUDA, 0) and info["data"] == buf.ptr
    assert buf.download(cuda.b) == bytes([7]) * N


@pytest.mark.parametrize("how", list(PRODUCERS))
def test_stream_minus_one_reports_the_race(sim, cuda, how):
    buf = _t.DeviceBuffer(N)
    buf.fill_on(cuda.a, 3)
    obj = PRODUCERS[how](buf)
    sim.reset_counters()
    obj.__dlpack__(stream=-1, max_version=(1, 3))
    assert sync_calls(sim) == NO_SYNC
    consumer_read(sim, cuda.b, buf)  # the consumer did not synchronise: a race
    races = sim.races()
    assert len(races) >= 1, "stream=-1 must leave the read unordered"
    sim.clear_reports()


@pytest.mark.parametrize("how", list(PRODUCERS))
def test_same_stream_no_sync_call(sim, cuda, how):
    buf = _t.DeviceBuffer(N)
    buf.fill_on(cuda.a, 3)
    obj = PRODUCERS[how](buf)
    sim.reset_counters()
    obj.__dlpack__(stream=cuda.a, max_version=(1, 3))
    assert sync_calls(sim) == NO_SYNC
    consumer_read(sim, cuda.a, buf)
    assert sim.races() == []


@pytest.mark.parametrize("consumer", [1, 2, None], ids=["legacy", "per_thread", "none_is_legacy"])
def test_default_streams(sim, cuda, consumer):
    buf = _t.DeviceBuffer(N)
    buf.fill_on(cuda.a, 1)
    buf.__dlpack__(stream=consumer, max_version=(1, 3))  # warm-up
    buf.fill_on(cuda.a, 2)
    sim.reset_counters()
    buf.__dlpack__(stream=consumer, max_version=(1, 3))
    assert sync_calls(sim) == ONE_EXCHANGE
    consumer_read(sim, 2 if consumer == 2 else 1, buf)
    assert sim.races() == []


def test_legacy_producer_legacy_consumer_no_sync(sim, cuda):
    buf = _t.DeviceBuffer(N)
    buf.fill_on(1, 4)  # pending work on the legacy default stream
    sim.reset_counters()
    buf.__dlpack__(stream=1, max_version=(1, 3))
    buf.__dlpack__(max_version=(1, 3))  # None is the legacy stream on CUDA
    assert sync_calls(sim) == NO_SYNC


@pytest.mark.parametrize("how", list(PRODUCERS))
def test_stream_zero_refused_on_cuda(sim, cuda, how):
    buf = _t.DeviceBuffer(N)
    buf.fill_on(cuda.a, 1)
    obj = PRODUCERS[how](buf)
    sim.reset_counters()
    with pytest.raises(ValueError, match="0"):
        obj.__dlpack__(stream=0, max_version=(1, 3))
    with pytest.raises(ValueError):
        obj.__dlpack__(stream=-2, max_version=(1, 3))
    assert sync_calls(sim) == NO_SYNC


@pytest.mark.parametrize("stream", [1, 2])
def test_streams_one_two_refused_on_rocm(sim, rocm, stream):
    buf = _t.DeviceBuffer(N, backend="rocm")
    assert buf.__dlpack_device__() == (ROCM, 0)
    buf.fill_on(rocm.a, 1)
    for obj in (buf, buf.tensor, dlpack.asdlpack(buf)):
        with pytest.raises(ValueError, match=str(stream)):
            obj.__dlpack__(stream=stream, max_version=(1, 3))


def test_rocm_distinct_streams(sim, rocm):
    buf = _t.DeviceBuffer(N, backend="rocm")
    buf.fill_on(rocm.a, 1)
    buf.__dlpack__(stream=rocm.b, max_version=(1, 3))  # warm-up
    buf.fill_on(rocm.a, 6)
    sim.reset_counters()
    buf.__dlpack__(stream=rocm.b, max_version=(1, 3))
    assert sync_calls(sim) == ONE_EXCHANGE
    consumer_read(sim, rocm.b, buf, "rocm")
    assert sim.races() == []
    sim.reset_counters()
    buf.__dlpack__(stream=-1, max_version=(1, 3))
    buf.__dlpack__(stream=rocm.a, max_version=(1, 3))
    assert sync_calls(sim) == NO_SYNC
    # the default stream (None or 0) is a stream like any other
    buf.__dlpack__(stream=0, max_version=(1, 3))
    consumer_read(sim, 0, buf, "rocm")
    assert sim.races() == []


@pytest.mark.parametrize("backend", ["cuda", "rocm"])
def test_describing_a_forwarded_producer_does_not_synchronise(sim, backend):
    """What ``asdlpack`` over a device producer describes (shape, strides, dtype, device,
    flags, size, repr, the refusal to pickle) is asked of the producer with ``stream=-1``: no
    event, no wait. The data's own exchange with a consumer stays ordered."""
    import pickle

    streams = Streams(backend)
    try:
        buf = _t.DeviceBuffer(N, backend=backend)
        buf.fill_on(streams.a, 1)
        buf.__dlpack__(stream=streams.b, max_version=(1, 3))  # warm-up: the producer's event
        obj = dlpack.asdlpack(buf)
        buf.fill_on(streams.a, 2)
        sim.reset_counters()
        assert obj.shape == (N,) and obj.strides == (1,)
        assert obj.dtype == (1, 8, 1) and obj.nbytes == N
        assert obj.device == buf.__dlpack_device__()
        assert obj.readonly is False
        assert f"shape=[{N}]" in repr(obj)
        with pytest.raises(TypeError, match="cannot pickle a tensor on"):
            pickle.dumps(obj, protocol=5)
        assert sync_calls(sim) == NO_SYNC
        obj.__dlpack__(stream=streams.b, max_version=(1, 3))
        assert sync_calls(sim) == ONE_EXCHANGE
        consumer_read(sim, streams.b, buf, backend)
        assert sim.races() == []
        del obj, buf
    finally:
        streams.close()


@pytest.mark.parametrize("backend", ["cuda", "rocm"])
@pytest.mark.parametrize("how", ["buffer", "tensor", "asdlpack_forward"])
def test_copy_to_host(sim, backend, how):
    streams = Streams(backend)
    try:
        buf = _t.DeviceBuffer(N, backend=backend)
        buf.upload(bytes(range(N)), streams.a)
        obj = PRODUCERS[how](buf)
        for max_version in [(1, 3), None]:
            cap = obj.__dlpack__(max_version=max_version, dl_device=(1, 0))
            info = dlpack.capsule_info(cap)
            assert info["device"] == (1, 0)
            if max_version is not None:
                assert info["flags"] & IS_COPIED
            assert info["data"] != buf.ptr
            assert bytes(memoryview(dlpack.asdlpack(cap))) == bytes(range(N))
        with pytest.raises(BufferError):
            obj.__dlpack__(max_version=(1, 3), dl_device=(1, 0), copy=False)
        # The copy is ordered after the producer's pending work (no race, new values).
        buf.fill_on(streams.a, 9)
        cap = obj.__dlpack__(max_version=(1, 3), dl_device=(1, 0), copy=True)
        assert bytes(memoryview(dlpack.asdlpack(cap))) == bytes([9]) * N
        assert sim.races() == []
        del obj, cap, buf
    finally:
        streams.close()


@pytest.mark.parametrize(
    "backend, how",
    [(b, h) for b in ["cuda", "rocm"] for h in PRODUCERS if b == "cuda" or h != "asdlpack_cai"],
)
def test_copy_on_the_device_is_refused(sim, backend, how):
    # copy=True without dl_device asks for a copy on the tensor's own device, which a shared
    # tensor cannot make: refused, never host memory described as device memory.
    buf = _t.DeviceBuffer(N, backend=backend)
    obj = PRODUCERS[how](buf)
    device = obj.__dlpack_device__()
    with pytest.raises(BufferError, match=r"copy=True"):
        obj.__dlpack__(max_version=(1, 3), copy=True)
    with pytest.raises(BufferError, match=r"copy=True"):
        obj.__dlpack__(max_version=(1, 3), dl_device=device, copy=True)
    del obj, buf


def test_numpy_from_device_buffer_to_cpu(sim, cuda):
    np = pytest.importorskip("numpy")
    buf = _t.DeviceBuffer(16)
    buf.upload(bytes(range(16)), cuda.a)
    try:
        a = np.from_dlpack(buf, device="cpu")
    except (TypeError, BufferError, ValueError) as e:  # older NumPy: no device=
        pytest.skip(f"numpy.from_dlpack(device='cpu') unavailable: {e}")
    assert a.tolist() == list(range(16))


def test_cai_import_waits_on_its_stream(sim, cuda):
    """Rust import of a __cuda_array_interface__: the consumer's stream (legacy by
    default) waits on the CAI stream with one record and one wait, no host sync."""
    buf = _t.DeviceBuffer(N)
    buf.fill_on(cuda.a, 1)
    _t.import_info(CAIOnly(buf))  # warm-up
    buf.fill_on(cuda.a, 5)
    cai = CAIOnly(buf)
    assert cai.__cuda_array_interface__["stream"] == cuda.a
    sim.reset_counters()
    info = _t.import_info(cai)
    assert sync_calls(sim) == ONE_EXCHANGE
    assert info["path"] == "cuda_array_interface"
    assert info["device"] == (CUDA, 0)
    assert info["cai_stream"] is None  # waited on, not left to the caller
    consumer_read(sim, 1, buf)
    assert sim.races() == []


def test_cai_without_stream_needs_no_sync(sim, cuda):
    buf = _t.DeviceBuffer(N)
    buf.upload(bytes(N), 1)
    cai = CAIOnly(buf)
    cai.__cuda_array_interface__ = dict(cai.__cuda_array_interface__, stream=None)
    obj = dlpack.asdlpack(cai)
    assert obj.__cuda_array_interface__["stream"] is None
    sim.reset_counters()
    obj.__dlpack__(stream=cuda.b, max_version=(1, 3))
    _t.import_info(cai)
    assert sync_calls(sim) == NO_SYNC


def test_cai_stream_zero_refused(sim, cuda):
    buf = _t.DeviceBuffer(N)
    cai = CAIOnly(buf)
    cai.__cuda_array_interface__ = dict(cai.__cuda_array_interface__, stream=0)
    with pytest.raises(ValueError):
        dlpack.asdlpack(cai)
    with pytest.raises(ValueError):
        _t.import_info(cai)


def test_device_id_from_the_pointer(sim):
    """A CAI carries no device id: it comes from the pointer (device 1 here)."""
    streams = Streams("cuda", device=1)
    try:
        buf = _t.DeviceBuffer(N, device=1)
        assert buf.__dlpack_device__() == (CUDA, 1)
        buf.fill_on(streams.a, 2)
        obj = dlpack.asdlpack(CAIOnly(buf))
        assert obj.__dlpack_device__() == (CUDA, 1)
        assert obj.device == (CUDA, 1)
        assert _t.import_info(CAIOnly(buf))["device"] == (CUDA, 1)
        cap = obj.__dlpack__(stream=streams.b, max_version=(1, 3))
        assert dlpack.capsule_info(cap)["device"] == (CUDA, 1)
        consumer_read(sim, streams.b, buf)
        assert sim.races() == []
        del obj, cap, buf
    finally:
        streams.close()


@pytest.mark.parametrize("backend", ["cuda", "rocm"])
def test_free_after_the_consumers_last_use(sim, backend):
    """The memory outlives the buffer while a consumer holds the tensor, and is freed
    stream-ordered after the consumer's work (the simulator reports a free that races
    with a use, and any use after the free)."""
    streams = Streams(backend)
    try:
        before = sim.live_allocations()
        buf = _t.DeviceBuffer(N, backend=backend)
        buf.fill_on(streams.a, 1)
        held = dlpack.asdlpack(buf.__dlpack__(stream=streams.b, max_version=(1, 3)))
        ptr = buf.ptr
        del buf
        gc.collect()
        assert sim.live_allocations() == before + 1  # the consumer still holds it
        consumer_read(sim, streams.b, type("Mem", (), {"ptr": ptr, "nbytes": N})(), backend)
        sim.reset_counters()
        del held  # the deleter: the free waits for stream B, the host does not
        gc.collect()
        assert sim.live_allocations() == before
        assert sim.races() == [], sim.races()
        if backend == "cuda":
            assert sim.call_count("cuMemFreeAsync") == 1
            assert sim.blocking_count() == 0
    finally:
        streams.close()


class _PrimaryContext:
    """Makes device 0's primary context current on this thread for the block (a kernel
    on CUDA's default streams 1 and 2 needs a current context; the simulator's own
    driver entry points, loaded by ctypes)."""

    def __init__(self, sim):
        self.lib = sim._lib

    def __enter__(self):
        ctx = ctypes.c_void_p()
        assert self.lib.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), 0) == 0
        assert self.lib.cuCtxSetCurrent(ctx) == 0

    def __exit__(self, *exc):
        assert self.lib.cuCtxSetCurrent(None) == 0
        assert self.lib.cuDevicePrimaryCtxRelease_v2(0) == 0


@pytest.mark.parametrize("how", ["buffer", "tensor", "asdlpack_forward"])
def test_per_thread_consumer_released_on_another_thread(sim, cuda, how):
    """A consumer on its per-thread default stream passes ``stream=2``; the tensor is
    released on another thread (deleters may run on any thread). The free, on the
    buffer's own stream A, must wait for the *consumer's* thread's per-thread stream,
    not for the releasing thread's."""
    before = sim.live_allocations()
    buf = _t.DeviceBuffer(N, stream=cuda.a)
    buf.fill_on(cuda.a, 6)
    box = [dlpack.asdlpack(PRODUCERS[how](buf).__dlpack__(stream=2, max_version=(1, 3)))]
    ptr = buf.ptr
    del buf
    gc.collect()
    with _PrimaryContext(sim):
        assert sim.launch_kernel(2, "consumer", reads=[(ptr, N)]) == 0
    assert sim.races() == []

    def release():
        box.clear()
        gc.collect()

    worker = threading.Thread(target=release)
    worker.start()
    worker.join()
    assert sim.live_allocations() == before
    assert sim.races() == [], sim.races()


def test_cai_per_thread_producer_exported_on_another_thread(sim, cuda):
    """``asdlpack`` over a ``__cuda_array_interface__`` whose ``stream`` is 2: the producer's
    per-thread default stream, on the thread that handed the object over. A ``__dlpack__``
    call made on another thread must still order the consumer after *that* stream."""
    buf = _t.DeviceBuffer(N)
    buf.fill_on(2, 5)  # pending work on this thread's per-thread default stream
    obj = dlpack.asdlpack(CAIOnly(buf))
    caps = []
    worker = threading.Thread(
        target=lambda: caps.append(obj.__dlpack__(stream=cuda.b, max_version=(1, 3)))
    )
    worker.start()
    worker.join()
    assert len(caps) == 1
    consumer_read(sim, cuda.b, buf)
    assert sim.races() == [], sim.races()


def test_no_driver_call_for_cpu_use(sim):
    """CPU exchanges never touch the driver (it is loaded lazily)."""
    np = pytest.importorskip("numpy")
    sim.reset_counters()
    a = np.arange(10.0)
    np.from_dlpack(dlpack.asdlpack(a))
    bytes(memoryview(dlpack.asdlpack(bytearray(8))))
    assert sum(sim.counters().values()) == 0, sim.counters()


# --- device errors keep their kind ------------------------------------------------------
# The device crates' errors reach Python as the exception of their ErrorKind: an invalid
# device ordinal is a ValueError (a bad device value), a failing driver call a BufferError.


def _device_capsule(device, ptr, n):
    """A bare versioned capsule over `n` bytes at `ptr`, claiming `device` (made "in C")."""
    import ctypes

    class Tensor(ctypes.Structure):
        _fields_ = [("data", ctypes.c_void_p), ("device", ctypes.c_int32 * 2),
                    ("ndim", ctypes.c_int32), ("dtype", ctypes.c_uint8 * 4),
                    ("shape", ctypes.POINTER(ctypes.c_int64)),
                    ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]

    class Managed(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32 * 2), ("manager_ctx", ctypes.c_void_p),
                    ("deleter", ctypes.c_void_p), ("flags", ctypes.c_uint64),
                    ("dl_tensor", Tensor)]

    shape = (ctypes.c_int64 * 1)(n)
    m = Managed()
    m.version[:] = (1, 3)
    t = m.dl_tensor
    t.data, t.device[:], t.ndim = ptr, device, 1
    t.dtype[:] = (1, 8, 1, 0)  # uint8, one lane
    t.shape = ctypes.cast(shape, ctypes.POINTER(ctypes.c_int64))
    new = ctypes.pythonapi.PyCapsule_New
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    return new(ctypes.addressof(m), b"dltensor_versioned", None), (m, shape)


@pytest.mark.parametrize("ordinal", [-1, 5])
@pytest.mark.parametrize("backend, device_type", [("cuda", CUDA), ("rocm", ROCM)])
def test_invalid_device_ordinal_is_a_value_error(sim, backend, device_type, ordinal):
    buf = _t.DeviceBuffer(N, backend=backend)
    cap, keep = _device_capsule((device_type, ordinal), buf.ptr, N)
    obj = dlpack.asdlpack(cap)
    # The host copy asks the device crate for the device: -1 is refused before any driver call
    # (InvalidOrdinal), 5 by the driver (the simulator has fewer devices): both kind Value.
    with pytest.raises(ValueError) as info:
        obj.__dlpack__(max_version=(1, 3), dl_device=(1, 0), copy=True)
    assert type(info.value) is ValueError
    msg = str(info.value)
    assert "copy data to the host" in msg and f", {ordinal})" in msg, msg
    assert "ordinal" in msg or "InvalidDevice" in msg, msg
    del obj, cap, keep


def test_testing_buffer_on_an_invalid_ordinal_is_a_value_error(sim):
    with pytest.raises(ValueError, match="device ordinal -1"):
        _t.DeviceBuffer(N, device=-1)


@pytest.mark.parametrize("how", ["buffer", "tensor", "asdlpack_cai"])
def test_failing_stream_wait_is_a_buffer_error_naming_the_stream(sim, cuda, how):
    buf = _t.DeviceBuffer(N)
    buf.fill_on(cuda.a, 3)  # pending work: the consumer's stream must wait for it
    obj = PRODUCERS[how](buf)
    bogus = 0xDEAD0
    with pytest.raises(BufferError) as info:
        obj.__dlpack__(stream=bogus, max_version=(1, 3))
    assert type(info.value) is BufferError
    msg = str(info.value)
    assert f"stream={bogus}" in msg and "cuStreamWaitEvent" in msg, msg
    del obj, buf
    sim.take_reports()  # the simulator logged the bogus handle; nothing else is expected


class Managed:
    """``nbytes`` of CUDA managed memory (``cuMemAllocManaged``, a host address as well),
    described by a ``__cuda_array_interface__`` whose pending work is on ``stream``."""

    def __init__(self, sim, nbytes, stream):
        self._sim = sim
        ptr = ctypes.c_uint64()
        with _PrimaryContext(sim):
            rc = sim._lib.cuMemAllocManaged(
                ctypes.byref(ptr), ctypes.c_size_t(nbytes), ctypes.c_uint(1)
            )
        assert rc == 0
        self.ptr, self.nbytes = ptr.value, nbytes
        self.__cuda_array_interface__ = {
            "shape": (nbytes,), "typestr": "|u1", "data": (self.ptr, False), "version": 3,
            "strides": None, "stream": stream,
        }

    def free(self):
        with _PrimaryContext(self._sim):
            assert self._sim._lib.cuMemFree_v2(ctypes.c_uint64(self.ptr)) == 0


# Every way the module lets the host read memory that a device also writes: each must wait
# for the producer's stream first (one host-blocking call), as no consumer stream can.
HOST_READERS = {
    "buffer protocol": lambda obj: bytes(memoryview(obj)),
    "__array_interface__": lambda obj: obj.__array_interface__,
    "pickle": lambda obj: __import__("pickle").dumps(obj, protocol=5),
    "dlpack as CPU memory": lambda obj: obj.__dlpack__(max_version=(1, 3), dl_device=(1, 0)),
    "dlpack host copy": lambda obj: obj.__dlpack__(
        max_version=(1, 3), dl_device=(1, 0), copy=True
    ),
}


@pytest.mark.parametrize("reader", list(HOST_READERS))
def test_host_reads_of_managed_memory_wait_for_the_producer(sim, cuda, reader):
    mem = Managed(sim, N, stream=cuda.a)
    try:
        assert sim.launch_kernel(cuda.a, "producer", writes=[(mem.ptr, N)]) == 0
        obj = dlpack.asdlpack(mem)
        assert obj.__dlpack_device__() == (13, 0)  # kDLCUDAManaged, from the pointer
        sim.reset_counters()
        HOST_READERS[reader](obj)
        assert sim.blocking_count() == 1
        assert sim.host_read(mem.ptr, N) == 0
        assert sim.races() == []
        del obj
        gc.collect()
    finally:
        mem.free()


def test_host_reads_of_managed_memory_without_pending_work_do_not_block(sim, cuda):
    mem = Managed(sim, N, stream=None)
    try:
        obj = dlpack.asdlpack(mem)
        sim.reset_counters()
        for read in HOST_READERS.values():
            read(obj)
        assert sim.blocking_count() == 0
        assert sim.races() == []
        del obj
        gc.collect()
    finally:
        mem.free()
