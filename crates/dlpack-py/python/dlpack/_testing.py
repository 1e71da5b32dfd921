"""Test hooks compiled into the extension (see the contract).

The device helpers (``DeviceBuffer``, ``stream_create``, ``stream_destroy``,
``driver_present``, ``forget_pooled_events``) exist in builds with the ``cuda``
or ``rocm`` feature (the wheel has both): small helpers that let tests make
device tensors on a GPU or on the gpu-sim simulator. Not a public API.
"""

from ._native import _testing as _t

noop = _t.noop
take = _t.take
take_borrowed = _t.take_borrowed
call_dlpack = _t.call_dlpack
import_info = _t.import_info
sum_f64 = _t.sum_f64
fill = _t.fill
arange = _t.arange
reexport = _t.reexport
panic = _t.panic
panic_fastcall = _t.panic_fastcall
BufferExporter = _t.BufferExporter

__all__ = ["noop", "take", "take_borrowed", "call_dlpack", "import_info", "sum_f64", "fill", "arange",
           "reexport", "panic", "panic_fastcall", "BufferExporter"]

_DEVICE = ("DeviceBuffer", "stream_create", "stream_destroy", "driver_present",
           "forget_pooled_events")
if hasattr(_t, "DeviceBuffer"):
    for _name in _DEVICE:
        globals()[_name] = getattr(_t, _name)
    __all__ += list(_DEVICE)
