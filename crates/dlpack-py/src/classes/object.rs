//! The Python classes: [`Tensor`] (a Rust-owned tensor exported to Python)
//! and [`DLPackObject`] (what `dlpack.asdlpack` returns), both speaking the
//! full protocol surface: `__dlpack__`, `__dlpack_device__`, the type
//! attribute `__dlpack_c_exchange_api__` (our static C exchange API table),
//! the buffer protocol and `__array_interface__` for host memory, and
//! `__cuda_array_interface__` for CUDA memory.
//!
//! A `DLPackObject` either shares a tensor it imported (NumPy array, buffer,
//! array interface, capsule), or *forwards* to an existing DLPack producer:
//! each `__dlpack__` call goes to the producer with the same arguments, and
//! the answer is converted between legacy and versioned when the producer
//! answers with the other kind than `max_version` asks for.

use std::ffi::CStr;
use std::sync::Arc;

use dlpack_core::export::{legacy_to_versioned, versioned_to_legacy};
use dlpack_core::ffi::DLDevice;
use dlpack_core::managed::AnyManagedTensor;
use dlpack_core::protocol::{Abi, negotiate_version, plan_dlpack};
use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{ffi, intern};

use crate::classes::base::BufferBase;
use crate::classes::surface::{BufInfo, Surface, into_pyobject, protocol_surface};
use crate::classes::tensor::Tensor;
use crate::error::{IntoPyResult, type_err, type_name};
use crate::export::capsule::{RawManaged, consume_capsule, new_capsule};
use crate::export::shared::{SharedTensor, export};
use crate::import::buffer::via_buffer;
use crate::import::classify::{Kind, classify};
use crate::import::dlpack::{device_of, via_dlpack};
use crate::import::interface::via_array_interface;
use crate::import::{ExtractOptions, Protocol};
use crate::values::args::DlpackArgs;
use crate::values::device::device_tuple;

enum Inner {
    Shared(Arc<SharedTensor>),
    /// Exactly a `numpy.ndarray` (the source): `__dlpack__` shares the
    /// array's fields as they are at each call, like NumPy's own, without
    /// calling it; the other views import the array once.
    Numpy(PyOnceLock<Arc<SharedTensor>>),
    Forward {
        device: PyOnceLock<(DLDevice, Py<PyTuple>)>,
        shared: PyOnceLock<Arc<SharedTensor>>,
        /// The producer's tensor asked for with `stream=-1` (no
        /// synchronisation), for its description only: see
        /// [`DLPackObject::meta_tensor`].
        meta: PyOnceLock<Arc<SharedTensor>>,
    },
}

/// The result of `dlpack.asdlpack(obj)`: a DLPack producer over `obj`.
#[pyclass(frozen, extends = BufferBase, freelist = 16, module = "dlpack", name = "DLPackObject")]
pub struct DLPackObject {
    source: Py<PyAny>,
    inner: Inner,
    buf: PyOnceLock<BufInfo>,
    device: PyOnceLock<Py<PyTuple>>,
    /// The one ABI `__dlpack__` answers with (`asdlpack(obj, impl_cls=...)`),
    /// or `None` to follow `max_version`.
    only: Option<Abi>,
}

impl std::fmt::Debug for DLPackObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DLPackObject")
            .field("forward", &matches!(self.inner, Inner::Forward { .. }))
            .finish()
    }
}

impl DLPackObject {
    /// An object sharing an imported tensor; `source` is what it came from.
    pub(crate) fn shared(source: Py<PyAny>, shared: Arc<SharedTensor>) -> Self {
        Self::with_inner(source, Inner::Shared(shared))
    }

    /// An object over a NumPy array (exactly `numpy.ndarray`, whose dtype
    /// and byte order DLPack can describe, checked by the caller).
    pub(crate) fn numpy(array: Py<PyAny>) -> Self {
        Self::with_inner(array, Inner::Numpy(PyOnceLock::new()))
    }

    /// An object forwarding every `__dlpack__` call to `producer`.
    pub fn forward(producer: Py<PyAny>) -> Self {
        let inner = Inner::Forward {
            device: PyOnceLock::new(),
            shared: PyOnceLock::new(),
            meta: PyOnceLock::new(),
        };
        Self::with_inner(producer, inner)
    }

    fn with_inner(source: Py<PyAny>, inner: Inner) -> Self {
        DLPackObject {
            source,
            inner,
            buf: PyOnceLock::new(),
            device: PyOnceLock::new(),
            only: None,
        }
    }

