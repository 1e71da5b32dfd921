//! `dlpack._testing`: hooks for the Python test suite and benchmarks
//! (import through Rust, borrowed import, values through Rust, Rust-owned
//! exports).

use dlpack_core::export::{Export, Memory};
use dlpack_core::ffi::{DLDataType, DLDevice};
use dlpack_core::tensor::TensorView;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::classes::base::BufferBase;
use crate::classes::tensor::Tensor;
use crate::cpython::methoddef::MethodDef;
use crate::cpython::owner::Keep;
use crate::error::{IntoPyResult, buffer_err, type_err, value_err};
use crate::import::{ExtractOptions, extract, with_borrowed};

mod device;

/// Returns `x` (the call floor for benchmarks).
#[pyfunction]
fn noop(x: Bound<'_, PyAny>) -> PyResult<Bound<'_, PyAny>> {
    crate::error::guard(|| Ok(x))
}

/// Imports `obj` through the owning Rust import path; returns ndim.
#[pyfunction]
fn take(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    crate::error::guard(|| Ok(extract(obj, &ExtractOptions::default())?.view().ndim()))
}

/// Calls `obj.__dlpack__(max_version=(1, 3))` from Rust exactly as the
/// import does and drops the capsule unconsumed (its destructor releases
/// the tensor): what calling the producer from compiled code costs, the
/// floor under every import from a producer with only `__dlpack__`.
#[pyfunction]
fn call_dlpack(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    crate::error::guard(|| {
        let cap = crate::cpython::vcall::dlpack_max_version_1_3(obj)?;
        // SAFETY: cap is a live object.
        Ok(usize::from(
            unsafe { pyo3::ffi::PyCapsule_CheckExact(cap.as_ptr()) } != 0,
        ))
    })
}

/// Imports `obj` borrowed, for the call; returns ndim.
#[pyfunction]
fn take_borrowed(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    crate::error::guard(|| with_borrowed(obj, |v| v.ndim()))
}

/// What the Rust import path got.
#[pyfunction]
fn import_info<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    crate::error::guard(|| {
        let py = obj.py();
        let t = extract(obj, &ExtractOptions::default())?;
        let v = t.view();
        let d = PyDict::new(py);
        let (name, version, flags) = match t.tensor() {
            dlpack_core::managed::AnyManagedTensor::Legacy(_) => ("dltensor", None, 0u64),
            dlpack_core::managed::AnyManagedTensor::Versioned(m) => {
                let ver = m.version();
                (
                    "dltensor_versioned",
                    Some((ver.major, ver.minor)),
                    m.flags().bits(),
                )
            }
        };
        d.set_item("name", name)?;
        d.set_item("version", version)?;
        d.set_item("flags", flags)?;
        let dev = v.device();
        d.set_item("device", (dev.device_type.0, dev.device_id))?;
        let dt = v.dtype();
        d.set_item("dtype", (dt.code, dt.bits, dt.lanes))?;
        d.set_item("shape", PyTuple::new(py, v.shape())?)?;
        match v.raw_strides() {
            Some(s) => d.set_item("strides", PyTuple::new(py, s)?)?,
            None => d.set_item("strides", py.None())?,
        }
        d.set_item("byte_offset", v.raw().byte_offset)?;
        d.set_item("data", v.raw().data as usize)?;
        d.set_item("path", t.path().name())?;
        d.set_item("readonly", t.read_only())?;
        d.set_item("cai_stream", t.cai_stream())?;
        Ok(d)
    })
}

/// Imports `obj` through the owning Rust import path and hands the tensor
/// back as a `dlpack.Tensor`: what a Rust function that takes a tensor and
/// returns it does.
#[pyfunction]
fn reexport(obj: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    crate::error::guard(|| {
        Ok(Tensor::new(
            extract(obj, &ExtractOptions::default())?.into_tensor(),
        ))
    })
}

