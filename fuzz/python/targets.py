"""The fuzz targets of the Python module `dlpack`: one per Python-facing parser.

Each target is a hypothesis test body that builds a hostile input, hands it to every entry point
that parses it, and applies the oracle of `check`: a call either succeeds, or raises exactly
`TypeError`, `ValueError` or `BufferError` with a message that names the offending value (one of
the target's words) — or lets through, unchanged, an exception that a producer's own code raised.
Anything else (`PanicException`, `SystemError`, `OverflowError`, `UnicodeEncodeError`, any other
type) is a finding; a crash is one too (the runner sees the signal). Foreign managed tensors count
their deleter calls: more than one, or none after everything was released, is a finding.

Nothing here reads the memory behind a pointer the input made up: accepted tensors are exported
again (`__dlpack__`, `capsule_info`, the array interfaces), never copied.
"""

from __future__ import annotations

import ctypes
import inspect
import os

import hypothesis.strategies as st
import numpy as np
from hypothesis.extra import numpy as hnp

import dlpack
import dlpack._testing as T
from cdlpack import Foreign, Table

ALLOWED = (TypeError, ValueError, BufferError)


class Finding(AssertionError):
    """A call broke the oracle."""


def read_with_numpy(x):
    """An accepted tensor read through NumPy: its first and last elements, when NumPy takes it.

    NumPy refuses by its own rules some tensors the standard allows: dtypes it lacks (bfloat16,
    float4, float8: `BufferError`, `TypeError`, `RuntimeError`) and shapes whose non-zero extents
    times the item size pass its `intp` ("array is too big": `ValueError`), which a size-zero
    shape or broadcast zero strides over little memory can describe. Any other failure of
    NumPy's, or of reading the elements, is a finding.
    """
    try:
        a = np.from_dlpack(x)
    except (RuntimeError, BufferError, TypeError):
        return
    except ValueError as e:
        if "array is too big" in str(e) and _too_big_for_numpy(x):
            return
        raise Finding(f"np.from_dlpack refused an accepted tensor: {e}") from e
    if a.size:
        _ = (a[(0,) * a.ndim], a[tuple(n - 1 for n in a.shape)])


def _too_big_for_numpy(x):
    """Whether NumPy's rule refuses `x`: its non-zero extents times its item size exceed intp
    (read from its capsule, without reading the data)."""
    info = dlpack.capsule_info(x.__dlpack__())
    _, bits, lanes = info["dtype"]
    n = (bits * lanes + 7) // 8
    for extent in info["shape"]:
        n *= extent or 1
    return n > np.iinfo(np.intp).max



_TRACE = os.environ.get("DLPACK_FUZZ_TRACE")
_TRACE_FD = os.open(_TRACE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) if _TRACE else None


def trace(what, args, kwargs):
    """With DLPACK_FUZZ_TRACE=<file>: the call about to be made, written unbuffered (the last
    line names the input of a crash)."""
    try:
        text = f"{what} {args!r} {kwargs!r}"
    except Exception:  # noqa: BLE001
        text = f"{what} <unprintable>"
    os.lseek(_TRACE_FD, 0, os.SEEK_SET)
    os.ftruncate(_TRACE_FD, 0)
    os.write(_TRACE_FD, text.encode("utf-8", "replace") + b"\n")


def check(what, fn, *args, names=(), passthrough=(), **kwargs):
    """``fn(*args, **kwargs)``: its result, or None after a refusal the oracle allows."""
    if _TRACE_FD is not None:
        trace(what, args, kwargs)
    try:
        return fn(*args, **kwargs)
    except Finding:
        raise
    except BaseException as e:  # noqa: BLE001 - the oracle looks at every exception
        if isinstance(e, KeyboardInterrupt):
            raise
        if any(e is p for p in passthrough):
            return None
        if type(e) not in ALLOWED:
            raise Finding(f"{what}: {type(e).__module__}.{type(e).__qualname__}: {e}") from e
        msg = str(e)
        if not msg or (names and not any(n in msg for n in names)):
            raise Finding(f"{what}: {type(e).__name__} names none of {names}: {msg!r}") from e
        return None


# `check`'s own parameters: a keyword argument of the call under test must not be one of them.
CHECK_KEYWORDS = tuple(
    p for p, v in inspect.signature(check).parameters.items()
    if v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)
)


# ---------------------------------------------------------------------------------------------
# Values

EDGE_INTS = [0, 1, -1, 2, 3, 8, 64, 65, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32, 2**62,
             2**63 - 1, 2**63, -2**63, -2**63 - 1, 2**64 - 1, 2**64, 2**100, -2**100]
