//! Import of Arrow objects through the Arrow PyCapsule interface:
//! `__arrow_c_array__()` (an `"arrow_schema"` and an `"arrow_array"`
//! capsule of the Arrow C data interface) or `__arrow_c_stream__()` (an
//! `"arrow_array_stream"` capsule; one chunk only). arrow-rs's FFI reads
//! the C structs; dlpack-arrow turns the array into a read-only tensor that
//! keeps it (and so the producer's release callback) alive, without a copy.
//!
//! Used only for objects that speak no other protocol (polars `Series`,
//! pyarrow `ChunkedArray` and extension arrays): see
//! [`classify`](crate::import::classify).

use std::ffi::CStr;
use std::sync::Arc;

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi};
use arrow_array::ffi_stream::{ArrayStreamReader, FFI_ArrowArrayStream};
use arrow_array::{ArrayRef, make_array, new_empty_array};
use arrow_schema::{ArrowError, Field};
use dlpack_arrow::producer::ArrowExport;
use dlpack_core::managed::ManagedTensorVersioned;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::{ffi, intern};

use crate::error::{buffer_err, kind_err, type_err, type_name};

const SCHEMA: &CStr = c"arrow_schema";
const ARRAY: &CStr = c"arrow_array";
const STREAM: &CStr = c"arrow_array_stream";

/// The tensor of an object with `__arrow_c_array__` (or, with `stream`,
/// `__arrow_c_stream__`).
///
/// # Errors
///
/// The producer's exceptions; `TypeError` for capsules of the wrong name
/// and Arrow types DLPack cannot describe; `BufferError` for nulls,
/// booleans, several chunks and arrays the C interface refuses.
pub(crate) fn via_arrow(obj: &Bound<'_, PyAny>, stream: bool) -> PyResult<ManagedTensorVersioned> {
    let (field, array) = if stream {
        from_stream(obj)?
    } else {
        from_array(obj)?
    };
    ArrowExport::new(array.as_ref())
        .field(&field)
        .versioned()
        .map_err(|err| kind_err(err.kind(), format!("{}: {err}", type_name(obj))))
}

/// The pointer a capsule holds under `name`.
fn capsule_pointer(
    obj: &Bound<'_, PyAny>,
    capsule: &Bound<'_, PyAny>,
    name: &CStr,
) -> PyResult<*mut std::ffi::c_void> {
    // SAFETY: `capsule` is live; the GIL is held. NULL (with an exception
    // set) for another name or a non-capsule.
    let ptr = unsafe { ffi::PyCapsule_GetPointer(capsule.as_ptr(), name.as_ptr()) };
    if ptr.is_null() {
        let _ = PyErr::take(obj.py());
        return Err(type_err(format!(
            "{} returned {} where a {name:?} capsule was expected",
            type_name(obj),
            type_name(capsule)
        )));
    }
    Ok(ptr)
}

fn arrow_err(obj: &Bound<'_, PyAny>, err: ArrowError) -> PyErr {
    buffer_err(format!(
        "{}: the Arrow C data interface: {err}",
        type_name(obj)
    ))
}

fn from_array(obj: &Bound<'_, PyAny>) -> PyResult<(Field, ArrayRef)> {
    let py = obj.py();
    let pair = obj.call_method0(intern!(py, "__arrow_c_array__"))?;
    let pair = pair.cast::<PyTuple>().map_err(|_| {
        type_err(format!(
            "{}.__arrow_c_array__() returned {}, not a (schema, array) tuple",
            type_name(obj),
            type_name(&pair)
        ))
    })?;
    if pair.len() != 2 {
        return Err(type_err(format!(
            "{}.__arrow_c_array__() returned {} items, not (schema, array)",
            type_name(obj),
            pair.len()
        )));
    }
    let schema = capsule_pointer(obj, &pair.get_item(0)?, SCHEMA)?;
    let array = capsule_pointer(obj, &pair.get_item(1)?, ARRAY)?;
    // SAFETY: an "arrow_schema" capsule holds an ArrowSchema, which stays
    // valid while the capsule (held by `pair`) lives; it is only read.
    let schema = unsafe { &*schema.cast::<FFI_ArrowSchema>() };
    let field = Field::try_from(schema).map_err(|err| arrow_err(obj, err))?;
    // SAFETY: an "arrow_array" capsule holds an ArrowArray; moving it out
    // and leaving a released one behind is how the C data interface hands
    // over ownership (the capsule's destructor then releases nothing).
    let array =
        unsafe { std::ptr::replace(array.cast::<FFI_ArrowArray>(), FFI_ArrowArray::empty()) };
    // SAFETY: `array` was produced for `schema` (the two capsules of one
    // call), and owns its buffers until its release callback runs.
    let data = unsafe { from_ffi(array, schema) }.map_err(|err| arrow_err(obj, err))?;
    Ok((field, make_array(data)))
}

fn from_stream(obj: &Bound<'_, PyAny>) -> PyResult<(Field, ArrayRef)> {
    let py = obj.py();
    let capsule = obj.call_method0(intern!(py, "__arrow_c_stream__"))?;
    let stream = capsule_pointer(obj, &capsule, STREAM)?;
    // SAFETY: an "arrow_array_stream" capsule holds an ArrowArrayStream;
    // `from_raw` moves it out, leaving a released one (the capsule's
    // destructor then releases nothing).
    let mut reader = unsafe { ArrayStreamReader::from_raw(stream.cast::<FFI_ArrowArrayStream>()) }
        .map_err(|err| arrow_err(obj, err))?;
    let field = Arc::clone(arrow_array::ArrayReader::field(&reader));
    let first = reader
        .next()
        .transpose()
        .map_err(|err| arrow_err(obj, err))?;
    let array = match first {
        None => new_empty_array(field.data_type()),
        Some(array) => {
            let mut more = 0usize;
            for next in reader.by_ref() {
                next.map_err(|err| arrow_err(obj, err))?;
                more += 1;
            }
            if more != 0 {
                return Err(buffer_err(format!(
                    "{}: the Arrow stream has {} chunks; one tensor needs one chunk \
                     (rechunk first)",
                    type_name(obj),
                    more + 1
                )));
            }
            array
        }
    };
    Ok((field.as_ref().clone(), array))
}
