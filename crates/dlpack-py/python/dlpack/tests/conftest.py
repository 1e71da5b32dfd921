"""Shared fixtures, capability tables and helpers of the `dlpack` test suite.

Backends (producers and consumers) are real frameworks; a framework that is not
installed is skipped through ``pytest.importorskip`` (the reason shows in ``-rs``).
Capabilities that a framework lacks (e.g. torch cannot hold negative strides) are
encoded in the tables below, so such combinations are never generated: they do not
show up as skips and can never hide a failure of our module.

pydlpack 0.2.1 also imports as ``dlpack``.  It must not be installed next to our
module; the suite loads it from a separate folder under the name ``pydlpack``
(see :func:`load_pydlpack`).  Its internal imports are relative, so loading it as a
package named ``pydlpack`` never touches ``sys.modules['dlpack']``.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import importlib.util
import math
import os
import sys

import numpy as np
import pytest

import dlpack

# --------------------------------------------------------------------------------------
# Our module (fail loudly if `dlpack` is pydlpack or the unrelated PyPI `dlpack`)
# --------------------------------------------------------------------------------------
if not (hasattr(dlpack, "asdlpack") and hasattr(dlpack, "capsule_info")):
    raise ImportError(
        f"`import dlpack` found {getattr(dlpack, '__file__', dlpack)!r}, which is not the Rust "
        "dlpack module (pydlpack 0.2.1 also imports as `dlpack`: install it with --target, "
        "see requirements-test.txt)"
    )


def _load_testing():
    try:
        return importlib.import_module("dlpack._testing")
    except ImportError:
        native = importlib.import_module("dlpack._native")
        return native._testing


testing = _load_testing()

READ_ONLY = 0x1

# numpy's own DLPack, by version. From 2.1 (DLPack 1.0): `ndarray.__dlpack__` takes `max_version`,
# `dl_device` and `copy`; `np.from_dlpack` takes `device=` and `copy=`, asks for a versioned capsule
# and imports a writable tensor writable. numpy 2.0 (the newest for CPython 3.9) calls `__dlpack__()`
# without keywords, so it gets legacy capsules only (which cannot say read-only: our read-only
# exports refuse them with BufferError, as the standard allows) and imports every array read-only.
NUMPY_DLPACK_1 = np.lib.NumpyVersion(np.__version__) >= "2.1.0"
NUMPY_DLPACK_1_REASON = (f"numpy {np.__version__} predates DLPack 1.0 (numpy >= 2.1: max_version, "
                         "dl_device, copy, versioned capsules, writable imports)")
needs_numpy_dlpack_1 = pytest.mark.skipif(not NUMPY_DLPACK_1, reason=NUMPY_DLPACK_1_REASON)

IS_COPIED = 0x2
CPU = (1, 0)

# --------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------
DTYPES = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "bfloat16", "float32", "float64", "complex64", "complex128",
]
DL_DTYPE = {
    "bool": (6, 8, 1),
    "int8": (0, 8, 1), "int16": (0, 16, 1), "int32": (0, 32, 1), "int64": (0, 64, 1),
    "uint8": (1, 8, 1), "uint16": (1, 16, 1), "uint32": (1, 32, 1), "uint64": (1, 64, 1),
    "float16": (2, 16, 1), "bfloat16": (4, 16, 1), "float32": (2, 32, 1), "float64": (2, 64, 1),
    "complex64": (5, 64, 1), "complex128": (5, 128, 1),
}
NUMPY_DTYPES = [d for d in DTYPES if d != "bfloat16"]  # numpy cannot export/import bfloat16

SHAPES = [(), (0,), (2,), (4, 6, 5)]
# name -> function(base numpy-like (5,6,5) array) -> view; applied in the backend itself
LAYOUTS = ["contiguous", "strided", "negative", "transposed"]


def np_dtype(name):
    if name == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def reference(dtype, shape):
    """Deterministic host values (numpy; ml_dtypes for bfloat16), not all equal."""
    n = math.prod(shape)
    s = np.arange(1, n + 1, dtype=np.float64).reshape(shape)
    if dtype == "bool":
        return (np.arange(n).reshape(shape) % 3 == 0)
    if dtype.startswith("complex"):
        return (s - 1j * s).astype(dtype)
    if dtype == "bfloat16":
        return s.astype(np.float32).astype(np_dtype("bfloat16"))
    return s.astype(dtype)


def layout_view(x, layout):
    """Apply `layout` to an array-like supporting numpy-style indexing (numpy, torch, paddle)."""
    if layout == "contiguous":
        return x
    if layout == "strided":
        return x[1:3, ::2, :]
    if layout == "negative":
        return x[1:3, ::2, ::-1]
    if layout == "transposed":
        return x.transpose(2, 0, 1) if not hasattr(x, "permute") else x.permute(2, 0, 1)
    raise ValueError(layout)


def layout_base_shape(layout, shape):
    return shape if layout == "contiguous" else (5, 6, 5)


def comparable(a):
    """numpy array whose values compare with ==/assert_array_equal (bfloat16 -> float32)."""
    a = np.asarray(a)
    if a.dtype.kind == "V" or a.dtype.name == "bfloat16":
        return a.astype(np.float32)
    return a


def assert_values(got, expected):
    got = comparable(got)
    expected = comparable(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    np.testing.assert_array_equal(got, expected)


def np_ptr(a):
    return a.__array_interface__["data"][0]


def numpy_capsule(a):
    """`a.__dlpack__()` asking for the newest capsule the installed numpy makes: versioned
    (`dltensor_versioned`, max_version 1.3) from numpy 2.1, legacy (`dltensor`) before."""
    return a.__dlpack__(max_version=(1, 3)) if NUMPY_DLPACK_1 else a.__dlpack__()


def np_from_dlpack_readonly(obj):
    """`np.from_dlpack(obj)` of a read-only export: a read-only array where numpy asks for a
    versioned capsule (numpy >= 2.1); where it asks only for a legacy capsule, which cannot say
    read-only, the export refuses with BufferError (and None is returned)."""
    if not NUMPY_DLPACK_1:
        with pytest.raises(BufferError, match="READ_ONLY"):
            np.from_dlpack(obj)
        return None
    r = np.from_dlpack(obj)
    assert r.flags.writeable is False, "READ_ONLY must reach numpy"
    return r


def elem_strides(a):
    """numpy array's strides in elements."""
    return tuple(s // a.itemsize for s in a.strides)


def capsule_name(cap):
    get = ctypes.pythonapi.PyCapsule_GetName
    get.restype = ctypes.c_char_p
    get.argtypes = [ctypes.py_object]
    name = get(cap)
    return None if name is None else name.decode()


def capsule_pointer(cap, name):
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype = ctypes.c_void_p
    get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return get(cap, name.encode())


def first_element(info):
    return info["data"] + info["byte_offset"]


def live():
    gc.collect()
    return dlpack.live_tensors()


# --------------------------------------------------------------------------------------
# Framework imports.  tensorflow 2.21 then paddlepaddle 3.3.1 in one process segfaults
# (paddle first is fine), so paddle is always imported before tensorflow.
# --------------------------------------------------------------------------------------
_IMPORT_NAMES = {
    "numpy": "numpy", "torch": "torch", "jax": "jax", "tensorflow": "tensorflow",
    "paddle": "paddle", "pyarrow": "pyarrow", "array_api_strict": "array_api_strict",
    "numba": "numba", "ml_dtypes": "ml_dtypes",
}


def import_backend(name):
    modname = _IMPORT_NAMES.get(name, name)
    if modname == "tensorflow" and "tensorflow" not in sys.modules:
        try:
            importlib.import_module("paddle")
        except ImportError:
            pass
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    first_time = modname not in sys.modules
    mod = pytest.importorskip(modname)
    if modname == "jax":
        mod.config.update("jax_enable_x64", True)
    if first_time:
        # The frameworks' own objects (hundreds of thousands) move to the permanent generation,
        # so the many gc.collect() calls of the lifetime tests only walk what the tests made.
        gc.collect()
        gc.freeze()
    return mod


# --------------------------------------------------------------------------------------
# Backends: producers and consumers, with their capabilities
# --------------------------------------------------------------------------------------
class Backend:
    name = ""
    producer_dtypes = ()
    consumer_dtypes = ()
    producer_layouts = ("contiguous",)
    consumer_layouts = ("contiguous",)
    zero_copy_consumer = True      # from_dlpack shares memory (checked by address)
    consumes_readonly = True       # asks for a versioned capsule (so read-only can be signalled)
    releases_imports = True        # calls the DLPack deleter when its array dies

    def module(self):
        return import_backend(self.name)

    # producer side
    def make(self, ref, layout="contiguous"):
        """Native array with the values of numpy `ref` (the layout base), `layout` applied."""
        raise NotImplementedError

    # consumer side
    def from_dlpack(self, obj):
        raise NotImplementedError

    def to_numpy(self, x):
        return np.asarray(x)

    def ptr(self, x):
        return None

    def __repr__(self):
        return self.name


class NumpyBackend(Backend):
    name = "numpy"
    consumes_readonly = NUMPY_DLPACK_1
    producer_dtypes = tuple(NUMPY_DTYPES)
    consumer_dtypes = tuple(NUMPY_DTYPES)
    producer_layouts = tuple(LAYOUTS)
    consumer_layouts = tuple(LAYOUTS)

    def make(self, ref, layout="contiguous"):
        return layout_view(np.array(ref), layout)

    def from_dlpack(self, obj):
        return np.from_dlpack(obj)

    def ptr(self, x):
        return np_ptr(x)


class TorchBackend(Backend):
    name = "torch"
    producer_dtypes = tuple(DTYPES)
    consumer_dtypes = tuple(DTYPES)
    producer_layouts = ("contiguous", "strided", "transposed")   # no negative strides in torch
    consumer_layouts = ("contiguous", "strided", "transposed")

    def make(self, ref, layout="contiguous"):
        torch = self.module()
        if ref.dtype.name == "bfloat16":
            t = torch.from_numpy(np.array(ref.astype(np.float32))).to(torch.bfloat16)
        else:
            t = torch.from_numpy(np.array(ref))
        return layout_view(t, layout)

    def from_dlpack(self, obj):
        return self.module().from_dlpack(obj)

    def to_numpy(self, x):
        torch = self.module()
        if x.dtype == torch.bfloat16:
            return x.float().numpy()
        return x.resolve_conj().numpy()

    def ptr(self, x):
        return x.data_ptr()


class JaxBackend(Backend):
    name = "jax"
    producer_dtypes = tuple(DTYPES)
    consumer_dtypes = tuple(DTYPES)
    consumer_layouts = ("contiguous", "transposed")  # UNIMPLEMENTED for non-compact strides
    zero_copy_consumer = False                        # copies unless 64-byte aligned
    consumes_readonly = False                         # calls __dlpack__() without max_version

    def make(self, ref, layout="contiguous"):
        jnp = self.module().numpy
        return jnp.asarray(layout_view(np.array(ref), layout))

    def from_dlpack(self, obj):
        return self.module().dlpack.from_dlpack(obj)

    def ptr(self, x):
        return x.unsafe_buffer_pointer()


class TensorflowBackend(Backend):
    name = "tensorflow"
    producer_dtypes = tuple(DTYPES)
    consumer_dtypes = tuple(DTYPES)
    consumer_layouts = ("contiguous",)  # "Invalid strides array from DLPack" otherwise
    consumes_readonly = False           # only takes legacy capsules

    def make(self, ref, layout="contiguous"):
        tf = self.module()
        a = np.array(layout_view(np.array(ref), layout))
        if a.dtype.name == "bfloat16":
            return tf.cast(tf.constant(a.astype(np.float32)), tf.bfloat16)
        return tf.constant(a)

    def from_dlpack(self, obj):
        # tensorflow consumes capsules only (no object protocol)
        return self.module().experimental.dlpack.from_dlpack(obj.__dlpack__())

    def to_numpy(self, x):
        return x.numpy()

    def ptr(self, x):
        return None  # no public data pointer; zero-copy checked through other consumers


class PaddleBackend(Backend):
    name = "paddle"
    # No uint32/uint64 in paddle; and paddle's "uint16" is its storage name for bfloat16 (its own
    # capsule says (kDLBfloat, 16, 1)), so a uint16 source cannot be made with paddle.
    producer_dtypes = tuple(d for d in DTYPES if d not in ("uint16", "uint32", "uint64"))
    consumer_dtypes = tuple(DTYPES)
    # paddle 3.3.1 imports negative strides with wrong values (its bug), so not generated
    consumer_layouts = ("contiguous", "strided", "transposed")
    # paddle 3.3.1 keeps DLPack imports alive after its tensors die (numpy and torch sources keep
    # extra references too), so live_tensors() cannot return to the baseline after paddle consumed
    releases_imports = False

    def make(self, ref, layout="contiguous"):
        paddle = self.module()
        a = np.array(layout_view(np.array(ref), layout))
        if a.dtype.name == "bfloat16":
            return paddle.to_tensor(a.astype(np.float32)).astype("bfloat16")
        return paddle.to_tensor(a)

    def from_dlpack(self, obj):
        return self.module().from_dlpack(obj)

    def to_numpy(self, x):
        if str(x.dtype).endswith("bfloat16"):
            return x.astype("float32").numpy()
        return x.numpy()

    def ptr(self, x):
        return x.data_ptr()


class ArrayApiStrictBackend(Backend):
    name = "array_api_strict"
    producer_dtypes = tuple(d for d in NUMPY_DTYPES if d != "float16")
    consumer_dtypes = producer_dtypes
    producer_layouts = tuple(LAYOUTS)
    consumer_layouts = tuple(LAYOUTS)

    def make(self, ref, layout="contiguous"):
        xp = self.module()
        return xp.asarray(layout_view(np.array(ref), layout), copy=False)

    def from_dlpack(self, obj):
        return self.module().from_dlpack(obj)

    def to_numpy(self, x):
        return np.asarray(x._array)

    def ptr(self, x):
        return np_ptr(x._array)


class PyarrowBackend(Backend):
    """Producer only: pyarrow has no from_dlpack; pa.array without nulls exports 1-D."""
    name = "pyarrow"
    producer_dtypes = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                       "float16", "float32", "float64")

    def make(self, ref, layout="contiguous"):
        pa = self.module()
        assert layout == "contiguous"
        return pa.array(np.array(ref).reshape(-1))