ints = st.one_of(st.integers(-4, 70), st.sampled_from(EDGE_INTS), st.integers(-2**70, 2**70))
SURROGATES = ["\ud800", "<\udcff4", "f\udfff"]
texts = st.one_of(st.text(max_size=8), st.sampled_from(SURROGATES))


class Weird:
    """An object whose repr, int conversion and comparisons raise."""

    def __repr__(self):
        raise RuntimeError("repr of Weird")

    def __index__(self):
        raise RuntimeError("index of Weird")

    def __len__(self):
        raise RuntimeError("len of Weird")


junk = st.one_of(
    st.none(), st.booleans(), st.floats(), texts, st.binary(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3), st.builds(object), st.builds(Weird),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from([np.int64(3), np.float32(1.5), np.bool_(True), np.array([1, 2])]),
)


def int_tuples(max_size=5):
    return st.one_of(st.lists(ints, max_size=max_size).map(tuple),
                     st.lists(st.integers(0, 6), max_size=max_size).map(tuple),
                     st.lists(st.one_of(ints, junk), max_size=3).map(tuple),
                     st.lists(ints, max_size=3), junk)


class Holder:
    """An object with the attribute a target fuzzes (kept alive by the import)."""


# ---------------------------------------------------------------------------------------------
# Array interfaces

AI_WORDS = ("__array_interface__", "__cuda_array_interface__", "typestr", "shape", "strides",
            "data", "offset", "version", "descr", "mask", "stream", "dtype", "stride", "extent",
            "layout", "element", "bytes", "address", "ndim", "dimensions", "pointer", "device",
            "protocol", "DLPack", "no __")

typestrs = st.one_of(
    st.sampled_from(["<f4", "|u1", "<i8", "|b1", "<c16", "<f2", ">f4", "=f8", "<f16", "<M8[ns]",
                     "<U4", "|V8", "|O", "<f0", "<f99999999999999999999", "<f+4", "<é4", "é<f4",
                     "<f٤", "|i1", "<u2", ">i2", "<c8"]),
    st.builds(lambda o, k, n: o + k + n, st.sampled_from(list("<>|=!@é")),
              st.sampled_from(list("biufcMmOSUVé٤")),
              st.one_of(st.integers(0, 40).map(str), st.text(max_size=3))),
    texts, junk)


@st.composite
def array_interface(draw, cuda):
    buf = bytearray(draw(st.integers(0, 256)))
    real = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf)) if buf else 0
    pointer = st.one_of(st.just(real), ints)
    if cuda and DEVICE is not None:
        pointer = st.one_of(pointer, st.just(DEVICE.ptr), st.just(DEVICE.ptr + 8))
    data = st.one_of(
        st.tuples(pointer, st.booleans()), st.tuples(pointer, junk), st.tuples(pointer),
        st.tuples(pointer, st.booleans(), st.booleans()), st.just(buf), st.just(bytes(buf)),
        st.builds(lambda: memoryview(buf)[::2]), junk)
    optional = {
        "version": st.one_of(st.sampled_from([1, 2, 3]), ints, junk),
        "typestr": typestrs,
        "descr": st.one_of(typestrs.map(lambda t: [("", t)]),
                           st.lists(st.tuples(st.text(max_size=2), typestrs), max_size=3), junk),
        "shape": int_tuples(),
        "strides": st.one_of(st.none(), int_tuples()),
        "data": data,
        "mask": st.one_of(st.none(), junk),
        "offset": st.one_of(ints, junk),
    }
    if cuda:
        optional["stream"] = st.one_of(st.sampled_from([None, 0, 1, 2, -1, 3]), ints, junk)
    d = draw(st.fixed_dictionaries({}, optional=optional))
    if draw(st.integers(0, 20)) == 0:
        d = draw(junk)
    return buf, d


def target_array_interface(data):
    _array_interface(data, cuda=False)


def target_cuda_array_interface(data):
    _array_interface(data, cuda=True)


def _array_interface(data, cuda):
    attr = "__cuda_array_interface__" if cuda else "__array_interface__"
    buf, d = data.draw(array_interface(cuda))
    o = Holder()
    o.buf = buf
    setattr(o, attr, d)
    protocol = "cuda_array_interface" if cuda else "array_interface"
    check("asdlpack", dlpack.asdlpack, o, names=AI_WORDS)
    check("import_info", T.import_info, o, names=AI_WORDS)
    x = check("asdlpack(protocol)", dlpack.asdlpack, o, protocol=protocol, names=AI_WORDS)
    if x is not None:
        reexport(data, x, cuda)


