"""Type stubs for the ``dlpack`` package (Python >= 3.9)."""

import ctypes
import enum
import os
from typing import Any, Callable, Literal, final

from . import buffer as buffer
from . import capsule as capsule

__version__: str

class _Labelled(enum.IntEnum):
    @property
    def label(self) -> str:
        """pydlpack's name: the header's without the leading "k" ("DLCPU")."""
    @classmethod
    def from_label(cls, label: str) -> Any:
        """The member of a pydlpack label (KeyError for an unknown one)."""

class DLDeviceType(_Labelled):
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

class DLDataTypeCode(_Labelled):
    kDLInt = 0
    kDLUInt = 1
    kDLFloat = 2
    kDLOpaqueHandle = 3
    kDLBfloat = 4
    kDLComplex = 5
    kDLBool = 6
    kDLFloat8_e3m4 = 7
    kDLFloat8_e4m3 = 8
    kDLFloat8_e4m3b11fnuz = 9
    kDLFloat8_e4m3fn = 10
    kDLFloat8_e4m3fnuz = 11
    kDLFloat8_e5m2 = 12
    kDLFloat8_e5m2fnuz = 13
    kDLFloat8_e8m0fnu = 14
    kDLFloat6_e2m3fn = 15
    kDLFloat6_e3m2fn = 16
    kDLFloat4_e2m1fn = 17
    kDLBcomplex = 18

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
    def readonly(self) -> bool:
        """READ_ONLY data, or a legacy tensor (which cannot say that it may be written)."""
    @property
    def nbytes(self) -> int: ...
    @property
    def source(self) -> Any: ...
    def __reduce_ex__(self, protocol: int, /) -> tuple[Any, tuple[Any, ...]]:
        """Pickling (host memory; device memory raises TypeError): the byte span as a
        ``pickle.PickleBuffer`` with protocol 5 (out of band when the transport takes
        buffers), copied in band below 5; unpickles as a ``DLPackObject``."""
    def __arrow_c_array__(self, requested_schema: Any = None) -> tuple[Any, Any]:
        """The Arrow PyCapsule interface (host memory, no copy): ("arrow_schema",
        "arrow_array") capsules of a primitive array (1-D) or an ``arrow.fixed_shape_tensor``
        (N-d); bool, strided and 0-d tensors raise."""

@final
class DLPackObject(_Producer):
    """What ``asdlpack`` returns.

    Over a device producer, the description (``shape``, ``strides``, ``dtype``, ``device``,
    ``readonly``, ``nbytes``, ``repr``) is asked of it with ``stream=-1`` and never
    synchronises; ``__dlpack__`` forwards each call with the consumer's own stream."""

@final
class Tensor(_Producer):
    """A Rust-owned tensor exported to Python."""

_ImplCls = type[DLManagedTensor] | type[DLManagedTensorVersioned] | None

def asdlpack(
    obj: Any,
    impl_cls: _ImplCls = None,
    *,
    protocol: Literal["dlpack", "buffer", "array_interface", "cuda_array_interface", "capsule"]
    | None = None,
) -> DLPackObject:
    """Wraps ``obj`` as a DLPack producer.

    ``impl_cls`` (pydlpack's argument) picks the one struct ``__dlpack__``
    exports: ``None`` follows the consumer's ``max_version`` (the spec);
    ``DLManagedTensor`` always gives a ``"dltensor"`` capsule (as a pre-1.0
    producer; read-only data is then refused with ``BufferError``, since
    the legacy struct cannot say it); ``DLManagedTensorVersioned`` gives
    ``"dltensor_versioned"`` and refuses a call without
    ``max_version >= (1, 0)`` with ``BufferError`` (pydlpack put the
    versioned struct under the legacy name, which consumers misread). The C
    exchange API (``__dlpack_c_exchange_api__``, DLPack 1.3) is versioned
    whatever ``impl_cls`` says.

    Read-only memory (``bytes``, a read-only array, ``memoryview``, ``mmap``) is exported with
    ``DLPACK_FLAG_BITMASK_READ_ONLY`` to a consumer that asks for a versioned capsule
    (``max_version >= (1, 0)``; numpy >= 2.1, torch). A consumer that asks only for the legacy
    protocol (``__dlpack__()`` without ``max_version``: numpy 2.0, tensorflow, jax) is refused
    with ``BufferError``, since a legacy ``DLManagedTensor`` cannot say read-only: on numpy 2.0,
    ``np.from_dlpack(asdlpack(b"..."))`` raises ``BufferError`` (as numpy 2.0 does for its own
    read-only arrays; the standard allows refusing). Writable memory goes to every consumer.
    """

# pydlpack 0.2.1: asdlpack with the protocol named.
def asdlpack_dlpack(obj: Any, impl_cls: _ImplCls = None) -> DLPackObject:
    """``asdlpack(obj, impl_cls, protocol="dlpack")``: forwards to ``obj.__dlpack__``."""
def asdlpack_buffer(obj: Any, impl_cls: _ImplCls = None) -> DLPackObject:
    """``asdlpack(obj, impl_cls, protocol="buffer")``; read-only iff the buffer is
    (pydlpack marked every buffer read-only)."""
def asdlpack_array_interface_v3(obj: Any, impl_cls: _ImplCls = None) -> DLPackObject:
    """``asdlpack(obj, impl_cls, protocol="array_interface")``."""
