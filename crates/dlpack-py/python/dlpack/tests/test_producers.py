"""Every producer -> dlpack.asdlpack -> numpy / torch (values, dtype, strides, zero-copy)."""

import array
import ctypes
import mmap
import os
import sys
import tempfile

import numpy as np
import pytest

import dlpack

from .conftest import (AI, BACKENDS, CPU, DL_DTYPE, READ_ONLY, LegacyOnly, Wrapping, assert_values,
                       capsule_name, comparable, elem_strides, first_element, layout_base_shape,
                       layout_view, live, load_pydlpack, needs_numpy_dlpack_1, np_from_dlpack_readonly,
                       np_ptr, NUMPY_DLPACK_1, producer_cases, reference)


def _producer_capsule_info(src):
    """What the producer itself exports (first element address, strides)."""
    try:
        cap = src.__dlpack__(max_version=(1, 3))
    except TypeError:
        cap = src.__dlpack__()
    return dlpack.capsule_info(cap)


def _c_strides(shape):
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return tuple(reversed(out))


@pytest.mark.parametrize("producer,dtype,shape,layout", producer_cases())
def test_producer_to_asdlpack(producer, dtype, shape, layout):
    b = BACKENDS[producer]
    b.module()
    base = reference(dtype, layout_base_shape(layout, shape))
    src = b.make(base, layout)
    expected = layout_view(base, layout)
    if producer == "pyarrow":
        expected = np.asarray(expected).reshape(-1)
    pinfo = _producer_capsule_info(src)

    obj = dlpack.asdlpack(src)
    assert obj.source is src
    assert obj.shape == tuple(expected.shape)
    assert obj.dtype == DL_DTYPE[dtype]
    assert obj.device == CPU
    assert obj.__dlpack_device__() == CPU
    info = dlpack.capsule_info(obj.__dlpack__(max_version=(1, 3)))
    assert info["name"] == "dltensor_versioned"
    assert info["dtype"] == DL_DTYPE[dtype]
    assert info["shape"] == tuple(expected.shape)
    if expected.size > 0:
        assert first_element(info) == first_element(pinfo), "asdlpack must not copy"
        pstrides = pinfo["strides"] if pinfo["strides"] is not None else _c_strides(pinfo["shape"])
        if len(shape) > 0:
            assert info["strides"] == tuple(pstrides)
            assert obj.strides == tuple(pstrides)

    # consume with numpy (all but bfloat16) and torch (all but negative strides)
    if dtype != "bfloat16":
        r = np.from_dlpack(obj)
        assert_values(r, expected)
        if expected.size > 0:
            assert np_ptr(r) == first_element(pinfo)
    if layout != "negative":
        torch = BACKENDS["torch"].module()
        t = torch.from_dlpack(obj)
        assert_values(BACKENDS["torch"].to_numpy(t), expected)
        if expected.size > 0:
            assert t.data_ptr() == first_element(pinfo)


def test_producer_readonly_numpy_forwarded():
    a = np.arange(6.0)
    a.flags.writeable = False
    obj = dlpack.asdlpack(a)
    assert obj.readonly is True
    info = dlpack.capsule_info(obj.__dlpack__(max_version=(1, 3)))
    assert info["flags"] & READ_ONLY
    r = np_from_dlpack_readonly(obj)
    if r is not None:
        assert np_ptr(r) == np_ptr(a)


# --------------------------------------------------------------------------------------
# buffer protocol inputs
# --------------------------------------------------------------------------------------
ARRAY_CODES = {
    "b": (0, 8), "B": (1, 8), "h": (0, 16), "H": (1, 16), "i": (0, 32), "I": (1, 32),
    "l": (0, 8 * ctypes.sizeof(ctypes.c_long)), "L": (1, 8 * ctypes.sizeof(ctypes.c_long)),
    "q": (0, 64), "Q": (1, 64), "f": (2, 32), "d": (2, 64),
}


