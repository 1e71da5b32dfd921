"""Our objects as mpi4py message buffers (host memory).

mpi4py 4.1 takes a message buffer through the buffer protocol first and, when that is
refused, through ``__dlpack__(max_version=(1, 0), copy=False)`` (then
``__cuda_array_interface__``). In this process (``MPI.COMM_SELF``): the buffer mpi4py
acquires from our objects is our memory (zero-copy), read-only objects are refused as
receive buffers, and non-contiguous ones are refused as mpi4py refuses NumPy's.
``test_two_ranks`` runs ``mpi_ranks.py`` (point-to-point and collectives between two
processes) under ``mpiexec -n 2``, the launcher of the MPI wheel installed next to
mpi4py, with a timeout so that a hang fails. The device path is ``test_gpu_mpi.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

import dlpack

from .conftest import np_ptr, testing

MPI = pytest.importorskip("mpi4py.MPI")

HERE = os.path.dirname(os.path.abspath(__file__))
TWO_RANKS_TIMEOUT = 180  # seconds; a normal run takes a few


def _sources():
    """(name, our object, the address of the memory it describes, read-only)."""
    a = np.arange(64, dtype=np.float32)
    yield "numpy", dlpack.asdlpack(a), np_ptr(a), False
    t = testing.arange(64, "float32")
    yield "tensor", t, t.__array_interface__["data"][0], False
    r = testing.arange(64, "float32", None, True)
    yield "tensor_read_only", r, r.__array_interface__["data"][0], True
    b = bytearray(256)
    yield "bytearray", dlpack.asdlpack(b), np_ptr(np.frombuffer(b, np.uint8)), False
    yield "bytes", dlpack.asdlpack(bytes(256)), None, True
    torch = pytest.importorskip("torch")
    tt = torch.arange(64, dtype=torch.float32)
    yield "torch", dlpack.asdlpack(tt), tt.data_ptr(), False


def _source(name):
    return next(s for s in _sources() if s[0] == name)


NAMES = ["numpy", "tensor", "tensor_read_only", "bytearray", "bytes", "torch"]


@pytest.mark.parametrize("name", NAMES)
def test_send_buffer_is_our_memory(name):
    _, obj, addr, ro = _source(name)
    buf = MPI.buffer(obj)
    if addr is not None:
        assert buf.address == addr, "mpi4py must read our memory, not a copy"
    assert buf.nbytes == 256
    assert buf.readonly == ro


@pytest.mark.parametrize("name", NAMES)
def test_receive_into_writable_refuse_read_only(name):
    _, obj, addr, ro = _source(name)
    src = np.full(64, 9.0, np.float32)
    if ro:
        # Refused when the buffer is acquired, before any message moves. mpi4py falls back
        # from our buffer export to __dlpack__, whose READ_ONLY flag it refuses in turn; our
        # own refusal is the chained cause.
        with pytest.raises(BufferError, match="not writable") as err:
            MPI.COMM_SELF.Sendrecv(src, dest=0, recvbuf=obj, source=0)
        cause = err.value.__context__
        assert isinstance(cause, BufferError) and "read-only" in str(cause)
        with pytest.raises(BufferError):
            MPI.buffer.frombuffer(obj, readonly=False)
        return
    MPI.COMM_SELF.Sendrecv(src, dest=0, recvbuf=obj, source=0)
    got = np.frombuffer(memoryview(obj).cast("B"), np.float32)
    np.testing.assert_array_equal(got, src)
    assert MPI.buffer(obj).address == addr


LAYOUTS = {
    "strided": lambda a: a[::2],
    "negative": lambda a: a[::-1],
    "strided_2d": lambda a: a.reshape(8, 16)[:, ::2],
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_non_contiguous_refused_as_for_numpy(layout):
    # mpi4py sends contiguous memory only: it refuses a non-contiguous NumPy array with a
    # BufferError (no copy), and must refuse ours the same way.
    base = np.arange(128, dtype=np.float32)
    view = LAYOUTS[layout](base)
    with pytest.raises(BufferError) as want:
        MPI.buffer.frombuffer(view)
    with pytest.raises(BufferError) as got:
        MPI.buffer.frombuffer(dlpack.asdlpack(view))
    assert str(got.value) == str(want.value)
    with pytest.raises(BufferError):
        MPI.COMM_SELF.Sendrecv(dlpack.asdlpack(view), dest=0, recvbuf=np.empty(128, np.float32),
                               source=0)
    # A contiguous copy made by the user is accepted.
    ok = dlpack.asdlpack(np.ascontiguousarray(view))
    assert MPI.buffer(ok).nbytes == 4 * view.size


def test_fortran_order_accepted_as_for_numpy():
    # mpi4py takes any contiguous buffer (PyBUF_ANY_CONTIGUOUS): a transposed C array is
    # Fortran-contiguous, sent in memory order, for NumPy and for us alike.
    view = np.arange(128, dtype=np.float32).reshape(8, 16).T
    want = MPI.buffer.frombuffer(view)
    got = MPI.buffer.frombuffer(dlpack.asdlpack(view))
    assert got.address == want.address == np_ptr(view)
    assert got.nbytes == want.nbytes == 512


def _mpiexec():
    """The launcher of the MPI library mpi4py uses (the wheel's, next to the interpreter)."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


def test_two_ranks():
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("no mpiexec next to the interpreter or on PATH")
    cmd = [mpiexec, "-n", "2", sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
           "-W", "error::pytest.PytestUnraisableExceptionWarning",
           os.path.join(HERE, "mpi_ranks.py")]
    env = dict(os.environ, MPIEXEC_TIMEOUT=str(TWO_RANKS_TIMEOUT))
    # Its own session, so that a hang is ended with every rank and proxy it started.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, text=True)
    try:
        out, _ = proc.communicate(timeout=TWO_RANKS_TIMEOUT + 20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"mpiexec -n 2 hung for {TWO_RANKS_TIMEOUT + 20}s:\n{out}")
    assert proc.returncode == 0, f"mpiexec -n 2 failed ({proc.returncode}):\n{out}"
    # Both ranks ran the cases (a rank that skipped the module passes nothing).
    passed = [line for line in out.splitlines() if " passed" in line and "failed" not in line]
    assert len(passed) == 2, out
    print(out)
