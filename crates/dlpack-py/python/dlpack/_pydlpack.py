"""pydlpack 0.2.1's ``asdlpack_<protocol>`` functions: ``asdlpack`` with the
protocol named, each taking pydlpack's ``impl_cls``."""

from ._native import asdlpack as _asdlpack

__all__ = [
    "asdlpack_array_interface_v2",
    "asdlpack_array_interface_v3",
    "asdlpack_buffer",
    "asdlpack_cuda_array_interface",
    "asdlpack_dlpack",
]


def asdlpack_dlpack(obj, impl_cls=None):
    """``asdlpack`` over ``obj.__dlpack__`` (forwarding each call to it)."""
    return _asdlpack(obj, impl_cls, protocol="dlpack")


def asdlpack_buffer(obj, impl_cls=None):
    """``asdlpack`` over ``obj``'s buffer protocol (read-only if ``obj``'s
    buffer is)."""
    return _asdlpack(obj, impl_cls, protocol="buffer")


def asdlpack_array_interface_v3(obj, impl_cls=None):
    """``asdlpack`` over ``obj.__array_interface__``."""
    return _asdlpack(obj, impl_cls, protocol="array_interface")


def asdlpack_cuda_array_interface(obj, impl_cls=None):
    """``asdlpack`` over ``obj.__cuda_array_interface__`` (its ``stream`` is
    waited on by each consumer's stream)."""
    return _asdlpack(obj, impl_cls, protocol="cuda_array_interface")


class _AttributeInterface:
    # The array interface of version 2 (separate __array_*__ attributes) as a
    # version 3 dictionary.
    __slots__ = ("obj", "__array_interface__")

    def __init__(self, obj):
        d = {"version": 3}
        for key in ("shape", "typestr", "data", "strides", "descr", "mask", "offset"):
            value = getattr(obj, f"__array_{key}__", None)
            if value is not None:
                d[key] = value
        for key in ("shape", "typestr"):
            if key not in d:
                raise TypeError(f"{type(obj).__name__} has no __array_{key}__")
        d.setdefault("data", obj)  # no __array_data__: the object's own buffer
        self.obj = obj
        self.__array_interface__ = d


def asdlpack_array_interface_v2(obj, impl_cls=None):
    """``asdlpack`` over the attributes of array interface version 2
    (``__array_shape__``, ``__array_typestr__``, and the optional
    ``__array_data__``, ``__array_strides__``, ``__array_descr__``,
    ``__array_mask__``, ``__array_offset__``); without ``__array_data__``
    the data is ``obj``'s buffer."""
    return _asdlpack(_AttributeInterface(obj), impl_cls, protocol="array_interface")


def _get_strides(shape):
    """The C-contiguous strides, in elements, of ``shape``."""
    strides = []
    step = 1
    for extent in reversed(tuple(shape)):
        strides.append(step)
        step *= extent
    return tuple(reversed(strides))