@pytest.mark.parametrize("code", list(ARRAY_CODES))
def test_array_array(code, ):
    vals = [1, 2, 3, 4, 5] if code not in "fd" else [1.5, 2.0, 3.14, -1.0, 0.0]
    a = array.array(code, vals)
    obj = dlpack.asdlpack(a)
    code_, bits = ARRAY_CODES[code]
    assert obj.dtype == (code_, bits, 1)
    assert obj.shape == (5,)
    assert obj.readonly is False
    info = dlpack.capsule_info(obj.__dlpack__(max_version=(1, 3)))
    assert first_element(info) == a.buffer_info()[0]
    r = np.from_dlpack(obj)
    np.testing.assert_array_equal(r, np.array(vals, dtype=r.dtype))
    assert np_ptr(r) == a.buffer_info()[0]
    if NUMPY_DLPACK_1:  # numpy 2.0 imports every array read-only
        r[0] = 7
        assert a[0] == 7


def test_bytes():
    b = b"1234ABCD123489"
    obj = dlpack.asdlpack(b)
    assert obj.dtype == (1, 8, 1) and obj.shape == (14,) and obj.readonly is True
    r = np_from_dlpack_readonly(obj)
    if r is not None:
        assert r.tobytes() == b
        assert np_ptr(r) == np_ptr(np.frombuffer(b, np.uint8))
    assert dlpack.capsule_info(obj.__dlpack__(max_version=(1, 3)))["flags"] & READ_ONLY


def test_bytearray_writable_and_pinned():
    ba = bytearray(range(32))
    obj = dlpack.asdlpack(ba)
    assert obj.readonly is False
    r = np.from_dlpack(obj)
    assert np_ptr(r) == np_ptr(np.frombuffer(ba, np.uint8))
    if NUMPY_DLPACK_1:  # numpy 2.0 imports every array read-only
        r[0] = 200
        assert ba[0] == 200
    # the exported view pins the bytearray: resizing must fail rather than dangle
    with pytest.raises(BufferError):
        ba.append(1)
    del r, obj
    import gc
    gc.collect()
    ba.append(1)  # released once the export is gone
    assert len(ba) == 33


def test_memoryview_inputs():
    a = np.arange(24, dtype=np.float64)
    mv = memoryview(a)
    r = np.from_dlpack(dlpack.asdlpack(mv))
    assert np_ptr(r) == np_ptr(a)
    np.testing.assert_array_equal(r, a)
    # strided and multi-dimensional memoryviews
    mv2 = memoryview(a.reshape(4, 6))[::2]
    obj = dlpack.asdlpack(mv2)
    assert obj.shape == (2, 6) and obj.strides == (12, 1)
    np.testing.assert_array_equal(np.from_dlpack(obj), a.reshape(4, 6)[::2])
    neg = memoryview(a)[::-3]
    obj = dlpack.asdlpack(neg)
    assert obj.strides == (-3,)
    np.testing.assert_array_equal(np.from_dlpack(obj), a[::-3])
    assert first_element(dlpack.capsule_info(obj.__dlpack__(max_version=(1, 3)))) == np_ptr(a[::-3])
    # cast to another format
    c = memoryview(bytearray(16)).cast("i")
    assert dlpack.asdlpack(c).dtype == (0, 32, 1)
    # read-only memoryview
    ro = memoryview(b"abcd")
    assert dlpack.asdlpack(ro).readonly is True
    ro2 = memoryview(bytearray(b"abcd")).toreadonly()
    assert dlpack.asdlpack(ro2).readonly is True


