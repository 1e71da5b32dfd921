"""Read-only is never upgraded.

A legacy tensor (``DLManagedTensor``, a ``"dltensor"`` capsule) cannot say whether its data
may be written, so NumPy imports it read-only.  Whatever such a tensor becomes that *can*
say it -- a versioned capsule, a buffer, an ``__array_interface__``, the C exchange API's
versioned tensor -- says read-only, on every path that makes one:

- ``asdlpack(producer)`` forwarding to a producer whose ``__dlpack__`` takes only ``stream``
  (its legacy answer is converted for a consumer that asks for a versioned one);
- ``asdlpack(capsule)`` over a legacy capsule;
- a ``dlpack.Tensor`` holding a legacy tensor that Rust imported (``_testing.reexport``).

It may still travel on as a legacy capsule, which claims nothing either.  Imports that do
carry a read-only bit (buffer protocol, array interfaces) keep it, and writable sources stay
writable.  Each case is checked with NumPy and PyTorch as consumers.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import dlpack

from .conftest import AI, READ_ONLY, LegacyOnly, capsule_name, np_ptr, testing


class OldDLPack(np.ndarray):
    """NumPy's own "old" producer (its test suite's): an array whose ``__dlpack__`` takes only
    ``stream`` and answers with a legacy capsule."""

    def __dlpack__(self, stream=None):
        return super().__dlpack__(stream=None)


class Recording:
    """Passes a consumer's ``__dlpack__`` calls on to ``obj`` and records each answer (as
    ``dlpack.capsule_info``, which does not consume the capsule) -- to see what a consumer
    that does not expose the flags (torch) was handed."""

    def __init__(self, obj):
        self.obj = obj
        self.answers = []

    def __dlpack__(self, **kwargs):
        cap = self.obj.__dlpack__(**kwargs)
        self.answers.append(dlpack.capsule_info(cap))
        return cap

    def __dlpack_device__(self):
        return self.obj.__dlpack_device__()


def _source():
    return np.arange(1, 13, dtype=np.float32)


class _Asked(Exception):
    """Carries the keywords of a ``__dlpack__`` call out of the consumer."""


class _Probe:
    def __dlpack__(self, **kwargs):
        raise _Asked(kwargs)

    def __dlpack_device__(self):
        return (1, 0)


def _numpy_asks_versioned():
    """Whether ``np.from_dlpack`` asks for a versioned capsule (``max_version``): NumPy >= 2.1.
    Older NumPy asks only for legacy capsules, which cannot carry READ_ONLY (read-only data is
    then refused with BufferError), and imports every one read-only."""
    try:
        np.from_dlpack(_Probe())
    except _Asked as asked:
        return asked.args[0].get("max_version") is not None
    raise AssertionError("np.from_dlpack did not call __dlpack__")


needs_versioned_numpy = pytest.mark.skipif(
    not _numpy_asks_versioned(),
    reason=f"numpy {np.__version__} asks only for legacy capsules (no max_version), which cannot "
    "carry READ_ONLY, and imports every one read-only",
)


# Each factory takes a writable NumPy array and returns an object over the same memory whose
# writability is unknown: it came through the legacy ABI.  The flag says whether the object
# still holds the legacy tensor (and may hand it on as legacy); a Rust import of one of our
# objects takes the C exchange API, which speaks only versioned, so it is read-only from there.
LEGACY_SOURCES = {
    "forward-legacy-only": (lambda a: dlpack.asdlpack(LegacyOnly(a)), True),
    "forward-numpy-old-dlpack": (lambda a: dlpack.asdlpack(a.view(OldDLPack)), True),
    "forward-protocol-dlpack": (lambda a: dlpack.asdlpack(LegacyOnly(a), protocol="dlpack"), True),
    "forward-of-forward": (lambda a: dlpack.asdlpack(dlpack.asdlpack(LegacyOnly(a))), True),
    "legacy-capsule": (lambda a: dlpack.asdlpack(a.__dlpack__()), True),
    "legacy-capsule-protocol": (lambda a: dlpack.asdlpack(a.__dlpack__(), protocol="capsule"), True),
    "rust-tensor-of-legacy-producer": (lambda a: testing.reexport(LegacyOnly(a)), True),
    "rust-tensor-of-legacy-capsule": (lambda a: testing.reexport(a.__dlpack__()), True),
    "rust-tensor-of-forward": (lambda a: testing.reexport(dlpack.asdlpack(LegacyOnly(a))), False),
}


@pytest.fixture(params=list(LEGACY_SOURCES))
def legacy(request):
    a = _source()
    return a, LEGACY_SOURCES[request.param][0](a)


@needs_versioned_numpy
def test_numpy_imports_read_only(legacy):
    a, obj = legacy
    r = np.from_dlpack(obj)
    np.testing.assert_array_equal(r, a)
    assert np_ptr(r) == np_ptr(a), "zero-copy"
    assert r.flags.writeable is False, "a legacy tensor must not become writable"
    with pytest.raises(ValueError):
        r[0] = 0
    assert a[0] == 1


@pytest.mark.parametrize("max_version", [(1, 0), (1, 3)])
def test_versioned_capsules_are_read_only(legacy, max_version):
    _, obj = legacy
    info = dlpack.capsule_info(obj.__dlpack__(max_version=max_version))
    assert info["name"] == "dltensor_versioned"
    assert info["flags"] & READ_ONLY


@pytest.mark.parametrize("name", list(LEGACY_SOURCES))
def test_legacy_capsules_still_go_out(name):
    # The legacy ABI claims nothing, so a legacy tensor may go on as one (read-only data may
    # not: BufferError, as NumPy does for its own read-only arrays).
    make, still_legacy = LEGACY_SOURCES[name]
    a = _source()
    obj = make(a)
    if still_legacy:
        cap = obj.__dlpack__()
        assert capsule_name(cap) == "dltensor"
        assert dlpack.capsule_info(cap)["data"] == np_ptr(a)
    else:
        with pytest.raises(BufferError, match="read-only"):
            obj.__dlpack__()


def test_other_surfaces_are_read_only(legacy):
    a, obj = legacy
    assert obj.readonly is True
    assert memoryview(obj).readonly is True
    assert obj.__array_interface__["data"] == (np_ptr(a), True)
    r = np.asarray(obj)
    assert np_ptr(r) == np_ptr(a) and r.flags.writeable is False


def test_exchange_api_tensor_is_read_only(legacy):
    _, obj = legacy
    info = testing.import_info(obj)
    assert info["path"] == "exchange_api"
    assert info["name"] == "dltensor_versioned"
    assert info["flags"] & READ_ONLY
    assert info["readonly"] is True
    with pytest.raises(BufferError):
        testing.fill(obj, 0.0)


def _torch_import(torch, obj):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = torch.from_dlpack(obj)
    return t, [str(w.message) for w in caught]


def test_torch_gets_read_only(legacy):
    torch = pytest.importorskip("torch")
    a, obj = legacy
    rec = Recording(obj)
    t, caught = _torch_import(torch, rec)
    assert rec.answers, "torch must call __dlpack__"
    got = rec.answers[-1]
    assert got["name"] == "dltensor_versioned" and got["flags"] & READ_ONLY, got
    # torch has no read-only tensors: it handles READ_ONLY exactly as for NumPy's own read-only
    # arrays (the spec's advice for such consumers is to ignore the flag): zero-copy, same
    # warnings (none with torch 2.15).
    ref = _source()
    ref.flags.writeable = False
    ref_t, ref_caught = _torch_import(torch, ref)
    assert ref_t.data_ptr() == np_ptr(ref)
    assert t.data_ptr() == np_ptr(a)
    assert caught == ref_caught
    np.testing.assert_array_equal(t.numpy(), a)


# --------------------------------------------------------------------------------------
# Imports that carry a read-only bit keep it; writable sources stay writable
# --------------------------------------------------------------------------------------
def _ro_array():
    a = _source()
    a.flags.writeable = False
    return a


def _over(buf):
    """The address of a bytes-like object's first byte."""
    return np_ptr(np.frombuffer(buf, np.uint8))


