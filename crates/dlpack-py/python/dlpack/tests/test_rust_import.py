"""Rust-side import (dlpack._testing): take / take_borrowed / import_info / sum_f64 / fill."""

import array
import sys

import numpy as np
import pytest

import dlpack

from .conftest import (AI, BACKENDS, READ_ONLY, LegacyOnly, first_element, live, load_pydlpack, np_ptr,
                       numpy_capsule, testing)

VALUES = np.arange(1, 25, dtype=np.float64)  # sum 300


def _numpy():
    a = VALUES.reshape(4, 6).copy()
    return a, np_ptr(a), {"dlpack", "numpy"}


def _numpy_strided():
    a = VALUES.reshape(4, 6).copy()[:, ::-1]
    return a, np_ptr(a), {"dlpack", "numpy"}


def _torch():
    torch = BACKENDS["torch"].module()
    t = torch.from_numpy(VALUES.reshape(4, 6).copy())
    return t, t.data_ptr(), {"exchange_api"}


def _torch_strided():
    torch = BACKENDS["torch"].module()
    t = torch.from_numpy(VALUES.reshape(4, 6).copy()).t()
    return t, t.data_ptr(), {"exchange_api"}


def _jax():
    jnp = BACKENDS["jax"].module().numpy
    x = jnp.asarray(VALUES.reshape(4, 6))
    return x, x.unsafe_buffer_pointer(), {"dlpack"}


def _tf():
    tf = BACKENDS["tensorflow"].module()
    x = tf.constant(VALUES.reshape(4, 6))
    return x, None, {"dlpack"}


def _paddle():
    paddle = BACKENDS["paddle"].module()
    x = paddle.to_tensor(VALUES.reshape(4, 6))
    return x, x.data_ptr(), {"exchange_api", "dlpack"}


def _pyarrow():
    pa = BACKENDS["pyarrow"].module()
    x = pa.array(VALUES)
    return x, None, {"dlpack"}


def _xp():
    xp = BACKENDS["array_api_strict"].module()
    x = xp.asarray(VALUES.reshape(4, 6).copy())
    return x, np_ptr(x._array), {"dlpack"}


def _pydlpack():
    pyd = load_pydlpack()
    a = VALUES.reshape(4, 6).copy()
    return _Keep(pyd.asdlpack(a), a), np_ptr(a), {"dlpack"}


class _Keep:
    """pydlpack's object + its source (pydlpack keeps the source itself; this is belt and braces)."""

    def __init__(self, obj, src):
        self.obj, self.src = obj, src

    def __dlpack__(self, stream=None):
        return self.obj.__dlpack__(stream=stream)

    def __dlpack_device__(self):
        return self.obj.__dlpack_device__()


def _legacy():
    a = VALUES.reshape(4, 6).copy()
    return LegacyOnly(a), np_ptr(a), {"dlpack"}


def _dlpackobject():
    a = VALUES.reshape(4, 6).copy()
    return dlpack.asdlpack(a), np_ptr(a), {"exchange_api"}


def _tensor():
    t = testing.arange(24, dtype="float64", shape=(4, 6))
    # arange is 0..23: shift expectations in the test
    return t, dlpack.capsule_info(t.__dlpack__(max_version=(1, 3)))["data"], {"exchange_api"}


def _array_d():
    a = array.array("d", VALUES.tolist())
    return a, a.buffer_info()[0], {"buffer"}


def _memoryview():
    a = VALUES.copy()
    return memoryview(a), np_ptr(a), {"buffer"}


def _ai():
    a = VALUES.reshape(4, 6).copy()
    return AI(a), np_ptr(a), {"array_interface"}


PRODUCERS = {
    "numpy": _numpy, "numpy-strided": _numpy_strided, "torch": _torch, "torch-transposed": _torch_strided,
    "jax": _jax, "tensorflow": _tf, "paddle": _paddle, "pyarrow": _pyarrow, "array_api_strict": _xp,
    "pydlpack": _pydlpack, "legacy-only": _legacy, "DLPackObject": _dlpackobject, "Tensor": _tensor,
    "array.array(d)": _array_d, "memoryview": _memoryview, "array_interface": _ai,
}


def _again(name, src):
    """pydlpack 0.2.1 frees its tensor after the first consumer's deleter (its use-count bug):
    a fresh object per import."""
    return _make(name)[0] if name == "pydlpack" else src


WRITABLE = {"numpy", "numpy-strided", "torch", "torch-transposed", "DLPackObject", "Tensor",
            "array.array(d)", "memoryview", "array_interface", "array_api_strict", "paddle"}


def _make(name):
    src, ptr, paths = PRODUCERS[name]()
    offset = -24.0 if name == "Tensor" else 0.0  # arange is 0..23, the others 1..24
    return src, ptr, paths, offset


@pytest.mark.parametrize("name", list(PRODUCERS))
def test_take_and_import_info(name):
    src, ptr, paths, _ = _make(name)
    ndim = 1 if name in ("pyarrow", "array.array(d)", "memoryview") else 2
    assert testing.take(src) == ndim
    assert testing.take_borrowed(_again(name, src)) == ndim
    if name == "pydlpack":
        src, ptr, paths, _ = _make(name)
    info = testing.import_info(src)
    assert info["path"] in paths, f"{name}: path {info['path']!r}, expected one of {paths}"
    assert info["dtype"] == (2, 64, 1)
    assert info["device"] == (1, 0)
    assert len(info["shape"]) == ndim and int(np.prod(info["shape"])) == 24
    if ptr is not None:
        assert first_element(info) == ptr, "Rust import must not copy"
    if name in WRITABLE:  # legacy capsules (jax, tf, pydlpack, ...) may be imported read-only
        assert info["readonly"] is False