def reexport(data, x, device):
    """Exports an accepted object again (never copying: its memory may be made up)."""
    check("__dlpack_device__", x.__dlpack_device__, names=AI_WORDS)
    for a in ("shape", "strides", "dtype", "device", "readonly", "nbytes"):
        getattr(x, a)
    # A property that raises AttributeError is Python's "no such protocol here" (device
    # memory has no __array_interface__, host memory no __cuda_array_interface__).
    for attr in ("__array_interface__", "__cuda_array_interface__"):
        check(attr, getattr, x, attr, None, names=AI_WORDS)
    check("memoryview", memoryview, x, names=AI_WORDS + BUF_WORDS)  # fields only, no read
    kwargs = data.draw(dlpack_kwargs(allow_copy=False), label="kwargs")
    cap = check("__dlpack__", x.__dlpack__, names=KW_WORDS, **kwargs)
    if cap is not None:
        check("capsule_info", dlpack.capsule_info, cap, names=CAP_WORDS)
        check("import_info(capsule)", T.import_info, cap, names=CAP_WORDS)


# ---------------------------------------------------------------------------------------------
# __dlpack__ keywords

# "layout": a re-export the core refuses for its layout (an opaque-handle tensor whose
# byte_offset puts it past the address space imports, but cannot be exported again).
KW_WORDS = ("stream", "max_version", "dl_device", "copy", "__dlpack__", "keyword", "device",
            "positional", "read-only", "argument", "kDL", "version", "layout")

streams = st.one_of(st.sampled_from([None, -1, 0, 1, 2, 3, 2**64 - 1]), ints, junk)
versions = st.one_of(st.tuples(st.integers(-2, 3), st.integers(-2, 5)), st.tuples(ints, ints),
                     st.tuples(ints), st.tuples(ints, ints, ints), st.lists(ints, max_size=2),
                     st.tuples(junk, ints), st.none(), junk)
devices = st.one_of(st.sampled_from([(1, 0), (2, 0), (10, 0), (1, -1), (2, -1), (13, 0), (3, 0)]),
                    st.tuples(st.integers(-2, 25), st.integers(-2, 3)), st.tuples(ints, ints),
                    st.tuples(ints), st.lists(ints, max_size=2), st.tuples(junk, junk), junk,
                    st.sampled_from([(dlpack.DLDeviceType.kDLCPU, 0)]))
copies = st.one_of(st.none(), st.booleans(), st.sampled_from([0, 1, np.bool_(True)]), junk)


@st.composite
def dlpack_kwargs(draw, allow_copy=True):
    optional = {"stream": streams, "max_version": versions, "dl_device": devices}
    if allow_copy:
        optional["copy"] = copies
    kw = draw(st.fixed_dictionaries({}, optional=optional))
    if not allow_copy and kw.get("dl_device") is not None:
        kw["copy"] = False  # a device change may need a copy: never read made-up memory
    if draw(st.integers(0, 15)) == 0:
        # An unknown keyword; not one of `check`'s own, which would never reach the producer.
        unknown = st.text(max_size=6).filter(lambda k: k not in CHECK_KEYWORDS)
        kw[draw(st.one_of(unknown, st.sampled_from(SURROGATES)))] = draw(junk)
    return kw


def producers():
    """Our objects over real memory (so copies are safe): Tensor, DLPackObject over every kind
    of source, and device buffers on the simulator."""
    base = [
        lambda: T.arange(6),
        lambda: T.arange(6, "int16", (2, 3), True),
        lambda: T.arange(0),
        lambda: dlpack.asdlpack(np.arange(12.0).reshape(3, 4)[:, ::2]),
        lambda: dlpack.asdlpack(np.arange(3, dtype=np.uint8)),
        lambda: dlpack.asdlpack(b"abcd"),
        lambda: dlpack.asdlpack(T.arange(4)),
        lambda: dlpack.asdlpack(Forwarding(np.arange(5.0))),
        lambda: dlpack.asdlpack(LegacyForwarding(np.arange(5.0))),
        # 2**41 x 3 broadcast float64 over 24 bytes: a copy cannot be allocated.
        lambda: dlpack.asdlpack(np.broadcast_to(np.arange(3.0), (2**41, 3))),
    ]
    if DEVICE is not None:
        base += [lambda: DEVICE.tensor, lambda: dlpack.asdlpack(CAIOnly(DEVICE))]
    return st.sampled_from(base).map(lambda f: f())


class Forwarding:
    def __init__(self, a):
        self.a = a

    def __dlpack__(self, **kw):
        return self.a.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


class LegacyForwarding(Forwarding):
    def __dlpack__(self, stream=None):
        return self.a.__dlpack__(stream=stream)


class CAIOnly:
    def __init__(self, buf):
        self.buf = buf
        self.__cuda_array_interface__ = buf.__cuda_array_interface__


