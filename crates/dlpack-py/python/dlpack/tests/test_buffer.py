"""DLPackObject / Tensor -> buffer protocol, __array_interface__, numba; read-only stays read-only."""

import ctypes
import gc
import sys

import numpy as np
import pytest

import dlpack

from .conftest import BACKENDS, elem_strides, np_ptr, reference, testing

FORMATS = {"bool": "?", "int8": "b", "int16": "h", "int32": "i", "int64": ("l", "q"),
           "uint8": "B", "uint16": "H", "uint32": "I", "uint64": ("L", "Q"),
           "float16": "e", "float32": "f", "float64": "d", "complex64": ("Zf", "F"),
           "complex128": ("Zd", "D")}
TYPESTR = {"bool": "|b1", "int8": "|i1", "uint8": "|u1"}


def _fmt_ok(fmt, dtype):
    fmt = fmt.lstrip("@=<")
    want = FORMATS[dtype]
    return fmt in (want if isinstance(want, tuple) else (want,))


@pytest.mark.parametrize("dtype", list(FORMATS))
@pytest.mark.parametrize("layout", ["contiguous", "strided", "negative"])
def test_memoryview_of_dlpackobject(dtype, layout):
    a = reference(dtype, (5, 6, 5))
    if layout == "strided":
        a = a[1:3, ::2, :]
    elif layout == "negative":
        a = a[1:3, ::2, ::-1]
    obj = dlpack.asdlpack(a)
    mv = memoryview(obj)
    assert mv.readonly is False
    assert mv.shape == a.shape
    assert mv.strides == a.strides
    assert mv.itemsize == a.itemsize
    assert _fmt_ok(mv.format, dtype), mv.format
    r = np.asarray(mv)
    assert np_ptr(r) == np_ptr(a)
    np.testing.assert_array_equal(r, a)


def test_memoryview_write_through():
    a = np.zeros(6, dtype=np.int32)
    mv = memoryview(dlpack.asdlpack(a))
    mv[2] = 42
    assert a[2] == 42


def test_memoryview_readonly_stays_readonly():
    a = np.arange(6.0)
    a.flags.writeable = False
    mv = memoryview(dlpack.asdlpack(a))
    assert mv.readonly is True
    with pytest.raises(TypeError):
        mv[0] = 1.0
    mvb = memoryview(dlpack.asdlpack(b"abc"))
    assert mvb.readonly is True
    r = np.asarray(dlpack.asdlpack(b"abc"))
    assert r.flags.writeable is False


def test_scalar_and_empty_buffers():
    obj = dlpack.asdlpack(np.array(3.5))
    mv = memoryview(obj)
    assert mv.shape == () and mv.tolist() == 3.5
    mv = memoryview(dlpack.asdlpack(np.zeros((0,), np.float32)))
    assert mv.shape == (0,) and mv.nbytes == 0


def test_array_interface_of_dlpackobject():
    a = np.arange(60, dtype=np.int16).reshape(3, 4, 5)[:, ::2, ::-1]
    obj = dlpack.asdlpack(a)
    ai = obj.__array_interface__
    assert ai["version"] == 3
    assert ai["shape"] == a.shape
    assert ai["typestr"] in ("<i2", "=i2")
    assert ai["data"] == (np_ptr(a), False)
    assert ai["strides"] == a.strides
    r = np.asarray(obj)
    assert np_ptr(r) == np_ptr(a)
    np.testing.assert_array_equal(r, a)


def test_array_interface_readonly():
    a = np.arange(5.0)
    a.flags.writeable = False
    ai = dlpack.asdlpack(a).__array_interface__
    assert ai["data"] == (np_ptr(a), True)


def test_cuda_array_interface_absent_on_cpu():
    obj = dlpack.asdlpack(np.arange(3.0))
    with pytest.raises(AttributeError):
        obj.__cuda_array_interface__
    assert not hasattr(obj, "__cuda_array_interface__")
    t = testing.arange(3)
    assert not hasattr(t, "__cuda_array_interface__")


