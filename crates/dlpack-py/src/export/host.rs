//! Owned tensors over host-addressable memory that a Python object keeps
//! alive (a held buffer, an array interface's object, a NumPy array): laid
//! out and checked once, built as either ABI.

use dlpack_core::Error;
use dlpack_core::export::{Export, Memory};
use dlpack_core::ffi::{DLDataType, DLDevice};
use dlpack_core::layout::analyze;
use dlpack_core::managed::ManagedTensorVersioned;

use crate::cpython::owner::Keep;

/// Builds an owning tensor over host-addressable memory whose first element
/// is at `first`, kept alive by `keep`.
pub(crate) fn export_host<K: Send + 'static>(
    keep: K,
    first: *mut u8,
    device: DLDevice,
    dtype: DLDataType,
    shape: &[i64],
    strides: Option<&[i64]>,
    read_only: bool,
) -> Result<ManagedTensorVersioned, Error> {
    host_export(keep, first, device, dtype, shape, strides, read_only)?.versioned()
}

/// The export of host-addressable memory whose first element is at `first`,
/// kept alive by `keep`, laid out and checked, to build as either ABI.
#[inline(always)]
pub(crate) fn host_export<'a, K: Send + 'static>(
    keep: K,
    first: *mut u8,
    device: DLDevice,
    dtype: DLDataType,
    shape: &'a [i64],
    strides: Option<&'a [i64]>,
    read_only: bool,
) -> Result<Export<'a, Keep<K>>, Error> {
    let storage = dtype.storage(false)?;
    let layout = analyze(shape, strides, storage)?;
    let (ptr, len, offset) = if layout.elements == 0 {
        (std::ptr::null_mut(), 0, 0)
    } else {
        (
            first.wrapping_offset(layout.start as isize),
            layout.span_bytes() as usize,
            layout.start.unsigned_abs(),
        )
    };
    let memory = Memory {
        ptr: ptr.cast(),
        len,
        device,
        dtype: Some(dtype),
        read_only,
    };
    // SAFETY: callers pass memory that `keep` keeps alive and in place.
    let owner = unsafe { Keep::new(keep, memory) };
    let ex = Export::new(owner)
        .dtype(dtype)
        .shape(shape)
        .byte_offset(offset)
        .read_only(read_only);
    // SAFETY: `layout` is analyze(shape, strides, storage of dtype,
    // unpadded), exactly what the export is built with.
    let ex = unsafe { ex.with_layout(layout) };
    Ok(match strides {
        Some(s) => ex.strides(s),
        None => ex,
    })
}
