"""Our objects through Ray's object store (one local Ray for the module).

Ray serialises with pickle protocol 5 and keeps out-of-band buffers in its shared-memory
object store: ``ray.put`` of a ``Tensor`` or ``DLPackObject`` copies the byte span into the
store once, and a task on another worker process unpickles a ``DLPackObject`` over the
store's memory (zero-copy: the same mapping Ray gives NumPy arrays), read-only as everything
Ray's store hands out. The task imports it with ``np.from_dlpack`` and ``torch.from_dlpack``;
values, dtype, shape and strides (negative ones too) arrive intact.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import dlpack

from .conftest import testing

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray with two CPUs on the loopback address, quiet, without usage reports, its
    files under the test's temporary folder."""
    temp_dir = tmp_path_factory.mktemp("ray")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_USAGE_STATS_ENABLED", "0")
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                     _temp_dir=str(temp_dir), _node_ip_address="127.0.0.1",
                     object_store_memory=128 << 20, configure_logging=False)
            yield
        finally:
            ray.shutdown()


def _mapping(addr):
    """The file (or anonymous region) mapped at `addr` in this process."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= addr < hi:
                return " ".join(fields[5:])
    return None


@ray.remote
def _inspect(obj, numpy_from_store):
    """In a worker: import `obj` with NumPy and PyTorch, and say where its memory is."""
    try:
        import torch
    except ImportError:
        torch = None
    a = np.from_dlpack(obj)
    if torch is None or min(a.strides, default=0) < 0:
        t = None  # (torch holds no negative strides: it refuses them)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch has no read-only tensors and says so
            t = torch.from_dlpack(obj)
    return {
        "pid": os.getpid(),
        "type": type(obj).__name__,
        "readonly": obj.readonly,
        "writeable": a.flags.writeable,
        "dtype": a.dtype.str,
        "shape": a.shape,
        "strides": a.strides,
        "values": a.copy(),
        "torch_same_memory": t is None or t.data_ptr() == a.ctypes.data,
        "torch_values": a.copy() if t is None else t.numpy().copy(),
        "mapping": _mapping(a.ctypes.data),
        # Ray's own zero-copy path: a NumPy array read from the store.
        "numpy_mapping": _mapping(numpy_from_store.ctypes.data),
        "numpy_readonly": not numpy_from_store.flags.writeable,
    }


def _sources():
    base = np.arange(6 * 8 * 4, dtype=np.float32).reshape(6, 8, 4)
    yield "numpy", dlpack.asdlpack(base), base
    view = base[1:5, ::2, ::-1]  # strided, negative
    yield "numpy_strided", dlpack.asdlpack(view), view
    yield "tensor", testing.arange(60, "int32", [3, 4, 5]), np.arange(60, dtype=np.int32).reshape(3, 4, 5)
    yield "bytearray", dlpack.asdlpack(bytearray(b"zero-copy")), np.frombuffer(b"zero-copy", np.uint8)
    torch = pytest.importorskip("torch")
    src = torch.arange(40, dtype=torch.float64).reshape(5, 8)[:, 1::3]
    yield "torch", dlpack.asdlpack(src), src.numpy()


@pytest.mark.parametrize("name", ["numpy", "numpy_strided", "tensor", "torch", "bytearray"])
def test_task_on_another_worker_imports_from_the_store(cluster, name):
    _, obj, expected = next(s for s in _sources() if s[0] == name)
    ref = ray.put(obj)
    got = ray.get(_inspect.remote(ref, ray.put(np.zeros(1000))))
    assert got["pid"] != os.getpid()
    assert got["type"] == "DLPackObject"
    np.testing.assert_array_equal(got["values"], expected)
    np.testing.assert_array_equal(got["torch_values"], expected)
    assert got["dtype"] == expected.dtype.str
    assert got["shape"] == expected.shape and got["strides"] == expected.strides
    assert got["torch_same_memory"], "torch.from_dlpack must share the memory NumPy imported"
    # Zero-copy out of the store, read-only like the NumPy arrays Ray hands out.
    assert got["readonly"] and not got["writeable"] and got["numpy_readonly"]
    assert got["mapping"] is not None and got["mapping"] == got["numpy_mapping"], got


def test_get_in_the_driver_maps_the_store(cluster):
    src = np.arange(4096, dtype=np.float32)
    ref = ray.put(dlpack.asdlpack(src))
    a, b = ray.get(ref), ray.get(ref)
    assert a.readonly and b.readonly
    addr = a.__array_interface__["data"][0]
    assert addr == b.__array_interface__["data"][0], "two gets must map the same store object"
    assert addr != src.ctypes.data
    assert _mapping(addr) == _mapping(ray.get(ray.put(np.zeros(1000))).ctypes.data)
    out = np.from_dlpack(a)
    np.testing.assert_array_equal(out, src)
    with pytest.raises(ValueError, match="read-only"):
        out[0] = 1.0


@ray.remote
def _make(n):
    return testing.arange(n, "float64", [n // 2, 2])


def test_task_returns_our_tensor(cluster):
    got = ray.get(_make.remote(10))
    assert isinstance(got, dlpack.DLPackObject)
    np.testing.assert_array_equal(np.from_dlpack(got), np.arange(10.0).reshape(5, 2))


def test_argument_passed_by_value(cluster):
    # A direct argument (no explicit put) travels the same way.
    src = np.arange(12, dtype=np.int16).reshape(3, 4).T
    got = ray.get(_inspect.remote(dlpack.asdlpack(src), np.zeros(1000)))
    np.testing.assert_array_equal(got["values"], src)
    assert got["strides"] == src.strides