def test_bfloat16_has_no_buffer_format():
    torch = BACKENDS["torch"].module()
    obj = dlpack.asdlpack(torch.zeros(3, dtype=torch.bfloat16))
    # no PEP 3118 format and no typestr for bfloat16: must refuse rather than mislabel
    with pytest.raises(BufferError):
        memoryview(obj)


def test_torch_tensor_via_buffer_protocol():
    torch = BACKENDS["torch"].module()
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    mv = memoryview(dlpack.asdlpack(t))
    assert mv.shape == (3, 4) and mv.format.lstrip("@=<") == "f"
    r = np.asarray(mv)
    assert np_ptr(r) == t.data_ptr()
    np.testing.assert_array_equal(r, t.numpy())


def test_tensor_buffer_and_array_interface():
    t = testing.arange(12, dtype="float64", shape=(3, 4))
    mv = memoryview(t)
    assert mv.shape == (3, 4) and mv.readonly is False
    np.testing.assert_array_equal(np.asarray(mv), np.arange(12.0).reshape(3, 4))
    ai = t.__array_interface__
    assert ai["shape"] == (3, 4) and ai["data"][1] is False
    np.asarray(t)[0, 0] = 5  # writable Rust tensor
    assert np.from_dlpack(t)[0, 0] == 5
    tro = testing.arange(4, dtype="float64", read_only=True)
    assert memoryview(tro).readonly is True
    assert tro.__array_interface__["data"][1] is True
    with pytest.raises(TypeError):
        memoryview(tro)[0] = 1.0


def _both_classes():
    """A writable and a read-only instance of each class."""
    ro = np.arange(6.0)
    ro.flags.writeable = False
    return [
        ("DLPackObject", dlpack.asdlpack(np.arange(6.0)), dlpack.asdlpack(ro)),
        ("Tensor", testing.arange(6, dtype="float64"), testing.arange(6, dtype="float64", read_only=True)),
    ]


class _PyBuffer(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.c_void_p), ("len", ctypes.c_ssize_t),
                ("itemsize", ctypes.c_ssize_t), ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
                ("format", ctypes.c_char_p), ("shape", ctypes.POINTER(ctypes.c_ssize_t)),
                ("strides", ctypes.POINTER(ctypes.c_ssize_t)), ("suboffsets", ctypes.c_void_p),
                ("internal", ctypes.c_void_p)]


PyBUF_SIMPLE, PyBUF_WRITABLE, PyBUF_FORMAT, PyBUF_ND = 0, 0x1, 0x4, 0x8
PyBUF_STRIDES = 0x10 | PyBUF_ND
PyBUF_F_CONTIGUOUS = 0x40 | PyBUF_STRIDES
PyBUF_RECORDS_RO = PyBUF_STRIDES | PyBUF_FORMAT


def _get_buffer(obj, flags):
    """PyObject_GetBuffer(obj, &view, flags) as C calls it: (readonly, ndim, len, format,
    shape, strides, buf), or the exception of the exporter (view.obj is then NULL)."""
    view = _PyBuffer()
    get = ctypes.pythonapi.PyObject_GetBuffer
    get.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
    get.restype = ctypes.c_int
    try:
        get(obj, ctypes.byref(view), flags)
    except BaseException:
        assert view.obj is None
        raise
    release = ctypes.pythonapi.PyBuffer_Release
    release.argtypes = [ctypes.POINTER(_PyBuffer)]
    release.restype = None
    try:
        assert view.obj == id(obj)
        nd = view.ndim
        return (view.readonly, nd, view.len, view.format,
                tuple(view.shape[:nd]) if view.shape else None,
                tuple(view.strides[:nd]) if view.strides else None, view.buf)
    finally:
        release(ctypes.byref(view))


