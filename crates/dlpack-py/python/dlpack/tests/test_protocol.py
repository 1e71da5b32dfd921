"""The `__dlpack__` rules on DLPackObject and Tensor (array API 2023.12+, DLPack 1.3)."""

import array
import ctypes
import enum
import weakref

import numpy as np
import pytest

import dlpack

from .conftest import (CPU, IS_COPIED, NUMPY_DLPACK_1, NUMPY_DLPACK_1_REASON, READ_ONLY,
                       capsule_name, capsule_pointer, first_element, live, needs_numpy_dlpack_1,
                       np_from_dlpack_readonly, np_ptr, numpy_capsule, testing)


# --------------------------------------------------------------------------------------
# exporters: (object, address of its first element, expected values as numpy, readonly)
# --------------------------------------------------------------------------------------
def _numpy(ro=False):
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    a.flags.writeable = not ro
    return dlpack.asdlpack(a), np_ptr(a), a.copy(), ro


def _numpy_protocol(protocol, ro=False):
    def make():
        a = np.arange(12, dtype=np.float64).reshape(3, 4)
        a.flags.writeable = not ro
        return dlpack.asdlpack(a, protocol=protocol), np_ptr(a), a.copy(), ro
    return make


def _array_d():
    a = array.array("d", range(12))
    return dlpack.asdlpack(a), a.buffer_info()[0], np.arange(12, dtype=np.float64), False


def _bytes():
    b = bytes(range(12))
    return dlpack.asdlpack(b), np_ptr(np.frombuffer(b, np.uint8)), np.arange(12, dtype=np.uint8), True


def _tensor(ro=False):
    t = testing.arange(12, dtype="float64", shape=(3, 4), read_only=ro)
    ptr = dlpack.capsule_info(t.__dlpack__(max_version=(1, 3)))["data"]
    return t, ptr, np.arange(12, dtype=np.float64).reshape(3, 4), ro


EXPORTERS = {
    "asdlpack(numpy)": _numpy,
    "asdlpack(numpy,protocol=buffer)": _numpy_protocol("buffer"),
    "asdlpack(numpy,protocol=array_interface)": _numpy_protocol("array_interface"),
    "asdlpack(array.array)": _array_d,
    "Tensor": _tensor,
}
RO_EXPORTERS = {
    "asdlpack(readonly numpy)": lambda: _numpy(ro=True),
    "asdlpack(readonly numpy,protocol=buffer)": _numpy_protocol("buffer", ro=True),
    "asdlpack(readonly numpy,protocol=array_interface)": _numpy_protocol("array_interface", ro=True),
    "asdlpack(bytes)": _bytes,
    "Tensor(read_only)": lambda: _tensor(ro=True),
}
if NUMPY_DLPACK_1:
    # numpy < 2.1 answers __dlpack__ with a legacy capsule, whose writability is unknown: a
    # forwarding object then exports it read-only to versioned consumers and as is to legacy
    # ones (test_readonly.py covers that producer); it is neither of the kinds above.
    EXPORTERS["asdlpack(numpy,protocol=dlpack)"] = _numpy_protocol("dlpack")
ALL = {**EXPORTERS, **RO_EXPORTERS}


# The exporters that forward `__dlpack__` to numpy's own, which takes `dl_device` and `copy` only
# from numpy 2.1 (a producer from before DLPack 1.0 cannot honour them: its TypeError stands).
FORWARDS_TO_NUMPY = {"asdlpack(numpy,protocol=dlpack)"}


@pytest.fixture(params=list(EXPORTERS))
def exporter(request):
    return EXPORTERS[request.param]()


@pytest.fixture(params=list(RO_EXPORTERS))
def ro_exporter(request):
    return RO_EXPORTERS[request.param]()


@pytest.fixture(params=list(ALL))
def any_exporter(request):
    return ALL[request.param]()


