"""`dlpack.load_safetensors`: files written by the `safetensors` package (from numpy and
torch) read back as read-only tensors inside one memory map of the file, imported by NumPy,
PyTorch and JAX without a copy; corrupt files refused with ValueError naming the rule."""

from __future__ import annotations

import gc
import json
import os
import struct

import numpy as np
import pytest

import dlpack

st_numpy = pytest.importorskip("safetensors.numpy")
pytestmark = pytest.mark.skipif(
    not hasattr(dlpack, "load_safetensors"), reason="module built without `safetensors`"
)


def maps_of(path):
    """The (start, end) address ranges of this process's maps of `path` (Linux)."""
    real = os.path.realpath(path)
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].strip() == real:
                lo, hi = parts[0].split("-")
                out.append((int(lo, 16), int(hi, 16)))
    return out


def header_of(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return 8 + n, json.loads(f.read(n))


def assert_inside(addr, path, name):
    """`addr` lies in the map of `path`, at the tensor's own place in the file."""
    (lo, hi), = maps_of(path)
    start, header = header_of(path)
    assert addr == lo + start + header[name]["data_offsets"][0], name
    assert lo <= addr < hi


NUMPY_ARRAYS = {
    "b": np.array([True, False, True]),
    "u8": np.arange(7, dtype=np.uint8),
    "i8": -np.arange(5, dtype=np.int8),
    "u16": np.arange(6, dtype=np.uint16).reshape(2, 3),
    "i16": np.arange(6, dtype=np.int16) - 3,
    "u32": np.arange(4, dtype=np.uint32) * 1000,
    "i32": np.arange(12, dtype=np.int32).reshape(3, 4),
    "u64": np.arange(3, dtype=np.uint64) << 40,
    "i64": np.arange(2 * 3 * 4, dtype=np.int64).reshape(2, 3, 4),
    "f16": np.linspace(-1, 1, 9, dtype=np.float16),
    "f32": np.linspace(0, 1, 10, dtype=np.float32).reshape(2, 5),
    "f64": np.linspace(0, 1, 3),
    "c64": np.array([1 + 2j, 3 - 4j], dtype=np.complex64),
    "scalar": np.array(3.5, dtype=np.float32),
    "empty": np.zeros((0, 4), dtype=np.float64),
}


def test_numpy_written_files_are_shared_read_only(tmp_path):
    path = str(tmp_path / "np.safetensors")
    st_numpy.save_file(NUMPY_ARRAYS, path, metadata={"format": "np"})
    tensors = dlpack.load_safetensors(path)
    assert set(tensors) == set(NUMPY_ARRAYS)
    for name, want in NUMPY_ARRAYS.items():
        t = tensors[name]
        assert isinstance(t, dlpack.Tensor)
        a = np.from_dlpack(t)
        assert a.dtype == want.dtype and a.shape == want.shape, name
        np.testing.assert_array_equal(a, want)
        if a.size:  # (NumPy makes its own empty arrays)
            assert not a.flags.writeable, name
            with pytest.raises(ValueError):
                a[...] = 0
            assert_inside(a.ctypes.data, path, name)


def test_the_map_lives_while_any_tensor_does(tmp_path):
    path = str(tmp_path / "life.safetensors")
    st_numpy.save_file({"a": np.arange(1000.0), "b": np.ones(3, np.int32)}, path)
    a = np.from_dlpack(dlpack.load_safetensors(path)["a"])
    gc.collect()
    assert len(maps_of(path)) == 1  # the dict and the other tensor are gone, the map is not
    np.testing.assert_array_equal(a, np.arange(1000.0))
    del a
    gc.collect()
    assert maps_of(path) == []  # unmapped with the last tensor


def test_torch_written_files_in_torch_dtypes(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    src = {
        "bf16": torch.linspace(-2, 2, 12, dtype=torch.bfloat16).reshape(3, 4),
        "f16": torch.linspace(-2, 2, 5, dtype=torch.float16),
        "f32": torch.randn(4, 5, generator=torch.Generator().manual_seed(0)),
        "f64": torch.arange(3, dtype=torch.float64),
        "e4m3": torch.linspace(-4, 4, 16).to(torch.float8_e4m3fn),
        "e5m2": torch.linspace(-4, 4, 8).to(torch.float8_e5m2),
        "bool": torch.tensor([True, False]),
        "i64": torch.arange(6).reshape(2, 3),
        "u8": torch.arange(9, dtype=torch.uint8),
        "u16": torch.arange(4).to(torch.uint16),
        "u32": torch.arange(4).to(torch.uint32),
        "u64": torch.arange(4).to(torch.uint64),
        "c64": torch.tensor([1 + 1j], dtype=torch.complex64),
    }
    path = str(tmp_path / "pt.safetensors")
    st_torch.save_file(src, path)
    tensors = dlpack.load_safetensors(path)
    for name, want in src.items():
        got = torch.from_dlpack(tensors[name])
        assert got.dtype == want.dtype and got.shape == want.shape, name
        if want.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
            assert torch.equal(got.view(torch.uint8), want.view(torch.uint8)), name
        else:
            assert torch.equal(got, want), name
        assert_inside(got.data_ptr(), path, name)
    # The same file through safetensors' own loader: equal values.
    theirs = st_torch.load_file(path)
    for name in src:
        a, b = torch.from_dlpack(tensors[name]), theirs[name]
        assert torch.equal(a.view(torch.uint8), b.view(torch.uint8)), name


def test_safetensors_file_takes_tensors_out_one_at_a_time(tmp_path):
    path = str(tmp_path / "lazy.safetensors")
    st_numpy.save_file(NUMPY_ARRAYS, path, metadata={"format": "np", "k": "v"})
    ref = st_numpy.load_file(path)
    with dlpack.SafetensorsFile(path) as f:
        assert sorted(f.keys()) == sorted(ref) and len(f) == len(NUMPY_ARRAYS)
        assert f.metadata() == {"format": "np", "k": "v"}
        assert "f32" in f and "nope" not in f
        a = np.from_dlpack(f.get_tensor("f32"))
        np.testing.assert_array_equal(a, ref["f32"])
        assert not a.flags.writeable
        assert_inside(a.ctypes.data, path, "f32")
        np.testing.assert_array_equal(np.from_dlpack(f["i64"]), NUMPY_ARRAYS["i64"])
        with pytest.raises(KeyError, match="nope"):
            f["nope"]
        with pytest.raises(ValueError, match="no tensor named 'nope'|no tensor named \"nope\""):
            f.get_tensor("nope")
    del f
    gc.collect()
    assert len(maps_of(path)) == 1  # `a` holds the map
    del a
    gc.collect()
    assert maps_of(path) == []


def test_a_consumer_that_ignores_read_only_cannot_crash_or_touch_the_file(tmp_path):
    """torch 2.15 imports READ_ONLY tensors as writable ones: an in-place write must
    neither kill the process (a read-only map would: SIGSEGV) nor reach the file."""
    import subprocess
    import sys

    pytest.importorskip("torch")
    path = str(tmp_path / "w.safetensors")
    st_numpy.save_file({"w": np.arange(8, dtype=np.float32)}, path)
    before = open(path, "rb").read()
    code = (
        "import dlpack, torch\n"
        f"t = torch.from_dlpack(dlpack.load_safetensors({path!r})['w'])\n"
        "t.add_(1)\n"
        "assert t.tolist() == [float(i + 1) for i in range(8)], t\n"
        f"u = torch.from_dlpack(dlpack.load_safetensors({path!r})['w'])\n"
        "assert u.tolist() == [float(i) for i in range(8)], u\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    assert open(path, "rb").read() == before


def test_jax_cannot_say_read_only_so_it_is_refused_not_shared(tmp_path):
    """JAX 0.10's `from_dlpack` asks for a legacy capsule only (no `max_version`,
    jax#40789), which cannot carry READ_ONLY: sharing the map would hand out writable
    memory, so the export is refused; `jnp.asarray` copies through the array interface."""
    jnp = pytest.importorskip("jax.numpy")
    path = str(tmp_path / "jax.safetensors")
    w = np.arange(64, dtype=np.float32).reshape(8, 8)
    st_numpy.save_file({"w": w}, path)
    t = dlpack.load_safetensors(path)["w"]
    with pytest.raises(BufferError, match="max_version"):
        jnp.from_dlpack(t)
    np.testing.assert_array_equal(np.asarray(jnp.asarray(t)), w)


def write_raw(path, header, data):
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


F32_2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}

CORRUPT = [
    ("truncated", lambda p: open(p, "wb").write(b"\x10\x00\x00"), "8 bytes"),
    ("length too large", lambda p: open(p, "wb").write(struct.pack("<Q", 10**9) + b"{}"),
     "limit"),
    ("length past the end", lambda p: open(p, "wb").write(struct.pack("<Q", 64) + b"{}"),
     "past the end of the file"),
    ("bad json", lambda p: open(p, "wb").write(struct.pack("<Q", 5) + b'{"w":'),
     "not valid safetensors JSON"),
    ("offsets out of range",
     lambda p: write_raw(p, {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
                         b"\0" * 8), "data section"),
    ("offsets overlap",
     lambda p: write_raw(p, {"a": F32_2, "b": F32_2}, b"\0" * 16), "gaps or overlaps"),
    ("shape/offset mismatch",
     lambda p: write_raw(p, {"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
                         b"\0" * 8), "need 12"),
    ("unknown dtype",
     lambda p: write_raw(p, {"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}},
                         b"\0" * 16), "does not define"),
    ("missing field",
     lambda p: write_raw(p, {"w": {"dtype": "F32", "data_offsets": [0, 8]}}, b"\0" * 8),
     '"shape" is missing'),
]


@pytest.mark.parametrize("make,words", [c[1:] for c in CORRUPT], ids=[c[0] for c in CORRUPT])
def test_corrupt_files_raise_value_error_naming_the_rule(tmp_path, make, words):
    path = str(tmp_path / "bad.safetensors")
    make(path)
    with pytest.raises(ValueError, match=words):
        dlpack.load_safetensors(path)
    # The reference reader refuses the same files.
    with pytest.raises(Exception):
        st_numpy.load_file(path)
    assert maps_of(path) == []


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        dlpack.load_safetensors(tmp_path / "nope.safetensors")


def test_misaligned_tensors_are_refused_or_copied_on_request(tmp_path):
    path = str(tmp_path / "odd.safetensors")
    header = {"b": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
              "f": {"dtype": "F32", "shape": [1], "data_offsets": [1, 5]}}
    h = json.dumps(header).encode()
    h += b" " * (-(8 + len(h)) % 8)  # data at a multiple of 8: "f" at an odd address
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"\x09" + struct.pack("<f", 2.5))
    with pytest.raises(BufferError, match="not aligned"):
        dlpack.load_safetensors(path)
    tensors = dlpack.load_safetensors(path, copy_misaligned=True)
    f = np.from_dlpack(tensors["f"])
    assert f.tolist() == [2.5] and f.flags.writeable  # a copy the consumer owns
    b = np.from_dlpack(tensors["b"])
    assert b.tolist() == [9] and not b.flags.writeable
    assert_inside(b.ctypes.data, path, "b")
