"""Our objects as MPI message buffers across two ranks (mpi4py), run by ``test_mpi.py``.

Not collected by the single-process suite (the name does not start with ``test_``):
``test_mpi.py::test_two_ranks`` runs this file with ``mpiexec -n 2 python -m pytest``, so
both ranks run the same cases in the same order and each case is one exchange between
them. Send buffers: ``dlpack.Tensor`` made in Rust (``dlpack._testing.arange``),
``asdlpack`` over NumPy, PyTorch and ``bytearray``. Receive buffers: writable objects of
the same kinds; the values must land in the memory the object was made over (zero-copy:
MPI writes our memory, no staging copy). Point-to-point (``Send``/``Recv``,
``Isend``/``Irecv``) and collectives (``Allreduce``, ``Bcast``). Every case runs its
communication before its assertions, so a failed check cannot leave the peer waiting.
"""

from __future__ import annotations

import numpy as np
import pytest

import dlpack

from .conftest import testing

MPI = pytest.importorskip("mpi4py.MPI")
COMM = MPI.COMM_WORLD
if COMM.size != 2:
    pytest.skip("run with mpiexec -n 2 (test_mpi.py::test_two_ranks)", allow_module_level=True)
RANK = COMM.rank
PEER = 1 - RANK
N = 1000


def expected(scale=1.0):
    return np.arange(N, dtype=np.float32) * scale


def source(kind, values):
    """(our object over `values`, a NumPy view of the memory it describes)."""
    if kind == "tensor":  # Rust-owned memory, exported by dlpack-py
        t = testing.arange(N, "float32")
        out = np.from_dlpack(t)
        out[...] = values
        return t, out
    if kind == "numpy":
        a = values.copy()
        return dlpack.asdlpack(a), a
    if kind == "torch":
        torch = pytest.importorskip("torch")
        t = torch.from_numpy(values.copy())
        return dlpack.asdlpack(t), t.numpy()
    if kind == "bytearray":
        b = bytearray(values.tobytes())
        return dlpack.asdlpack(b), np.frombuffer(b, dtype=np.float32)
    raise ValueError(kind)


KINDS = ["tensor", "numpy", "torch", "bytearray"]


def msg(kind, obj):
    """The message for `obj`: the datatype comes from the buffer format (float32: MPI.FLOAT),
    except for a bytearray, whose elements are bytes: it is typed explicitly."""
    return [obj, MPI.FLOAT] if kind == "bytearray" else obj


def address(obj):
    """The address mpi4py hands to MPI for `obj` (the buffer it acquires)."""
    return MPI.buffer(obj).address


@pytest.mark.parametrize("send_kind", KINDS)
@pytest.mark.parametrize("recv_kind", KINDS)
def test_send_recv(send_kind, recv_kind):
    if RANK == 0:
        obj, mem = source(send_kind, expected(2.0))
        assert address(obj) == mem.ctypes.data, "MPI must read our memory, not a copy"
        COMM.Send(msg(send_kind, obj), dest=1, tag=7)
    else:
        obj, mem = source(recv_kind, np.zeros(N, np.float32))
        assert address(obj) == mem.ctypes.data
        if recv_kind != "bytearray":  # the element type comes from our buffer format
            assert MPI.Datatype.fromcode(memoryview(obj).format) == MPI.FLOAT
        status = MPI.Status()
        COMM.Recv(msg(recv_kind, obj), source=0, tag=7, status=status)
        assert status.Get_count(MPI.BYTE) == 4 * N
        np.testing.assert_array_equal(mem, expected(2.0))  # landed in the source memory
        np.testing.assert_array_equal(np.from_dlpack(obj).view(np.float32), expected(2.0))


def test_typed_message_and_read_only_send():
    # An explicit [buffer, datatype] message; a read-only Rust tensor is a valid send buffer.
    if RANK == 0:
        COMM.Send([testing.arange(N, "float32", None, True), MPI.FLOAT], dest=1)
    else:
        obj, mem = source("numpy", np.zeros(N, np.float32))
        COMM.Recv([obj, MPI.FLOAT], source=0)
        np.testing.assert_array_equal(mem, expected())


@pytest.mark.parametrize("kind", KINDS)
def test_isend_irecv_both_ways(kind):
    out, _ = source(kind, expected(RANK + 1.0))
    into, mem = source(kind, np.zeros(N, np.float32))
    reqs = [COMM.Irecv(msg(kind, into), source=PEER, tag=3),
            COMM.Isend(msg(kind, out), dest=PEER, tag=3)]
    MPI.Request.Waitall(reqs)
    np.testing.assert_array_equal(mem, expected(PEER + 1.0))


@pytest.mark.parametrize("kind", KINDS)
def test_allreduce(kind):
    send, _ = source(kind, expected(RANK + 1.0))
    recv, mem = source(kind, np.zeros(N, np.float32))
    COMM.Allreduce(msg(kind, send), msg(kind, recv), op=MPI.SUM)
    np.testing.assert_array_equal(mem, expected(3.0))  # 1x + 2x


def test_allreduce_in_place():
    buf, mem = source("tensor", expected(RANK + 1.0))
    COMM.Allreduce(MPI.IN_PLACE, buf, op=MPI.MAX)
    np.testing.assert_array_equal(mem, expected(2.0))


@pytest.mark.parametrize("kind", KINDS)
def test_bcast(kind):
    buf, mem = source(kind, expected(5.0) if RANK == 0 else np.zeros(N, np.float32))
    COMM.Bcast(msg(kind, buf), root=0)
    np.testing.assert_array_equal(mem, expected(5.0))


def test_int64_shaped_tensor():
    # Element type and shape do not matter to MPI: the byte span does.
    if RANK == 0:
        COMM.Send(testing.arange(24, "int64", [2, 3, 4]), dest=1)
    else:
        a = np.zeros((2, 3, 4), np.int64)
        COMM.Recv(dlpack.asdlpack(a), source=0)
        np.testing.assert_array_equal(a, np.arange(24).reshape(2, 3, 4))