def target_dlpack_keywords(data):
    x = data.draw(producers(), label="producer")
    args = data.draw(st.one_of(st.just(()), st.lists(junk, max_size=2).map(tuple)), label="args")
    kwargs = data.draw(dlpack_kwargs(), label="kwargs")
    cap = check("__dlpack__", x.__dlpack__, *args, names=KW_WORDS, **kwargs)
    if cap is not None:
        check("import_info(capsule)", T.import_info, cap, names=CAP_WORDS)
    check("__dlpack_device__", x.__dlpack_device__, *args, names=KW_WORDS)


# ---------------------------------------------------------------------------------------------
# Buffer formats

BUF_WORDS = ("format", "buffer", "stride", "itemsize", "ndim", "shape", "extent", "elements",
             "layout", "dtype", "bytes", "suboffsets", "read-only", "DLPack", "dimensions")

formats = st.one_of(
    st.binary(max_size=8).map(lambda b: b.replace(b"\0", b"")),
    st.sampled_from([b"d", b"<d", b">d", b"@d", b"=d", b"!d", b"f", b"e", b"Zf", b"Zd", b"Zg",
                     b"g", b"?", b"b", b"B", b"h", b"H", b"i", b"I", b"l", b"L", b"q", b"Q",
                     b"n", b"N", b"=n", b"P", b"c", b"s", b"2d", b"T{<i:a:}", b"<\xff", b"\xff",
                     "é".encode(), b"<\xc3", b"O", b"w", b"x"]),
    st.text(max_size=6).map(lambda s: s.replace("\0", "").encode("utf-8", "surrogatepass")),
    st.none())


@st.composite
def buffer_objects(draw):
    kind = draw(st.integers(0, 4))
    if kind == 0:
        ndim = draw(st.one_of(st.none(), st.integers(-3, 70)))
        n = draw(st.integers(0, 5))
        isz = st.one_of(st.integers(-2**63, 2**63 - 1), st.integers(-3, 20),
                        st.sampled_from([2**62, 2**61, -2**63]))
        shape = draw(st.one_of(st.none(), st.lists(isz, min_size=n, max_size=n)))
        strides = draw(st.one_of(st.none(), st.lists(isz, min_size=n, max_size=n)))
        if ndim is not None and ndim > n:
            shape = strides = None  # the exporter's arrays hold ndim entries or are NULL
        return T.BufferExporter(draw(formats), draw(isz), shape, strides, ndim,
                                draw(st.integers(0, 256)), draw(st.booleans()))
    if kind == 1:
        dtype = draw(st.one_of(hnp.scalar_dtypes(), hnp.nested_dtypes(max_itemsize=64),
                               hnp.array_dtypes(allow_subarrays=True),
                               hnp.byte_string_dtypes(), hnp.unicode_string_dtypes()))
        a = draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, max_side=3)))
        try:
            return memoryview(a)
        except (ValueError, TypeError, BufferError):
            return memoryview(b"")
    if kind == 2:
        fields = draw(st.lists(st.sampled_from([ctypes.c_int, ctypes.c_double, ctypes.c_char,
                                                ctypes.c_bool, ctypes.c_int16]),
                               min_size=1, max_size=3))
        cls = type("S", (ctypes.Structure,), {
            "_fields_": [(f"f{i}", t) for i, t in enumerate(fields)],
            "_pack_": draw(st.sampled_from([1, 2, 8])),
        })
        return (cls * draw(st.integers(0, 3)))()
    if kind == 3:
        code = draw(st.sampled_from(list("bBhHiIlLqQnNfd?cP")))
        raw = bytearray(draw(st.integers(0, 6)) * 8)
        m = memoryview(raw).cast(code)
        if len(m) and draw(st.booleans()):
            m = m.cast("B").cast(code, (1, len(m)))
        return m
    scalar = draw(st.sampled_from([ctypes.c_longdouble(1), ctypes.c_wchar("x"),
                                   (ctypes.c_float * 2 * 3)(), ctypes.c_void_p(0)]))
    return scalar


def target_buffer_format(data):
    obj = data.draw(buffer_objects(), label="exporter")
    x = check("asdlpack", dlpack.asdlpack, obj, names=BUF_WORDS)
    check("asdlpack(protocol)", dlpack.asdlpack, obj, protocol="buffer", names=BUF_WORDS)
    check("import_info", T.import_info, obj, names=BUF_WORDS)
    if x is not None:
        reexport(data, x, False)


# ---------------------------------------------------------------------------------------------
# Bare capsules

CAP_WORDS = ("capsule", "PyCapsule", "dltensor", "version", "ndim", "shape", "strides", "data",
             "dtype", "extent", "layout", "byte_offset", "address", "device", "bits", "stream",
             "elements", "max_version", "copy", "dl_device", "read-only", "legacy", "kDL",
             "__dlpack__")

