"""DLPack's C structs in ctypes, to build the foreign inputs a producer written in C could hand
over: managed tensors with any field values, bare capsules with any name, and C exchange API
tables with any header and functions.

Every tensor built here owns its shape/strides arrays and a real data buffer, and counts how
often its deleter ran (the fuzz oracle: at most once, and once after everything is released).
"""

from __future__ import annotations

import ctypes

c_int64_p = ctypes.POINTER(ctypes.c_int64)


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", DLDataType),
        ("shape", c_int64_p),
        ("strides", c_int64_p),
        ("byte_offset", ctypes.c_uint64),
    ]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensor(ctypes.Structure):
    pass


class DLManagedTensorVersioned(ctypes.Structure):
    pass


LEGACY_DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensor))
VERSIONED_DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensorVersioned))

DLManagedTensor._fields_ = [
    ("dl_tensor", DLTensor),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", LEGACY_DELETER),
]
DLManagedTensorVersioned._fields_ = [
    ("version", DLPackVersion),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", VERSIONED_DELETER),
    ("flags", ctypes.c_uint64),
    ("dl_tensor", DLTensor),
]


class DLPackExchangeAPIHeader(ctypes.Structure):
    pass


DLPackExchangeAPIHeader._fields_ = [
    ("version", DLPackVersion),
    ("prev_api", ctypes.POINTER(DLPackExchangeAPIHeader)),
]

FROM_PY = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p))
DLTENSOR_FROM_PY = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(DLTensor))
WORK_STREAM = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int32, ctypes.c_int32,
                               ctypes.POINTER(ctypes.c_void_p))


class DLPackExchangeAPI(ctypes.Structure):
    _fields_ = [
        ("header", DLPackExchangeAPIHeader),
        ("managed_tensor_allocator", ctypes.c_void_p),
        ("managed_tensor_from_py_object_no_sync", FROM_PY),
        ("managed_tensor_to_py_object_no_sync", ctypes.c_void_p),
        ("dltensor_from_py_object_no_sync", DLTENSOR_FROM_PY),
        ("current_work_stream", WORK_STREAM),
    ]


_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


class Foreign:
    """A managed tensor made "in C": any field values, real arrays behind every pointer."""

    def __init__(self, *, versioned, version=(1, 3), flags=0, ndim=1, shape=(4,), strides=None,
                 dtype=(2, 32, 1), device=(1, 0), byte_offset=0, data=True, nbytes=64,
                 deleter=True):
        self.deleted = 0
        self.keep = []
        self.buffer = (ctypes.c_uint8 * max(nbytes, 1))()
        cls = DLManagedTensorVersioned if versioned else DLManagedTensor
        m = cls()
        t = m.dl_tensor
        t.data = ctypes.addressof(self.buffer) if data else None
        t.device = DLDevice(*device)
        t.ndim = ndim
        t.dtype = DLDataType(*dtype)
        if shape is not None:
            arr = (ctypes.c_int64 * max(len(shape), 1))(*shape)
            self.keep.append(arr)
            t.shape = ctypes.cast(arr, c_int64_p)
        if strides is not None:
            arr = (ctypes.c_int64 * max(len(strides), 1))(*strides)
            self.keep.append(arr)
            t.strides = ctypes.cast(arr, c_int64_p)
        t.byte_offset = byte_offset
        if versioned:
            m.version = DLPackVersion(*version)
            m.flags = flags
        if deleter:
            kind = VERSIONED_DELETER if versioned else LEGACY_DELETER
            cb = kind(self._delete)
            self.keep.append(cb)
            m.deleter = cb
        self.struct = m
        self.versioned = versioned

    def _delete(self, _p):
        self.deleted += 1

    @property
    def address(self):
        return ctypes.addressof(self.struct)

    def capsule(self, name=None):
        if name is None:
            name = b"dltensor_versioned" if self.versioned else b"dltensor"
        if name is not False:
            buf = ctypes.create_string_buffer(name)
            self.keep.append(buf)
            name = ctypes.addressof(buf)
        else:
            name = None
        return _capsule_new(self.address, ctypes.cast(name, ctypes.c_char_p) if name else None,
                            None)


class Table:
    """A C exchange API table with any header and functions (callbacks in Python)."""

    def __init__(self, *, version=(1, 3), prev=None, from_py=None, dltensor_from_py=None,
                 work_stream=None):
        self.keep = []
        t = DLPackExchangeAPI()
        t.header.version = DLPackVersion(*version)
        if prev is not None:
            self.keep.append(prev)
            t.header.prev_api = ctypes.cast(ctypes.addressof(prev.struct),
                                            ctypes.POINTER(DLPackExchangeAPIHeader))
        for field, kind, fn in (
            ("managed_tensor_from_py_object_no_sync", FROM_PY, from_py),
            ("dltensor_from_py_object_no_sync", DLTENSOR_FROM_PY, dltensor_from_py),
            ("current_work_stream", WORK_STREAM, work_stream),
        ):
            if fn is not None:
                cb = kind(fn)
                self.keep.append(cb)
                setattr(t, field, cb)
        self.struct = t
        self.name = ctypes.create_string_buffer(b"dlpack_exchange_api")

    @property
    def address(self):
        return ctypes.addressof(self.struct)

    def capsule(self, name=b"dlpack_exchange_api"):
        buf = ctypes.create_string_buffer(name)
        self.keep.append(buf)
        return _capsule_new(self.address, ctypes.cast(buf, ctypes.c_char_p), None)
