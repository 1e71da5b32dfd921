"""The DLPack C structures as ``ctypes`` types (pydlpack 0.2.1's names).

``DLManagedTensor`` and ``DLManagedTensorVersioned`` are also the values of
``asdlpack(obj, impl_cls=...)``. Each structure has ``todict()`` (the nested
dictionaries ``dlpack.todict`` returns) and a readable ``repr``; the fields
``device_type`` and ``code`` read as ``ctypes`` integers with a pydlpack
``label`` ("DLCPU", "DLFloat").
"""

import ctypes

from ._native import DLDataTypeCode as _Codes
from ._native import DLDeviceType as _DeviceTypes

__all__ = [
    "DLDataType",
    "DLDevice",
    "DLManagedTensor",
    "DLManagedTensorVersioned",
    "DLPackVersion",
    "DLTensor",
]


def _label(enum, value):
    try:
        return enum(value).label
    except ValueError:
        return value


class _DeviceTypeField(ctypes.c_int32):
    """A ``DLDevice.device_type`` value: ``.value`` and pydlpack's ``.label``."""

    @property
    def label(self):
        return _label(_DeviceTypes, self.value)

    @classmethod
    def from_label(cls, label):
        return cls(_DeviceTypes.from_label(label))

    def __repr__(self):
        return f"DLDeviceType({self.label!r})"


class _TypeCodeField(ctypes.c_uint8):
    """A ``DLDataType.code`` value: ``.value`` and pydlpack's ``.label``."""

    @property
    def label(self):
        return _label(_Codes, self.value)

    @classmethod
    def from_label(cls, label):
        return cls(_Codes.from_label(label))

    def __repr__(self):
        return f"DLDataTypeCode({self.label!r})"


class _Structure(ctypes.Structure):
    def _field_value(self, name, kind):
        value = getattr(self, name)
        if name in ("shape", "strides"):
            ndim = max(self.ndim, 0)
            if ndim == 0:
                return ()
            if not ctypes.cast(value, ctypes.c_void_p).value:
                return None
            return tuple(value[i] for i in range(ndim))
        if isinstance(value, _Structure):
            return value.todict()
        if isinstance(value, (_DeviceTypeField, _TypeCodeField)):
            return value.label
        if name == "deleter":
            return ctypes.cast(value, ctypes.c_void_p).value
        return value

    def todict(self):
        """The fields as a dictionary (nested structures as dictionaries,
        ``shape``/``strides`` as tuples or ``None``, labels for the device
        type and type code, addresses as ints or ``None``)."""
        return {name: self._field_value(name, kind) for name, kind in self._fields_}

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in self.todict().items())
        return f"{type(self).__name__}({fields})"

    __str__ = __repr__


class DLDevice(_Structure):
    """``DLDevice``: where the data lives."""

    _fields_ = [("device_type", _DeviceTypeField), ("device_id", ctypes.c_int32)]


class DLDataType(_Structure):
    """``DLDataType``: type code, bits per lane, lanes."""

    _fields_ = [("code", _TypeCodeField), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(_Structure):
    """``DLTensor``: the tensor descriptor (it owns nothing)."""

    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class DLPackVersion(_Structure):
    """``DLPackVersion``: the ABI version of a versioned managed tensor."""

    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensor(_Structure):
    """``DLManagedTensor``, the legacy (pre-1.0) managed tensor, capsule
    name ``"dltensor"``; it cannot say that data is read-only."""


DLManagedTensor._fields_ = [
    ("dl_tensor", DLTensor),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensor))),
]


class DLManagedTensorVersioned(_Structure):
    """``DLManagedTensorVersioned`` (DLPack >= 1.0), capsule name
    ``"dltensor_versioned"``, with ``version`` and ``flags``."""


DLManagedTensorVersioned._fields_ = [
    ("version", DLPackVersion),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensorVersioned))),
    ("flags", ctypes.c_uint64),
    ("dl_tensor", DLTensor),
]

# The C layout (dlpack.h, 64-bit targets).
if ctypes.sizeof(ctypes.c_void_p) == 8:
    assert ctypes.sizeof(DLTensor) == 48
    assert ctypes.sizeof(DLManagedTensor) == 64
    assert ctypes.sizeof(DLManagedTensorVersioned) == 80
