"""Pickling ``Tensor`` and ``DLPackObject`` (host memory).

Protocol 5 sends the tensor's byte span as a ``pickle.PickleBuffer``: out of band (a
``buffer_callback``), ``pickle.loads(data, buffers=...)`` gives an object over the very same
memory; in band it is one copy. Protocols 2 to 4 copy in band. Shape, strides (negative ones
too), dtype, byte offset and read-only travel in band; read-only stays read-only. Device
memory is refused with a ``TypeError`` that says how to copy it to the host. Bad metadata in
a pickle is refused with ``ValueError``. Values are checked with NumPy and PyTorch.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle

import numpy as np
import pytest

import dlpack

from .conftest import (
    DL_DTYPE,
    DTYPES,
    NUMPY_DLPACK_1,
    READ_ONLY,
    assert_values,
    layout_view,
    np_ptr,
    reference,
    testing,
)

native = pytest.importorskip("dlpack._native")

PROTOCOLS = [2, 3, 4, 5, "oob"]


def roundtrip(obj, protocol):
    """``pickle.loads(pickle.dumps(obj))``; ``"oob"``: protocol 5 with the buffers handed
    over out of band, as a transport that takes them does."""
    if protocol == "oob":
        bufs = []
        data = pickle.dumps(obj, protocol=5, buffer_callback=bufs.append)
        return pickle.loads(data, buffers=bufs)
    return pickle.loads(pickle.dumps(obj, protocol=protocol))


def refuses_writable(obj):
    """``PyObject_GetBuffer(obj, &view, PyBUF_WRITABLE)`` raises (its own function object:
    ``ctypes.pythonapi.PyObject_GetBuffer``'s argtypes are shared with other tests)."""
    get = ctypes.pythonapi["PyObject_GetBuffer"]
    get.argtypes = [ctypes.py_object, ctypes.c_void_p, ctypes.c_int]
    get.restype = ctypes.c_int
    view = ctypes.create_string_buffer(256)  # > sizeof(Py_buffer); never filled on refusal
    with pytest.raises(BufferError, match="read-only"):
        get(obj, ctypes.addressof(view), 0x1)  # PyBUF_WRITABLE


def first_addr(obj):
    """The address of element 0 (``__array_interface__``)."""
    return obj.__array_interface__["data"][0]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dtypes_roundtrip(dtype, protocol):
    src = reference(dtype, (3, 4))
    if dtype == "bfloat16":  # NumPy exports no bfloat16: torch makes the source
        torch = pytest.importorskip("torch")
        obj = dlpack.asdlpack(torch.from_numpy(src.view(np.int16).copy()).view(torch.bfloat16))
    else:
        obj = dlpack.asdlpack(src)
    got = roundtrip(obj, protocol)
    assert isinstance(got, dlpack.DLPackObject)
    assert got.dtype == DL_DTYPE[dtype]
    assert got.shape == (3, 4)
    if dtype != "bfloat16":  # NumPy cannot import bfloat16
        assert_values(np.from_dlpack(got), src)
    torch = pytest.importorskip("torch")
    t = torch.from_dlpack(got)
    if dtype == "bfloat16":
        assert_values(t.view(torch.int16).numpy(), src.view(np.int16))
    elif dtype.startswith("uint") and dtype != "uint8":
        assert t.dtype is getattr(torch, dtype)
        assert_values(t.to(torch.int64).numpy().astype(dtype), src)
    else:
        assert_values(t.numpy(), src)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("layout", ["contiguous", "strided", "negative", "transposed"])
def test_layouts_roundtrip(layout, protocol):
    base = np.arange(150, dtype=np.int32).reshape(5, 6, 5)
    src = layout_view(base, layout)
    obj = dlpack.asdlpack(src)
    got = roundtrip(obj, protocol)
    assert got.shape == src.shape
    assert got.strides == tuple(s // 4 for s in src.strides)
    out = np.from_dlpack(got)
    assert_values(out, src)
    same = first_addr(got) == np_ptr(src)
    assert same == (protocol == "oob"), "zero-copy exactly when the buffers travel out of band"


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2)])
def test_zero_d_and_empty(shape, protocol):
    src = np.full(shape, 7.5, dtype=np.float64)
    got = roundtrip(dlpack.asdlpack(src), protocol)
    assert got.shape == shape
    assert not got.readonly, "a writable source arrives writable, of any size"
    assert_values(np.from_dlpack(got), src)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rust_tensor_roundtrip(protocol):
    t = testing.arange(24, "float32", (2, 3, 4))
    assert isinstance(t, dlpack.Tensor)
    got = roundtrip(t, protocol)
    assert_values(np.from_dlpack(got), np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    assert (first_addr(got) == first_addr(t)) == (protocol == "oob")


def test_out_of_band_is_zero_copy_and_shares_writes():
    src = np.zeros(1 << 16, dtype=np.float32)
    bufs = []
    data = pickle.dumps(dlpack.asdlpack(src), protocol=5, buffer_callback=bufs.append)
    assert len(bufs) == 1 and len(data) < 300, "the data must travel out of band only"
    got = pickle.loads(data, buffers=bufs)
    out = np.from_dlpack(got)
    assert np_ptr(out) == np_ptr(src)
    src[5] = 3.0
    assert out[5] == 3.0
    assert not got.readonly


def test_in_band_copies_once_writable():
    src = np.arange(16, dtype=np.uint8)
    for protocol in (2, 3, 4, 5):
        got = roundtrip(dlpack.asdlpack(src), protocol)
        assert not got.readonly, f"protocol {protocol}: a writable source arrives writable"
        assert first_addr(got) != np_ptr(src)
        memoryview(got)[0] = 99  # (numpy < 2.1 imports every tensor read-only)
        assert np.from_dlpack(got)[0] == 99 and src[0] == 0


@pytest.mark.parametrize("protocol", [2, 4])
def test_in_band_pickling_holds_no_more_memory_than_numpy(protocol):
    # Below protocol 5 the bytes travel in band: one copy into the pickle and, for a writable
    # tensor, one on load (to make it writable). Peak memory while pickling is what NumPy's
    # own pickling of the same array holds: the copy and the pickle, not a third copy.
    import tracemalloc

    n = 8 << 20
    src = np.arange(n // 4, dtype=np.float32)
    obj = dlpack.asdlpack(src)

    def peak(f):
        tracemalloc.start()
        try:
            out = f()
            return tracemalloc.get_traced_memory()[1], out
        finally:
            tracemalloc.stop()

    ours, data = peak(lambda: pickle.dumps(obj, protocol=protocol))
    theirs, np_data = peak(lambda: pickle.dumps(src, protocol=protocol))
    assert ours <= theirs + n // 8, f"pickling peaked at {ours} bytes, NumPy's at {theirs}"
    assert len(data) <= len(np_data) + 400
    # Loading makes the one writable copy NumPy does not (NumPy writes into the `bytes`
    # object it unpickled, which Python's bytes are not meant for).
    ours, _ = peak(lambda: pickle.loads(data))
    theirs, _ = peak(lambda: pickle.loads(np_data))
    assert ours <= theirs + n + n // 8, f"unpickling peaked at {ours} bytes, NumPy's at {theirs}"
    out = pickle.loads(data)
    assert not out.readonly
    assert_values(np.from_dlpack(out), src)


def _read_only_sources():
    ro = np.arange(12, dtype=np.float32)
    ro.flags.writeable = False
    yield "bytes", dlpack.asdlpack(b"0123456789ab"), np.frombuffer(b"0123456789ab", np.uint8)
    yield "numpy", dlpack.asdlpack(ro), ro
    yield "tensor", testing.arange(12, "float32", None, True), np.arange(12, dtype=np.float32)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", ["bytes", "numpy", "tensor"])
def test_read_only_stays_read_only(name, protocol):
    _, obj, expected = next(s for s in _read_only_sources() if s[0] == name)
    assert obj.readonly
    got = roundtrip(obj, protocol)
    assert got.readonly
    refuses_writable(got)
    assert memoryview(got).readonly
    info = dlpack.capsule_info(got.__dlpack__(max_version=(1, 3)))
    assert info["flags"] & READ_ONLY
    if NUMPY_DLPACK_1:
        out = np.from_dlpack(got)
        assert out.flags.writeable is False
        assert_values(out, expected)
    torch = pytest.importorskip("torch")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that it has no read-only tensors
        t = torch.from_dlpack(got)
    assert_values(t.numpy(), expected)


def test_torch_source_roundtrip():
    torch = pytest.importorskip("torch")
    src = torch.arange(20, dtype=torch.float32).reshape(4, 5)[:, ::2]
    for protocol in PROTOCOLS:
        got = roundtrip(dlpack.asdlpack(src), protocol)
        assert_values(torch.from_dlpack(got).numpy(), src.numpy())
        assert (first_addr(got) == src.data_ptr()) == (protocol == "oob")


def _child_sum(obj):
    # In the spawned process: import with NumPy, answer with plain values.
    a = np.from_dlpack(obj)
    return a.tolist(), bool(obj.readonly), os.getpid()


def test_multiprocessing_spawn():
    src = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::-1]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        got, ro, pid = pool.apply(_child_sum, (dlpack.asdlpack(src),))
        got_t, _, _ = pool.apply(_child_sum, (testing.arange(6, "int32", (2, 3)),))
    assert pid != os.getpid()
    assert got == src.tolist() and ro is False
    assert got_t == [[0, 1, 2], [3, 4, 5]]


# --- bad pickles -------------------------------------------------------------------------


class _Forged:
    """Pickles as a call of the reconstructor with the given arguments."""

    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return native._from_pickle, self.args


def _good(**kw):
    args = dict(format=1, data=bytearray(16), shape=(4,), strides=(1,), dtype=(2, 32, 1),
                byte_offset=0, read_only=False)
    args.update(kw)
    return tuple(args.values())


def test_forged_good_pickle_loads():
    got = pickle.loads(pickle.dumps(_Forged(*_good())))
    assert_values(np.from_dlpack(got), np.zeros(4, np.float32))


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        (dict(shape=(5,)), ValueError, r"shape \[5\].*16-byte buffer"),
        (dict(strides=(2,)), ValueError, r"strides \[2\].*16-byte buffer"),
        (dict(byte_offset=4), ValueError, r"byte_offset 4 reach bytes \[4, 20\)"),
        (dict(strides=(-1,)), ValueError, r"strides \[-1\].*reach bytes \[-12, 4\)"),
        (dict(shape=(2, 2)), ValueError, r"shape \[2, 2\] and strides \[1\] differ"),
        (dict(shape=(-4,)), ValueError, r"shape \[-4\]"),
        (dict(shape=(1 << 62, 1 << 62), strides=(1, 1)), ValueError, r"shape \[4611686018427387904"),
        (dict(dtype=(99, 32, 1)), ValueError, r"dtype \(99, 32, 1\)"),
        (dict(dtype=(2, 0, 1)), ValueError, r"dtype \(2, 0, 1\)"),
        (dict(dtype="float32"), ValueError, r"dtype 'float32'"),
        (dict(shape="abc"), ValueError, r"shape 'abc'"),
        (dict(byte_offset=-1), ValueError, r"byte_offset -1"),
        (dict(shape=(1 << 70,)), ValueError, r"shape \(1180591620717411303424,\)"),
        (dict(format=2), ValueError, r"format 2"),
        (dict(data=12), TypeError, r"int"),
        (dict(writable_copy="yes"), ValueError, r"writable_copy 'yes' is not a bool"),
        (dict(writable_copy=True, data=12), TypeError, r"int"),
    ],
)
def test_bad_metadata_refused(kw, exc, match):
    data = pickle.dumps(_Forged(*_good(**kw)))
    with pytest.raises(exc, match=match):
        pickle.loads(data)


