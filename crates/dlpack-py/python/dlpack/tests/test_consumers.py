"""Our export objects (DLPackObject from asdlpack, Rust-owned Tensor) -> every real consumer."""

import numpy as np
import pytest

import dlpack

from .conftest import (BACKENDS, CONSUMERS, LAYOUTS, SHAPES, assert_values, layout_base_shape,
                       layout_view, live, np_ptr, reference, shape_id, testing)


def _cases():
    out = []
    for cname in CONSUMERS:
        c = BACKENDS[cname]
        for dt in c.consumer_dtypes:
            for shape in SHAPES:
                out.append(pytest.param(cname, dt, shape, "contiguous",
                                        id=f"{cname}-{dt}-{shape_id(shape)}"))
            for lay in LAYOUTS[1:]:
                if lay in c.consumer_layouts:
                    out.append(pytest.param(cname, dt, (5, 6, 5), lay, id=f"{cname}-{dt}-{lay}"))
    return out


def _source(dt, shape, layout):
    """A host source for our module: numpy, or torch for bfloat16 (numpy cannot export it)."""
    ref = layout_view(reference(dt, layout_base_shape(layout, shape)), layout)
    if dt == "bfloat16":
        src = BACKENDS["torch"].make(reference(dt, layout_base_shape(layout, shape)), layout)
        return src, src.data_ptr(), ref
    src = np.array(reference(dt, layout_base_shape(layout, shape)))
    src = layout_view(src, layout)
    return src, np_ptr(src), ref


@pytest.mark.parametrize("consumer,dtype,shape,layout", _cases())
def test_asdlpack_to_consumer(consumer, dtype, shape, layout):
    c = BACKENDS[consumer]
    c.module()
    if dtype == "bfloat16":
        BACKENDS["torch"].module()
    src, ptr, ref = _source(dtype, shape, layout)
    obj = dlpack.asdlpack(src)
    got = c.from_dlpack(obj)
    assert_values(c.to_numpy(got), ref)
    if c.zero_copy_consumer and ref.size > 0 and c.ptr(got) is not None:
        assert c.ptr(got) == ptr, "consumer must share the source memory (zero-copy)"


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_readonly_source_to_consumer(consumer):
    c = BACKENDS[consumer]
    c.module()
    a = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    a.flags.writeable = False
    obj = dlpack.asdlpack(a)
    if c.consumes_readonly:
        got = c.from_dlpack(obj)
        assert_values(c.to_numpy(got), a)
        if c.ptr(got) is not None and c.zero_copy_consumer:
            assert c.ptr(got) == np_ptr(a)
        if consumer == "numpy":
            assert got.flags.writeable is False, "READ_ONLY must reach numpy"
    else:
        # this consumer only asks for legacy capsules, which cannot signal read-only
        with pytest.raises(BufferError):
            c.from_dlpack(obj)


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_bytes_to_consumer(consumer):
    c = BACKENDS[consumer]
    c.module()
    b = bytes(range(1, 33))
    obj = dlpack.asdlpack(b)
    assert obj.readonly is True
    if c.consumes_readonly:
        got = c.from_dlpack(obj)
        assert_values(c.to_numpy(got), np.arange(1, 33, dtype=np.uint8))
    else:
        with pytest.raises(BufferError):
            c.from_dlpack(obj)


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8", "int32"])
def test_rust_tensor_to_consumer(consumer, dtype):
    c = BACKENDS[consumer]
    c.module()
    if dtype not in c.consumer_dtypes:
        pytest.skip(f"{consumer} has no {dtype}")
    t = testing.arange(24, dtype=dtype, shape=(2, 3, 4))
    got = c.from_dlpack(t)
    assert_values(c.to_numpy(got), np.arange(24).reshape(2, 3, 4).astype(dtype))
    if c.zero_copy_consumer and c.ptr(got) is not None:
        data = dlpack.capsule_info(t.__dlpack__(max_version=(1, 3)))["data"]
        assert c.ptr(got) == data


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_rust_tensor_readonly_to_consumer(consumer):
    c = BACKENDS[consumer]
    c.module()
    t = testing.arange(6, dtype="float64", read_only=True)
    if c.consumes_readonly:
        got = c.from_dlpack(t)
        assert_values(c.to_numpy(got), np.arange(6, dtype=np.float64))
        if consumer == "numpy":
            assert got.flags.writeable is False
    else:
        with pytest.raises(BufferError):
            c.from_dlpack(t)


def test_one_object_many_consumers():
    base = live()
    a = np.arange(1, 25, dtype=np.float32).reshape(4, 6)
    obj = dlpack.asdlpack(a)
    results = []
    leaky = False
    for cname in CONSUMERS:
        c = BACKENDS[cname]
        try:
            c.module()
        except pytest.skip.Exception:
            continue
        leaky |= not c.releases_imports
        for _ in range(3):
            got = c.from_dlpack(obj)
            assert_values(c.to_numpy(got), a)
            results.append(got)
    assert len(results) >= 3
    # the source is shared: a write shows through the zero-copy consumers
    a[0, 0] = -7
    assert np.from_dlpack(obj)[0, 0] == -7
    # (a generator's variable does not outlive it: a `for` loop's would keep the last import alive)
    assert all(r[0, 0] == -7 for r in results if hasattr(r, "flags")), "numpy results share a"
    del results, obj, got
    if not leaky:
        assert live() == base


def test_writes_through_consumers_reach_source():
    torch = BACKENDS["torch"].module()
    a = np.zeros(8, dtype=np.int64)
    t = torch.from_dlpack(dlpack.asdlpack(a))
    t += 5
    np.testing.assert_array_equal(a, 5)
    r = np.from_dlpack(dlpack.asdlpack(a))
    r[3] = 9
    assert a[3] == 9
