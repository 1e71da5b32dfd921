//! [`Tensor`]: a Rust-owned tensor exported to Python (`dlpack.Tensor`),
//! with the whole protocol surface ([`crate::classes::surface`]).

use std::sync::Arc;

use dlpack_core::managed::AnyManagedTensor;
use dlpack_core::protocol::DlpackRequest;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

use crate::classes::base::BufferBase;
use crate::classes::object::cached_device;
use crate::classes::surface::{BufInfo, Surface, into_pyobject, protocol_surface};
use crate::export::capsule::{RawManaged, new_capsule};
use crate::export::shared::{SharedTensor, export};
use crate::sync::ExportSync;
use crate::values::args::DlpackArgs;

/// A Rust-owned tensor exported to Python (`dlpack.Tensor`).
///
/// ```no_run
/// use dlpack_core::export::Export;
/// use dlpack_py::Tensor;
/// use pyo3::prelude::*;
/// Python::attach(|py| -> PyResult<()> {
///     let t = Tensor::new(Export::new(vec![1.0f32, 2.0]).versioned().unwrap());
///     let obj = Bound::new(py, t)?;
///     let np = py.import("numpy")?;
///     let a = np.call_method1("from_dlpack", (obj,))?;
///     assert_eq!(a.len()?, 2);
///     Ok(())
/// }).unwrap();
/// ```
#[pyclass(frozen, extends = BufferBase, module = "dlpack", name = "Tensor")]
pub struct Tensor {
    shared: Arc<SharedTensor>,
    buf: PyOnceLock<BufInfo>,
    device: PyOnceLock<Py<PyTuple>>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor")
            .field("shared", &self.shared)
            .finish()
    }
}

impl Tensor {
    /// Wraps an owned tensor.
    pub fn new(tensor: impl Into<AnyManagedTensor>) -> Self {
        Self::from_shared(SharedTensor::new(tensor.into()))
    }

    /// Wraps an owned device tensor with a producer-side stream synchroniser.
    pub fn with_sync(tensor: impl Into<AnyManagedTensor>, sync: Arc<dyn ExportSync>) -> Self {
        Self::from_shared(SharedTensor::with_sync(tensor.into(), sync))
    }

    /// Wraps a shared tensor.
    pub(crate) fn from_shared(shared: Arc<SharedTensor>) -> Self {
        Tensor {
            shared,
            buf: PyOnceLock::new(),
            device: PyOnceLock::new(),
        }
    }

    /// Exports an `ndarray` array (or `ArcArray`) without copying.
    ///
    /// # Errors
    ///
    /// As [`dlpack_ndarray::IntoDlpack::into_dlpack_versioned`].
    ///
    /// [`ndarray_to_python`](crate::ndarray_to_python) makes the Python
    /// object in the same call.
    #[cfg(feature = "ndarray")]
    pub fn from_ndarray(
        array: impl dlpack_ndarray::IntoDlpack,
    ) -> Result<Self, dlpack_core::Error> {
        Ok(Self::new(array.into_dlpack_versioned()?))
    }

    /// Whether the data must not be written through what can say so (the
    /// versioned capsule's flag, the buffer protocol, the array interfaces):
    /// read-only data, and a legacy tensor, which cannot say that it may be
    /// written.
    pub fn read_only(&self) -> bool {
        self.shared.read_only()
    }

    /// What `__dlpack__` hands out for `request` (planned by the core:
    /// shared, or copied to the host), ready for
    /// [`capsule::new_capsule`](crate::capsule::new_capsule).
    ///
    /// # Errors
    ///
    /// The exception the standard names for a request that cannot be met
    /// (`BufferError`, `ValueError`, `TypeError`).
    ///
    /// ```
    /// use dlpack_core::export::Export;
    /// use dlpack_core::protocol::DlpackRequest;
    /// use dlpack_py::Tensor;
    /// use dlpack_py::capsule::RawManaged;
    ///
    /// let t = Tensor::new(Export::new(vec![1u8, 2, 3]).versioned().unwrap());
    /// let req = DlpackRequest { max_version: Some((1, 3)), ..DlpackRequest::default() };
    /// let raw = t.export(&req).unwrap();
    /// assert!(matches!(raw, RawManaged::Versioned(_)));
    /// # unsafe { dlpack_py::capsule::release_raw(raw) };
    /// ```
    pub fn export(&self, request: &DlpackRequest) -> PyResult<RawManaged> {
        export(&self.shared, request)
    }

    /// The shared tensor.
    pub(crate) fn shared(&self) -> &Arc<SharedTensor> {
        &self.shared
    }
}

into_pyobject!(Tensor);

// The buffer protocol is not here: pyo3 emits `bf_getbuffer` under `abi3`
// only from Python 3.11, so the slot is on the classes' base type
// (`crate::classes::base`), which calls `getbuffer_any`.
protocol_surface!(Tensor, TENSOR_DLPACK);

impl Surface for Tensor {
    const REPR_NAME: &'static str = "Tensor";

    fn shared_tensor(&self, _py: Python<'_>) -> PyResult<&Arc<SharedTensor>> {
        Ok(&self.shared)
    }

    fn buf_cell(&self) -> &PyOnceLock<BufInfo> {
        &self.buf
    }

    fn dlpack<'py>(
        &self,
        py: Python<'py>,
        args: &DlpackArgs<'_, 'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dlpack_call(py, args)
    }

    fn dlpack_device<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = cached_device(py, &self.device, self.shared.device())?;
        Ok(t.bind(py).clone().into_any())
    }

    fn source_object(&self, slf: &Bound<'_, Self>) -> Py<PyAny> {
        slf.clone().into_any().unbind()
    }
}

impl Tensor {
    /// `__dlpack__` with Python arguments.
    pub(crate) fn dlpack_call<'py>(
        &self,
        py: Python<'py>,
        args: &DlpackArgs<'_, 'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = args.request()?;
        new_capsule(py, export(&self.shared, &req)?)
    }
}