def asdlpack_array_interface_v2(obj: Any, impl_cls: _ImplCls = None) -> DLPackObject:
    """Over the attributes ``__array_shape__``, ``__array_typestr__`` and the optional
    ``__array_data__`` (else ``obj``'s buffer), ``__array_strides__``, ``__array_descr__``,
    ``__array_mask__`` (refused), ``__array_offset__`` (pydlpack raised
    ``NotImplementedError``)."""
def asdlpack_cuda_array_interface(obj: Any, impl_cls: _ImplCls = None) -> DLPackObject:
    """``asdlpack(obj, impl_cls, protocol="cuda_array_interface")``; the device id is
    the pointer's, and each consumer's stream waits on the interface's ``stream``
    (pydlpack: device 0, stream ignored)."""

def todict(capsule: Any) -> dict[str, Any]:
    """The managed tensor of an unconsumed DLPack capsule as pydlpack's nested dicts,
    without consuming it. The capsule's name decides the struct ("dltensor":
    ``dl_tensor``, ``manager_ctx``, ``deleter``; "dltensor_versioned": also ``version``
    ({"major", "minor"}) and ``flags``); ``dl_tensor`` holds ``data``, ``device``
    ({"device_type": label such as "DLCPU", "device_id"}), ``ndim``, ``dtype`` ({"code":
    label such as "DLFloat", "bits", "lanes"}), ``shape`` and ``strides`` (tuples, ``()``
    for 0-d, ``None`` for NULL strides) and ``byte_offset``. Addresses are ints or
    ``None``; a label is the number for a value the standard does not define. ``TypeError``
    for a non-capsule, ``ValueError`` for another capsule name (a consumed one too)."""

@final
class Capsule:
    """pydlpack's wrapper of a ``PyCapsule`` and its C API. Names are kept for the life
    of the process (CPython stores the pointer); a destructor receives a ``Capsule``
    valid only while it runs (``capsule`` is then ``None``)."""

    def __init__(self, capsule: Any) -> None: ...
    @classmethod
    def new(
        cls, pointer: int, name: str | bytes | None, destructor: Callable[[Capsule], None] | None = None
    ) -> Capsule: ...
    @property
    def capsule(self) -> Any: ...
    def is_valid(self, name: str | bytes | None) -> bool: ...
    def get_pointer(self, name: str | bytes | None) -> int: ...
    def set_pointer(self, pointer: int) -> None: ...
    def get_name(self) -> str | None: ...
    def set_name(self, name: str | bytes | None) -> None: ...
    def get_context(self) -> int | None: ...
    def set_context(self, context: int | None) -> None: ...
    def get_destructor(self) -> Callable[[Capsule], None] | int | None:
        """The Python destructor set here, else the C destructor's address, or None."""
    def set_destructor(self, destructor: Callable[[Capsule], None] | None) -> None: ...

# ctypes structures of dlpack.h (loaded on first use).
class _Structure(ctypes.Structure):
    def todict(self) -> dict[str, Any]: ...

class DLDevice(_Structure):
    device_type: Any
    """A c_int32 with ``.value`` and pydlpack's ``.label``."""
    device_id: int

class DLDataType(_Structure):
    code: Any
    """A c_uint8 with ``.value`` and pydlpack's ``.label``."""
    bits: int
    lanes: int

class DLTensor(_Structure):
    data: int | None
    device: DLDevice
    ndim: int
    dtype: DLDataType
    shape: Any
    strides: Any
    byte_offset: int

class DLPackVersion(_Structure):
    major: int
    minor: int

class DLManagedTensor(_Structure):
    dl_tensor: DLTensor
    manager_ctx: int | None
    deleter: Any

class DLManagedTensorVersioned(_Structure):
    version: DLPackVersion
    manager_ctx: int | None
    deleter: Any
    flags: int
    dl_tensor: DLTensor
def capsule_info(capsule: Any) -> dict[str, Any]: ...
def live_tensors() -> int: ...
def load_safetensors(
    path: str | os.PathLike[str], *, copy_misaligned: bool = False
) -> dict[str, Tensor]:
    """Every tensor of a ``.safetensors`` file, in the file's order, as a read-only
    ``Tensor`` inside one memory map of the file (no copy; the map lives while any
    tensor does). A corrupt file raises ``ValueError`` naming the rule, a missing one
    ``FileNotFoundError``; a tensor not aligned for its dtype raises ``BufferError``,
    or is copied when ``copy_misaligned`` is true."""

@final
class SafetensorsFile:
    """A ``.safetensors`` file mapped once; tensors taken out one at a time (as
    ``safetensors.safe_open``), each read-only and keeping the map alive."""
    def __init__(self, path: str | os.PathLike[str], *, copy_misaligned: bool = False) -> None: ...
    def keys(self) -> list[str]: ...
    def metadata(self) -> dict[str, str]: ...
    def get_tensor(self, name: str) -> Tensor: ...
    def __getitem__(self, name: str) -> Tensor: ...
    def __contains__(self, name: str) -> bool: ...
    def __len__(self) -> int: ...
    def __enter__(self) -> SafetensorsFile: ...
    def __exit__(self, *args: Any) -> bool: ...