# None: the name of the struct's own ABI (a name that lies about the struct is undefined
# behaviour no consumer can detect); False: a NULL name.
NAMES = [None, None, b"used_dltensor", b"used_dltensor_versioned", b"", b"dltensor_versioned2",
         b"DLTENSOR", b"dlpack_exchange_api", False]


@st.composite
def foreign_tensors(draw, versioned=None):
    return Foreign(**draw(foreign_params(versioned)))


@st.composite
def foreign_params(draw, versioned=None):
    if versioned is None:
        versioned = draw(st.booleans())
    ndim = draw(st.one_of(st.integers(-3, 6), st.sampled_from([64, 65, 2**31 - 1, -2**31])))
    extent = st.one_of(st.integers(-2, 5), st.sampled_from([2**31, 2**62, 2**63 - 1, -2**63]))
    if 0 <= ndim <= 64:
        shape = draw(st.one_of(st.none(), st.lists(extent, min_size=ndim, max_size=ndim)))
        strides = draw(st.one_of(st.none(), st.lists(extent, min_size=ndim, max_size=ndim)))
    else:
        shape = strides = None
    u8 = st.one_of(st.sampled_from([0, 1, 2, 4, 5, 6, 7, 8, 16, 17, 255]), st.integers(0, 255))
    return dict(
        versioned=versioned,
        version=draw(st.tuples(st.sampled_from([0, 1, 2, 2**32 - 1]), st.integers(0, 2**32 - 1))),
        flags=draw(st.one_of(st.sampled_from([0, 1, 2, 4, 8]), st.integers(0, 2**64 - 1))),
        ndim=ndim, shape=shape, strides=strides,
        dtype=(draw(u8), draw(u8), draw(st.one_of(st.sampled_from([0, 1, 2, 4]),
                                                  st.integers(0, 2**16 - 1)))),
        device=(draw(st.one_of(st.sampled_from([1, 2, 3, 10, 13, 0, 99]),
                               st.integers(-2**31, 2**31 - 1))),
                draw(st.one_of(st.integers(-2, 3), st.integers(-2**31, 2**31 - 1)))),
        byte_offset=draw(st.one_of(st.sampled_from([0, 1, 8, 2**63, 2**64 - 1]),
                                   st.integers(0, 2**64 - 1))),
        data=draw(st.booleans()), nbytes=draw(st.integers(0, 256)), deleter=draw(st.booleans()),
    )


def settle(foreign, cap, fresh):
    """After everything made from a foreign tensor is gone (our objects hold no cycles, so
    reference counting has released them): its deleter ran once if a consumer took it (renamed
    the fresh capsule), never otherwise (the bare capsule has no destructor)."""
    if foreign.deleted > 1:
        raise Finding(f"deleter ran {foreign.deleted} times")
    if not foreign.struct.deleter:
        return
    consumed = fresh and capsule_name(cap).startswith(b"used_")
    want = 1 if consumed else 0
    if foreign.deleted != want:
        raise Finding(f"deleter ran {foreign.deleted} times, expected {want} "
                      f"(capsule now named {capsule_name(cap)!r})")


_get_name = ctypes.pythonapi.PyCapsule_GetName
_get_name.restype = ctypes.c_char_p
_get_name.argtypes = [ctypes.py_object]


def capsule_name(cap):
    return _get_name(cap) or b""


def target_capsules(data):
    foreign = data.draw(foreign_tensors(), label="tensor")
    name = data.draw(st.sampled_from(NAMES), label="name")
    cap = foreign.capsule(name)
    check("capsule_info", dlpack.capsule_info, cap, names=CAP_WORDS)
    entry = data.draw(st.sampled_from(["asdlpack", "import_info", "capsule_protocol"]))
    if entry == "asdlpack":
        x = check("asdlpack", dlpack.asdlpack, cap, names=CAP_WORDS)
    elif entry == "import_info":
        x = None
        check("import_info", T.import_info, cap, names=CAP_WORDS)
    else:
        x = check("asdlpack(protocol)", dlpack.asdlpack, cap, protocol="capsule", names=CAP_WORDS)
    # A second consumption is refused (ValueError for a used capsule).
    check("asdlpack again", dlpack.asdlpack, cap, names=CAP_WORDS)
    if x is not None:
        reexport(data, x, True)
        del x
    settle(foreign, cap, name is None)


# ---------------------------------------------------------------------------------------------
# Producers whose __dlpack__ / __dlpack_device__ misbehave

PRODUCER_WORDS = CAP_WORDS + KW_WORDS + ("__dlpack_device__", "tuple", "int32", "producer")
EXC_TYPES = [RuntimeError, TypeError, ValueError, BufferError, KeyError, MemoryError,
             NotImplementedError, AttributeError, SystemError, OverflowError]