def test_mmap_and_memmap():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "data.bin")
        with open(path, "wb") as f:
            f.write(np.arange(64, dtype=np.float64).tobytes())
        with open(path, "r+b") as f:
            m = mmap.mmap(f.fileno(), 0)
        obj = dlpack.asdlpack(m)
        assert obj.dtype == (1, 8, 1) and obj.shape == (512,) and obj.readonly is False
        r = np.from_dlpack(obj)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
        assert np_ptr(r) == addr
        assert np.array_equal(r.view(np.float64), np.arange(64.0))
        del r, obj
        import gc
        gc.collect()
        m.close()  # fails with BufferError if an export leaked

        with open(path, "rb") as f:
            mro = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        obj = dlpack.asdlpack(mro)
        assert obj.readonly is True
        r = np_from_dlpack_readonly(obj)
        assert r is None or r.view(np.float64)[5] == 5.0
        del r
        del obj
        gc.collect()
        mro.close()

        mm = np.memmap(path, dtype=np.float64, mode="r+", shape=(8, 8))
        obj = dlpack.asdlpack(mm)
        r = np.from_dlpack(obj)
        assert np_ptr(r) == np_ptr(mm)
        np.testing.assert_array_equal(r, np.arange(64.0).reshape(8, 8))
        mmr = np.memmap(path, dtype=np.float64, mode="r", shape=(64,))
        if NUMPY_DLPACK_1:
            assert dlpack.asdlpack(mmr).readonly is True
        else:  # a subclass is forwarded to its __dlpack__: numpy 2.0 refuses read-only arrays
            with pytest.raises(BufferError):
                dlpack.asdlpack(mmr).readonly
        del r, obj, mm, mmr
        gc.collect()


@pytest.mark.parametrize("protocol", ["buffer", "array_interface", "dlpack", None])
@pytest.mark.parametrize("dtype", ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
                                   "uint32", "uint64", "float16", "float32", "float64", "complex64",
                                   "complex128"])
def test_numpy_forced_protocols(protocol, dtype):
    a = reference(dtype, (3, 4, 5))[:, ::2, ::-1]
    obj = dlpack.asdlpack(a, protocol=protocol)
    assert obj.dtype == DL_DTYPE[dtype]
    assert obj.shape == a.shape
    assert obj.strides == elem_strides(a)
    r = np.from_dlpack(obj)
    assert np_ptr(r) == np_ptr(a)
    np.testing.assert_array_equal(r, a)


# --------------------------------------------------------------------------------------
# __array_interface__ objects
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [3, 2])
@pytest.mark.parametrize("ro", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "negative"])
def test_array_interface_objects(version, ro, layout):
    a = layout_view(np.arange(150, dtype=np.int32).reshape(5, 6, 5), layout)
    a.flags.writeable = not ro
    src = AI(a, version=version)
    obj = dlpack.asdlpack(src)
    assert obj.source is src
    assert obj.readonly is ro
    assert obj.shape == a.shape
    assert obj.strides == elem_strides(a)
    if ro:
        r = np_from_dlpack_readonly(obj)
        if r is None:
            return
    else:
        r = np.from_dlpack(obj)
        assert r.flags.writeable is NUMPY_DLPACK_1  # numpy 2.0 imports every array read-only
    assert np_ptr(r) == np_ptr(a)
    np.testing.assert_array_equal(r, a)


@pytest.mark.parametrize("override,why", [
    (dict(typestr=">f8"), "byte order"),
    (dict(typestr="<M8[ns]"), "datetime"),
    (dict(typestr="|O8"), "object"),
    (dict(typestr="|V8"), "void"),
    (dict(typestr="<f16"), "long double"),
    (dict(strides=(12,)), "stride not a multiple of itemsize"),
])
def test_array_interface_bad_content_buffererror(override, why):
    a = np.arange(8, dtype=np.float64)
    src = AI(a, **override)
    with pytest.raises(BufferError):
        o = dlpack.asdlpack(src)
        o.__dlpack__(max_version=(1, 3))


def test_array_interface_mask_buffererror():
    a = np.arange(8, dtype=np.float64)
    src = AI(a, mask=np.ones(8, dtype=bool))
    with pytest.raises(BufferError):
        o = dlpack.asdlpack(src)
        o.__dlpack__(max_version=(1, 3))


def test_array_interface_keeps_owner_alive():
    import gc
    import weakref
    a = np.arange(1000, dtype=np.float64)
    src = AI(a)
    w = weakref.ref(src)
    obj = dlpack.asdlpack(src)
    del src, a
    gc.collect()
    assert w() is not None
    r = np.from_dlpack(obj)
    np.testing.assert_array_equal(r, np.arange(1000.0))
    del obj
    gc.collect()
    assert w() is not None, "numpy result still uses the memory"
    del r
    gc.collect()
    assert w() is None


