"""dlpack: a universal, fast, spec-exact DLPack bridge.

``asdlpack(obj)`` turns anything that holds memory (buffer protocol,
``__array_interface__``, ``__cuda_array_interface__``, another DLPack producer,
a bare DLPack capsule) into a DLPack producer that also speaks the buffer
protocol and the array interfaces it honestly can.

pydlpack 0.2.1's namespace is here too, with its meaning: ``asdlpack(obj,
impl_cls=...)``, ``asdlpack_dlpack``, ``asdlpack_buffer``,
``asdlpack_array_interface_v3``, ``asdlpack_array_interface_v2``,
``asdlpack_cuda_array_interface``, ``todict``, the ctypes structures
(``DLManagedTensor``, ``DLManagedTensorVersioned``, ``DLTensor``, ``DLDevice``,
``DLDataType``, ``DLPackVersion``; loaded on first use), ``DLDataTypeCode``,
``Capsule`` (also ``dlpack.capsule``) and ``dlpack.buffer``.

Requires Python >= 3.9 (one ``abi3`` wheel for every later CPython; on
Windows >= 3.11).
"""

from ._native import (
    Capsule,
    DLDataTypeCode,
    DLDeviceType,
    DLPackObject,
    Tensor,
    __version__,
    asdlpack,
    capsule_info,
    live_tensors,
    todict,
)
try:  # the feature `safetensors`, which the wheel turns on
    from ._native import SafetensorsFile, load_safetensors
except ImportError:  # a build of the module without it
    pass
from ._pydlpack import (
    _get_strides,
    asdlpack_array_interface_v2,
    asdlpack_array_interface_v3,
    asdlpack_buffer,
    asdlpack_cuda_array_interface,
    asdlpack_dlpack,
)

# ctypes is imported only when a structure is used.
_ABI = frozenset(
    ("DLDataType", "DLDevice", "DLManagedTensor", "DLManagedTensorVersioned", "DLPackVersion", "DLTensor")
)


def __getattr__(name):
    import importlib

    if name in _ABI:
        return getattr(importlib.import_module("._abi", __name__), name)
    if name in ("buffer", "capsule"):
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module 'dlpack' has no attribute {name!r}")


__all__ = [
    "Capsule",
    "DLDataType",
    "DLDataTypeCode",
    "DLDevice",
    "DLManagedTensor",
    "DLManagedTensorVersioned",
    "DLPackVersion",
    "DLTensor",
    "asdlpack_array_interface_v2",
    "asdlpack_array_interface_v3",
    "asdlpack_buffer",
    "asdlpack_cuda_array_interface",
    "asdlpack_dlpack",
    "todict",
    "DLDeviceType",
    "DLPackObject",
    "Tensor",
    "__version__",
    "asdlpack",
    "capsule_info",
    "live_tensors",
    "load_safetensors",
    "SafetensorsFile",
]
