"""Arrow: ``asdlpack`` of objects that speak the Arrow PyCapsule interface
(``__arrow_c_array__`` / ``__arrow_c_stream__``), and ``__arrow_c_array__`` on our objects.

Producers: polars ``Series`` (only ``__arrow_c_stream__``), pyarrow ``ChunkedArray`` (a stream)
and pyarrow arrays behind an object that offers only ``__arrow_c_array__`` (pyarrow's own arrays
are DLPack producers and keep that path). Consumers: NumPy, PyTorch, ``pyarrow.array`` and
polars. Every exchange is checked by address: no copy either way, and the tensors of Arrow
memory are read-only (Arrow buffers are shared and immutable).
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import dlpack

from .conftest import READ_ONLY, np_ptr, testing

pa = pytest.importorskip("pyarrow")
torch = pytest.importorskip("torch")

if not hasattr(dlpack.DLPackObject, "__arrow_c_array__"):
    pytest.skip("the module was built without the `arrow` feature", allow_module_level=True)

# Arrow type -> numpy dtype, every Arrow primitive type with a DLPack dtype.
TYPES = [
    (pa.int8(), np.int8), (pa.int16(), np.int16), (pa.int32(), np.int32), (pa.int64(), np.int64),
    (pa.uint8(), np.uint8), (pa.uint16(), np.uint16), (pa.uint32(), np.uint32),
    (pa.uint64(), np.uint64), (pa.float16(), np.float16), (pa.float32(), np.float32),
    (pa.float64(), np.float64),
]
TYPE_IDS = [str(t) for t, _ in TYPES]


class ArrowArrayOnly:
    """An object that speaks only ``__arrow_c_array__`` (as nanoarrow's or a C library's
    arrays do): the Arrow path of ``asdlpack``, not pyarrow's own ``__dlpack__``."""

    def __init__(self, array):
        self.array = array

    def __arrow_c_array__(self, requested_schema=None):
        return self.array.__arrow_c_array__(requested_schema)


def values_address(pa_array):
    """The address of the first value of a primitive pyarrow array."""
    return pa_array.buffers()[1].address + pa_array.offset * pa_array.type.bit_width // 8


# ---------------------------------------------------------------------------------------------
# Arrow -> DLPack
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arrow_type,dtype", TYPES, ids=TYPE_IDS)
def test_arrow_c_array_to_numpy_and_torch_zero_copy(arrow_type, dtype):
    values = np.arange(10).astype(dtype)
    arr = pa.array(values, type=arrow_type)
    obj = dlpack.asdlpack(ArrowArrayOnly(arr))
    assert testing.import_info(ArrowArrayOnly(arr))["path"] == "arrow"
    out = np.from_dlpack(obj)
    assert out.dtype == dtype and np_ptr(out) == values_address(arr)
    np.testing.assert_array_equal(out, values)
    assert not out.flags.writeable, "Arrow memory is read-only"
    t = torch.from_dlpack(dlpack.asdlpack(ArrowArrayOnly(arr)))
    assert t.data_ptr() == values_address(arr)
    np.testing.assert_array_equal(t.numpy(), values)


def test_read_only_flag_and_slices():
    arr = pa.array(np.arange(100, dtype=np.int64)).slice(10, 5)
    info = testing.import_info(ArrowArrayOnly(arr))
    assert info["flags"] & READ_ONLY
    out = np.from_dlpack(dlpack.asdlpack(ArrowArrayOnly(arr)))
    assert np_ptr(out) == values_address(arr)
    np.testing.assert_array_equal(out, np.arange(10, 15))


def test_chunked_array_stream_single_chunk():
    values = np.linspace(0, 1, 7)
    chunked = pa.chunked_array([pa.array(values)])
    out = torch.from_dlpack(dlpack.asdlpack(chunked))
    assert out.data_ptr() == values_address(chunked.chunk(0))
    two = pa.chunked_array([pa.array(values), pa.array(values)])
    with pytest.raises(BufferError, match="2 chunks"):
        dlpack.asdlpack(two)


