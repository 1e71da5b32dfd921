"""``dlpack.shared_memory``: tensors in POSIX shared memory across processes.

Zero-copy is checked against the kernel's own record: the address a consumer (NumPy,
PyTorch, JAX) imports lies inside the mapping of ``/dev/shm/<name>`` in
``/proc/self/maps``, and a read-only segment's mapping is ``r--s``. Lifetimes run real
processes (``subprocess``, ``multiprocessing`` spawn, ``SIGKILL``). Segments made by the
Rust crate ``dlpack-shm`` (its ``shm_peer`` example, path in ``DLPACK_SHM_PEER``) are
opened here and the reverse. Every test leaves ``/dev/shm`` as it found it.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dlpack

from .conftest import DL_DTYPE, DTYPES, NUMPY_DLPACK_1, assert_values, layout_view, reference

shm = pytest.importorskip("dlpack.shared_memory")
pytestmark = pytest.mark.skipif(
    not os.path.isdir("/dev/shm"), reason="POSIX shared memory is listed in /dev/shm (Linux)"
)

SHM = "/dev/shm"
MINE = f"dlpack-{os.getpid()}-"
USER_PREFIX = f"test-shm-{os.getpid()}"


def shm_names():
    return {n for n in os.listdir(SHM) if n.startswith(MINE) or n.startswith(USER_PREFIX)}


@pytest.fixture(autouse=True)
def leaves_dev_shm_clean():
    """Every test removes what it made; a leftover fails the test (and is removed)."""
    before = shm_names()
    yield
    left = shm_names() - before
    for n in left:
        os.unlink(os.path.join(SHM, n))
    assert not left, f"left in /dev/shm: {sorted(left)}"


def mapping_of(name, address):
    """The permissions of the mapping of /dev/shm/<name> holding `address`, or None."""
    with open("/proc/self/maps") as f:
        for line in f:
            if line.rstrip().endswith(f"/dev/shm/{name}") or f"/dev/shm/{name} (deleted)" in line:
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                if lo <= address < hi:
                    return line.split()[1]
    return None


def arr(o):
    """A NumPy array over `o`, zero-copy: ``np.from_dlpack``, or before NumPy 2.1 (which
    imports every DLPack tensor read-only, and cannot take a read-only one) the array
    interface, which says read-only itself."""
    return np.from_dlpack(o) if NUMPY_DLPACK_1 else np.asarray(o)


def addr(a):
    return a.__array_interface__["data"][0]


# --- Python -> Python in one process ----------------------------------------------------


def test_share_then_open_is_zero_copy_and_shared():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    with shm.share(a) as st:
        assert st.name.startswith(MINE)
        b = arr(shm.open(st.handle))
        assert_values(b, a)
        assert addr(b) != addr(a)  # one copy: into the segment
        assert mapping_of(st.name, addr(b)) == "rw-s"
        # Writes through one mapping are read through another (same memory).
        mine = arr(st.tensor)
        if NUMPY_DLPACK_1:  # the SharedTensor is a producer itself
            assert addr(np.from_dlpack(st)) == addr(mine)
        assert mapping_of(st.name, addr(mine)) == "rw-s" and addr(mine) != addr(b)
        b[1, 2] = 99.0
        assert mine[1, 2] == 99.0
        # The payload is 64-byte aligned.
        assert addr(b) % 64 == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype(dtype):
    if dtype == "bfloat16":  # NumPy has no bfloat16 DLPack type: torch makes it
        torch = pytest.importorskip("torch")
        a = torch.arange(1, 7, dtype=torch.bfloat16).reshape(2, 3)
    else:
        a = reference(dtype, (2, 3))
    with shm.share(a) as st:
        o = shm.open(st.handle)
        info = dlpack.capsule_info(o.__dlpack__(max_version=(1, 3)))
        assert info["dtype"] == DL_DTYPE[dtype] and info["flags"] == 0
        if dtype == "bfloat16":
            assert torch.equal(torch.from_dlpack(o), a)
        else:
            assert_values(arr(o), a)
    # Allocation in place, by DLPack fields and by name.
    for spec in (DL_DTYPE[dtype], dtype):
        with shm.SharedTensor.empty((2, 3), spec) as st:
            o = shm.open(st.handle)
            assert dlpack.capsule_info(o.__dlpack__(max_version=(1, 3)))["dtype"] == DL_DTYPE[dtype]
            if dtype != "bfloat16":
                assert arr(o).dtype == np.dtype(dtype)
                assert not arr(o).any()


@pytest.mark.parametrize("layout", ["strided", "negative", "transposed"])
def test_strides_travel_as_they_are(layout):
    base = np.arange(5 * 6 * 5, dtype=np.int16).reshape(5, 6, 5)
    a = layout_view(base, layout)
    with shm.share(a) as st:
        b = arr(shm.open(st.handle))
        assert_values(b, a)
        assert b.strides == a.strides


def test_empty_is_filled_in_place():
    with shm.empty((4,), "float64") as st:
        arr(st.tensor)[:] = [1, 2, 3, 4]
        assert_values(arr(shm.open(st.handle)), np.array([1.0, 2, 3, 4]))
    with shm.empty(3, np.uint8) as st:
        assert arr(shm.open(st)).shape == (3,)


def test_bad_arguments():
    with pytest.raises(ValueError, match="float12"):
        shm.empty((2,), (2, 12, 1))
    with pytest.raises(ValueError, match=r'"dlpack-1-ab".*generated'):
        shm.empty((2,), "int8", name="dlpack-1-ab")
    with pytest.raises(ValueError, match=r'"a/b".*A-Za-z0-9'):
        shm.share(np.zeros(2), name="a/b")
    with pytest.raises(TypeError, match="cannot import an object of type object"):
        shm.share(object())
    with pytest.raises(TypeError, match="Handle"):
        shm.open(3)
    with pytest.raises(ValueError, match="invalid shared-memory handle"):
        shm.open("x#zz")


def test_user_names_and_exists():
    name = f"{USER_PREFIX}.named"
    with shm.share(np.ones(2), name=name) as st:
        assert st.name == name and os.path.exists(f"{SHM}/{name}")
        with pytest.raises(FileExistsError, match=name):
            shm.share(np.ones(2), name=name)
        # A bare name opens without the nonce check.
        assert_values(arr(shm.open(name)), np.ones(2))
    assert not os.path.exists(f"{SHM}/{name}")


def test_a_segment_larger_than_dev_shm_is_an_oserror_not_a_crash():
    import errno

    v = os.statvfs(SHM)
    with pytest.raises(OSError, match="posix_fallocate") as e:
        shm.empty((2 * v.f_blocks * v.f_frsize,), "uint8")
    assert e.value.errno == errno.ENOSPC


# --- consumers: zero-copy, read-only -----------------------------------------------------


def test_torch_imports_zero_copy():
    torch = pytest.importorskip("torch")
    with shm.share(np.arange(6, dtype=np.float32)) as st:
        t = torch.from_dlpack(shm.open(st.handle))
        assert mapping_of(st.name, t.data_ptr()) == "rw-s"
        t[0] = 7
        assert arr(st.tensor)[0] == 7


def test_jax_imports_zero_copy():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    with shm.share(np.arange(16, dtype=np.float32)) as st:
        j = jnp.from_dlpack(shm.open(st.handle))
        assert mapping_of(st.name, j.unsafe_buffer_pointer()) is not None
        assert float(j.sum()) == 120.0
        del j
        jax.clear_caches()


def test_read_only_is_mapped_prot_read_and_honoured():
    a = np.arange(4.0)
    with shm.share(a, read_only=True) as st:
        o = shm.open(st.handle)
        info = dlpack.capsule_info(o.__dlpack__(max_version=(1, 3)))
        assert info["flags"] & 1  # DLPACK_FLAG_BITMASK_READ_ONLY
        b = arr(o)
        assert mapping_of(st.name, addr(b)) == "r--s"
        assert not b.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            b[0] = 1
        mv = memoryview(o)  # the buffer protocol gives a read-only view
        assert mv.readonly
        with pytest.raises(TypeError, match="read-only"):
            mv.cast("B")[0] = 1
        # The creator's own view is writable (read-only binds readers).
        arr(st.tensor)[0] = 5
        assert b[0] == 5


# --- handles and pickling --------------------------------------------------------------


def test_handle_pickles_small_and_opens():
    with shm.share(np.arange(1 << 16, dtype=np.uint8)) as st:
        for obj in (st, st.handle):
            data = pickle.dumps(obj)
            assert len(data) < 200  # the name and nonce, never the data
            h = pickle.loads(data)
            assert h == st.handle
            assert_values(arr(shm.open(h)), np.arange(1 << 16, dtype=np.uint8))
        assert shm.Handle.parse(str(st.handle)) == st.handle


def test_nonce_guards_a_reused_name():
    name = f"{USER_PREFIX}.reused"
    st = shm.share(np.zeros(2), name=name)
    old = st.handle
    st.unlink()
    with shm.share(np.ones(2), name=name):
        with pytest.raises(ValueError, match="nonce"):
            shm.open(old)


# --- unlink and lifetimes --------------------------------------------------------------


def test_unlink_keeps_mappings():
    st = shm.share(np.arange(3.0))
    b = arr(shm.open(st.handle))
    st.unlink()
    assert not os.path.exists(f"{SHM}/{st.name}")
    with pytest.raises(FileNotFoundError, match=st.name):
        shm.open(st.handle)
    with pytest.raises(FileNotFoundError):
        st.unlink()
    st.close()
    del st
    assert_values(b, np.arange(3.0))


def _python(code, **kw):
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        **kw,
    )


CREATOR = """
    import sys, numpy as np
    from dlpack import shared_memory as shm
    st = shm.share(np.arange(5, dtype=np.int64) * 3, read_only={ro})
    print(st.handle, flush=True)
    {wait}
