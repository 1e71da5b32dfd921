"""Type stubs for ``dlpack.capsule`` (pydlpack 0.2.1's module of ``Capsule``)."""

from . import Capsule as Capsule