# --------------------------------------------------------------------------------------
# forwarded producers: pydlpack, legacy-only, modern Python producer
# --------------------------------------------------------------------------------------
def test_pydlpack_peer_bytes_and_numpy():
    pyd = load_pydlpack()
    assert pyd is not dlpack and sys.modules["dlpack"] is dlpack
    b = b"Hello"
    p = pyd.asdlpack(b)
    obj = dlpack.asdlpack(p)
    r = np.from_dlpack(obj)
    np.testing.assert_array_equal(r, np.frombuffer(b, np.uint8))
    assert np_ptr(r) == np_ptr(np.frombuffer(b, np.uint8))
    cap = obj.__dlpack__(max_version=(1, 3))
    assert capsule_name(cap) == "dltensor_versioned", "legacy answer must be converted"
    assert capsule_name(obj.__dlpack__()) == "dltensor"

    a = np.arange(1, 25, dtype=np.float32).reshape(4, 6)
    p = pyd.asdlpack(a)
    obj = dlpack.asdlpack(p)
    for _ in range(3):
        r = np.from_dlpack(obj)
        np.testing.assert_array_equal(r, a)
        assert np_ptr(r) == np_ptr(a)
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(torch.from_dlpack(obj).numpy(), a)


@pytest.mark.parametrize("max_version", [None, (1, 0), (1, 3)])
def test_legacy_only_producer(max_version):
    a = np.arange(10, dtype=np.int16)
    src = LegacyOnly(a)
    obj = dlpack.asdlpack(src)
    cap = obj.__dlpack__(max_version=max_version)
    assert capsule_name(cap) == ("dltensor" if max_version is None else "dltensor_versioned")
    info = dlpack.capsule_info(cap)
    assert first_element(info) == np_ptr(a)
    assert info["shape"] == (10,) and info["dtype"] == (0, 16, 1)
    assert src.calls and all(s is None for s in src.calls)
    r = np.from_dlpack(obj)
    np.testing.assert_array_equal(r, a)
    assert np_ptr(r) == np_ptr(a)


def test_legacy_only_producer_copy_and_device():
    a = np.arange(10, dtype=np.int16)
    obj = dlpack.asdlpack(LegacyOnly(a))
    # spec: the legacy retry is only allowed when copy and dl_device are None; with them set, a
    # producer that rejects the keywords may surface its TypeError (or the export may succeed)
    try:
        info = dlpack.capsule_info(obj.__dlpack__(max_version=(1, 3), copy=False, dl_device=(1, 0)))
    except TypeError:
        pass
    else:
        assert first_element(info) == np_ptr(a)
    with pytest.raises(BufferError):
        obj.__dlpack__(max_version=(1, 3), dl_device=(2, 0))


@needs_numpy_dlpack_1  # the forwarded producer is numpy's own __dlpack__
def test_forwarding_passes_arguments():
    a = np.arange(6.0)
    src = Wrapping(a)
    obj = dlpack.asdlpack(src)
    src.calls.clear()
    obj.__dlpack__(max_version=(1, 3), copy=False, dl_device=(1, 0))
    assert src.calls, "a forwarded producer must be called per __dlpack__"
    last = src.calls[-1]
    assert tuple(last["max_version"]) >= (1, 0)
    assert last["copy"] is False
    assert last["stream"] is None
    cap = obj.__dlpack__(max_version=(1, 3), copy=True)
    info = dlpack.capsule_info(cap)
    assert first_element(info) != np_ptr(a)
    assert info["flags"] & 0x2


def test_tensorflow_legacy_answer_converted():
    tf = BACKENDS["tensorflow"].module()
    t = tf.constant(np.arange(12, dtype=np.float32).reshape(3, 4))
    obj = dlpack.asdlpack(t)
    cap = obj.__dlpack__(max_version=(1, 3))
    assert capsule_name(cap) == "dltensor_versioned"
    r = np.from_dlpack(obj)
    np.testing.assert_array_equal(r, np.arange(12, dtype=np.float32).reshape(3, 4))


