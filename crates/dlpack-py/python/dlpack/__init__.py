"""dlpack: a universal, fast, spec-exact DLPack bridge.

``asdlpack(obj)`` turns anything that holds memory (buffer protocol,
``__array_interface__``, ``__cuda_array_interface__``, another DLPack producer,
a bare DLPack capsule) into a DLPack producer that also speaks the buffer
protocol and the array interfaces it honestly can.

Requires Python >= 3.9 (one ``abi3`` wheel for every later CPython; on
Windows >= 3.11).
"""

from ._native import (
    DLDeviceType,
    DLPackObject,
    Tensor,
    __version__,
    asdlpack,
    capsule_info,
    live_tensors,
)

__all__ = [
    "DLDeviceType",
    "DLPackObject",
    "Tensor",
    "__version__",
    "asdlpack",
    "capsule_info",
    "live_tensors",
]
