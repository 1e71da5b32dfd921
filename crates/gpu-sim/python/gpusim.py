"""ctypes wrapper over gpu-sim's inspection API, for Python tests.

The simulator's state lives in the loaded copy of ``libgpu_sim.so`` that the real loaders open as
``libcuda.so`` / ``libamdhip64.so``. ``Sim.load()`` therefore opens it by the same name
(``libcuda.so``, ``libcuda.so.1``, ``libamdhip64.so``) with ``RTLD_GLOBAL``; the folder holding
those symlinks must be on ``LD_LIBRARY_PATH`` when the Python process starts (``cargo xtask``
sets it). As a fallback it opens ``$GPUSIM_LIB_DIR/libcuda.so`` by path, which is enough for
the inspection calls themselves but lets another loader find the same object only if the folder
is also on ``LD_LIBRARY_PATH``.

Usage::

    from gpusim import Sim
    sim = Sim.load()
    sim.reset()
    ...  # exercise the code under test
    assert sim.races() == [], sim.races()
"""

from __future__ import annotations

import ctypes
import json
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

__all__ = ["Sim", "LoadError", "KernelCtx", "LIBRARY_NAMES", "lib_dir_hint"]

LIBRARY_NAMES = ("libcuda.so", "libcuda.so.1", "libamdhip64.so")

CUDA = 0
HIP = 1

_KERNEL_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class LoadError(OSError):
    """The simulator could not be loaded; the message lists every attempt."""


def lib_dir_hint() -> Optional[str]:
    """The folder named by ``GPUSIM_LIB_DIR``, if set."""
    value = os.environ.get("GPUSIM_LIB_DIR")
    return value or None


