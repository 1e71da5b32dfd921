"""Tensors in POSIX shared memory, zero-copy across processes (and languages).

One process shares a host tensor (or allocates one in shared memory and fills it in
place); any other process -- Python, or Rust through the ``dlpack-shm`` crate, which
writes and reads the same segment format -- opens its small :class:`Handle` and gets a
:class:`dlpack.DLPackObject` over the same memory, which NumPy, PyTorch, JAX, ... import
without a copy::

    from dlpack import shared_memory as shm

    st = shm.share(np.arange(6.0))          # one copy into a new segment
    h = st.handle                           # small and picklable: send it to the other process
    a = np.from_dlpack(shm.open(h))         # there: zero-copy (read-only stays read-only)
    st.unlink()                             # when no process needs to open it any more

Lifetimes, as with :mod:`multiprocessing.shared_memory`: a segment lives under its name
until :meth:`SharedTensor.unlink` (or the end of a ``with`` block of the creator); every
mapping (each opened object, each array imported from one) stays valid after the name is
unlinked and after the creator exits. Generated names carry the creator's pid and start
time (``dlpack-<pid>-<start>-<hex>``), so :func:`cleanup_stale` removes the names of
creators that died, even by ``SIGKILL``, and even once their pid went to another process.
No resource tracker is involved.

A segment that is truncated, foreign or inconsistent is refused with ``ValueError``
naming the value and the rule; a missing name is ``FileNotFoundError``; device memory is
refused with ``TypeError`` (copy it to the host first). Linux and other POSIX systems
(``cleanup_stale`` lists ``/dev/shm``, Linux only).
"""

from __future__ import annotations

from typing import Any

from . import _native

if not hasattr(_native, "_shm_open"):
    raise ImportError(
        "dlpack.shared_memory needs POSIX shared memory and a dlpack built with the cargo "
        "feature `shm` (the wheel's default)"
    )

__all__ = ["Handle", "SharedTensor", "share", "empty", "open", "unlink", "cleanup_stale"]

#: The prefix of every generated name.
NAME_PREFIX: str = _native._SHM_NAME_PREFIX

_DTYPES = {
    "bool": "|b1",
    "int8": "|i1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
    "uint8": "|u1",
    "uint16": "<u2",
    "uint32": "<u4",
    "uint64": "<u8",
    "float16": "<f2",
    "float32": "<f4",
    "float64": "<f8",
    "complex64": "<c8",
    "complex128": "<c16",
    "bfloat16": (4, 16, 1),
}


def _dtype(dtype: Any):
    """A dtype as the native functions take it: a typestr or (code, bits, lanes)."""
    if isinstance(dtype, tuple):
        return dtype
    if isinstance(dtype, str):
        return _DTYPES.get(dtype, dtype)
    typestr = getattr(dtype, "str", None)  # a numpy.dtype
    if typestr is None:
        try:
            import numpy

            typestr = numpy.dtype(dtype).str
        except Exception:
            raise ValueError(
                f"dtype {dtype!r} is not a name (e.g. 'float32'), a NumPy dtype or typestr, "
                "or a (code, bits, lanes) tuple"
            ) from None
    return typestr


class Handle:
    """What another process needs to open a segment: its name and the nonce of its
    header (so that a handle never opens another segment that later took the same
    name). Pickling sends these two values only."""

    __slots__ = ("name", "nonce")

    def __init__(self, name: str, nonce: int | None = None):
        self.name = name
        self.nonce = nonce

    def __reduce__(self):
        return (Handle, (self.name, self.nonce))

    def __eq__(self, other):
        return isinstance(other, Handle) and (self.name, self.nonce) == (other.name, other.nonce)

    def __hash__(self):
        return hash((self.name, self.nonce))

    def __str__(self):
        # The text form the Rust crate's `Handle::parse` reads.
        return self.name if self.nonce is None else f"{self.name}#{self.nonce:016x}"

    def __repr__(self):
        return f"Handle({self.name!r}, {self.nonce!r})"

    @classmethod
    def parse(cls, text: str) -> "Handle":
        """A handle from its text form ``name#nonce`` (or a bare name)."""
        name, sep, nonce = text.rpartition("#")
        if not sep:
            return cls(text)
        try:
            return cls(name, int(nonce, 16))
        except ValueError:
            raise ValueError(
                f"invalid shared-memory handle {text!r}: a handle is `name#nonce` with a "
                "hexadecimal nonce"
            ) from None