@pytest.mark.parametrize("name", ["DLPackObject", "Tensor"])
def test_buffer_slot_through_the_base_type(name):
    """The buffer slot lives on the classes' base type and reaches both classes with the
    request flags as C consumers pass them; read-only stays read-only."""
    _, obj, ro = next(c for c in _both_classes() if c[0] == name)
    assert type(obj).__name__ == name and type(obj).__base__.__name__ == "_BufferBase"
    addr = np_ptr(np.asarray(obj))
    assert _get_buffer(obj, PyBUF_WRITABLE) == (0, 1, 48, None, None, None, addr)
    assert _get_buffer(obj, PyBUF_RECORDS_RO)[:6] == (0, 1, 48, b"d", (6,), (8,))
    assert _get_buffer(ro, PyBUF_RECORDS_RO)[:6] == (1, 1, 48, b"d", (6,), (8,))
    assert _get_buffer(ro, PyBUF_ND)[:6] == (1, 1, 48, None, (6,), None)
    with pytest.raises(BufferError, match="read-only"):
        _get_buffer(ro, PyBUF_WRITABLE | PyBUF_FORMAT)
    buf = (ctypes.c_double * 6).from_buffer(obj)  # writable, no strides
    buf[5] = 50.0
    assert np.asarray(obj)[5] == 50.0 and memoryview(obj)[5] == 50.0
    del buf
    with pytest.raises(TypeError):
        (ctypes.c_double * 6).from_buffer(ro)


def test_buffer_request_flags_are_honoured():
    strided = dlpack.asdlpack(np.arange(6.0)[::2])
    with pytest.raises(BufferError, match="strided"):
        _get_buffer(strided, PyBUF_SIMPLE)
    assert _get_buffer(strided, PyBUF_STRIDES)[4:6] == ((3,), (16,))
    with pytest.raises(BufferError, match="F-contiguous"):
        _get_buffer(dlpack.asdlpack(np.zeros((2, 3))), PyBUF_F_CONTIGUOUS)
    assert _get_buffer(dlpack.asdlpack(np.zeros((2, 3), order="F")), PyBUF_F_CONTIGUOUS)[4:6] == (
        (2, 3), (8, 16))


def test_buffer_base_has_no_instances():
    base = dlpack.Tensor.__base__
    assert base is dlpack.DLPackObject.__base__
    assert (base.__module__, base.__name__) == ("dlpack", "_BufferBase")
    with pytest.raises(TypeError):
        base()

    class Sub(base):
        pass

    with pytest.raises(TypeError):
        Sub()
    with pytest.raises(TypeError):
        base.__new__(Sub)
    with pytest.raises(TypeError):
        base.__new__(dlpack.Tensor)  # not through Python: pyo3 writes the Rust value
    with pytest.raises(TypeError):
        object.__new__(dlpack.DLPackObject)


@pytest.mark.parametrize("name", ["DLPackObject", "Tensor"])
def test_instances_hold_their_type_once(name):
    """Deallocation drops each instance's reference to its (heap) type exactly once,
    and the GC sees that reference."""
    make = {"DLPackObject": lambda: dlpack.asdlpack(np.arange(3.0)),
            "Tensor": lambda: testing.arange(3)}[name]
    cls = type(make())
    gc.collect()
    before = sys.getrefcount(cls)
    objs = [make() for _ in range(100)]
    assert sys.getrefcount(cls) == before + 100
    assert cls in gc.get_referents(objs[0])
    memoryview(objs[0]).release()
    del objs
    gc.collect()
    assert sys.getrefcount(cls) == before


def test_buffer_export_keeps_source_alive():
    import weakref
    a = np.arange(100.0)
    w = weakref.ref(a)
    mv = memoryview(dlpack.asdlpack(a))
    del a
    gc.collect()
    assert w() is not None
    assert mv[99] == 99.0
    mv.release()
    del mv
    gc.collect()
    assert w() is None


def test_numba_njit_on_exports():
    numba = pytest.importorskip("numba")

    @numba.njit(cache=False)
    def total(x):
        s = 0.0
        for v in x.flat:
            s += v
        return s

    a = np.arange(10.0)
    assert total(np.asarray(dlpack.asdlpack(a))) == 45.0
    assert total(np.from_dlpack(dlpack.asdlpack(a[::-2]))) == a[::-2].sum()
    assert total(np.asarray(testing.arange(10, dtype="float64"))) == 45.0
    ro = np.arange(4.0)
    ro.flags.writeable = False
    x = np.asarray(dlpack.asdlpack(ro))
    assert x.flags.writeable is False
    assert total(x) == 6.0
