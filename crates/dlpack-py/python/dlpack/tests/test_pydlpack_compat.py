"""pydlpack 0.2.1's namespace (impl_cls, asdlpack_<protocol>, todict, the ctypes
structures, the enums' labels, Capsule, buffer.Buffer), each checked against real
consumers (NumPy, PyTorch) and real producers' capsules."""

import array
import ctypes
import gc
import sys

import numpy as np
import pytest

import dlpack
from dlpack import buffer

from .conftest import capsule_name, needs_numpy_dlpack_1

CPU = (1, 0)


def torch_or_skip():
    return pytest.importorskip("torch")


# --------------------------------------------------------------------------------------
# asdlpack(obj, impl_cls=...)
# --------------------------------------------------------------------------------------
def test_default_impl_follows_max_version():
    a = np.arange(6.0)
    o = dlpack.asdlpack(a)
    assert capsule_name(o.__dlpack__()) == "dltensor"
    assert capsule_name(o.__dlpack__(max_version=(1, 0))) == "dltensor_versioned"


def test_legacy_impl_exports_dltensor_to_every_consumer():
    a = np.arange(6.0)
    o = dlpack.asdlpack(a, dlpack.DLManagedTensor)
    assert capsule_name(o.__dlpack__(max_version=(1, 3))) == "dltensor"
    got = np.from_dlpack(o)
    # NumPy imports a legacy tensor read-only (it cannot say it is writable) ...
    assert not got.flags.writeable
    # ... and shares the memory.
    a[2] = 42.0
    assert got[2] == 42.0


def test_legacy_impl_refuses_read_only_data():
    o = dlpack.asdlpack(b"abcd", impl_cls=dlpack.DLManagedTensor)
    with pytest.raises(BufferError, match="read-only"):
        np.from_dlpack(o)


@needs_numpy_dlpack_1  # np.from_dlpack asks for versioned capsules
def test_versioned_impl_exports_dltensor_versioned_and_refuses_legacy_requests():
    a = np.arange(6, dtype=np.int32)
    o = dlpack.asdlpack(a, impl_cls=dlpack.DLManagedTensorVersioned)
    with pytest.raises(BufferError, match="exports only DLManagedTensorVersioned"):
        o.__dlpack__()
    with pytest.raises(BufferError, match=r"max_version=\(0, 8\)"):
        o.__dlpack__(max_version=(0, 8))
    assert capsule_name(o.__dlpack__(max_version=(1, 0))) == "dltensor_versioned"
    got = np.from_dlpack(o)
    assert got.flags.writeable
    got[0] = 7
    assert a[0] == 7


def test_versioned_impl_with_torch():
    torch = torch_or_skip()
    t = torch.arange(4, dtype=torch.float32)
    o = dlpack.asdlpack(t, dlpack.DLManagedTensorVersioned)
    got = np.from_dlpack(o)
    t[1] = 9.0
    assert got[1] == 9.0
    back = torch.from_dlpack(dlpack.asdlpack(got, dlpack.DLManagedTensorVersioned))
    assert back.data_ptr() == t.data_ptr()


def test_impl_cls_of_another_kind_is_a_type_error():
    with pytest.raises(TypeError, match="impl_cls"):
        dlpack.asdlpack(np.arange(3), impl_cls=ctypes.c_int)


def test_impl_cls_rewraps_an_object_of_another_impl():
    a = np.arange(3.0)
    o = dlpack.asdlpack(a)
    assert dlpack.asdlpack(o) is o
    assert dlpack.asdlpack(o, None) is o
    legacy = dlpack.asdlpack(o, dlpack.DLManagedTensor)
    assert legacy is not o
    assert capsule_name(legacy.__dlpack__(max_version=(1, 0))) == "dltensor"
    assert dlpack.asdlpack(legacy, dlpack.DLManagedTensor) is legacy


# --------------------------------------------------------------------------------------
# asdlpack_<protocol>
# --------------------------------------------------------------------------------------
def test_asdlpack_dlpack_forwards_to_the_producer():
    torch = torch_or_skip()
    t = torch.arange(6, dtype=torch.int64).reshape(2, 3)
    o = dlpack.asdlpack_dlpack(t)
    got = np.from_dlpack(o)
    t[1, 2] = -5
    assert got[1, 2] == -5
    with pytest.raises(TypeError, match="has no __dlpack__"):
        dlpack.asdlpack_dlpack(b"abc")


