"""Type stubs for ``dlpack.buffer`` (pydlpack 0.2.1's buffer-protocol view)."""

from typing import Any, final

@final
class Buffer:
    """A view of ``obj`` through the buffer protocol, requested with ``flags`` and held
    until the ``Buffer`` is freed (the exporter's error if it refuses)."""

    def __init__(self, obj: Any, flags: int = ...) -> None: ...
    @property
    def obj(self) -> Any: ...
    @property
    def ndim(self) -> int: ...
    @property
    def shape(self) -> tuple[int, ...] | None:
        """None without PyBUF_ND."""
    @property
    def strides(self) -> tuple[int, ...] | None:
        """In bytes; None without PyBUF_STRIDES."""
    @property
    def suboffsets(self) -> tuple[int, ...] | None: ...
    @property
    def itemsize(self) -> int: ...
    @property
    def len(self) -> int: ...
    @property
    def readonly(self) -> bool: ...
    @property
    def pointer(self) -> int | None: ...
    @property
    def format(self) -> str | None:
        """None without PyBUF_FORMAT."""

PyBUF_SIMPLE: int
PyBUF_WRITABLE: int
PyBUF_FORMAT: int
PyBUF_ND: int
PyBUF_STRIDES: int
PyBUF_C_CONTIGUOUS: int
PyBUF_F_CONTIGUOUS: int
PyBUF_ANY_CONTIGUOUS: int
PyBUF_INDIRECT: int
PyBUF_CONTIG: int
PyBUF_CONTIG_RO: int
PyBUF_STRIDED: int
PyBUF_STRIDED_RO: int
PyBUF_RECORDS: int
PyBUF_RECORDS_RO: int
PyBUF_FULL: int
PyBUF_FULL_RO: int