class Misbehaving:
    """A producer whose answers are drawn: `dlpack_answer` and `device_answer` are callables
    (or plain attributes); every exception they raise is recorded (passed through unchanged)."""

    raised: list

    def __dlpack__(self, *args, **kwargs):
        try:
            return self.dlpack_answer(*args, **kwargs)
        except BaseException as e:
            self.raised.append(e)
            raise

    def __dlpack_device__(self, *args):
        try:
            return self.device_answer(*args)
        except BaseException as e:
            self.raised.append(e)
            raise


def raiser(exc_type, msg):
    def f(*_a, **_k):
        raise exc_type(msg)
    return f


@st.composite
def misbehaving(draw):
    p = Misbehaving()
    p.raised = []
    src = np.arange(4.0)
    params = draw(foreign_params(versioned=True))
    made = []

    def fresh(name=None):
        f = Foreign(**params)
        made.append(f)
        return f.capsule(name)

    answers = [
        lambda **kw: src.__dlpack__(**kw),
        lambda stream=None: src.__dlpack__(stream=stream),
        lambda: src.__dlpack__(),
        lambda **kw: src.__dlpack__(),
        lambda **kw: fresh(),
        lambda **kw: fresh(b"used_dltensor_versioned"),
        lambda **kw: T.arange(3).__dlpack__(max_version=None),
        raiser(draw(st.sampled_from(EXC_TYPES)), draw(st.sampled_from(["", "keyword", "x"]))),
    ]
    value = draw(junk)
    answers.append(lambda *a, **kw: value)
    p.dlpack_answer = draw(st.sampled_from(answers))
    device = draw(st.one_of(devices, st.sampled_from([(1, None), (1, 0)])))
    p.device_answer = draw(st.sampled_from([
        lambda: device, lambda: (1, 0), lambda: (2, 0), lambda: (10, 0),
        raiser(draw(st.sampled_from(EXC_TYPES)), "device"),
    ]))
    return p, made


def target_producers(data):
    p, made = data.draw(misbehaving(), label="producer")
    names = PRODUCER_WORDS
    x = check("asdlpack", dlpack.asdlpack, p, names=names, passthrough=p.raised)
    check("import_info", T.import_info, p, names=names, passthrough=p.raised)
    if x is not None:
        check("__dlpack_device__", x.__dlpack_device__, names=names, passthrough=p.raised)
        check("shape", getattr, x, "shape", names=names, passthrough=p.raised)
        kwargs = data.draw(dlpack_kwargs(allow_copy=False), label="kwargs")
        cap = check("__dlpack__", x.__dlpack__, names=names, passthrough=p.raised, **kwargs)
        if cap is not None:
            check("import_info(capsule)", T.import_info, cap, names=names)
        del x, cap
    for foreign in made:
        if foreign.deleted > 1:
            raise Finding(f"deleter ran {foreign.deleted} times")


# ---------------------------------------------------------------------------------------------
# The C exchange API attribute

EX_WORDS = PRODUCER_WORDS + ("exchange", "managed_tensor_from_py_object_no_sync",
                             "dltensor_from_py_object_no_sync", "import", "cannot")


@st.composite
def exchange_objects(draw):
    foreign = draw(foreign_tensors(versioned=True))
    raw = foreign.struct.dl_tensor

    def from_py(_obj, out, mode=draw(st.integers(0, 2))):
        if mode == 1:
            out[0] = foreign.address
            return 0
        return -1 if mode == 0 else 0

    def dltensor_from_py(_obj, out, mode=draw(st.integers(0, 2))):
        if mode == 1:
            out[0] = raw
            return 0
        return -1 if mode == 0 else 0

    def work_stream(_t, _i, out, rc=draw(st.sampled_from([0, -1]))):
        out[0] = None
        return rc

    def table():
        prev = None
        for _ in range(draw(st.integers(0, 2))):
            prev = Table(version=(draw(st.sampled_from([0, 2, 3])), 0), prev=prev)
        return Table(
            version=(draw(st.sampled_from([1, 1, 0, 2, 2**32 - 1])), draw(st.integers(0, 9))),
            prev=prev,
            from_py=from_py if draw(st.integers(0, 4)) else None,
            dltensor_from_py=dltensor_from_py if draw(st.booleans()) else None,
            work_stream=work_stream if draw(st.booleans()) else None,
        )

    t = table()
    name = draw(st.sampled_from([b"dlpack_exchange_api", b"dlpack_exchange_api",
                                 b"dltensor", b"", b"exchange"]))
    attrs = {"tables": t}
    value13 = draw(st.one_of(st.just(t.capsule(name)), ints, junk))
    if draw(st.booleans()):
        attrs["__dlpack_c_exchange_api__"] = value13
    # DLPack 1.2's attribute may be an int address: only real tables (or 0) are given as ints.
    value12 = draw(st.one_of(st.just(t.capsule(name)), st.just(t.address), st.just(0),
                             st.text(max_size=3), junk.filter(lambda v: not isinstance(v, int))))
    if draw(st.booleans()):
        attrs["__c_dlpack_exchange_api__"] = value12
    if draw(st.booleans()):
        src = np.arange(3.0)
        attrs["__dlpack__"] = lambda self, **kw: src.__dlpack__(**kw)
        attrs["__dlpack_device__"] = lambda self: (1, 0)
    cls = type("ExchangeProducer", (), attrs)
    return cls(), foreign