BACKENDS = {b.name: b for b in (
    NumpyBackend(), TorchBackend(), JaxBackend(), TensorflowBackend(), PaddleBackend(),
    ArrayApiStrictBackend(), PyarrowBackend(),
)}
PRODUCERS = [n for n, b in BACKENDS.items() if b.producer_dtypes]
CONSUMERS = [n for n, b in BACKENDS.items() if b.consumer_dtypes]


def producer_cases(names=None, layouts=True):
    """(backend, dtype, shape, layout) for every producer capability."""
    out = []
    for n in names or PRODUCERS:
        b = BACKENDS[n]
        for dt in b.producer_dtypes:
            for shape in SHAPES:
                if n == "pyarrow" and len(shape) != 1:
                    continue
                out.append(pytest.param(n, dt, shape, "contiguous", id=f"{n}-{dt}-{shape_id(shape)}"))
            if layouts:
                for lay in b.producer_layouts:
                    if lay != "contiguous":
                        out.append(pytest.param(n, dt, (5, 6, 5), lay, id=f"{n}-{dt}-{lay}"))
    return out


def shape_id(shape):
    return "x".join(map(str, shape)) if shape else "scalar"


# --------------------------------------------------------------------------------------
# pydlpack 0.2.1 (peer producer), loaded under the name `pydlpack`
# --------------------------------------------------------------------------------------
_PYDLPACK = None


