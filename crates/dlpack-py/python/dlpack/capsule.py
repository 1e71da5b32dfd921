"""pydlpack 0.2.1's ``dlpack.capsule``: ``Capsule``, the wrapper of a ``PyCapsule`` and
its C API (the same class as ``dlpack.Capsule``)."""

from ._native import Capsule

__all__ = ["Capsule"]
