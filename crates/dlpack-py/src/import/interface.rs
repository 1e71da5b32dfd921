//! Import from `__array_interface__` (v2/v3) and `__cuda_array_interface__`
//! (v1-v3, its `stream` waited on through the CUDA runtime or recorded).

use dlpack_core::ffi::{DLDevice, DLDeviceType};
use dlpack_core::layout::analyze;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::cpython::owner::{HeldBuffer, PyObjectRef};
use crate::error::{IntoPyResult, buffer_err, int_arg, show, type_err, type_name, value_err};
use crate::export::host::export_host;
use crate::import::buffer::byte_strides_to_elements;
use crate::import::{ExtractOptions, ImportPath, PyTensor};
use crate::values::interface::typestr_dtype;

/// Imports from an `__array_interface__` (or, with `cuda`, a
/// `__cuda_array_interface__`) dictionary. With `defer_stream`, the CAI
/// `stream` is only recorded (for a producer that makes its consumers wait
/// on it later), not waited on.
pub(crate) fn via_array_interface(
    obj: &Bound<'_, PyAny>,
    d: &Bound<'_, PyAny>,
    cuda: bool,
    opts: &ExtractOptions<'_>,
    defer_stream: bool,
) -> PyResult<PyTensor> {
    let what = if cuda {
        "__cuda_array_interface__"
    } else {
        "__array_interface__"
    };
    let d = d.cast::<PyDict>().map_err(|_| {
        type_err(format!(
            "{what} must be a dict, got {} of type {}",
            show(d),
            type_name(d)
        ))
    })?;
    let get = |k: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        Ok(d.get_item(k)?.filter(|v| !v.is_none()))
    };
    let version: i64 = int_arg(
        &get("version")?.ok_or_else(|| type_err(format!("{what} has no \"version\"")))?,
        &format!("{what}[\"version\"]"),
        "an int (2 or 3)",
    )?;
    if !((2..=3).contains(&version) || (cuda && version == 1)) {
        return Err(buffer_err(format!(
            "{what} version {version} is not supported (2 or 3)"
        )));
    }
    if let Some(mask) = get("mask")? {
        return Err(buffer_err(format!(
            "{what} has a mask ({}); masked arrays cannot be described by DLPack",
            show(&mask)
        )));
    }
    let typestr = get("typestr")?.ok_or_else(|| type_err(format!("{what} has no \"typestr\"")))?;
    let typestr = typestr
        .cast::<pyo3::types::PyString>()
        .map_err(|_| {
            type_err(format!(
                "{what} typestr must be a str such as \"<f4\", got {} of type {}",
                show(&typestr),
                type_name(&typestr)
            ))
        })?
        .to_string_lossy();
    let dtype = typestr_dtype(&typestr).map_err(buffer_err)?;
    if let Some(descr) = get("descr")? {
        let simple = descr
            .extract::<Vec<(String, String)>>()
            .map(|v| v.len() == 1 && v[0].0.is_empty())
            .unwrap_or(false);
        if !simple {
            return Err(buffer_err(format!(
                "{what} descr {} is not [('', typestr)]: structured types cannot be described \
                 by DLPack",
                show(&descr)
            )));
        }
    }
    let shape = int_tuple(
        &get("shape")?.ok_or_else(|| type_err(format!("{what} has no \"shape\"")))?,
        what,
        "shape",
    )?;
    let itemsize = i64::from(dtype.bits / 8);
    let strides = match get("strides")? {
        None => None,
        Some(s) => {
            let b = int_tuple(&s, what, "strides")?;
            if b.len() != shape.len() {
                return Err(buffer_err(format!(
                    "{what} strides has {} entries but shape has {}",
                    b.len(),
                    shape.len()
                )));
            }
            Some(byte_strides_to_elements(b.into_iter(), &shape, itemsize)?)
        }
    };
    let data = get("data")?;
    let pointer = match &data {
        Some(t) if t.is_instance_of::<PyTuple>() => Some(data_pointer(t, what)?),
        _ => None,
    };
    if cuda {
        let (p, ro) = pointer.ok_or_else(|| {
            type_err(format!(
                "__cuda_array_interface__ \"data\" must be a (pointer, read_only) tuple, got {}",
                data.as_ref().map_or_else(|| "None".to_owned(), show)
            ))
        })?;
        let stream = match get("stream")? {
            None => None,
            Some(s) => {
                let rule =
                    "None, 1 (legacy default), 2 (per-thread default) or a stream handle > 2";
                let v: i64 = int_arg(&s, "__cuda_array_interface__ stream", rule)?;
                if v <= 0 {
                    return Err(value_err(format!(
                        "__cuda_array_interface__ stream={v} is not allowed (0 is ambiguous, \
                         negative values are no stream): use {rule}"
                    )));
                }
                Some(v)
            }
        };
        let hooks: Option<&dyn dlpack_device::Runtime> = match opts.cuda {
            Some(h) => Some(h),
            None => crate::gpu::cuda_runtime(),
        };
        let found = hooks
            .filter(|_| p != 0)
            .and_then(|h| crate::gpu::pointer_device(h, p as u64));
        let device = found.unwrap_or(DLDevice::new(DLDeviceType::kDLCUDA, 0));
        let mut cai_stream = stream;
        // The default hooks wait only on memory the driver knows (without a
        // driver, or for an address it does not know, the stream is left to
        // the caller in `cai_stream`); hooks given by the caller always wait.
        if !defer_stream && (opts.cuda.is_some() || found.is_some()) {
            if let (Some(s), Some(h)) = (stream, hooks) {
                crate::gpu::wait_cai_stream(h, device, s, opts.stream).map_err(|e| {
                    crate::error::DeviceError::Stream {
                        what: "__cuda_array_interface__",
                        stream: s,
                        device,
                        source: Box::new(e),
                    }
                })?;
                cai_stream = None;
            }
        }
        let t = export_host(
            PyObjectRef::new(obj),
            p as *mut u8,
            device,
            dtype,
            &shape,
            strides.as_deref(),
            ro,
        )
        .py()?;
        let mut t = PyTensor::new(t.into(), ImportPath::CudaArrayInterface);
        t.cai_stream = cai_stream;
        return Ok(t);
    }
    let t = match (pointer, data) {
        (Some((p, ro)), _) => export_host(
            PyObjectRef::new(obj),
            p as *mut u8,
            DLDevice::cpu(),
            dtype,
            &shape,
            strides.as_deref(),
            ro,
        )
        .py()?,
        (None, source) => {
            let source = source.unwrap_or_else(|| obj.clone());
            let offset: i64 = match get("offset")? {
                None => 0,
                Some(o) => int_arg(&o, &format!("{what} offset"), "an int (bytes)")?,
            };
            // SAFETY: source is live.
            if unsafe { crate::cpython::pybuffer::PyObject_CheckBuffer(source.as_ptr()) } == 0 {
                return Err(type_err(format!(
                    "{what} \"data\" must be a (pointer, read_only) tuple or an object with the \
                     buffer protocol (or absent, when the object has it), got {} of type {}",
                    show(&source),
                    type_name(&source)
                )));
            }
            let held = HeldBuffer::get(&source)?;
            let v = held.view();
            let layout = analyze(&shape, strides.as_deref(), dtype.storage(false).py()?).py()?;
            let span = offset
                .checked_add(layout.start)
                .zip(offset.checked_add(layout.end));
            let in_bounds = matches!(span, Some((start, end)) if start >= 0 && end <= v.len as i64);
            if layout.elements != 0 && !in_bounds {
                return Err(buffer_err(format!(
                    "{what} offset {offset} and layout bytes {}..{} reach outside the data \
                     buffer, which holds {} bytes",
                    layout.start, layout.end, v.len
                )));
            }
            let first = v.buf.cast::<u8>().wrapping_offset(offset as isize);
            let ro = v.readonly != 0;
            export_host(
                (held, PyObjectRef::new(obj)),
                first,
                DLDevice::cpu(),
                dtype,
                &shape,
                strides.as_deref(),
                ro,
            )
            .py()?
        }
    };
    Ok(PyTensor::new(t.into(), ImportPath::ArrayInterface))
}