def pydlpack_dirs():
    env = os.environ.get("DLPACK_TEST_PYDLPACK_DIR")
    dirs = [env] if env else []
    dirs.append(os.path.join(sys.prefix, "peers", "pydlpack"))
    return dirs


def load_pydlpack():
    """Import pydlpack 0.2.1 from its --target folder as module `pydlpack` (or skip)."""
    global _PYDLPACK
    if _PYDLPACK is not None:
        return _PYDLPACK
    for d in pydlpack_dirs():
        init = os.path.join(d, "dlpack", "__init__.py")
        if os.path.exists(init):
            break
    else:
        pytest.skip(f"pydlpack 0.2.1 not found in {pydlpack_dirs()} (pip install --no-deps --target "
                    "<prefix>/peers/pydlpack pydlpack==0.2.1)")
    ours = sys.modules.get("dlpack")
    spec = importlib.util.spec_from_file_location(
        "pydlpack", init, submodule_search_locations=[os.path.dirname(init)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["pydlpack"] = mod
    spec.loader.exec_module(mod)
    assert sys.modules.get("dlpack") is ours, "loading pydlpack replaced our dlpack module"
    assert mod is not dlpack and hasattr(mod, "asdlpack")
    _PYDLPACK = mod
    return mod


# --------------------------------------------------------------------------------------
# Simple producers written here (not mocks of a framework: protocol corner cases)
# --------------------------------------------------------------------------------------
class LegacyOnly:
    """Old-style producer: `__dlpack__(self, stream=None)` rejects max_version/copy/dl_device
    with TypeError, returns legacy "dltensor" capsules (like pre-2023 libraries)."""

    def __init__(self, a):
        self.a = a
        self.calls = []

    def __dlpack__(self, stream=None):
        self.calls.append(stream)
        return self.a.__dlpack__()

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


class Wrapping:
    """Modern Python producer wrapping a numpy array (records the kwargs it was called with)."""

    def __init__(self, a):
        self.a = a
        self.calls = []

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        self.calls.append(dict(stream=stream, max_version=max_version, dl_device=dl_device, copy=copy))
        return self.a.__dlpack__(stream=stream, max_version=max_version, dl_device=dl_device, copy=copy)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


class AI:
    """`__array_interface__` exporter (v3 or v2 dict) over a numpy array kept alive here."""

    def __init__(self, a, version=3, **override):
        self.a = a
        d = dict(a.__array_interface__)
        d["version"] = version
        d.update(override)
        self.__array_interface__ = d


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running (leak checks)")


def pytest_report_header(config):
    vers = []
    for n in ("numpy", "torch", "jax", "tensorflow", "paddle", "pyarrow", "array_api_strict",
              "ml_dtypes", "numba"):
        spec = importlib.util.find_spec(n)
        vers.append(f"{n}={'missing' if spec is None else 'installed'}")
    return [f"dlpack module: {dlpack.__file__} version {getattr(dlpack, '__version__', '?')}",
            "backends: " + ", ".join(vers),
            f"pydlpack dirs: {pydlpack_dirs()}"]
