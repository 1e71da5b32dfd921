"""Moving a float32 tensor of the `dlpack` module to another process and reading it there.

Usage (inside the test venv, after the wheel is installed; `cargo xtask bench --transports`
does both):

    python benches/python/transports.py                          # 1 KiB, 1 MiB, 256 MiB, 1 GiB
    python benches/python/transports.py --sizes 1KiB,1MiB --only pickle
    python benches/python/transports.py --json results.json

Each transport is one function registered with ``@transport(name)``: it starts its receiver
(another process) once, then for each size moves a ``dlpack.asdlpack`` object over a float32
NumPy array to it ``repeats`` times. The receiver imports it with ``np.from_dlpack`` and reads
one float of every 4 KiB page (so every page is mapped and faulted in, and the time is the
transport's, not a sum's), then answers with one byte. A move is timed at the sender, from
handing over the object to the answer; the table has the best move of each size (on a shared
host a move now and then takes seconds for reasons of its own; ``--json`` keeps every one). Receivers are started before
the clock runs (process start-up is not a transport cost).

Transports: the default pickling of ``multiprocessing`` (protocol 4 before Python 3.14, so our
``__reduce_ex__`` copies the data in band; NumPy arrays beside it), pickle protocol 5 with the buffers out of band
over the same pipe (no copy in user space on either side: ``send_bytes`` of the buffer, the
object unpickled over the received bytes), MPI ``Send``/``Recv`` between two ranks of
``mpiexec -n 2`` with our objects and with the plain NumPy arrays under them (interleaved, in
the same run), and Ray (``ray.put`` in this process, an actor in another one gets it from the
shared-memory store), and ``dlpack.shared_memory`` (a handle over a pipe). The machine's memory bandwidth (``np.copyto`` of 1 GiB) is printed
first, so every copying path reads against the physical limit.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pickle
import shutil
import struct
import subprocess
import sys
import time

import numpy as np

import dlpack

PAGE_FLOATS = 4096 // 4
SIZES = {"1KiB": 1 << 10, "1MiB": 1 << 20, "256MiB": 256 << 20, "1GiB": 1 << 30}


def repeats_for(nbytes):
    """Moves per size: enough for a stable median, few where one move takes a second."""
    if nbytes <= 1 << 20:
        return 50
    if nbytes <= 256 << 20:
        return 5
    return 3


def touch(a):
    """Read one float of every page of `a` (float32, contiguous)."""
    return float(a.reshape(-1)[::PAGE_FLOATS].sum())


def tensor(nbytes):
    """Our object over a float32 NumPy array of `nbytes`, every page written."""
    a = np.ones(nbytes // 4, dtype=np.float32)
    return dlpack.asdlpack(a), a


TRANSPORTS = {}


def transport(name):
    """Registers `fn(sizes) -> {row name: {size name: [seconds per move]}}` under `name`."""

    def register(fn):
        TRANSPORTS[name] = fn
        return fn

    return register


# --- multiprocessing pipes -----------------------------------------------------------------


def _pipe_receiver(conn, out_of_band):
    """In the receiving process: take objects until an empty message, touch, answer."""
    while True:
        if out_of_band:
            head = conn.recv_bytes()
            if not head:
                return
            (count,) = struct.unpack_from("<I", head)
            buffers = [conn.recv_bytes() for _ in range(count)]
            obj = pickle.loads(head[4:], buffers=buffers)
        else:
            obj = conn.recv()
            if obj is None:
                return
        touch(obj if isinstance(obj, np.ndarray) else np.from_dlpack(obj))
        del obj
        conn.send_bytes(b"k")


def _over_pipe(sizes, out_of_band, plain=False):
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_pipe_receiver, args=(child, out_of_band))
    proc.start()
    times = {}
    try:
        for name, nbytes in sizes.items():
            obj, array = tensor(nbytes)
            if plain:
                obj = array
            times[name] = []
            for _ in range(repeats_for(nbytes)):
                start = time.perf_counter()
                if out_of_band:
                    buffers = []
                    data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
                    parent.send_bytes(struct.pack("<I", len(buffers)) + data)
                    for b in buffers:
                        parent.send_bytes(b.raw())
                else:
                    parent.send(obj)
                parent.recv_bytes()
                times[name].append(time.perf_counter() - start)
            del obj, array
    finally:
        if out_of_band:
            parent.send_bytes(b"")
        else:
            parent.send(None)
        proc.join(60)
    return times


@transport("pickle")
def pickle_default(sizes):
    return {"multiprocessing pipe, default pickling (in band, copies)": _over_pipe(sizes, False)}


@transport("pickle-numpy")
def pickle_default_numpy(sizes):
    return {"multiprocessing pipe, default pickling, NumPy arrays": _over_pipe(sizes, False, True)}


@transport("pickle5")
def pickle5_out_of_band(sizes):
    return {"multiprocessing pipe, pickle 5 out of band": _over_pipe(sizes, True)}


# --- shared memory ----------------------------------------------------------------------


def _shm_receiver(conn):
    """In the receiving process: open each handle, touch, answer; None ends."""
    from dlpack import shared_memory as shm

    while True:
        handle = conn.recv()
        if handle is None:
            return
        a = np.from_dlpack(shm.open(handle))
        touch(a)
        del a
        conn.send_bytes(b"k")


@transport("shm")
def shared_memory(sizes):
    """``dlpack.shared_memory`` through a spawned process: only the handle (name and nonce,
    about 100 bytes pickled) travels over the pipe. Two rows: ``share`` copying the tensor into
    a new segment on the clock, and the tensor made in a segment before the clock (only the
    handle moves). Unlinking and closing the segment are after the clock."""
    from dlpack import shared_memory as shm

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_shm_receiver, args=(child,))
    proc.start()
    share_row = "shared memory, share (one copy into the segment) + open"
    handle_row = "shared memory, tensor made in the segment: handle + open"
    rows = {share_row: {}, handle_row: {}}
    try:
        for name, nbytes in sizes.items():
            obj, array = tensor(nbytes)
            made = shm.empty((nbytes // 4,), "float32")
            np.from_dlpack(made)[...] = 1.0
            for row in rows:
                rows[row][name] = []
            for _ in range(repeats_for(nbytes)):
                start = time.perf_counter()
                st = shm.share(obj)
                parent.send(st.handle)
                parent.recv_bytes()
                rows[share_row][name].append(time.perf_counter() - start)
                st.unlink()
                st.close()
                start = time.perf_counter()
                parent.send(made.handle)
                parent.recv_bytes()
                rows[handle_row][name].append(time.perf_counter() - start)
            made.unlink()
            made.close()
            del obj, array, made
    finally:
        parent.send(None)
        proc.join(60)
    return rows


# --- MPI --------------------------------------------------------------------------------


def _mpi_ranks(size_names):
    """Under ``mpiexec -n 2``: rank 0 sends, rank 1 receives into a buffer of its own (made
    once per size), touches it and answers; NumPy buffers and our objects alternate."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank = comm.rank
    ack = bytearray(1)
    out = {"MPI Send/Recv, NumPy arrays": {}, "MPI Send/Recv, our objects": {}}
    for name in size_names:
        nbytes = SIZES[name]
        if rank == 0:
            ours, plain = tensor(nbytes)
        else:
            plain = np.zeros(nbytes // 4, dtype=np.float32)
            ours = dlpack.asdlpack(plain)
        kinds = {"MPI Send/Recv, NumPy arrays": plain, "MPI Send/Recv, our objects": ours}
        for row in kinds:
            out[row][name] = []
        for _ in range(repeats_for(nbytes) + 1):  # the first round warms up
            for row, buf in kinds.items():
                comm.Barrier()
                if rank == 0:
                    start = time.perf_counter()
                    comm.Send(buf, dest=1)
                    comm.Recv(ack, source=1)
                    out[row][name].append(time.perf_counter() - start)
                else:
                    comm.Recv(buf, source=0)
                    touch(plain)
                    comm.Send(ack, dest=0)
        for row in kinds:
            out[row][name] = out[row][name][1:]
        del ours, plain, kinds
    if rank == 0:
        print("RESULT " + json.dumps(out), flush=True)


@transport("mpi")
def mpi(sizes):
    launcher = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if not os.path.exists(launcher):
        launcher = shutil.which("mpiexec")
    if launcher is None:
        raise RuntimeError("no mpiexec (install the test requirements: mpi4py, mpich)")
    cmd = [launcher, "-n", "2", sys.executable, os.path.abspath(__file__), "--mpi-ranks",
           "--sizes", ",".join(sizes)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{run.stdout}\n{run.stderr}")
    line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


# --- Ray --------------------------------------------------------------------------------


@transport("ray")
def ray_put_get(sizes):
    import tempfile

    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    biggest = max(sizes.values())
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as temp_dir:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 _temp_dir=temp_dir, _node_ip_address="127.0.0.1",
                 object_store_memory=max(3 * biggest + (256 << 20), 512 << 20),
                 configure_logging=False)
        try:
            reader = ray.remote(_RayReader).remote()
            put_get = "Ray put, get in an actor: {}"
            get_only = "Ray get in an actor, put before the clock: our objects"
            rows = {put_get.format("our objects"): {}, put_get.format("NumPy arrays"): {},
                    get_only: {}}
            for name, nbytes in sizes.items():
                obj, plain = tensor(nbytes)
                values = {put_get.format("our objects"): obj,
                          put_get.format("NumPy arrays"): plain}
                for row in rows:
                    rows[row][name] = []
                # The kinds alternate, after one untimed round (the store's pages are faulted
                # in by the first objects of a size, whichever kind comes first).
                for rep in range(repeats_for(nbytes) + 1):
                    for row, value in values.items():
                        start = time.perf_counter()
                        ref = ray.put(value)
                        ray.get(reader.read.remote(ref))
                        took = time.perf_counter() - start
                        del ref
                        if rep:
                            rows[row][name].append(took)
                    ref = ray.put(obj)
                    start = time.perf_counter()
                    ray.get(reader.read.remote(ref))
                    took = time.perf_counter() - start
                    del ref
                    if rep:
                        rows[get_only][name].append(took)
                del obj, plain, values
            return rows
        finally:
            ray.shutdown()


class _RayReader:
    """The receiving actor: its own process, alive for the whole run."""

    def read(self, obj):
        return touch(np.from_dlpack(obj))


# --- the table ----------------------------------------------------------------------------


def memory_bandwidth():
    """Seconds of the best of three ``np.copyto`` of 1 GiB, and GB/s (read + write counted
    once, as a memcpy's size)."""
    src = np.ones(1 << 28, dtype=np.float32)
    dst = np.empty_like(src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(3))
    return best, src.nbytes / best / 1e9


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fmt_time(s):
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def table(results, sizes, default_row):
    names = list(sizes)
    head = ["transport", *names, "GB/s at " + names[-1], f"{names[-1]} / {names[0]}",
            f"vs default pickling at {names[-1]}"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    base = results.get(default_row, {}).get(names[-1])
    for row, per_size in results.items():
        med = {n: min(per_size[n]) for n in names if per_size.get(n)}
        last, first = med.get(names[-1]), med.get(names[0])
        cells = [fmt_time(med[n]) if n in med else "–" for n in names]
        cells.append(f"{sizes[names[-1]] / last / 1e9:.2f}" if last else "–")
        cells.append(f"{last / first:,.0f}×" if last and first else "–")
        cells.append(f"{min(base) / last:.1f}×" if base and last else "–")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--only", default=",".join(TRANSPORTS),
                        help=f"transports to run, of: {', '.join(TRANSPORTS)}")
    parser.add_argument("--json", help="also write the times (seconds per move) here")
    parser.add_argument("--mpi-ranks", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    size_names = [s for s in args.sizes.split(",") if s]
    unknown = [s for s in size_names if s not in SIZES]
    if unknown:
        parser.error(f"unknown size {unknown[0]!r}; sizes: {', '.join(SIZES)}")
    if args.mpi_ranks:
        _mpi_ranks(size_names)
        return
    sizes = {n: SIZES[n] for n in size_names}
    copy_s, gbps = memory_bandwidth()
    print(f"memory bandwidth: np.copyto of 1 GiB takes {fmt_time(copy_s)} = {gbps:.1f} GB/s "
          f"(the floor of one copy of 1 GiB); numpy {np.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs",
          flush=True)
    results = {}
    for name in args.only.split(","):
        print(f"running {name} ...", flush=True)
        started = time.perf_counter()
        results.update(TRANSPORTS[name](sizes))
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    print()
    print(table(results, sizes, "multiprocessing pipe, default pickling (in band, copies)"))
    ours, plain = results.get("MPI Send/Recv, our objects"), results.get("MPI Send/Recv, NumPy arrays")
    if ours and plain:
        ratios = ", ".join(
            f"{n}: {min(plain[n]) / min(ours[n]):.2f}" for n in sizes
        )
        print(f"\nMPI throughput, our objects / NumPy arrays (goal >= 0.9): {ratios}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"memcpy_1GiB_s": copy_s, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