def test_paddle_device_id_normalised():
    paddle = BACKENDS["paddle"].module()
    x = paddle.to_tensor(np.arange(4.0))
    obj = dlpack.asdlpack(x)
    dev = obj.__dlpack_device__()
    assert dev == (1, 0) and type(dev[1]) is int, f"paddle reports (kDLCPU, None); got {dev}"


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("obj,tname", [(42, "int"), ("text", "str"), ([1, 2], "list"),
                                       (object(), "object"), (None, "NoneType"), (1.5, "float")])
def test_unsupported_input_typeerror(obj, tname):
    with pytest.raises(TypeError) as ei:
        dlpack.asdlpack(obj)
    assert tname in str(ei.value), f"message should name the type: {ei.value}"


def test_unknown_protocol_valueerror():
    with pytest.raises(ValueError) as ei:
        dlpack.asdlpack(np.arange(3), protocol="bogus")
    assert "bogus" in str(ei.value)


@pytest.mark.parametrize("protocol", ["cuda_array_interface", "capsule"])
def test_forced_protocol_missing_typeerror(protocol):
    with pytest.raises(TypeError):
        dlpack.asdlpack(np.arange(3), protocol=protocol)


def test_forced_buffer_on_object_without_buffer():
    torch = BACKENDS["torch"].module()
    with pytest.raises(TypeError):
        dlpack.asdlpack(torch.arange(3), protocol="buffer")


def test_asdlpack_arguments():
    """asdlpack(obj) has a call path of its own; every other call is parsed as the
    signature says, with the usual messages."""
    import inspect
    assert str(inspect.signature(dlpack.asdlpack)) == "(obj, impl_cls=None, *, protocol=None)"
    assert dlpack.asdlpack.__module__ == "dlpack._native"
    a = np.arange(3.0)
    assert np.from_dlpack(dlpack.asdlpack(obj=a)).tolist() == [0.0, 1.0, 2.0]
    assert dlpack.asdlpack(a, protocol=None).source is a
    assert dlpack.asdlpack(obj=a, protocol="buffer").source is a
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'obj'"):
        dlpack.asdlpack()
    with pytest.raises(TypeError, match="takes from 1 to 2 positional arguments but 3 were given"):
        dlpack.asdlpack(a, None, "buffer")
    with pytest.raises(TypeError, match="impl_cls must be None"):
        dlpack.asdlpack(a, "buffer")
    with pytest.raises(TypeError, match="unexpected keyword argument 'x'"):
        dlpack.asdlpack(a, x=1)


def test_protocol_is_keyword_only():
    with pytest.raises(TypeError):
        dlpack.asdlpack(np.arange(3), None, "buffer")


@pytest.mark.parametrize("make", [
    pytest.param(lambda: np.arange(4, dtype=">f8"), id="big-endian"),
    pytest.param(lambda: np.array([b"ab", b"cd"]), id="bytes-dtype"),
    pytest.param(lambda: np.zeros(3, dtype="i4,f4"), id="structured"),
    pytest.param(lambda: np.array([0, 1, 2], dtype="M8[s]"), id="datetime"),
    pytest.param(lambda: np.zeros(3, dtype=np.longdouble), id="longdouble"),
])
@pytest.mark.parametrize("protocol", [None, "buffer", "array_interface"])
def test_unexportable_numpy_buffererror(make, protocol):
    a = make()
    with pytest.raises(BufferError):
        o = dlpack.asdlpack(a, protocol=protocol)
        o.__dlpack__(max_version=(1, 3))


def test_bfloat16_numpy_buffererror():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    a = np.arange(4, dtype=np.float32).astype(ml_dtypes.bfloat16)
    for protocol in (None, "buffer", "array_interface"):
        with pytest.raises(BufferError):
            o = dlpack.asdlpack(a, protocol=protocol)
            o.__dlpack__(max_version=(1, 3))


def test_bfloat16_from_torch_roundtrip():
    torch = BACKENDS["torch"].module()
    t = torch.arange(6, dtype=torch.float32).to(torch.bfloat16)
    obj = dlpack.asdlpack(t)
    assert obj.dtype == (4, 16, 1)
    t2 = torch.from_dlpack(obj)
    assert t2.dtype == torch.bfloat16 and t2.data_ptr() == t.data_ptr()
    assert torch.equal(t2, t)
    assert comparable(t2.float().numpy()).tolist() == list(range(6))
