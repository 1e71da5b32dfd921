"""Hostile input at every Python-facing parser, and panics at the boundary.

Each case is a finding of the fuzzer (`fuzz/python/`, `cargo xtask fuzz --python`) fixed at its
root: the input is refused with exactly `TypeError`, `ValueError` or `BufferError` whose message
names the value and the rule — never `PanicException`, `OverflowError`, `UnicodeEncodeError` or
a crash. A panic, should one ever happen, reaches Python as `SystemError` naming the bug.
"""

import ctypes

import numpy as np
import pytest

import dlpack

from .conftest import testing

ALLOWED = (TypeError, ValueError, BufferError)


class AI:
    def __init__(self, **d):
        self.__array_interface__ = d


class CAI:
    def __init__(self, **d):
        self.__cuda_array_interface__ = d


def refused(kind, fn, *args, match, **kwargs):
    """`fn(...)` raises exactly `kind`, and its message contains every word of `match`."""
    with pytest.raises(BaseException) as info:
        fn(*args, **kwargs)
    assert type(info.value) is kind, repr(info.value)
    for word in match:
        assert word in str(info.value), str(info.value)
    return info.value


def _ai(**kw):
    d = {"version": 3, "typestr": "<f8", "shape": (2,), "data": (0, False)}
    d.update(kw)
    return AI(**d)


# --- typestr --------------------------------------------------------------------------


@pytest.mark.parametrize("typestr", ["<é4", "é<f4", "<fé", "<f٤", "<f+4", "<f\udcff"])
def test_typestr_that_is_not_ascii_text_is_refused(typestr):
    # "<é4" sliced inside "é" panicked (PanicException); surrogates raised UnicodeEncodeError.
    for entry in (dlpack.asdlpack, testing.import_info):
        e = refused(BufferError, entry, _ai(typestr=typestr), match=["typestr"])
        if "\udcff" not in typestr:
            assert typestr in str(e)


@pytest.mark.parametrize("typestr", [4, b"<f4", ["<f4"]])
def test_typestr_of_another_type_is_a_type_error(typestr):
    refused(TypeError, dlpack.asdlpack, _ai(typestr=typestr), match=["typestr"])


# --- ints out of range ----------------------------------------------------------------


@pytest.mark.parametrize("key, value, word", [
    ("version", 2**70, "version"),
    ("shape", (2**70,), "shape[0]"),
    ("strides", (2**70,), "strides[0]"),
    ("data", (-1, False), "data pointer"),
    ("data", (2**64, False), "data pointer"),
])
def test_array_interface_ints_out_of_range_are_value_errors(key, value, word):
    # These raised OverflowError, an exception type the DLPack rules do not name.
    refused(ValueError, dlpack.asdlpack, _ai(**{key: value}), match=[word, "out of range"])


def test_array_interface_offset_out_of_range():
    buf = bytearray(16)
    refused(ValueError, dlpack.asdlpack, AI(version=3, typestr="|u1", shape=(1,), data=buf,
                                            offset=2**64), match=["offset"])


def test_array_interface_offset_that_overflows_the_layout_is_refused():
    # offset + the layout's end overflowed i64 (a panic in checked builds, wrong bounds else).
    buf = bytearray(16)
    refused(BufferError, dlpack.asdlpack, AI(version=3, typestr="|u1", shape=(2,), data=buf,
                                             offset=2**63 - 1), match=["offset", "16 bytes"])


@pytest.mark.parametrize("data", [(1,), (1, False, 0), (1, "no"), 7, "text"])
def test_array_interface_data_of_the_wrong_shape(data):
    e = refused(TypeError, dlpack.asdlpack, _ai(data=data), match=["data"])
    assert "tuple" in str(e)


def test_cuda_array_interface_negative_stream_is_a_value_error():
    obj = CAI(version=3, typestr="<f4", shape=(1,), data=(0x1000, False), stream=-5)
    refused(ValueError, testing.import_info, obj, match=["stream=-5"])


# --- buffer formats -------------------------------------------------------------------

Exporter = getattr(testing, "BufferExporter", None)
needs_exporter = pytest.mark.skipif(Exporter is None, reason="this build has no BufferExporter")


@needs_exporter
def test_format_with_an_itemsize_that_overflows_is_refused():
    # itemsize * 8 wrapped to 64 in release builds: a bogus 2**61 + 8 byte item was accepted as
    # float64 (and panicked in checked builds).
    size = 2**61 + 8
    obj = Exporter(b"d", size, (2,), (size,))
    refused(BufferError, dlpack.asdlpack, obj, match=["itemsize 2305843009213693960"])


@needs_exporter
@pytest.mark.parametrize("ndim", [-1, 65])
def test_buffer_ndim_outside_the_protocol_is_refused(ndim):
    # A negative ndim became a huge length for the shape slice (undefined behaviour).
    obj = Exporter(b"d", 8, (2,), (8,), ndim=ndim)
    refused(BufferError, dlpack.asdlpack, obj, match=[f"ndim {ndim}"])


@needs_exporter
def test_format_that_is_not_utf8_is_named():
    e = refused(BufferError, dlpack.asdlpack, Exporter(b"<\xff", 4, (1,)), match=["format"])
    assert "?invalid" not in str(e)


def test_numpy_structured_buffer_is_refused_with_its_format():
    a = np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")])
    refused(BufferError, dlpack.asdlpack, memoryview(a), match=["format", "T{"])


# --- __dlpack__ keywords and asdlpack's protocol ---------------------------------------