    /// The same object answering `__dlpack__` only with `only`'s ABI
    /// (pydlpack's `impl_cls`), or by `max_version` for `None`: with
    /// `Abi::Legacy` every call gets a `"dltensor"` capsule (as from a
    /// producer older than DLPack 1.0; consumers read the capsule's name),
    /// with `Abi::Versioned` a call that asks for the legacy ABI
    /// (`max_version` absent or older than 1.0) is refused with
    /// `BufferError`, as the spec lets a producer without a legacy path do.
    /// The C exchange API (DLPack 1.3, versioned by definition) is the same
    /// for both.
    pub(crate) fn exporting_only(mut self, only: Option<Abi>) -> Self {
        self.only = only;
        self
    }

    /// The ABI set by [`DLPackObject::exporting_only`].
    pub(crate) fn only(&self) -> Option<Abi> {
        self.only
    }

    /// The shared tensor; a forwarded producer is imported once (with the
    /// legacy default stream for CUDA, recorded as the CAI `stream`).
    pub(crate) fn shared_tensor(&self, py: Python<'_>) -> PyResult<&Arc<SharedTensor>> {
        match &self.inner {
            Inner::Shared(s) => Ok(s),
            Inner::Numpy(shared) => shared.get_or_try_init(py, || {
                // SAFETY: Inner::Numpy holds exactly a numpy.ndarray.
                let t = unsafe { crate::import::numpy::numpy_owned(self.source.bind(py))? };
                Ok(SharedTensor::new(t.into()))
            }),
            Inner::Forward { shared, .. } => shared.get_or_try_init(py, || {
                let src = self.source.bind(py);
                // Without __dlpack_device__, the producer orders its work as
                // for a call without a stream.
                let kind = producer_device(src)?.map(|d| d.device_type.stream_kind());
                let (stream, cai) = match kind.unwrap_or(dlpack_core::device::StreamKind::None) {
                    dlpack_core::device::StreamKind::Cuda => (Some(1), Some(1)),
                    dlpack_core::device::StreamKind::Rocm => (Some(0), None),
                    dlpack_core::device::StreamKind::None => (None, None),
                };
                let opts = ExtractOptions {
                    stream,
                    ..ExtractOptions::default()
                };
                let t = via_dlpack(src, &opts)?;
                Ok(SharedTensor::with_cai_stream(t, cai))
            }),
        }
    }

    /// A tensor describing the data (shape, strides, dtype, device, flags)
    /// without giving access to it: the shared tensor, except for a
    /// forwarded producer on a device with streams whose data was not
    /// imported yet. That one is asked for with `stream=-1` ("no
    /// synchronisation", which the standard offers on CUDA and ROCm), so
    /// that reading `shape` or `repr` does not order the legacy default
    /// stream after the producer's work; the data itself is only ever
    /// reached through [`DLPackObject::shared_tensor`]. A producer that
    /// refuses `-1` is imported as for the data.
    pub(crate) fn meta_tensor(&self, py: Python<'_>) -> PyResult<&Arc<SharedTensor>> {
        let Inner::Forward {
            device,
            shared,
            meta,
        } = &self.inner
        else {
            return self.shared_tensor(py);
        };
        if let Some(s) = shared.get(py).or_else(|| meta.get(py)) {
            return Ok(s);
        }
        let (d, _) = self.forward_device(py, device)?;
        if d.device_type.stream_kind() == dlpack_core::device::StreamKind::None {
            return self.shared_tensor(py);
        }
        let opts = ExtractOptions {
            stream: Some(-1),
            ..ExtractOptions::default()
        };
        match via_dlpack(self.source.bind(py), &opts) {
            Ok(t) => meta.get_or_try_init(py, || Ok(SharedTensor::new(t))),
            Err(_) => self.shared_tensor(py),
        }
    }