def test_non_contiguous_data_refused():
    data = memoryview(bytearray(32))[::2]
    with pytest.raises(BufferError, match="not contiguous"):
        native._from_pickle(*_good(data=data))


# --- device memory (gpu-sim, or a real driver) -------------------------------------------

_HAS_DEVICE = hasattr(testing, "DeviceBuffer") and (
    bool(os.environ.get("GPUSIM_LIB_DIR"))
    or testing.driver_present("cuda")
    or testing.driver_present("rocm")
)
needs_device = pytest.mark.skipif(
    not _HAS_DEVICE, reason="no GPU: GPUSIM_LIB_DIR is unset and no CUDA/ROCm driver is present"
)


@needs_device
@pytest.mark.parametrize("backend", ["cuda", "rocm"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_gpu_memory_refused_with_the_host_copy_named(backend, protocol):
    if not os.environ.get("GPUSIM_LIB_DIR") and not testing.driver_present(backend):
        pytest.skip(f"no {backend} device")
    buf = testing.DeviceBuffer(64, backend=backend)
    buf.upload(bytes(range(64)))
    for obj in (buf.tensor, dlpack.asdlpack(buf)):
        with pytest.raises(TypeError, match=r"cannot pickle a tensor on .*dl_device=\(1, 0\)"):
            roundtrip(obj, protocol)
    # The copy the message names works, and pickles.
    host = dlpack.asdlpack(buf.tensor.__dlpack__(max_version=(1, 3), dl_device=(1, 0), copy=True))
    got = roundtrip(host, protocol)
    assert_values(np.from_dlpack(got), np.arange(64, dtype=np.uint8))
