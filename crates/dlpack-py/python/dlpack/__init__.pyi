"""Type stubs for the ``dlpack`` package (Python >= 3.9)."""

import enum
from typing import Any, Literal, final

__version__: str

class DLDeviceType(enum.IntEnum):
    kDLCPU = 1
    kDLCUDA = 2
    kDLCUDAHost = 3
    kDLOpenCL = 4
    kDLVulkan = 7
    kDLMetal = 8
    kDLVPI = 9
    kDLROCM = 10
    kDLROCMHost = 11
    kDLExtDev = 12
    kDLCUDAManaged = 13
    kDLOneAPI = 14
    kDLWebGPU = 15
    kDLHexagon = 16
    kDLMAIA = 17
    kDLTrn = 18
    kDLTPU = 19
    kDLTPUHost = 20

_Device = tuple[DLDeviceType | int, int]

class _Producer:
    """The protocol surface shared by ``DLPackObject`` and ``Tensor``."""

    __dlpack_c_exchange_api__: Any
    """PyCapsule named "dlpack_exchange_api" (DLPack 1.3 C exchange API)."""

    def __dlpack__(
        self,
        *,
        stream: int | None = None,
        max_version: tuple[int, int] | None = None,
        dl_device: tuple[int, int] | None = None,
        copy: bool | None = None,
    ) -> Any:
        """A fresh PyCapsule ("dltensor_versioned" when max_version[0] >= 1, else "dltensor")."""
    def __dlpack_device__(self) -> _Device: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    @property
    def __array_interface__(self) -> dict[str, Any]:
        """Host memory only (AttributeError otherwise)."""
    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        """CUDA memory only (AttributeError otherwise); includes "stream"."""
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def strides(self) -> tuple[int, ...]:
        """Strides in elements."""
    @property
    def dtype(self) -> tuple[int, int, int]:
        """(code, bits, lanes)."""
    @property
    def device(self) -> _Device: ...
    @property
    def readonly(self) -> bool: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def source(self) -> Any: ...

@final
class DLPackObject(_Producer):
    """What ``asdlpack`` returns."""

@final
class Tensor(_Producer):
    """A Rust-owned tensor exported to Python."""

def asdlpack(
    obj: Any,
    *,
    protocol: Literal["dlpack", "buffer", "array_interface", "cuda_array_interface", "capsule"]
    | None = None,
) -> DLPackObject:
    """A DLPack producer over ``obj``'s memory (zero-copy).

    Read-only memory (``bytes``, a read-only array, ``memoryview``, ``mmap``) is exported with
    ``DLPACK_FLAG_BITMASK_READ_ONLY`` to a consumer that asks for a versioned capsule
    (``max_version >= (1, 0)``; numpy >= 2.1, torch). A consumer that asks only for the legacy
    protocol (``__dlpack__()`` without ``max_version``: numpy 2.0, tensorflow, jax) is refused
    with ``BufferError``, since a legacy ``DLManagedTensor`` cannot say read-only: on numpy 2.0,
    ``np.from_dlpack(asdlpack(b"..."))`` raises ``BufferError`` (as numpy 2.0 does for its own
    read-only arrays; the standard allows refusing). Writable memory goes to every consumer.
    """
def capsule_info(capsule: Any) -> dict[str, Any]: ...
def live_tensors() -> int: ...