    fn dlpack<'py>(
        &self,
        py: Python<'py>,
        args: &DlpackArgs<'_, 'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let restricted;
        let args = match self.only {
            None => args,
            Some(abi) => {
                restricted = args.only(abi)?;
                &restricted
            }
        };
        match &self.inner {
            Inner::Shared(s) => {
                let req = args.request()?;
                new_capsule(py, export(s, &req)?)
            }
            Inner::Numpy(_) => {
                let req = args.request()?;
                // SAFETY: Inner::Numpy holds exactly a numpy.ndarray.
                match unsafe { crate::import::numpy::numpy_dlpack(self.source.bind(py), &req)? } {
                    Some(raw) => new_capsule(py, raw),
                    None => new_capsule(py, export(self.shared_tensor(py)?, &req)?),
                }
            }
            Inner::Forward { device, .. } => {
                // Validate against the producer's device first (stream
                // values, dl_device, copy, max_version), so that the errors
                // are the spec's whatever the producer would say.
                let (device, _) = self.forward_device(py, device)?;
                let req = args.request()?;
                plan_dlpack(device, false, &req).py()?;
                forward_dlpack(self.source.bind(py), args)
            }
        }
    }

    fn dlpack_device<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = match &self.inner {
            Inner::Shared(s) => cached_device(py, &self.device, s.device())?,
            Inner::Numpy(_) => cached_device(py, &self.device, DLDevice::cpu())?,
            Inner::Forward { device, .. } => self.forward_device(py, device)?.1,
        };
        Ok(t.bind(py).clone().into_any())
    }

    /// The forwarded producer's device (asked once, into `cell`; a `None`
    /// device id reads as 0), and its `(DLDeviceType, id)` tuple.
    fn forward_device<'a>(
        &self,
        py: Python<'_>,
        cell: &'a PyOnceLock<(DLDevice, Py<PyTuple>)>,
    ) -> PyResult<(DLDevice, &'a Py<PyTuple>)> {
        let (d, t) = cell.get_or_try_init(py, || -> PyResult<_> {
            let d = match producer_device(self.source.bind(py))? {
                Some(d) => d,
                None => self.shared_tensor(py)?.device(),
            };
            Ok((d, device_tuple(py, d)?.unbind()))
        })?;
        Ok((*d, t))
    }
}

/// `producer.__dlpack_device__()`, or `None` for a producer without one
/// (older than the standard's Python protocol, as pydlpack's suite wraps
/// TensorFlow's `to_dlpack`): its device is then read from the tensor it
/// exports.
fn producer_device(producer: &Bound<'_, PyAny>) -> PyResult<Option<DLDevice>> {
    match device_of(producer) {
        Ok(d) => Ok(Some(d)),
        Err(e)
            if e.is_instance_of::<PyAttributeError>(producer.py())
                && !producer.hasattr(intern!(producer.py(), "__dlpack_device__"))? =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The `(DLDeviceType, id)` tuple of `device`, made once into `cell`.
pub(crate) fn cached_device<'a>(
    py: Python<'_>,
    cell: &'a PyOnceLock<Py<PyTuple>>,
    device: DLDevice,
) -> PyResult<&'a Py<PyTuple>> {
    cell.get_or_try_init(py, || device_tuple(py, device).map(Bound::unbind))
}

/// Forwards a `__dlpack__` call to `producer` with the same arguments, and
/// converts the answer when its ABI is not the one `max_version` asks for.
fn forward_dlpack<'py>(
    producer: &Bound<'py, PyAny>,
    args: &DlpackArgs<'_, 'py>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = producer.py();
    let want = negotiate_version(args.max_version).py()?;
    let cap = crate::cpython::vcall::dlpack_call(producer, args.passed)?;
    if !crate::import::classify::is_capsule(&cap) {
        return Err(type_err(format!(
            "the producer's __dlpack__ returned {}, not a PyCapsule",
            type_name(&cap)
        )));
    }
    // SAFETY: cap is a capsule; GetName returns its name pointer (or NULL).
    let got = unsafe { ffi::PyCapsule_GetName(cap.as_ptr()) };
    let got = if got.is_null() {
        None
    } else {
        // SAFETY: non-NULL capsule names are C strings.
        Abi::from_capsule_name(unsafe { CStr::from_ptr(got) })
    };
    if got == Some(want) {
        return Ok(cap);
    }
    let tensor = consume_capsule(&cap)?;
    let raw: RawManaged = match (tensor, want) {
        (AnyManagedTensor::Legacy(t), Abi::Versioned) => legacy_to_versioned(t, 0).py()?.into(),
        (AnyManagedTensor::Versioned(t), Abi::Legacy) => versioned_to_legacy(t).py()?.into(),
        (t, _) => t.into(),
    };
    new_capsule(py, raw)
}