@pytest.mark.parametrize("name", list(PRODUCERS))
def test_sum_f64(name):
    src, _, _, offset = _make(name)
    assert testing.sum_f64(src) == 300.0 + offset


def test_capsule_import():
    a = VALUES.copy()
    cap = numpy_capsule(a)
    info = testing.import_info(cap)
    assert info["path"] == "capsule"
    assert first_element(info) == np_ptr(a)
    cap2 = numpy_capsule(a)
    assert testing.sum_f64(cap2) == 300.0
    with pytest.raises(ValueError):
        testing.sum_f64(cap2)  # consumed once
    legacy = a.__dlpack__()
    assert testing.take(legacy) == 1


def test_sum_f64_strided_views():
    a = np.arange(100, dtype=np.float64).reshape(10, 10)
    for v in (a[::2, ::3], a[::-1, 1::4], a.T, a[3], a[0:0]):
        assert testing.sum_f64(v) == v.sum()
        assert testing.sum_f64(dlpack.asdlpack(v)) == v.sum()
    torch = BACKENDS["torch"].module()
    t = torch.arange(100, dtype=torch.float64).reshape(10, 10)
    assert testing.sum_f64(t[::3, 1::2]) == float(t[::3, 1::2].sum())


def test_sum_f64_wrong_dtype():
    with pytest.raises((TypeError, BufferError, ValueError)):
        testing.sum_f64(np.arange(3, dtype=np.float32))


def test_import_info_readonly():
    a = VALUES.copy()
    a.flags.writeable = False
    info = testing.import_info(a)
    assert info["readonly"] is True
    info = testing.import_info(dlpack.asdlpack(a))
    assert info["readonly"] is True and info["flags"] & READ_ONLY
    assert testing.import_info(b"abcd")["readonly"] is True
    assert testing.import_info(testing.arange(3, read_only=True))["readonly"] is True


def test_fill_writes_through():
    a = np.zeros((4, 6))
    testing.fill(a, 2.5)
    assert (a == 2.5).all()
    v = a[:, ::2]
    testing.fill(v, -1.0)
    assert (a[:, ::2] == -1).all() and (a[:, 1::2] == 2.5).all()
    testing.fill(dlpack.asdlpack(a[::-1]), 7.0)
    assert (a == 7).all()
    torch = BACKENDS["torch"].module()
    t = torch.zeros(5, dtype=torch.int32)
    testing.fill(t, 3)
    assert t.tolist() == [3] * 5
    ba = bytearray(4)
    testing.fill(ba, 9)
    assert ba == bytearray([9] * 4)
    ad = array.array("d", [0.0] * 3)
    testing.fill(ad, 1.5)
    assert ad.tolist() == [1.5] * 3
    t2 = testing.arange(4, dtype="float64")
    testing.fill(t2, 4.0)
    assert np.from_dlpack(t2).tolist() == [4.0] * 4


@pytest.mark.parametrize("make", [
    pytest.param(lambda: np.frombuffer(b"\0" * 16, np.float64), id="readonly-numpy"),
    pytest.param(lambda: b"abcd", id="bytes"),
    pytest.param(lambda: dlpack.asdlpack(np.frombuffer(b"\0" * 16, np.float64)), id="readonly-DLPackObject"),
    pytest.param(lambda: testing.arange(3, dtype="float64", read_only=True), id="readonly-Tensor"),
    pytest.param(lambda: memoryview(bytearray(8)).toreadonly(), id="readonly-memoryview"),
])
def test_fill_readonly_buffererror(make):
    x = make()
    with pytest.raises(BufferError):
        testing.fill(x, 1.0)


@pytest.mark.parametrize("bad,exc", [(42, TypeError), ("str", TypeError), (None, TypeError)])
def test_take_rejects(bad, exc):
    with pytest.raises(exc):
        testing.take(bad)
    with pytest.raises(exc):
        testing.take_borrowed(bad)


def test_noop_and_live_counter():
    assert testing.noop(1) == 1
    o = object()
    assert testing.noop(o) is o
    base = live()
    for name in PRODUCERS:
        src, *_ = _make(name)
        testing.take(src)
        testing.take_borrowed(_again(name, src))
        testing.import_info(_again(name, src))
    del src
    assert live() == base


def test_call_dlpack_releases_unconsumed_capsule():
    # The benchmark's C-call floor: the producer is called as the import calls it and the
    # capsule is dropped unconsumed, so its destructor must release the tensor.
    base = live()
    t = testing.arange(6)
    before = sys.getrefcount(t)
    assert testing.call_dlpack(t) == 1
    assert testing.call_dlpack(dlpack.asdlpack(bytearray(4))) == 1
    assert sys.getrefcount(t) == before
    del t
    assert live() == base
    with pytest.raises(AttributeError):
        testing.call_dlpack(object())