class OldProducer:
    # A producer from before the Python protocol had __dlpack_device__ (as pydlpack's
    # suite wraps TensorFlow's to_dlpack): __dlpack__ takes only `stream`.
    def __init__(self, a):
        self.a = a

    def __dlpack__(self, stream=None):
        return self.a.__dlpack__()


def test_forwarding_a_producer_without_dlpack_device():
    a = np.arange(5.0)
    o = dlpack.asdlpack(OldProducer(a))
    assert o.__dlpack_device__() == CPU
    got = np.from_dlpack(o)
    a[4] = 99.0
    assert got[4] == 99.0


@needs_numpy_dlpack_1  # numpy imports writable tensors
def test_asdlpack_buffer_keeps_writability():
    ba = bytearray(b"\x01\x02\x03\x04")
    got = np.from_dlpack(dlpack.asdlpack_buffer(ba))
    assert got.flags.writeable
    got[0] = 200
    assert ba[0] == 200
    ro = np.from_dlpack(dlpack.asdlpack_buffer(b"\x01\x02"))
    assert not ro.flags.writeable
    d = np.from_dlpack(dlpack.asdlpack_buffer(array.array("d", [1.0, 2.5])))
    assert d.dtype == np.float64 and d.tolist() == [1.0, 2.5]


def test_asdlpack_array_interface_v3_shares_the_pointer():
    torch = torch_or_skip()
    a = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]
    o = dlpack.asdlpack_array_interface_v3(a)
    d = dlpack.todict(o.__dlpack__(max_version=(1, 0)))
    assert d["dl_tensor"]["data"] == a.__array_interface__["data"][0]
    assert d["dl_tensor"]["strides"] == (4, 2)
    t = torch.from_dlpack(o)
    assert t.data_ptr() == a.__array_interface__["data"][0]
    assert t.tolist() == a.tolist()


class V2:
    # The attributes of array interface version 2.
    def __init__(self, a, with_data=True):
        self.a = a
        self.__array_shape__ = a.shape
        self.__array_typestr__ = a.dtype.str
        self.__array_strides__ = a.strides
        if with_data:
            self.__array_data__ = (a.ctypes.data, False)


def test_asdlpack_array_interface_v2_with_and_without_array_data():
    a = np.arange(6, dtype=np.int16).reshape(2, 3)
    got = np.from_dlpack(dlpack.asdlpack_array_interface_v2(V2(a)))
    a[0, 1] = 77
    assert got.tolist() == a.tolist()

    class V2Buffer(bytearray):
        __array_shape__ = (2,)
        __array_typestr__ = "<u2"

    b = V2Buffer(b"\x01\x00\x02\x01")
    assert np.from_dlpack(dlpack.asdlpack_array_interface_v2(b)).tolist() == [1, 258]
    with pytest.raises(TypeError, match="__array_shape__"):
        dlpack.asdlpack_array_interface_v2(object())


def test_asdlpack_cuda_array_interface_describes_cuda_memory():
    class Cai:
        __cuda_array_interface__ = {
            "shape": (4,), "typestr": "<f4", "data": (0x7F0000001000, False), "version": 3,
        }

    o = dlpack.asdlpack_cuda_array_interface(Cai())
    assert o.__dlpack_device__() == (dlpack.DLDeviceType.kDLCUDA, 0)
    d = dlpack.todict(o.__dlpack__(max_version=(1, 0)))
    assert d["dl_tensor"]["data"] == 0x7F0000001000
    assert d["dl_tensor"]["device"] == {"device_type": "DLCUDA", "device_id": 0}
    with pytest.raises(BufferError):
        o.__dlpack__(max_version=(1, 0), dl_device=CPU, copy=False)  # a copy to the host


def test_get_strides():
    assert dlpack._get_strides(()) == ()
    assert dlpack._get_strides((4, 6, 5)) == np.empty((4, 6, 5), np.int8).strides