def test_pyarrow_arrays_keep_their_own_dlpack_path():
    arr = pa.array(np.arange(5, dtype=np.float32))
    assert testing.import_info(arr)["path"] == "dlpack"
    out = torch.from_dlpack(dlpack.asdlpack(arr))
    assert out.data_ptr() == values_address(arr)


def test_fixed_shape_tensor_array_to_torch_with_permutation():
    # Two tensors of logical shape (3, 2), stored as (2, 3) row-major: permutation [1, 0].
    storage = np.arange(12, dtype=np.float32)
    tensor_type = pa.fixed_shape_tensor(pa.float32(), [2, 3], permutation=[1, 0])
    arr = pa.ExtensionArray.from_storage(
        tensor_type, pa.FixedSizeListArray.from_arrays(pa.array(storage), 6))
    t = torch.from_dlpack(dlpack.asdlpack(ArrowArrayOnly(arr)))
    assert t.shape == (2, 3, 2) and t.stride() == (6, 1, 3)
    assert t.data_ptr() == arr.storage.values.buffers()[1].address
    np.testing.assert_array_equal(t.numpy(), arr.to_numpy_ndarray())


def test_nested_fixed_size_list_to_n_d():
    flat = pa.array(np.arange(24, dtype=np.int16))
    inner = pa.FixedSizeListArray.from_arrays(flat, 4)
    outer = pa.FixedSizeListArray.from_arrays(inner, 3)
    out = np.from_dlpack(dlpack.asdlpack(ArrowArrayOnly(outer)))
    assert out.shape == (2, 3, 4) and np_ptr(out) == values_address(flat)
    np.testing.assert_array_equal(out, np.arange(24).reshape(2, 3, 4))


@pytest.mark.parametrize("arr,exc,match", [
    (pa.array([1, None, 3]), BufferError, "1 null"),
    (pa.array([True, False]), BufferError, "bit-packed"),
    (pa.array(["a", "b"]), TypeError, "Utf8"),
    (pa.array([1, 2], type=pa.date32()), TypeError, "Date32"),
    (pa.array([1, 2], type=pa.decimal128(5, 2)), TypeError, "Decimal128"),
], ids=["nulls", "bool", "string", "date", "decimal"])
def test_refused_arrow_arrays(arr, exc, match):
    with pytest.raises(exc, match=match):
        dlpack.asdlpack(ArrowArrayOnly(arr))


def test_arrow_source_outlives_and_is_outlived():
    arr = pa.array(np.arange(1000, dtype=np.float64))
    addr = values_address(arr)
    obj = dlpack.asdlpack(ArrowArrayOnly(arr))
    del arr
    gc.collect()
    out = torch.from_dlpack(obj)
    del obj
    gc.collect()
    assert out.data_ptr() == addr and out[999].item() == 999.0


# ---------------------------------------------------------------------------------------------
# DLPack -> Arrow
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arrow_type,dtype", TYPES, ids=TYPE_IDS)
def test_pyarrow_array_of_numpy_zero_copy(arrow_type, dtype):
    a = np.arange(9).astype(dtype)
    arr = pa.array(dlpack.asdlpack(a))
    assert arr.type == arrow_type and arr.null_count == 0
    assert values_address(arr) == np_ptr(a)
    np.testing.assert_array_equal(arr.to_numpy(), a)


def test_pyarrow_array_of_torch_tensor_zero_copy_and_lifetime():
    t = torch.arange(16, dtype=torch.float32)
    addr = t.data_ptr()
    arr = pa.array(dlpack.asdlpack(t))
    del t
    gc.collect()
    assert values_address(arr) == addr
    assert arr.to_pylist()[15] == 15.0


def test_n_d_tensor_becomes_fixed_shape_tensor():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    arr = pa.array(dlpack.asdlpack(a))
    assert isinstance(arr.type, pa.FixedShapeTensorType)
    assert arr.type.shape == [3, 4] and len(arr) == 2
    assert arr.storage.values.buffers()[1].address == np_ptr(a)
    np.testing.assert_array_equal(arr.to_numpy_ndarray(), a)