def skip_keywords_to_old_numpy(request):
    """Skips a test of `dl_device`/`copy` whose exporter forwards them to numpy < 2.1."""
    if request.node.callspec.params.get("any_exporter") in FORWARDS_TO_NUMPY and not NUMPY_DLPACK_1:
        pytest.skip(f"forwarded to numpy's __dlpack__: {NUMPY_DLPACK_1_REASON}")


# --------------------------------------------------------------------------------------
# capsule names, versions, freshness
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_version,name", [
    (None, "dltensor"), ((0, 8), "dltensor"), ((0, 99), "dltensor"),
    ((1, 0), "dltensor_versioned"), ((1, 3), "dltensor_versioned"),
    ((1, 99), "dltensor_versioned"), ((2, 0), "dltensor_versioned"),
])
def test_capsule_name_per_max_version(exporter, max_version, name):
    obj, ptr, expected, _ = exporter
    cap = obj.__dlpack__(max_version=max_version)
    assert capsule_name(cap) == name
    info = dlpack.capsule_info(cap)
    assert info["name"] == name
    if name == "dltensor":
        assert info["version"] is None
        assert info["flags"] == 0
    else:
        major, minor = info["version"]
        assert major == 1, info
        assert 0 <= minor <= 3, info  # a producer writes the version it implements
    assert first_element(info) == ptr  # zero-copy
    assert info["shape"] == expected.shape
    assert info["device"] == CPU
    assert info["dtype"] == {np.dtype("float64"): (2, 64, 1), np.dtype("uint8"): (1, 8, 1)}[expected.dtype]


def test_capsule_name_default_is_legacy(exporter):
    obj, *_ = exporter
    assert capsule_name(obj.__dlpack__()) == "dltensor"


def test_fresh_capsule_per_call(any_exporter):
    obj, ptr, _, _ = any_exporter
    caps = [obj.__dlpack__(max_version=(1, 3)) for _ in range(3)]
    assert len({id(c) for c in caps}) == 3
    managed = {capsule_pointer(c, "dltensor_versioned") for c in caps}
    assert len(managed) == 3, "each __dlpack__ call must return a new DLManagedTensorVersioned"
    for c in caps:
        assert first_element(dlpack.capsule_info(c)) == ptr


def test_capsule_info_does_not_consume(exporter):
    obj, ptr, expected, _ = exporter
    torch = pytest.importorskip("torch")
    cap = obj.__dlpack__(max_version=(1, 3))
    info1 = dlpack.capsule_info(cap)
    info2 = dlpack.capsule_info(cap)
    assert info1 == info2
    assert capsule_name(cap) == "dltensor_versioned"
    t = torch.from_dlpack(cap)  # still consumable
    assert t.data_ptr() == ptr
    np.testing.assert_array_equal(t.numpy(), expected)
    assert capsule_name(cap) == "used_dltensor_versioned"