/// `shape` or `strides` of an array interface: a sequence of ints that fit
/// in `int64`.
fn int_tuple(v: &Bound<'_, PyAny>, what: &str, key: &str) -> PyResult<Vec<i64>> {
    let items: Vec<Bound<'_, PyAny>> = v.extract().map_err(|_| {
        type_err(format!(
            "{what} {key} must be a tuple of ints, got {} of type {}",
            show(v),
            type_name(v)
        ))
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            int_arg(
                x,
                &format!("{what} {key}[{i}]"),
                "an int that fits in int64",
            )
        })
        .collect()
}

/// The `(pointer, read_only)` tuple of an array interface's `data`.
fn data_pointer(t: &Bound<'_, PyAny>, what: &str) -> PyResult<(usize, bool)> {
    let rule = "a (pointer, read_only) tuple of an int in [0, 2**64) and a bool";
    let bad = || type_err(format!("{what} \"data\" must be {rule}, got {}", show(t)));
    let t = t.cast::<PyTuple>().map_err(|_| bad())?;
    if t.len() != 2 {
        return Err(bad());
    }
    let p = int_arg(&t.get_item(0)?, &format!("{what} data pointer"), rule)?;
    let ro = t.get_item(1)?.extract::<bool>().map_err(|_| bad())?;
    Ok((p, ro))
}