def _ai_v2(buf):
    """An ``__array_interface__`` v2 whose ``data`` is a buffer object, not a pointer."""
    return AI(np.frombuffer(buf, np.uint8), version=2, data=buf, shape=(len(buf),))


def _mv_readonly():
    b = bytearray(12)
    return memoryview(b).toreadonly(), _over(b)


# name: (factory -> (object, address of its first element), read-only?)
FLAGGED_SOURCES = {
    "bytes": (lambda: (lambda b: (b, _over(b)))(bytes(range(1, 13))), True),
    "bytearray": (lambda: (lambda b: (b, _over(b)))(bytearray(range(1, 13))), False),
    "memoryview-toreadonly": (_mv_readonly, True),
    "numpy-readonly-memoryview": (lambda: (lambda a: (memoryview(a), np_ptr(a)))(_ro_array()), True),
    "array-interface-readonly": (lambda: (lambda a: (AI(a), np_ptr(a)))(_ro_array()), True),
    "array-interface-writable": (lambda: (lambda a: (AI(a), np_ptr(a)))(_source()), False),
    "array-interface-v2-bytes": (lambda: (lambda b: (_ai_v2(b), _over(b)))(bytes(12)), True),
    "array-interface-v2-bytearray": (lambda: (lambda b: (_ai_v2(b), _over(b)))(bytearray(12)), False),
}


def _flagged(name, wrap):
    make, read_only = FLAGGED_SOURCES[name]
    src, ptr = make()
    obj = dlpack.asdlpack(src) if wrap == "asdlpack" else testing.reexport(src)
    return obj, ptr, read_only


@pytest.mark.parametrize("name", list(FLAGGED_SOURCES))
@pytest.mark.parametrize("wrap", ["asdlpack", "rust-tensor"])
def test_flagged_imports_keep_their_flag(name, wrap):
    obj, ptr, read_only = _flagged(name, wrap)
    assert obj.readonly is read_only
    assert memoryview(obj).readonly is read_only
    r = np.asarray(obj)
    assert np_ptr(r) == ptr and r.flags.writeable is (not read_only)
    info = dlpack.capsule_info(obj.__dlpack__(max_version=(1, 3)))
    assert bool(info["flags"] & READ_ONLY) is read_only
    if read_only:
        with pytest.raises(BufferError):
            obj.__dlpack__()
    else:
        assert capsule_name(obj.__dlpack__()) == "dltensor"


@needs_versioned_numpy
@pytest.mark.parametrize("name", list(FLAGGED_SOURCES))
@pytest.mark.parametrize("wrap", ["asdlpack", "rust-tensor"])
def test_flagged_imports_to_numpy(name, wrap):
    obj, ptr, read_only = _flagged(name, wrap)
    r = np.from_dlpack(obj)
    assert np_ptr(r) == ptr
    assert r.flags.writeable is (not read_only)


@pytest.mark.parametrize("name", list(FLAGGED_SOURCES))
def test_flagged_imports_to_torch(name):
    torch = pytest.importorskip("torch")
    obj, ptr, read_only = _flagged(name, "asdlpack")
    rec = Recording(obj)
    t = torch.from_dlpack(rec)
    assert t.data_ptr() == ptr
    assert bool(rec.answers[-1]["flags"] & READ_ONLY) is read_only