class SharedTensor:
    """The creator's side of a segment: its name, its :attr:`handle`, and
    :attr:`tensor`, the creator's writable view (a ``DLPackObject``). It is itself a
    DLPack producer (it forwards to :attr:`tensor`). Pickling it sends its handle only
    (the other side gets a :class:`Handle` to :func:`open`).

    ``with share(x) as st:`` unlinks the name at the end of the block."""

    __slots__ = ("_name", "_nonce", "_tensor", "read_only")

    def __init__(self, name: str, nonce: int, tensor: Any, read_only: bool):
        self._name = name
        self._nonce = nonce
        self._tensor = tensor
        #: Whether readers get a read-only tensor (and a read-only mapping).
        self.read_only = read_only

    @classmethod
    def empty(
        cls, shape, dtype: Any = "float32", *, name: str | None = None, read_only: bool = False
    ) -> "SharedTensor":
        """A new zero-filled, C-contiguous tensor in shared memory, to be filled in place
        through :attr:`tensor` (e.g. ``numpy.from_dlpack(st)[...] = values``)."""
        if isinstance(shape, int):
            shape = (shape,)
        n, c, t = _native._shm_empty(list(shape), _dtype(dtype), name, read_only)
        return cls(n, c, t, read_only)

    @property
    def name(self) -> str:
        """The segment's name (without a leading ``/``)."""
        return self._name

    @property
    def handle(self) -> Handle:
        """The small, picklable value another process opens."""
        return Handle(self._name, self._nonce)

    @property
    def tensor(self):
        """The creator's writable view over the segment (a ``DLPackObject``)."""
        if self._tensor is None:
            raise ValueError(f"shared tensor {self._name!r} is closed")
        return self._tensor

    def __dlpack__(self, *args, **kwargs):
        return self.tensor.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.tensor.__dlpack_device__()

    def close(self) -> None:
        """Drops this object's view; the mapping goes when no array imported from it
        remains. The name stays (see :meth:`unlink`)."""
        self._tensor = None

    def unlink(self) -> None:
        """Removes the name: later :func:`open` calls fail, every existing mapping (in
        any process) stays valid. ``FileNotFoundError`` if it is already gone."""
        _native._shm_unlink(self._name)

    def __enter__(self) -> "SharedTensor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        try:
            self.unlink()
        except FileNotFoundError:
            pass

    def __reduce__(self):
        return (Handle, (self._name, self._nonce))

    def __repr__(self):
        ro = ", read_only=True" if self.read_only else ""
        return f"SharedTensor({self._name!r}{ro})"


def share(obj: Any, name: str | None = None, *, read_only: bool = False) -> SharedTensor:
    """Copies a host tensor (anything :func:`dlpack.asdlpack` takes) into a new segment.

    ``name``: the segment's name (``[A-Za-z0-9._-]``, not starting with ``dlpack-``);
    by default a generated ``dlpack-<pid>-<start>-<hex>``, which :func:`cleanup_stale` removes
    once this process has exited. ``read_only``: readers get a read-only tensor and a
    read-only mapping. Device memory: ``TypeError`` (copy it to the host first)."""
    n, c, t = _native._shm_share(obj, name, read_only)
    return SharedTensor(n, c, t, read_only)


def empty(shape, dtype: Any = "float32", *, name: str | None = None, read_only: bool = False):
    """:meth:`SharedTensor.empty`."""
    return SharedTensor.empty(shape, dtype, name=name, read_only=read_only)


def open(handle: "Handle | SharedTensor | str"):  # noqa: A001 - the module's verb
    """Maps a segment (made by any process, Python or Rust) and returns a
    ``DLPackObject`` over it, zero-copy: read-only when the segment is. The mapping
    lives as long as the object or an array imported from it. A name alone (``str``)
    opens without the nonce check; ``"name#nonce"`` text is parsed as a handle."""
    if isinstance(handle, SharedTensor):
        handle = handle.handle
    if isinstance(handle, str):
        handle = Handle.parse(handle)
    if not isinstance(handle, Handle):
        raise TypeError(
            f"expected a dlpack.shared_memory.Handle, SharedTensor or name, got "
            f"{type(handle).__name__}"
        )
    return _native._shm_open(handle.name, handle.nonce)


def unlink(name: "str | Handle") -> None:
    """Removes a segment's name (existing mappings stay valid)."""
    _native._shm_unlink(name.name if isinstance(name, Handle) else name)


def cleanup_stale() -> list:
    """Removes every generated segment name whose creator process no longer runs (for
    instance killed by ``SIGKILL``) and returns the names removed. Mappings stay valid;
    user-named segments are left alone."""
    return _native._shm_cleanup_stale()