def test_capsule_info_keys_and_strides(exporter):
    obj, _, expected, _ = exporter
    info = dlpack.capsule_info(obj.__dlpack__(max_version=(1, 3)))
    assert set(info) >= {"name", "version", "flags", "device", "dtype", "shape", "strides",
                         "byte_offset", "data"}
    assert info["shape"] == tuple(expected.shape)
    elem_strides = tuple(s // expected.itemsize for s in expected.strides)
    if info["strides"] is None:
        # DLPack >= 1.2: strides must not be NULL when ndim != 0. A forwarded producer's own
        # capsule may still say NULL (C-contiguous) if it declares an older version (numpy < 2.3).
        assert info["version"] < (1, 2), info
        assert expected.flags.c_contiguous
    else:
        assert info["strides"] == elem_strides


def test_capsule_info_rejects_non_capsules():
    with pytest.raises(TypeError):
        dlpack.capsule_info(np.arange(3))
    with pytest.raises(TypeError):
        dlpack.capsule_info(None)


def test_capsule_info_rejects_consumed_capsule():
    torch = pytest.importorskip("torch")
    cap = numpy_capsule(np.arange(3.0))
    torch.from_dlpack(cap)
    with pytest.raises((ValueError, TypeError)):
        dlpack.capsule_info(cap)


def test_capsule_info_of_foreign_capsule():
    a = np.arange(6, dtype=np.int32).reshape(2, 3)[:, ::2]
    info = dlpack.capsule_info(numpy_capsule(a))
    assert info["name"] == ("dltensor_versioned" if NUMPY_DLPACK_1 else "dltensor")
    assert info["shape"] == (2, 2)
    assert info["strides"] == (3, 2)
    assert info["dtype"] == (0, 32, 1)
    assert first_element(info) == np_ptr(a)


# --------------------------------------------------------------------------------------
# flags, read-only
# --------------------------------------------------------------------------------------
def test_writable_flags_zero(exporter):
    obj, *_ = exporter
    info = dlpack.capsule_info(obj.__dlpack__(max_version=(1, 3)))
    assert info["flags"] & READ_ONLY == 0
    assert info["flags"] & IS_COPIED == 0
    assert obj.readonly is False


def test_readonly_versioned_sets_flag(ro_exporter):
    obj, ptr, expected, _ = ro_exporter
    cap = obj.__dlpack__(max_version=(1, 3))
    info = dlpack.capsule_info(cap)
    assert info["flags"] & READ_ONLY, info
    assert first_element(info) == ptr
    assert obj.readonly is True
    r = np_from_dlpack_readonly(obj)
    if r is not None:
        np.testing.assert_array_equal(r, expected)


def test_readonly_legacy_raises_buffererror(ro_exporter):
    obj, *_ = ro_exporter
    with pytest.raises(BufferError):
        obj.__dlpack__()
    with pytest.raises(BufferError):
        obj.__dlpack__(max_version=(0, 8))


# --------------------------------------------------------------------------------------
# copy / dl_device
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dl_device", [None, (1, 0), (dlpack.DLDeviceType.kDLCPU, 0)])
@pytest.mark.parametrize("copy", [None, False])
def test_no_copy_combinations(request, any_exporter, dl_device, copy):
    if dl_device is not None or copy is not None:
        skip_keywords_to_old_numpy(request)
    obj, ptr, expected, ro = any_exporter
    info = dlpack.capsule_info(obj.__dlpack__(max_version=(1, 3), dl_device=dl_device, copy=copy))
    assert first_element(info) == ptr
    assert info["flags"] & IS_COPIED == 0
    assert bool(info["flags"] & READ_ONLY) == ro


@pytest.mark.parametrize("dl_device", [None, (1, 0)])
def test_copy_true_copies(request, any_exporter, dl_device):
    skip_keywords_to_old_numpy(request)
    obj, ptr, expected, _ = any_exporter
    cap = obj.__dlpack__(max_version=(1, 3), copy=True, dl_device=dl_device)
    info = dlpack.capsule_info(cap)
    assert first_element(info) != ptr
    assert info["flags"] & IS_COPIED, info
    torch = pytest.importorskip("torch")
    t = torch.from_dlpack(cap)
    assert t.data_ptr() != ptr
    np.testing.assert_array_equal(t.numpy(), expected)
    # the copy is solely owned: writing it leaves the source alone
    t.view(-1)[0] = 99
    assert np.from_dlpack(obj).reshape(-1)[0] == expected.reshape(-1)[0]


@needs_numpy_dlpack_1  # np.from_dlpack(copy=...)
def test_copy_true_via_numpy(any_exporter):
    obj, ptr, expected, _ = any_exporter
    r = np.from_dlpack(obj, copy=True)
    assert np_ptr(r) != ptr
    np.testing.assert_array_equal(r, expected)
    r2 = np.from_dlpack(obj, copy=False)
    assert np_ptr(r2) == ptr


@pytest.mark.parametrize("dl_device", [(2, 0), (10, 0), (13, 0), (4, 1)])
def test_foreign_dl_device_buffererror(any_exporter, dl_device):
    obj, *_ = any_exporter
    with pytest.raises(BufferError):
        obj.__dlpack__(max_version=(1, 3), dl_device=dl_device)
    with pytest.raises(BufferError):
        obj.__dlpack__(max_version=(1, 3), dl_device=dl_device, copy=False)


@needs_numpy_dlpack_1  # np.from_dlpack(device=...)
def test_numpy_device_cpu_roundtrip(exporter):
    obj, ptr, expected, _ = exporter
    r = np.from_dlpack(obj, device="cpu")
    assert np_ptr(r) == ptr
    np.testing.assert_array_equal(r, expected)


# --------------------------------------------------------------------------------------
# stream values on CPU
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_version", [None, (1, 3)])
def test_stream_none_ok(exporter, max_version):
    obj, ptr, *_ = exporter
    assert first_element(dlpack.capsule_info(obj.__dlpack__(stream=None, max_version=max_version))) == ptr


@pytest.mark.parametrize("stream", [-1, 0, 1, 2, 3, 2**40])
@pytest.mark.parametrize("max_version", [None, (1, 3)])
def test_stream_int_on_cpu_valueerror(any_exporter, stream, max_version):
    obj, *_ = any_exporter
    with pytest.raises(ValueError) as ei:
        obj.__dlpack__(stream=stream, max_version=max_version)
    assert str(stream) in str(ei.value), f"message should name the stream value: {ei.value}"


@pytest.mark.parametrize("stream", ["abc", 1.5, object()])
def test_stream_non_int_rejected(exporter, stream):
    obj, *_ = exporter
    with pytest.raises((TypeError, ValueError)):
        obj.__dlpack__(stream=stream, max_version=(1, 3))


# --------------------------------------------------------------------------------------
# argument errors
# --------------------------------------------------------------------------------------
def test_keyword_only(any_exporter):
    obj, *_ = any_exporter
    with pytest.raises(TypeError):
        obj.__dlpack__(None)
    with pytest.raises(TypeError):
        obj.__dlpack__(None, (1, 3))


def test_unknown_keyword(any_exporter):
    obj, *_ = any_exporter
    with pytest.raises(TypeError):
        obj.__dlpack__(bogus=1)


@pytest.mark.parametrize("bad", ["1.0", (1,), (1, 2, 3), 1, ("a", "b")])
def test_bad_max_version(exporter, bad):
    obj, *_ = exporter
    with pytest.raises((TypeError, ValueError)):
        obj.__dlpack__(max_version=bad)


@pytest.mark.parametrize("bad", [1, "cpu", (1,), (1, 0, 0)])
def test_bad_dl_device(exporter, bad):
    obj, *_ = exporter
    with pytest.raises((TypeError, ValueError, BufferError)):
        obj.__dlpack__(max_version=(1, 3), dl_device=bad)


# --------------------------------------------------------------------------------------
# device, properties, classes
# --------------------------------------------------------------------------------------
def test_dlpack_device(any_exporter):
    obj, *_ = any_exporter
    dev = obj.__dlpack_device__()
    assert isinstance(dev, tuple) and len(dev) == 2
    assert dev == (1, 0)
    assert isinstance(dev[0], dlpack.DLDeviceType)
    assert dev[0] is dlpack.DLDeviceType.kDLCPU
    assert type(dev[1]) is int
    assert obj.device == (1, 0)


def test_device_type_enum():
    T = dlpack.DLDeviceType
    assert issubclass(T, enum.IntEnum)
    expected = dict(kDLCPU=1, kDLCUDA=2, kDLCUDAHost=3, kDLOpenCL=4, kDLVulkan=7, kDLMetal=8, kDLVPI=9,
                    kDLROCM=10, kDLROCMHost=11, kDLExtDev=12, kDLCUDAManaged=13, kDLOneAPI=14,
                    kDLWebGPU=15, kDLHexagon=16, kDLMAIA=17, kDLTrn=18, kDLTPU=19, kDLTPUHost=20)
    assert {m.name: int(m) for m in T} == expected


def test_properties_numpy():
    a = np.arange(60, dtype=np.int16).reshape(3, 4, 5)[:, ::2, ::-1]
    obj = dlpack.asdlpack(a)
    assert obj.shape == (3, 2, 5)
    assert obj.strides == (20, 10, -1)
    assert obj.dtype == (0, 16, 1)
    assert obj.device == (1, 0)
    assert obj.readonly is False
    assert obj.nbytes == a.nbytes == 60
    assert obj.source is a
    for attr in ("shape", "strides", "dtype", "device", "readonly", "nbytes", "source"):
        with pytest.raises(AttributeError):
            setattr(obj, attr, None)


def test_properties_tensor():
    t = testing.arange(24, dtype="float32", shape=(2, 3, 4))
    assert t.shape == (2, 3, 4)
    assert t.strides == (12, 4, 1)
    assert t.dtype == (2, 32, 1)
    assert t.device == (1, 0)
    assert t.readonly is False
    assert t.nbytes == 96
    np.testing.assert_array_equal(np.from_dlpack(t), np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    assert testing.arange(3, read_only=True).readonly is True


@pytest.mark.parametrize("cls", ["DLPackObject", "Tensor"])
def test_exchange_api_capsule_attribute(cls):
    typ = getattr(dlpack, cls)
    cap = typ.__dlpack_c_exchange_api__
    assert capsule_name(cap) == "dlpack_exchange_api"
    ptr = capsule_pointer(cap, "dlpack_exchange_api")
    assert ptr
    header = (ctypes.c_uint32 * 2).from_address(ptr)
    assert header[0] == 1, "exchange API major version"
    assert header[1] >= 2
    fns = (ctypes.c_void_p * 7).from_address(ptr)
    # @16 allocator, @24 from_py_object, @32 to_py_object, @48 current_work_stream: non-NULL
    assert fns[2] and fns[3] and fns[4] and fns[6], list(fns)
    # on the type, shared by all instances
    assert typ.__dlpack_c_exchange_api__ is cap or capsule_pointer(
        typ.__dlpack_c_exchange_api__, "dlpack_exchange_api") == ptr


def test_exchange_api_on_instances():
    obj = dlpack.asdlpack(np.arange(3.0))
    assert capsule_name(type(obj).__dlpack_c_exchange_api__) == "dlpack_exchange_api"
    t = testing.arange(3)
    assert capsule_name(type(t).__dlpack_c_exchange_api__) == "dlpack_exchange_api"


# --------------------------------------------------------------------------------------
# bare capsules as asdlpack input
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_version", [
    None, pytest.param((1, 0), marks=needs_numpy_dlpack_1), pytest.param((1, 3), marks=needs_numpy_dlpack_1),
])
def test_bare_capsule_consumed_once(max_version):
    a = np.arange(10, dtype=np.float32)
    cap = a.__dlpack__() if max_version is None else a.__dlpack__(max_version=max_version)
    obj = dlpack.asdlpack(cap)
    assert capsule_name(cap).startswith("used_")
    r = np.from_dlpack(obj)
    assert np_ptr(r) == np_ptr(a)
    np.testing.assert_array_equal(r, a)
    with pytest.raises(ValueError):
        dlpack.asdlpack(cap)


def test_capsule_from_our_object_consumed_by_torch_then_reused():
    torch = pytest.importorskip("torch")
    obj = dlpack.asdlpack(np.arange(4.0))
    cap = obj.__dlpack__(max_version=(1, 3))
    torch.from_dlpack(cap)
    with pytest.raises(ValueError):
        dlpack.asdlpack(cap)


def test_unconsumed_capsules_are_freed():
    base = live()
    a = np.arange(5.0)
    w = weakref.ref(a)
    obj = dlpack.asdlpack(a)
    caps = [obj.__dlpack__(max_version=mv) for mv in (None, (1, 0), (1, 3))]
    t = testing.arange(4)
    caps += [t.__dlpack__(), t.__dlpack__(max_version=(1, 3))]
    del obj, caps, t, a
    assert live() == base
    assert w() is None, "source must be released once the object and its capsules are gone"