def target_exchange_api(data):
    obj, foreign = data.draw(exchange_objects(), label="producer")
    check("import_info", T.import_info, obj, names=EX_WORDS)
    check("take_borrowed", T.take_borrowed, obj, names=EX_WORDS)
    check("take", T.take, obj, names=EX_WORDS)
    del obj
    if foreign.deleted > 3:  # one per accepted import at most (three entry points)
        raise Finding(f"deleter ran {foreign.deleted} times")


# ---------------------------------------------------------------------------------------------
# Pickles: the reconstructor's in-band metadata against the received bytes

PICKLE_WORDS = ("pickled", "format", "shape", "strides", "dtype", "byte_offset", "read_only",
                "writable_copy", "buffer", "contiguous", "reach", "bytes", "Py_ssize_t")


def target_pickle(data):
    import pickle

    from dlpack import _native

    if data.draw(st.booleans(), label="plausible"):
        # Near the rules: known dtypes, small extents and strides, so that many are accepted.
        ndim = data.draw(st.integers(0, 3), label="ndim")
        dims = st.lists(st.integers(-1, 4), min_size=ndim, max_size=ndim).map(tuple)
        args = (1, data.draw(st.binary(max_size=64).map(bytearray), label="data"),
                data.draw(dims, label="shape"),
                data.draw(st.lists(st.integers(-9, 9), min_size=ndim, max_size=ndim).map(tuple),
                          label="strides"),
                data.draw(st.sampled_from([(1, 8, 1), (2, 32, 1), (5, 128, 1), (6, 8, 1),
                                           (4, 16, 1), (2, 16, 2), (17, 4, 1)]), label="dtype"),
                data.draw(st.integers(-1, 70), label="byte_offset"),
                data.draw(st.booleans(), label="read_only"))
    else:
        args = (
            data.draw(st.one_of(st.just(1), ints, junk), label="format"),
            data.draw(st.one_of(st.binary(max_size=64), st.binary(max_size=64).map(bytearray),
                                junk), label="data"),
            data.draw(int_tuples(), label="shape"),
            data.draw(int_tuples(), label="strides"),
            data.draw(st.one_of(st.tuples(st.integers(-1, 20), st.integers(-1, 257),
                                          st.integers(-1, 3)), int_tuples(3)), label="dtype"),
            data.draw(st.one_of(st.integers(-2, 70), ints, junk), label="byte_offset"),
            data.draw(st.one_of(st.booleans(), junk), label="read_only"),
        )
    if data.draw(st.booleans(), label="has_writable_copy"):
        # What a writable tensor pickled in band below protocol 5 adds.
        args += (data.draw(st.one_of(st.booleans(), junk), label="writable_copy"),)
    x = check("_from_pickle", _native._from_pickle, *args, names=PICKLE_WORDS + ("int", "bytes-like"))
    if x is None:
        return
    # Accepted: the layout lies inside the received bytes; read one element and pickle again.
    read_with_numpy(x)
    for protocol in (2, 5):
        check("pickle", lambda: pickle.loads(pickle.dumps(x, protocol=protocol)), names=PICKLE_WORDS)


# ---------------------------------------------------------------------------------------------
# .safetensors files: the header reader of `load_safetensors` against any bytes

SAFETENSORS_WORDS = ("header", "tensor", "entry", "data", "bytes", "file", "names", "aligned")
SAFETENSORS_DTYPES = ["BOOL", "U8", "I8", "U16", "I16", "F16", "BF16", "U32", "I32", "F32",
                      "U64", "I64", "F64", "C64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4",
                      "F6_E2M3", "F4x", "", "f32"]
_SAFETENSORS_PATH = None