def test_keyword_name_that_is_not_valid_text():
    # to_cow() of a surrogate name raised UnicodeEncodeError.
    refused(TypeError, testing.arange(3).__dlpack__, match=["unexpected keyword"],
            **{"\ud800": 1})


def test_protocol_name_that_is_not_valid_text():
    refused(ValueError, dlpack.asdlpack, np.arange(3), protocol="\ud800", match=["protocol="])
    refused(TypeError, dlpack.asdlpack, np.arange(3), protocol=3, match=["protocol"])


@pytest.mark.parametrize("kwargs, word", [
    ({"stream": 2**70}, "stream="),
    ({"max_version": (2**70, 0)}, "max_version[0]"),
    ({"dl_device": (2**40, 0)}, "dl_device[0]"),
    ({"dl_device": (1, 2**40)}, "dl_device[1]"),
])
def test_keyword_ints_out_of_range_are_value_errors(kwargs, word):
    for obj in (testing.arange(3), dlpack.asdlpack(np.arange(3.0))):
        refused(ValueError, obj.__dlpack__, match=[word, "out of range"], **kwargs)


def test_keyword_values_are_named():
    e = refused(TypeError, testing.arange(3).__dlpack__, copy="yes", match=["copy", "'yes'"])
    assert "str" in str(e)
    refused(TypeError, testing.arange(3).__dlpack__, dl_device=[1, 0],
            match=["dl_device", "[1, 0]"])


# --- the exchange API attribute -------------------------------------------------------


def test_an_int_in_the_1_3_exchange_attribute_is_ignored():
    # DLPack 1.3's __dlpack_c_exchange_api__ is a capsule; an int was taken as the table's
    # address and dereferenced (a crash for any int that is not one).
    src = np.arange(3.0)

    class P:
        __dlpack_c_exchange_api__ = 12345

        def __dlpack__(self, **kw):
            return src.__dlpack__(**kw)

        def __dlpack_device__(self):
            return (1, 0)

    assert testing.import_info(P())["path"] == "dlpack"


# --- panics ---------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["panic", "panic_fastcall"])
def test_a_panic_is_a_system_error_naming_the_bug(entry):
    f = getattr(testing, entry, None)
    if f is None:
        pytest.skip("this build has no panic hooks")
    with pytest.raises(SystemError) as info:
        f("the bug")
    assert str(info.value) == "internal error in dlpack (please report): the bug"
    # SystemError is an Exception: `except Exception` catches it (PanicException is not one).
    try:
        f("again")
    except Exception as e:  # noqa: BLE001
        assert type(e) is SystemError


def test_capsule_without_a_name():
    new = ctypes.pythonapi.PyCapsule_New
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    value = ctypes.c_int(1)
    cap = new(ctypes.addressof(value), None, None)
    refused(TypeError, dlpack.asdlpack, cap, match=["no name"])


# --- re-export of foreign extents -----------------------------------------------------


def test_broadcast_extents_beyond_64_bits_are_counted_and_refused_as_a_buffer():
    # 2**62 broadcast complex128 elements (stride 0) over 16 real bytes: valid DLPack, but
    # nbytes is 2**66 (it wrapped to 0) and no Py_buffer length can hold it (memoryview got a
    # wrapped length that disagreed with its shape).
    buf = bytearray(16)
    ptr = ctypes.addressof((ctypes.c_char * 16).from_buffer(buf))
    x = dlpack.asdlpack(AI(version=3, typestr="<c16", shape=(2**62,), strides=(0,),
                           data=(ptr, False)))
    assert x.nbytes == 2**66
    refused(BufferError, memoryview, x, match=["Py_ssize_t", "4611686018427387904"])
    assert x.__array_interface__["strides"] == (0,)


def test_copy_too_large_for_the_host_is_a_buffer_error():
    # A broadcast array (stride 0) of 2**41 x 3 float64 holds 24 real bytes; its copy needs
    # 48 TiB. The allocation failure aborted the process ("memory allocation of ... failed");
    # it is refused now. Run in a child process, so that the old behaviour fails the test
    # instead of killing the suite.
    import subprocess
    import sys

    code = (
        "import numpy as np, dlpack\n"
        "x = dlpack.asdlpack(np.broadcast_to(np.arange(3.0), (2**41, 3)))\n"
        "for kw in ({'copy': True}, {'copy': True, 'dl_device': (1, 0)}):\n"
        "    try:\n"
        "        x.__dlpack__(**kw)\n"
        "    except BufferError as e:\n"
        "        print(type(e).__name__, e)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = p.stdout.splitlines()
    assert len(lines) == 2, p.stdout
    for line in lines:
        assert line.startswith("BufferError") and "52776558133248 bytes" in line, line


class RaisingRepr:
    def __repr__(self):
        raise RuntimeError("repr of RaisingRepr")


def test_a_refusal_releases_what_it_dropped_at_once():
    # Naming a value whose repr raises drops that RuntimeError (and its traceback, which holds
    # the caller's frames). In the hand-written METH_FASTCALL entry points pyo3 did not know the
    # thread was attached and deferred the release to its next entry point: the caller's locals
    # (here `held`; in the fuzzer a tensor, whose deleter then did not run) outlived the call.
    import gc
    import weakref

    class Held:
        pass

    def call(held):
        obj = AI(version=3, typestr=RaisingRepr(), shape=(1,), data=(0, False))
        try:
            dlpack.asdlpack(obj)
        except TypeError as e:
            assert "RaisingRepr object" in str(e)
        else:
            raise AssertionError("accepted")

    held = Held()
    alive = weakref.ref(held)
    call(held)
    del held
    gc.collect()
    assert alive() is None
