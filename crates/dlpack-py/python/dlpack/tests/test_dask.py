"""Our objects through Dask distributed (one ``LocalCluster`` of two worker processes).

Dask serialises unknown objects with pickle protocol 5 and sends out-of-band buffers as
frames of their own: ``client.scatter`` of a ``Tensor`` or ``DLPackObject`` puts it on the
workers, a function mapped over it imports it there with ``np.from_dlpack`` and
``torch.from_dlpack``, and a ``Tensor`` a worker makes comes back as a ``DLPackObject``.
Values, dtype, shape and strides (negative ones too) arrive intact.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import dlpack

from .conftest import testing

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = client = None
    try:
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, worker_dashboard_address=None,
        )
        client = distributed.Client(cluster)
        yield client
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def _imported(obj):
    """On a worker: import `obj` with NumPy and PyTorch."""
    try:
        import torch
    except ImportError:
        torch = None
    a = np.from_dlpack(obj)
    # (torch holds no negative strides: it refuses them)
    t = None if torch is None or min(a.strides, default=0) < 0 else torch.from_dlpack(obj)
    return {
        "pid": os.getpid(),
        "type": type(obj).__name__,
        "dtype": a.dtype.str,
        "strides": a.strides,
        "values": a.copy(),
        "torch_values": a.copy() if t is None else t.numpy().copy(),
        "torch_same_memory": t is None or t.data_ptr() == a.ctypes.data,
        "readonly": obj.readonly,
    }


def _make(n):
    return testing.arange(n, "int64", [n])


def test_scatter_and_map(client):
    base = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    view, negative = base[::2, 1:, ::3], base[::2, 1:, ::-1]
    sources = [
        (dlpack.asdlpack(view), view),
        (dlpack.asdlpack(negative), negative),
        (testing.arange(24, "int32", [4, 6]), np.arange(24, dtype=np.int32).reshape(4, 6)),
    ]
    futures = client.scatter([obj for obj, _ in sources])
    results = client.gather(client.map(_imported, futures))
    workers = {pid for pid in (r["pid"] for r in results)}
    assert os.getpid() not in workers
    for got, (_, expected) in zip(results, sources):
        assert got["type"] == "DLPackObject"
        np.testing.assert_array_equal(got["values"], expected)
        np.testing.assert_array_equal(got["torch_values"], expected)
        assert got["dtype"] == expected.dtype.str and got["strides"] == expected.strides
        assert got["torch_same_memory"]
        assert got["readonly"] is False  # a writable source stays writable


def test_broadcast_read_only_source(client):
    src = testing.arange(16, "float32", None, True)
    [fut] = client.scatter([src], broadcast=True)
    results = client.gather([client.submit(_imported, fut, workers=[w], pure=False)
                             for w in client.scheduler_info()["workers"]])
    assert len({r["pid"] for r in results}) == 2
    for got in results:
        assert got["readonly"] is True
        np.testing.assert_array_equal(got["values"], np.arange(16, dtype=np.float32))


def test_worker_returns_our_tensor(client):
    got = client.submit(_make, 9).result()
    assert isinstance(got, dlpack.DLPackObject)
    np.testing.assert_array_equal(np.from_dlpack(got), np.arange(9))