def test_transposed_tensor_becomes_a_permutation_not_a_copy():
    base = np.arange(24, dtype=np.int32).reshape(2, 4, 3)
    a = base.transpose(0, 2, 1)  # logical (2, 3, 4), inner axes stored (4, 3)
    arr = pa.array(dlpack.asdlpack(a))
    assert arr.type.shape == [4, 3] and arr.type.permutation == [1, 0]
    assert arr.storage.values.buffers()[1].address == np_ptr(base)
    np.testing.assert_array_equal(arr.to_numpy_ndarray(), a)


@pytest.mark.parametrize("make,exc,match", [
    (lambda: np.arange(10, dtype=np.int64)[::2], BufferError, "not compact"),
    (lambda: np.array([True, False]), BufferError, "bit-packed"),
    (lambda: np.array(3.0), TypeError, "dimension"),
    (lambda: np.zeros(2, dtype=np.complex64), TypeError, "no Arrow primitive type"),
], ids=["strided", "bool", "0-d", "complex"])
def test_refused_tensors(make, exc, match):
    with pytest.raises(exc, match=match):
        dlpack.asdlpack(make()).__arrow_c_array__()


def test_unconsumed_capsules_release_the_source():
    a = np.arange(4, dtype=np.float32)
    ref = weakref.ref(a)
    schema, array = dlpack.asdlpack(a).__arrow_c_array__()
    del a
    gc.collect()
    assert ref() is not None, "the capsules keep the source alive"
    del schema, array
    gc.collect()
    assert ref() is None, "the capsules' destructors release the tensor"


# ---------------------------------------------------------------------------------------------
# polars
# ---------------------------------------------------------------------------------------------
pl = pytest.importorskip("polars")


@pytest.mark.parametrize("pl_dtype,dtype", [
    (pl.Int8, np.int8), (pl.Int32, np.int32), (pl.Int64, np.int64), (pl.UInt16, np.uint16),
    (pl.Float32, np.float32), (pl.Float64, np.float64),
])
def test_polars_series_to_torch_zero_copy(pl_dtype, dtype):
    s = pl.Series("x", np.arange(12).astype(dtype), dtype=pl_dtype)
    addr = values_address(s.to_arrow())
    assert testing.import_info(s)["path"] == "arrow"
    out = np.from_dlpack(dlpack.asdlpack(s))
    assert np_ptr(out) == addr
    np.testing.assert_array_equal(out, np.arange(12).astype(dtype))
    t = torch.from_dlpack(dlpack.asdlpack(s))
    assert t.data_ptr() == addr


def test_polars_array_column_is_n_d():
    values = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    s = pl.Series("m", values, dtype=pl.Array(pl.Float32, (2, 3)))
    out = torch.from_dlpack(dlpack.asdlpack(s))
    assert tuple(out.shape) == (2, 2, 3)
    np.testing.assert_array_equal(out.numpy(), np.arange(12, dtype=np.float32).reshape(2, 2, 3))


def test_polars_refusals():
    with pytest.raises(BufferError, match="null"):
        dlpack.asdlpack(pl.Series([1, None, 3]))
    with pytest.raises(BufferError, match="bit-packed"):
        dlpack.asdlpack(pl.Series([True, False]))
    chunked = pl.concat([pl.Series([1.0]), pl.Series([2.0])], rechunk=False)
    with pytest.raises(BufferError, match="chunks"):
        dlpack.asdlpack(chunked)
    assert np.from_dlpack(dlpack.asdlpack(chunked.rechunk())).tolist() == [1.0, 2.0]


def test_polars_reads_our_tensor_through_pyarrow():
    a = np.arange(6, dtype=np.float64)
    s = pl.from_arrow(pa.array(dlpack.asdlpack(a)))
    assert s.to_list() == a.tolist()
    assert values_address(s.to_arrow()) == np_ptr(a)


def test_arrow_types_skip_the_instance_lookups():
    """A type with the Arrow methods is classified from the type: its ``__getattr__`` (polars'
    costs ~10 us per missing name) is not run for the array interfaces and ``__dlpack__``."""
    looked_up = []

    class Lazy(ArrowArrayOnly):
        def __getattr__(self, name):
            looked_up.append(name)
            raise AttributeError(name)

    out = np.from_dlpack(dlpack.asdlpack(Lazy(pa.array([1.0, 2.0]))))
    assert out.tolist() == [1.0, 2.0]
    assert looked_up == []