"""


def test_creator_exits_while_a_reader_maps_it():
    p = _python(CREATOR.format(ro=True, wait="sys.stdin.readline()"))
    h = shm.Handle.parse(p.stdout.readline().strip())
    b = arr(shm.open(h))
    assert mapping_of(h.name, addr(b)) == "r--s"
    p.stdin.close()
    assert p.wait(30) == 0
    assert_values(b, np.arange(5) * 3)
    # Its creator is gone: the next cleanup removes the name; the mapping stays.
    shm.cleanup_stale()
    assert not os.path.exists(f"{SHM}/{h.name}")
    assert_values(b, np.arange(5) * 3)


def test_reader_exits_first():
    with shm.share(np.arange(4, dtype=np.int64)) as st:
        p = _python(
            f"""
            import numpy as np
            from dlpack import shared_memory as shm
            a = np.asarray(shm.open(shm.Handle.parse({str(st.handle)!r})))
            a[0] = 100
            print(int(a.sum()), flush=True)
            """
        )
        assert p.stdout.readline().strip() == "106"
        assert p.wait(30) == 0
        assert os.path.exists(f"{SHM}/{st.name}")
        assert arr(st.tensor)[0] == 100
        # A live creator's segment is never removed.
        assert st.name not in shm.cleanup_stale()


def test_sigkill_leaves_nothing_cleanup_cannot_remove():
    p = _python(CREATOR.format(ro=False, wait="import time; time.sleep(600)"))
    h = shm.Handle.parse(p.stdout.readline().strip())
    b = arr(shm.open(h))
    assert h.name.startswith(f"dlpack-{p.pid}-")
    os.kill(p.pid, signal.SIGKILL)
    p.wait(30)
    assert os.path.exists(f"{SHM}/{h.name}")  # SIGKILL ran no cleanup
    shm.cleanup_stale()
    assert not [n for n in os.listdir(SHM) if n.startswith(f"dlpack-{p.pid}-")]
    assert_values(b, np.arange(5) * 3)


def test_a_dead_creators_pid_reused_by_a_live_process_is_cleaned():
    # A segment left by an earlier process that had this test's pid (it started earlier and
    # died; the pid came to this process): the pid is alive, the recorded start time is not
    # this process's, so the segment is stale.
    with open("/proc/self/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    stale = f"dlpack-{os.getpid()}-{start - 1:x}-00000000abcd"
    with open(f"{SHM}/{stale}", "wb") as f:
        f.write(b"x")
    try:
        with shm.share(np.arange(3)) as st:
            assert st.name.startswith(f"dlpack-{os.getpid()}-{start:x}-")
            removed = shm.cleanup_stale()
            assert not os.path.exists(f"{SHM}/{stale}")
            assert stale in removed or not os.path.exists(f"{SHM}/{stale}")
            assert st.name not in removed and os.path.exists(f"{SHM}/{st.name}")
    finally:
        if os.path.exists(f"{SHM}/{stale}"):
            os.unlink(f"{SHM}/{stale}")


def _worker_sum(handle):
    from dlpack import shared_memory

    a = np.asarray(shared_memory.open(handle))
    a[-1] = -1
    return float(a.sum())


def test_multiprocessing_spawn():
    ctx = multiprocessing.get_context("spawn")
    with shm.share(np.arange(10, dtype=np.float64)) as st, ctx.Pool(1) as pool:
        # The handle travels by pickle (the SharedTensor pickles as its handle).
        assert pool.apply(_worker_sum, (st,)) == 45.0 - 9 - 1
        assert arr(st.tensor)[-1] == -1


# --- refused segments ------------------------------------------------------------------


def _write(name, data):
    with open(f"{SHM}/{name}", "wb") as f:
        f.write(data)


def test_truncated_foreign_and_inconsistent_segments_are_refused():
    with shm.share(np.arange(2.0)) as st:
        with open(f"{SHM}/{st.name}", "rb") as f:
            good = f.read()
    bad_len = bytearray(good)
    bad_len[48:56] = (1000).to_bytes(8, "little")
    bad_magic = b"PSM_" + good[4:]
    bad_version = good[:8] + (9).to_bytes(4, "little") + good[12:]
    cases = [
        ("empty", b"", "0 bytes, but the fixed header needs 64"),
        ("short", good[:64], "shape and strides"),
        ("cut", good[:-1], "the payload"),
        ("foreign", bad_magic, "not a dlpack shared-memory segment"),
        ("version", bad_version, "format version 9"),
        ("length", bytes(bad_len), "needs 1128 bytes"),
    ]
    for what, data, msg in cases:
        name = f"{USER_PREFIX}.bad-{what}"
        _write(name, data)
        try:
            with pytest.raises(ValueError, match=msg):
                shm.open(name)
        finally:
            shm.unlink(name)


# --- device memory ----------------------------------------------------------------------


def test_device_memory_is_refused_with_the_host_copy_named():
    from .conftest import testing

    if not hasattr(testing, "DeviceBuffer") or not os.environ.get("GPUSIM_LIB_DIR"):
        pytest.skip("no device: GPUSIM_LIB_DIR is unset")
    buf = testing.DeviceBuffer(64, backend="cuda")
    with pytest.raises(TypeError, match=r"only host memory.*dl_device=\(1, 0\)"):
        shm.share(buf.tensor)
    host = buf.tensor.__dlpack__(max_version=(1, 3), dl_device=(1, 0), copy=True)
    with shm.share(host) as st:
        assert arr(shm.open(st.handle)).nbytes == 64


# --- the Rust crate dlpack-shm on the other side ---------------------------------------

PEER = os.environ.get("DLPACK_SHM_PEER")
needs_peer = pytest.mark.skipif(
    not PEER, reason="DLPACK_SHM_PEER (dlpack-shm's shm_peer example) is not set"
)


def _peer(*args):
    return subprocess.Popen(
        [PEER, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


@needs_peer
@pytest.mark.parametrize("ro", [False, True])
def test_rust_published_python_opens(ro):
    p = _peer("publish", *(["ro"] if ro else []))
    line = p.stdout.readline().split()
    assert line[0] == "HANDLE", line
    h = shm.Handle.parse(line[1])
    try:
        b = arr(shm.open(h))
        assert_values(b, np.arange(6, dtype=np.float32).reshape(2, 3) * 1.5)
        assert mapping_of(h.name, addr(b)) == ("r--s" if ro else "rw-s")
    finally:
        p.stdin.close()
        assert p.wait(30) == 0
        shm.unlink(h)  # the Rust creator left the name, as documented
    assert_values(b, np.arange(6, dtype=np.float32).reshape(2, 3) * 1.5)


@needs_peer
def test_python_published_rust_opens():
    a = np.arange(6, dtype=np.int16).reshape(2, 3)[:, ::-1]  # negative strides
    with shm.share(a) as st:
        out = subprocess.run(
            [PEER, "open", str(st.handle), "write", "1"], capture_output=True, text=True
        )
        assert out.returncode == 0, out.stdout + out.stderr
        got = dict(line.split(" ", 1) for line in out.stdout.splitlines())
        assert got["DTYPE"] == "0,16,1" and got["SHAPE"] == "[2, 3]"
        assert got["STRIDES"] == "[3, -1]" and got["READONLY"] == "0"
        assert got["BYTES"] == "0101" * 6
        # The Rust process wrote into our segment.
        assert (arr(st.tensor) == 0x0101).all()
    with shm.share(np.zeros(2), read_only=True) as st:
        out = subprocess.run([PEER, "open", str(st.handle), "write", "1"], capture_output=True, text=True)
        assert out.returncode == 2 and "read-only" in out.stdout