# --------------------------------------------------------------------------------------
# todict
# --------------------------------------------------------------------------------------
@needs_numpy_dlpack_1  # numpy's __dlpack__(max_version=...)
@pytest.mark.parametrize("dtype,code", [("float32", "DLFloat"), ("int8", "DLInt"),
                                        ("uint16", "DLUInt"), ("bool", "DLBool"),
                                        ("complex128", "DLComplex")])
def test_todict_of_numpy_capsules(dtype, code):
    a = np.zeros((3, 4), dtype=dtype)[:, 1:]
    legacy = dlpack.todict(a.__dlpack__())
    assert set(legacy) == {"dl_tensor", "manager_ctx", "deleter"}
    t = legacy["dl_tensor"]
    assert t["data"] == a.ctypes.data and t["byte_offset"] == 0
    assert t["device"] == {"device_type": "DLCPU", "device_id": 0}
    assert t["dtype"] == {"code": code, "bits": a.itemsize * 8, "lanes": 1}
    assert (t["ndim"], t["shape"]) == (2, (3, 3))
    assert t["strides"] in (None, tuple(s // a.itemsize for s in a.strides))
    a.flags.writeable = False
    v = dlpack.todict(a.__dlpack__(max_version=(1, 0)))
    assert v["version"]["major"] == 1 and v["flags"] & 1 == 1
    assert v["dl_tensor"]["data"] == a.ctypes.data


def test_todict_does_not_consume():
    torch = torch_or_skip()
    t = torch.arange(3)
    cap = t.__dlpack__()
    assert dlpack.todict(cap)["dl_tensor"]["shape"] == (3,)
    assert torch.from_dlpack(cap).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="used_dltensor"):
        dlpack.todict(cap)


def test_todict_errors():
    with pytest.raises(TypeError, match="PyCapsule"):
        dlpack.todict(b"x")
    with pytest.raises(ValueError, match="mycapsule"):
        dlpack.todict(dlpack.Capsule.new(8, "mycapsule").capsule)


def test_todict_zero_dim():
    d = dlpack.todict(np.array(1.5).__dlpack__())
    assert d["dl_tensor"]["shape"] == () and d["dl_tensor"]["ndim"] == 0


# --------------------------------------------------------------------------------------
# ctypes structures and enums
# --------------------------------------------------------------------------------------
@needs_numpy_dlpack_1  # numpy's __dlpack__(max_version=...)
def test_ctypes_structures_read_a_capsule_like_todict():
    assert ctypes.sizeof(dlpack.DLTensor) == 48
    assert ctypes.sizeof(dlpack.DLManagedTensor) == 64
    assert ctypes.sizeof(dlpack.DLManagedTensorVersioned) == 80
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    for kw, cls in (({}, dlpack.DLManagedTensor),
                    ({"max_version": (1, 0)}, dlpack.DLManagedTensorVersioned)):
        cap = a.__dlpack__(**kw)
        p = dlpack.Capsule(cap).get_pointer(capsule_name(cap))
        m = ctypes.cast(p, ctypes.POINTER(cls)).contents
        assert m.todict() == dlpack.todict(cap)
        assert m.dl_tensor.device.device_type.label == "DLCPU"
        assert m.dl_tensor.dtype.code.label == "DLFloat"
        assert "DLTensor(" in repr(m.dl_tensor)


def test_enum_labels():
    assert dlpack.DLDeviceType.kDLCUDA.label == "DLCUDA"
    assert dlpack.DLDeviceType.from_label("DLROCM") == 10
    assert dlpack.DLDataTypeCode.from_label("DLBfloat") == dlpack.DLDataTypeCode.kDLBfloat == 4
    with pytest.raises(KeyError):
        dlpack.DLDeviceType.from_label("CPU")
    dev = dlpack.DLDevice(dlpack.DLDeviceType.kDLCUDA, 3)
    assert (dev.device_type.value, dev.device_type.label, dev.device_id) == (2, "DLCUDA", 3)
    assert dlpack.DLDevice(99, 0).todict() == {"device_type": 99, "device_id": 0}
    # __dlpack_device__ still answers with the enum.
    assert dlpack.asdlpack(np.arange(2)).__dlpack_device__()[0] is dlpack.DLDeviceType.kDLCPU


# --------------------------------------------------------------------------------------
# Capsule
# --------------------------------------------------------------------------------------
def test_capsule_api_on_a_dlpack_capsule():
    a = np.arange(3)
    c = dlpack.Capsule(a.__dlpack__())
    assert c.get_name() == "dltensor" and c.is_valid("dltensor") and c.is_valid(b"dltensor")
    assert not c.is_valid("dltensor_versioned")
    with pytest.raises(ValueError):
        c.get_pointer("other")
    assert isinstance(c.get_destructor(), int)  # NumPy's C destructor
    with pytest.raises(TypeError, match="PyCapsule"):
        dlpack.Capsule(object())


def test_capsule_module():
    from dlpack.capsule import Capsule

    assert Capsule is dlpack.Capsule is dlpack.capsule.Capsule


def test_capsule_names_outlive_their_wrapper():
    name = "".join(["name-", str(12345)])
    cap = dlpack.Capsule.new(16, name).capsule
    del name
    gc.collect()
    dlpack.Capsule.new(32, "another-" + "x" * 64)
    assert dlpack.Capsule(cap).get_name() == "name-12345"
    assert dlpack.Capsule(cap).get_pointer("name-12345") == 16


def test_capsule_destructor_runs_once_and_its_capsule_expires():
    seen = []

    def destructor(c):
        seen.append((c.get_name(), c.get_pointer("mine"), c.get_context(), c.capsule))
        seen.append(c)

    c = dlpack.Capsule.new(64, "mine", destructor)
    c.set_context(128)
    assert c.get_destructor() is destructor
    del c
    assert seen[0] == ("mine", 64, 128, None)
    with pytest.raises(ValueError, match="freed"):
        seen[1].get_name()
    gc.collect()
    assert len(seen) == 2


def test_capsule_destructor_errors_are_unraisable():
    caught = []
    old, sys.unraisablehook = sys.unraisablehook, caught.append
    try:
        def destructor(c):
            raise RuntimeError("boom")

        c = dlpack.Capsule.new(8, None, destructor)
        del c
    finally:
        sys.unraisablehook = old
    assert len(caught) == 1 and isinstance(caught[0].exc_value, RuntimeError)


def test_capsule_set_destructor_none_removes_it():
    seen = []
    c = dlpack.Capsule.new(8, None, seen.append)
    c.set_destructor(None)
    assert c.get_destructor() is None
    del c
    assert seen == []


# --------------------------------------------------------------------------------------
# buffer.Buffer
# --------------------------------------------------------------------------------------
def test_buffer_of_a_numpy_array():
    a = np.arange(12, dtype=np.int32).reshape(3, 4)[:, ::2]
    b = buffer.Buffer(a, buffer.PyBUF_RECORDS_RO)
    assert (b.ndim, b.shape, b.strides, b.itemsize, b.format) == (2, (3, 2), (16, 8), 4, "i")
    assert b.pointer == a.__array_interface__["data"][0] and not b.readonly
    assert b.suboffsets is None and b.obj is not None
    simple = buffer.Buffer(b"abc")
    assert (simple.shape, simple.strides, simple.format, simple.len) == (None, None, None, 3)


def test_buffer_errors_are_the_exporters():
    with pytest.raises(BufferError):
        buffer.Buffer(b"abc", buffer.PyBUF_WRITABLE)
    with pytest.raises(TypeError):
        buffer.Buffer(object())


def test_buffer_holds_its_view():
    ba = bytearray(b"abcd")
    b = buffer.Buffer(ba, buffer.PyBUF_RECORDS)
    with pytest.raises(BufferError):
        ba.extend(b"more")
    del b
    ba.extend(b"more")
    assert ba == bytearray(b"abcdmore")


# --------------------------------------------------------------------------------------
# Stubs
# --------------------------------------------------------------------------------------
def _stub_names(module):
    import ast
    import os

    path = os.path.splitext(module.__file__)[0] + ".pyi"
    names = set()
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    return names


def test_every_public_name_is_in_the_stubs():
    assert set(dlpack.__all__) | {"buffer", "capsule"} <= _stub_names(dlpack)
    public = {n for n in vars(buffer) if n == "Buffer" or n.startswith("PyBUF_")}
    assert public <= _stub_names(buffer)
    for name in dlpack.__all__:
        getattr(dlpack, name)