@st.composite
def safetensors_files(draw):
    """Bytes near the format (a drawn header over drawn data), then maybe mutated."""
    import json
    import struct

    header = {}
    if draw(st.booleans(), label="metadata"):
        header["__metadata__"] = draw(st.one_of(
            st.none(), st.dictionaries(texts, st.one_of(texts, ints), max_size=2)))
    offset = 0
    for i in range(draw(st.integers(0, 4), label="tensors")):
        dtype = draw(st.sampled_from(SAFETENSORS_DTYPES), label="dtype")
        shape = draw(st.lists(st.one_of(st.integers(0, 5), ints), max_size=3), label="shape")
        size = draw(st.one_of(st.integers(0, 40), ints), label="size")
        begin = draw(st.one_of(st.just(offset), ints), label="begin")
        entry = {"dtype": dtype, "shape": shape, "data_offsets": [begin, begin + size]}
        if draw(st.booleans(), label="drop a field"):
            entry.pop(draw(st.sampled_from(sorted(entry))))
        header[draw(st.one_of(st.just(f"t{i}"), texts), label="name")] = entry
        offset = begin + size if isinstance(begin, int) else offset
    text = json.dumps(header).encode()
    text += b" " * draw(st.integers(0, 7), label="padding")
    length = draw(st.one_of(st.just(len(text)), st.integers(0, 2**64 - 1)), label="length")
    data = bytes(draw(st.integers(0, 96), label="data"))
    out = bytearray(struct.pack("<Q", length) + text + data)
    for _ in range(draw(st.integers(0, 3), label="mutations")):
        if out:
            out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
    return bytes(out[:draw(st.integers(0, len(out)), label="truncate at")]
                 if draw(st.booleans(), label="truncate") else out)


def target_safetensors(data):
    import tempfile

    global _SAFETENSORS_PATH
    if _SAFETENSORS_PATH is None:
        import atexit

        fd, _SAFETENSORS_PATH = tempfile.mkstemp(suffix=".safetensors")
        os.close(fd)
        atexit.register(os.remove, _SAFETENSORS_PATH)
    with open(_SAFETENSORS_PATH, "wb") as f:
        f.write(data.draw(safetensors_files(), label="file"))
    copy = data.draw(st.booleans(), label="copy_misaligned")
    tensors = check("load_safetensors", dlpack.load_safetensors, _SAFETENSORS_PATH,
                    copy_misaligned=copy, names=SAFETENSORS_WORDS)
    if tensors is None:
        return
    # Accepted: every tensor lies inside the map; read its first and last elements.
    for t in tensors.values():
        read_with_numpy(t)


# Shared-memory segments: mutated headers of a real segment, opened by name

SHM_WORDS = ("shared-memory segment",)
_SHM_GOOD = None


def _shm_good():
    """The bytes of a valid segment (a 2 x 3 float32 tensor with negative strides)."""
    global _SHM_GOOD
    if _SHM_GOOD is None:
        from dlpack import shared_memory

        st = shared_memory.share(np.arange(12, dtype=np.float32).reshape(3, 4)[::-1, ::2])
        with open(f"/dev/shm/{st.name}", "rb") as f:
            _SHM_GOOD = f.read()
        st.unlink()
    return _SHM_GOOD


def target_shm_segment(data):
    from dlpack import _native

    seg = bytearray(_shm_good())
    header = 64 + 16 * 2
    for _ in range(data.draw(st.integers(0, 4), label="edits")):
        at = data.draw(st.integers(0, header - 1), label="at")
        if data.draw(st.booleans(), label="field"):
            # A whole little-endian field (u32/u64/i64) set to an edge value.
            width = data.draw(st.sampled_from([4, 8]), label="width")
            at -= at % width
            v = data.draw(ints, label="value") % (1 << (8 * width))
            seg[at:at + width] = v.to_bytes(width, "little")
        else:
            seg[at] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(seg))), label="cut")
    if cut is not None:
        del seg[cut:]
    name = f"fuzz-shm-{os.getpid()}"
    with open(f"/dev/shm/{name}", "wb") as f:
        f.write(seg)
    try:
        x = check("_shm_open", _native._shm_open, name, names=SHM_WORDS)
    finally:
        os.unlink(f"/dev/shm/{name}")
    if x is None:
        return
    # Accepted: every element lies inside the mapping; read the first and last.
    read_with_numpy(x)


# ---------------------------------------------------------------------------------------------

DEVICE = None


def setup():
    """Device memory on the simulator, when `GPUSIM_LIB_DIR` names one."""
    global DEVICE
    if os.environ.get("GPUSIM_LIB_DIR") and hasattr(T, "DeviceBuffer"):
        if T.driver_present("cuda"):
            DEVICE = T.DeviceBuffer(256)
            DEVICE.fill_on(1, 7)


TARGETS = {
    "array_interface": target_array_interface,
    "cuda_array_interface": target_cuda_array_interface,
    "buffer_format": target_buffer_format,
    "dlpack_keywords": target_dlpack_keywords,
    "capsules": target_capsules,
    "producers": target_producers,
    "exchange_api": target_exchange_api,
    "pickle": target_pickle,
    "safetensors": target_safetensors,
    "shm_segment": target_shm_segment,
}