/// `asdlpack(obj, protocol=protocol)`, exporting only `only`'s ABI if set:
/// `obj` itself when it is such an object already; else an object over
/// the protocol [`classify`] finds (forwarding to a producer, reading a
/// NumPy array's fields, or sharing what the other protocols import).
pub(crate) fn asdlpack<'py>(
    obj: &Bound<'py, PyAny>,
    protocol: Option<&str>,
    only: Option<Abi>,
) -> PyResult<Bound<'py, DLPackObject>> {
    let py = obj.py();
    let new = |o: DLPackObject| Bound::new(py, o.exporting_only(only));
    let shared = |s: Arc<SharedTensor>| new(DLPackObject::shared(obj.clone().unbind(), s));
    let forced = match protocol {
        None => {
            if let Ok(o) = obj.cast::<DLPackObject>() {
                if o.get().only() == only {
                    return Ok(o.clone());
                }
                return new(DLPackObject::forward(obj.clone().unbind()));
            }
            if obj.is_instance_of::<Tensor>() {
                return shared(shared_of(obj)?);
            }
            None
        }
        Some(p) => {
            let p = Protocol::parse(p)?;
            if p == Protocol::Dlpack && !obj.hasattr(intern!(py, "__dlpack__"))? {
                return Err(type_err(format!(
                    "protocol=\"dlpack\": {} has no __dlpack__",
                    type_name(obj)
                )));
            }
            Some(p)
        }
    };
    let Some(kind) = classify(obj, forced)? else {
        return Err(type_err(format!(
            "asdlpack: cannot wrap an object of type {}: it has no __dlpack__, buffer protocol, \
             __array_interface__ or __cuda_array_interface__, and is not a DLPack capsule",
            type_name(obj)
        )));
    };
    let opts = ExtractOptions::default();
    match kind {
        Kind::Numpy => {
            // SAFETY: exactly numpy.ndarray.
            unsafe { crate::import::numpy::check_numpy(obj)? };
            new(DLPackObject::numpy(obj.clone().unbind()))
        }
        Kind::Dlpack { .. } => new(DLPackObject::forward(obj.clone().unbind())),
        Kind::Capsule => shared(SharedTensor::new(consume_capsule(obj)?)),
        Kind::Buffer => shared(SharedTensor::new(via_buffer(obj)?.into())),
        // The CAI stream is the producer's pending work: recorded, and
        // waited on by each consumer in __dlpack__(stream=...).
        Kind::ArrayInterface(d) => {
            let t = via_array_interface(obj, &d, false, &opts, true)?;
            shared(SharedTensor::new(t.into_tensor()))
        }
        Kind::CudaArrayInterface(d) => {
            let t = via_array_interface(obj, &d, true, &opts, true)?;
            let s = t.cai_stream();
            shared(SharedTensor::with_cai_stream(t.into_tensor(), s))
        }
        #[cfg(feature = "arrow")]
        Kind::Arrow { stream } => shared(SharedTensor::new(
            crate::import::arrow::via_arrow(obj, stream)?.into(),
        )),
    }
}

/// The `Arc<SharedTensor>` behind one of our objects.
pub(crate) fn shared_of(obj: &Bound<'_, PyAny>) -> PyResult<Arc<SharedTensor>> {
    if let Ok(t) = obj.cast::<Tensor>() {
        return Ok(Arc::clone(t.get().shared()));
    }
    if let Ok(o) = obj.cast::<DLPackObject>() {
        return o.get().shared_tensor(obj.py()).map(Arc::clone);
    }
    Err(type_err(format!(
        "expected a dlpack.Tensor or dlpack.DLPackObject, got {}",
        type_name(obj)
    )))
}

into_pyobject!(DLPackObject);

// The buffer protocol: see `crate::classes::tensor`.
protocol_surface!(DLPackObject, DLPACK_OBJECT_DLPACK);

impl Surface for DLPackObject {
    const REPR_NAME: &'static str = "DLPackObject";

    fn shared_tensor(&self, py: Python<'_>) -> PyResult<&Arc<SharedTensor>> {
        DLPackObject::shared_tensor(self, py)
    }

    fn meta_tensor(&self, py: Python<'_>) -> PyResult<&Arc<SharedTensor>> {
        DLPackObject::meta_tensor(self, py)
    }

    fn buf_cell(&self) -> &PyOnceLock<BufInfo> {
        &self.buf
    }

    fn dlpack<'py>(
        &self,
        py: Python<'py>,
        args: &DlpackArgs<'_, 'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        DLPackObject::dlpack(self, py, args)
    }

    fn dlpack_device<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        DLPackObject::dlpack_device(self, py)
    }

    fn source_object(&self, slf: &Bound<'_, Self>) -> Py<PyAny> {
        let _ = slf;
        self.source.clone_ref(slf.py())
    }
}