def _declare(lib: ctypes.CDLL) -> None:
    c = ctypes
    sigs = {
        "gpusim_version": (c.c_uint32, []),
        "gpusim_reset": (None, []),
        "gpusim_clear_reports": (None, []),
        "gpusim_set_device_count": (None, [c.c_uint32]),
        "gpusim_device_count": (c.c_uint32, []),
        "gpusim_set_memory_pools": (None, [c.c_int32]),
        "gpusim_set_pending": (None, [c.c_int32]),
        "gpusim_race_count": (c.c_size_t, []),
        "gpusim_race_report": (c.c_size_t, [c.c_size_t, c.c_char_p, c.c_size_t]),
        "gpusim_error_count": (c.c_size_t, []),
        "gpusim_error_report": (c.c_size_t, [c.c_size_t, c.c_char_p, c.c_size_t]),
        "gpusim_take_reports_json": (c.c_size_t, [c.c_char_p, c.c_size_t]),
        "gpusim_live_allocations": (c.c_size_t, []),
        "gpusim_live_events": (c.c_size_t, []),
        "gpusim_live_streams": (c.c_size_t, []),
        "gpusim_call_count": (c.c_uint64, [c.c_char_p]),
        "gpusim_blocking_count": (c.c_uint64, []),
        "gpusim_counters_json": (c.c_size_t, [c.c_char_p, c.c_size_t]),
        "gpusim_reset_counters": (None, []),
        "gpusim_kernel_read": (c.c_int32, [c.c_uint64, c.c_size_t]),
        "gpusim_kernel_write": (c.c_int32, [c.c_uint64, c.c_size_t]),
        "gpusim_host_view": (c.c_void_p, [c.c_uint64, c.c_size_t]),
        "gpusim_host_read": (c.c_int32, [c.c_uint64, c.c_size_t]),
        "gpusim_host_write": (c.c_int32, [c.c_uint64, c.c_size_t]),
        "gpusim_launch_kernel": (
            c.c_int32,
            [
                c.c_uint64,
                c.c_char_p,
                c.POINTER(c.c_uint64),
                c.POINTER(c.c_size_t),
                c.c_size_t,
                c.POINTER(c.c_uint64),
                c.POINTER(c.c_size_t),
                c.c_size_t,
                _KERNEL_FN,
                c.c_void_p,
                c.c_int32,
            ],
        ),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def _text(call: Callable[[Optional[ctypes.Array], int], int]) -> str:
    n = call(None, 0)
    buf = ctypes.create_string_buffer(n + 1)
    call(buf, n + 1)
    return buf.value.decode("utf-8", "replace")


class KernelCtx:
    """What a test kernel can do while it runs (accesses are attributed to the kernel)."""

    def __init__(self, sim: "Sim") -> None:
        self._sim = sim

    def read(self, ptr: int, length: int) -> int:
        return self._sim.kernel_read(ptr, length)

    def write(self, ptr: int, length: int) -> int:
        return self._sim.kernel_write(ptr, length)

    def load(self, ptr: int, length: int) -> Optional[bytes]:
        """Records a read and returns the bytes, or None if the range is not valid memory."""
        if self.read(ptr, length) != 0:
            return None
        view = self._sim.host_view(ptr, length)
        return None if view is None else ctypes.string_at(view, length)

    def store(self, ptr: int, data: bytes) -> bool:
        """Records a write and stores ``data``; False if the range is not valid memory."""
        if self.write(ptr, len(data)) != 0:
            return False
        view = self._sim.host_view(ptr, len(data))
        if view is None:
            return False
        ctypes.memmove(view, data, len(data))
        return True


class Sim:
    """The loaded simulator."""

    def __init__(self, lib: ctypes.CDLL, loaded_as: str) -> None:
        self._lib = lib
        self.loaded_as = loaded_as

    @classmethod
    def load(cls) -> "Sim":
        attempts: List[str] = []
        candidates = list(LIBRARY_NAMES)
        hint = lib_dir_hint()
        if hint:
            candidates += [os.path.join(hint, "libcuda.so"), os.path.join(hint, "libgpu_sim.so")]
        for name in candidates:
            try:
                lib = ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
            except OSError as e:
                attempts.append(f"  {name}: {e}")
                continue
            if not hasattr(lib, "gpusim_version"):
                attempts.append(f"  {name}: loaded, but it is not gpu-sim (no gpusim_version)")
                continue
            _declare(lib)
            return cls(lib, name)
        raise LoadError(
            "gpu-sim is not loadable; tried:\n"
            + "\n".join(attempts)
            + f"\nLD_LIBRARY_PATH={os.environ.get('LD_LIBRARY_PATH', '(unset)')}"
            + f"\nGPUSIM_LIB_DIR={hint or '(unset)'}"
            + "\nBuild it with `cargo build -p gpu-sim` and put a folder of symlinks libcuda.so, "
            "libcuda.so.1, libamdhip64.so -> libgpu_sim.so on LD_LIBRARY_PATH (cargo xtask does)"
        )

    # --- state -----------------------------------------------------------------------------
    def version(self) -> int:
        return self._lib.gpusim_version()

    def reset(self) -> None:
        self._lib.gpusim_reset()

    def clear_reports(self) -> None:
        self._lib.gpusim_clear_reports()

    def set_device_count(self, n: int) -> None:
        self._lib.gpusim_set_device_count(n)

    def device_count(self) -> int:
        return self._lib.gpusim_device_count()

    def set_pending(self, on: bool) -> None:
        """Keeps work pending until a sync: queries answer "not ready" until the host waited."""
        self._lib.gpusim_set_pending(1 if on else 0)

    def set_memory_pools(self, supported: bool) -> None:
        self._lib.gpusim_set_memory_pools(1 if supported else 0)

    # --- reports ---------------------------------------------------------------------------
    def races(self) -> List[str]:
        return [
            _text(lambda b, n, i=i: self._lib.gpusim_race_report(i, b, n))
            for i in range(self._lib.gpusim_race_count())
        ]

    def errors(self) -> List[str]:
        return [
            _text(lambda b, n, i=i: self._lib.gpusim_error_report(i, b, n))
            for i in range(self._lib.gpusim_error_count())
        ]

    def take_reports(self) -> Dict[str, List[str]]:
        """Returns ``{"races": [...], "errors": [...]}`` and clears them."""
        n = self._lib.gpusim_take_reports_json(None, 0)
        while True:
            buf = ctypes.create_string_buffer(n + 1)
            needed = self._lib.gpusim_take_reports_json(buf, n + 1)
            if needed <= n:
                return json.loads(buf.value.decode("utf-8"))
            n = needed  # more reports arrived in between

    # --- counters --------------------------------------------------------------------------
    def call_count(self, name: str) -> int:
        return self._lib.gpusim_call_count(name.encode())

    def blocking_count(self) -> int:
        return self._lib.gpusim_blocking_count()

    def counters(self) -> Dict[str, int]:
        return json.loads(_text(self._lib.gpusim_counters_json))

    def reset_counters(self) -> None:
        self._lib.gpusim_reset_counters()

    def live_allocations(self) -> int:
        return self._lib.gpusim_live_allocations()

    def live_events(self) -> int:
        return self._lib.gpusim_live_events()

    def live_streams(self) -> int:
        return self._lib.gpusim_live_streams()

    # --- kernels and host accesses ------------------------------------------------------------
    def kernel_read(self, ptr: int, length: int) -> int:
        return self._lib.gpusim_kernel_read(ptr, length)

    def kernel_write(self, ptr: int, length: int) -> int:
        return self._lib.gpusim_kernel_write(ptr, length)

    def host_view(self, ptr: int, length: int) -> Optional[int]:
        """Host address behind simulator memory ``[ptr, ptr+length)``, or None."""
        return self._lib.gpusim_host_view(ptr, length)

    def host_read(self, ptr: int, length: int) -> int:
        return self._lib.gpusim_host_read(ptr, length)

    def host_write(self, ptr: int, length: int) -> int:
        return self._lib.gpusim_host_write(ptr, length)

    def launch_kernel(
        self,
        stream: int,
        name: str,
        reads: Sequence[Tuple[int, int]] = (),
        writes: Sequence[Tuple[int, int]] = (),
        fn: Optional[Callable[[KernelCtx], None]] = None,
        backend: int = CUDA,
    ) -> int:
        """Launches a test kernel on ``stream`` (a CUstream, or a hipStream_t with
        ``backend=HIP``); returns 0 or the error code. Exceptions in ``fn`` are re-raised."""
        c = ctypes
        rp = (c.c_uint64 * max(len(reads), 1))(*[p for p, _ in reads])
        rl = (c.c_size_t * max(len(reads), 1))(*[n for _, n in reads])
        wp = (c.c_uint64 * max(len(writes), 1))(*[p for p, _ in writes])
        wl = (c.c_size_t * max(len(writes), 1))(*[n for _, n in writes])
        raised: List[BaseException] = []

        def trampoline(_user: Optional[int]) -> None:
            if fn is None:
                return
            try:
                fn(KernelCtx(self))
            except BaseException as e:  # re-raised below, never across the C frame
                raised.append(e)

        callback = _KERNEL_FN(trampoline)
        rc = self._lib.gpusim_launch_kernel(
            stream, name.encode(), rp, rl, len(reads), wp, wl, len(writes), callback, None, backend
        )
        if raised:
            raise raised[0]
        return rc