/// Calls `f` with the address of every element of a host view, row-major.
fn for_each_element(view: &TensorView<'_>, mut f: impl FnMut(*mut u8)) -> PyResult<()> {
    if !view.device().device_type.is_host_accessible() {
        return Err(buffer_err(format!(
            "the data is on {:?}, not host memory",
            view.device()
        )));
    }
    let n = view.num_elements();
    if n == 0 {
        return Ok(());
    }
    let size = match view.storage() {
        dlpack_core::dtype::Storage::Bytes(b) => b as i64,
        dlpack_core::dtype::Storage::PackedBits(_) => {
            return Err(buffer_err("packed sub-byte elements are not addressable"));
        }
    };
    let shape = view.shape();
    let strides: Vec<i64> = view.strides().collect();
    let first = view.data_ptr();
    let mut index = vec![0i64; shape.len()];
    for _ in 0..n {
        let off: i64 = index.iter().zip(&strides).map(|(i, s)| i * s).sum::<i64>() * size;
        f(first.wrapping_offset(off as isize));
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    Ok(())
}

/// Sums a float64 tensor through Rust.
#[pyfunction]
fn sum_f64(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    crate::error::guard(|| {
        let t = extract(obj, &ExtractOptions::default())?;
        let v = t.view();
        v.check_element::<f64>().py()?;
        let mut sum = 0.0;
        // SAFETY: every address is an aligned-or-not f64 inside the validated
        // host view; read_unaligned tolerates any alignment.
        for_each_element(&v, |p| sum += unsafe { p.cast::<f64>().read_unaligned() })?;
        Ok(sum)
    })
}

/// Writes `value` to every element (BufferError for read-only data).
#[pyfunction]
fn fill(obj: &Bound<'_, PyAny>, value: f64) -> PyResult<()> {
    crate::error::guard(|| {
        let t = extract(obj, &ExtractOptions::default())?;
        if t.read_only() {
            return Err(buffer_err(
                "the imported tensor is read-only (READ_ONLY flag, or a legacy capsule that cannot signal writability)",
            ));
        }
        let v = t.view();
        let dt = v.dtype();
        macro_rules! write {
            ($t:ty) => {
                // SAFETY: writable host elements of this type inside the view.
                for_each_element(&v, |p| unsafe {
                    p.cast::<$t>().write_unaligned(value as $t)
                })
            };
        }
        match (dt.code, dt.bits, dt.lanes) {
            (2, 64, 1) => write!(f64),
            (2, 32, 1) => write!(f32),
            (0, 8, 1) => write!(i8),
            (0, 16, 1) => write!(i16),
            (0, 32, 1) => write!(i32),
            (0, 64, 1) => write!(i64),
            (1, 8, 1) => write!(u8),
            (1, 16, 1) => write!(u16),
            (1, 32, 1) => write!(u32),
            (1, 64, 1) => write!(u64),
            // SAFETY: bool elements are one byte, 0 or 1.
            (6, 8, 1) => for_each_element(&v, |p| unsafe { p.write(u8::from(value != 0.0)) }),
            _ => Err(type_err(format!("fill does not support dtype {dt:?}"))),
        }
    })
}

/// A Rust-owned tensor `0, 1, ..., n-1` (Rust → Python export).
#[pyfunction]
#[pyo3(signature = (n, dtype="float32", shape=None, read_only=false))]
fn arange(n: usize, dtype: &str, shape: Option<Vec<i64>>, read_only: bool) -> PyResult<Tensor> {
    crate::error::guard(|| {
        let (dt, size): (DLDataType, usize) = match dtype {
            "float32" => (DLDataType::F32, 4),
            "float64" => (DLDataType::F64, 8),
            "int8" => (DLDataType::I8, 1),
            "int16" => (DLDataType::I16, 2),
            "int32" => (DLDataType::I32, 4),
            "int64" => (DLDataType::I64, 8),
            "uint8" => (DLDataType::U8, 1),
            "uint16" => (DLDataType::U16, 2),
            "uint32" => (DLDataType::U32, 4),
            "uint64" => (DLDataType::U64, 8),
            "bool" => (DLDataType::BOOL, 1),
            other => return Err(value_err(format!("arange: unsupported dtype {other:?}"))),
        };
        let mut words = vec![0u64; (n * size).div_ceil(8).max(1)];
        let base = words.as_mut_ptr().cast::<u8>();
        for i in 0..n {
            // SAFETY: element i lies within the n * size bytes allocated.
            unsafe {
                let p = base.add(i * size);
                match dtype {
                    "float32" => p.cast::<f32>().write(i as f32),
                    "float64" => p.cast::<f64>().write(i as f64),
                    "bool" => p.write(u8::from(i % 2 == 1)),
                    _ => {
                        let bytes = (i as u64).to_ne_bytes();
                        let start = if cfg!(target_endian = "little") {
                            0
                        } else {
                            8 - size
                        };
                        std::ptr::copy_nonoverlapping(bytes.as_ptr().add(start), p, size);
                    }
                }
            }
        }
        let memory = Memory {
            ptr: base.cast(),
            len: n * size,
            device: DLDevice::cpu(),
            dtype: Some(dt),
            read_only,
        };
        // SAFETY: the Vec's buffer is stable under moves and lives in the owner.
        let owner = unsafe { Keep::new(words, memory) };
        let shape = shape.unwrap_or_else(|| vec![n as i64]);
        let t = Export::new(owner)
            .dtype(dt)
            .shape(&shape)
            .read_only(read_only)
            .versioned()
            .py()?;
        Ok(Tensor::new(t))
    })
}

/// Panics with `message` in a `#[pyfunction]` (a bug on purpose): Python
/// must see `SystemError`, never pyo3's `PanicException`.
#[pyfunction]
fn panic(message: &str) -> PyResult<()> {
    crate::error::guard(|| panic!("{message}"))
}

static PANIC_FASTCALL_DEF: MethodDef = MethodDef::fastcall(
    c"panic_fastcall",
    panic_fastcall,
    c"panic_fastcall(message)\n--\n\nPanics with `message` in a hand-written METH_FASTCALL entry point.",
);

/// [`panic`] through a hand-written `METH_FASTCALL` entry point, the kind
/// `__dlpack__` and `asdlpack` are.
///
/// # Safety
///
/// Called by CPython with an attached thread state: `args` holds `nargs`
/// positional values.
unsafe extern "C" fn panic_fastcall(
    _module: *mut pyo3::ffi::PyObject,
    args: *const *mut pyo3::ffi::PyObject,
    nargs: pyo3::ffi::Py_ssize_t,
    _kwnames: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    // SAFETY: CPython calls functions with an attached thread state.
    let py = unsafe { Python::assume_attached() };
    crate::error::c_entry(py, || {
        if nargs != 1 {
            return Err(type_err("panic_fastcall(message) takes one argument"));
        }
        // SAFETY: one positional value, borrowed for the call.
        let message: String = unsafe { Borrowed::from_ptr(py, *args) }.extract()?;
        panic!("{message}")
    })
}

/// A buffer exporter that reports exactly the fields it was given — any
/// format bytes, item size, `ndim`, shape and strides, over `nbytes` zeroed
/// bytes — however wrong they are: how tests and the fuzzer reach the
/// buffer import with any PEP 3118 format. The fields are read, never the
/// bytes through them. Not part of the public API.
#[pyclass(frozen, extends = BufferBase, module = "dlpack._testing", name = "BufferExporter")]
#[derive(Debug)]
pub(crate) struct BufferExporter {
    data: Box<[u64]>,
    nbytes: isize,
    format: Option<std::ffi::CString>,
    itemsize: isize,
    ndim: std::ffi::c_int,
    shape: Option<Box<[isize]>>,
    strides: Option<Box<[isize]>>,
    readonly: bool,
}

// SAFETY: immutable after construction; the boxes are plain data.
unsafe impl Sync for BufferExporter {}

#[pymethods]
impl BufferExporter {
    #[new]
    #[pyo3(signature = (format, itemsize, shape=None, strides=None, ndim=None, nbytes=64, readonly=true))]
    fn new(
        format: Option<Vec<u8>>,
        itemsize: isize,
        shape: Option<Vec<isize>>,
        strides: Option<Vec<isize>>,
        ndim: Option<std::ffi::c_int>,
        nbytes: usize,
        readonly: bool,
    ) -> PyResult<Self> {
        crate::error::guard(|| {
            let format = format
                .map(std::ffi::CString::new)
                .transpose()
                .map_err(|_| value_err("BufferExporter: format must not contain NUL"))?;
            let n = shape.as_ref().map_or(0, Vec::len);
            let ndim = match ndim {
                Some(d) => d,
                None => std::ffi::c_int::try_from(n)
                    .map_err(|_| value_err("BufferExporter: too many dimensions"))?,
            };
            if nbytes > 1 << 20 {
                return Err(value_err("BufferExporter: nbytes is at most 1 MiB"));
            }
            Ok(BufferExporter {
                data: vec![0u64; nbytes.div_ceil(8).max(1)].into_boxed_slice(),
                nbytes: nbytes as isize,
                format,
                itemsize,
                ndim,
                shape: shape.map(Vec::into_boxed_slice),
                strides: strides.map(Vec::into_boxed_slice),
                readonly,
            })
        })
    }
}

impl BufferExporter {
    /// The buffer export of an instance, for the classes' base.
    ///
    /// # Safety
    ///
    /// `view` is a writable `Py_buffer`.
    unsafe fn getbuffer(
        obj: &Bound<'_, PyAny>,
        view: *mut crate::cpython::pybuffer::Py_buffer,
        flags: std::ffi::c_int,
    ) -> PyResult<()> {
        let e = obj.cast::<BufferExporter>()?;
        // SAFETY: by the caller's contract.
        unsafe { e.get().fill(e.clone().into_any(), view, flags) }
    }

    /// Fills `view` with the fields as given (those the request flags ask
    /// for).
    ///
    /// # Safety
    ///
    /// `view` is a writable `Py_buffer`; `owner` is this object.
    unsafe fn fill(
        &self,
        owner: Bound<'_, PyAny>,
        view: *mut crate::cpython::pybuffer::Py_buffer,
        flags: std::ffi::c_int,
    ) -> PyResult<()> {
        use crate::cpython::pybuffer::{PyBUF_FORMAT, PyBUF_ND, PyBUF_STRIDES, PyBUF_WRITABLE};
        if flags & PyBUF_WRITABLE != 0 && self.readonly {
            return Err(buffer_err("BufferExporter: read-only"));
        }
        let want = |f: std::ffi::c_int| flags & f == f;
        let opt = |b: &Option<Box<[isize]>>, f| match b {
            Some(b) if want(f) => b.as_ptr().cast_mut(),
            _ => std::ptr::null_mut(),
        };
        // SAFETY: the caller's contract; the pointers stay valid while
        // `owner` (referenced by view.obj) lives.
        unsafe {
            (*view).buf = self.data.as_ptr().cast_mut().cast();
            (*view).len = self.nbytes;
            (*view).itemsize = self.itemsize;
            (*view).readonly = std::ffi::c_int::from(self.readonly);
            (*view).ndim = self.ndim;
            (*view).format = match &self.format {
                Some(f) if want(PyBUF_FORMAT) => f.as_ptr().cast_mut(),
                _ => std::ptr::null_mut(),
            };
            (*view).shape = opt(&self.shape, PyBUF_ND);
            (*view).strides = opt(&self.strides, PyBUF_STRIDES);
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
            (*view).obj = owner.into_ptr();
        }
        Ok(())
    }
}

/// Registers the functions of `dlpack._testing`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::classes::base::extend(crate::classes::base::Extension {
        type_object: |py| {
            <BufferExporter as pyo3::impl_::pyclass::PyClassImpl>::lazy_type_object()
                .get_or_try_init(py)
        },
        getbuffer: BufferExporter::getbuffer,
    });
    m.add_function(wrap_pyfunction!(panic, m)?)?;
    m.add_class::<BufferExporter>()?;
    // SAFETY: the def is a static; the module and its name are live; a new
    // reference or NULL with an exception set.
    let f = unsafe {
        Bound::from_owned_ptr_or_err(
            m.py(),
            pyo3::ffi::PyCFunction_NewEx(
                std::ptr::from_ref(&PANIC_FASTCALL_DEF.0).cast_mut(),
                m.as_ptr(),
                m.name()?.as_ptr(),
            ),
        )?
    };
    m.add("panic_fastcall", f)?;
    m.add_function(wrap_pyfunction!(noop, m)?)?;
    m.add_function(wrap_pyfunction!(take, m)?)?;
    m.add_function(wrap_pyfunction!(call_dlpack, m)?)?;
    m.add_function(wrap_pyfunction!(take_borrowed, m)?)?;
    m.add_function(wrap_pyfunction!(import_info, m)?)?;
    m.add_function(wrap_pyfunction!(sum_f64, m)?)?;
    m.add_function(wrap_pyfunction!(fill, m)?)?;
    m.add_function(wrap_pyfunction!(arange, m)?)?;
    m.add_function(wrap_pyfunction!(reexport, m)?)?;
    device::register(m)
}
