//! The buffer protocol's C declarations: `Py_buffer`, the `PyBUF_*` request
//! flags, `PyObject_GetBuffer`, `PyBuffer_Release` and
//! `PyObject_CheckBuffer`.
//!
//! They are in the limited API only from Python 3.11 (bpo-45459), so pyo3
//! declares them under `abi3` only with `Py_3_11`; wherever it declares them
//! (`Py_3_11`, or a build that is not `abi3`), this module re-exports pyo3's.
//! An `abi3` build for an older Python gets them from here: the `Py_buffer`
//! layout and the flag values have not changed since Python 3.3, and every
//! CPython >= 3.9 exports the three functions with these signatures
//! (`PyObject_CheckBuffer` became a function in 3.9). On Unix an
//! extension's symbols resolve against the running interpreter, so that
//! holds wherever the wheel runs. Windows links an `abi3` extension against
//! `python3.dll`, which exports them only from 3.11, so such a build is
//! refused there (the feature `abi3` builds non-Unix targets for 3.11; see
//! `Cargo.toml`).
//!
//! The exporting side, the `bf_getbuffer` slot of `Tensor` and
//! `DLPackObject`, is in `bufferbase.rs` and `object.rs`.

#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

#[cfg(any(Py_3_11, not(Py_LIMITED_API)))]
pub use pyo3::ffi::{
    Py_buffer, PyBUF_ANY_CONTIGUOUS, PyBUF_C_CONTIGUOUS, PyBUF_F_CONTIGUOUS, PyBUF_FORMAT,
    PyBUF_ND, PyBUF_RECORDS_RO, PyBUF_STRIDES, PyBUF_WRITABLE, PyBuffer_Release,
    PyObject_CheckBuffer, PyObject_GetBuffer,
};

#[cfg(all(Py_LIMITED_API, not(Py_3_11), not(unix)))]
compile_error!(
    "a limited-API build of dlpack-py for a non-Unix target needs Python >= 3.11 (python3.dll \
     exports the buffer protocol only from 3.11): use dlpack-py's feature `abi3`, not pyo3's \
     `abi3-py39`/`abi3-py310`; see crates/dlpack-py/Cargo.toml"
);

#[cfg(all(Py_LIMITED_API, not(Py_3_11)))]
pub use limited::*;

#[cfg(all(Py_LIMITED_API, not(Py_3_11)))]
mod limited {
    use std::ffi::{c_char, c_int, c_void};

    use pyo3::ffi::{Py_ssize_t, PyObject};

    /// `Py_buffer` (`Include/pybuffer.h`; the same layout since Python 3.3).
    #[repr(C)]
    #[derive(Copy, Clone, Debug)]
    pub struct Py_buffer {
        pub buf: *mut c_void,
        /// Owned reference.
        pub obj: *mut PyObject,
        pub len: Py_ssize_t,
        pub itemsize: Py_ssize_t,
        pub readonly: c_int,
        pub ndim: c_int,
        pub format: *mut c_char,
        pub shape: *mut Py_ssize_t,
        pub strides: *mut Py_ssize_t,
        pub suboffsets: *mut Py_ssize_t,
        pub internal: *mut c_void,
    }

    // The C layout: nine pointer-sized fields and two ints, no padding on
    // 32- or 64-bit targets.
    const PTR: usize = size_of::<*mut c_void>();
    const _: () = assert!(size_of::<Py_ssize_t>() == PTR);
    const _: () = assert!(std::mem::offset_of!(Py_buffer, readonly) == 4 * PTR);
    const _: () = assert!(std::mem::offset_of!(Py_buffer, ndim) == 4 * PTR + 4);
    const _: () = assert!(std::mem::offset_of!(Py_buffer, format) == 4 * PTR + 8);
    const _: () = assert!(std::mem::offset_of!(Py_buffer, internal) == 8 * PTR + 8);
    const _: () = assert!(size_of::<Py_buffer>() == 9 * PTR + 8);

    pub const PyBUF_WRITABLE: c_int = 0x0001;
    pub const PyBUF_FORMAT: c_int = 0x0004;
    pub const PyBUF_ND: c_int = 0x0008;
    pub const PyBUF_STRIDES: c_int = 0x0010 | PyBUF_ND;
    pub const PyBUF_C_CONTIGUOUS: c_int = 0x0020 | PyBUF_STRIDES;
    pub const PyBUF_F_CONTIGUOUS: c_int = 0x0040 | PyBUF_STRIDES;
    pub const PyBUF_ANY_CONTIGUOUS: c_int = 0x0080 | PyBUF_STRIDES;
    pub const PyBUF_RECORDS_RO: c_int = PyBUF_STRIDES | PyBUF_FORMAT;

    unsafe extern "C" {
        pub fn PyObject_CheckBuffer(obj: *mut PyObject) -> c_int;
        pub fn PyObject_GetBuffer(obj: *mut PyObject, view: *mut Py_buffer, flags: c_int) -> c_int;
        pub fn PyBuffer_Release(view: *mut Py_buffer);
    }
}

#[cfg(test)]
mod tests {
    use pyo3::prelude::*;

    use super::*;

    /// The declarations agree with the running interpreter: a 2-d
    /// `memoryview` read back field by field, then released.
    #[test]
    fn get_and_release_a_strided_view() {
        Python::attach(|py| {
            let m = py
                .eval(
                    c"memoryview(bytearray(range(24))).cast('i', (2, 3))",
                    None,
                    None,
                )
                .unwrap();
            // SAFETY: an all-zero Py_buffer is a valid value to fill.
            let mut view: Py_buffer = unsafe { std::mem::zeroed() };
            // SAFETY: m is live, the thread is attached, view is writable.
            assert_eq!(unsafe { PyObject_CheckBuffer(m.as_ptr()) }, 1);
            // SAFETY: as above.
            let rc = unsafe { PyObject_GetBuffer(m.as_ptr(), &mut view, PyBUF_RECORDS_RO) };
            assert_eq!(rc, 0);
            assert_eq!(view.obj, m.as_ptr());
            assert_eq!(
                (view.ndim, view.itemsize, view.len, view.readonly),
                (2, 4, 24, 0)
            );
            // SAFETY: the exporter filled ndim entries of shape and strides,
            // and a NUL-terminated format.
            let (shape, strides, format) = unsafe {
                (
                    std::slice::from_raw_parts(view.shape, 2),
                    std::slice::from_raw_parts(view.strides, 2),
                    std::ffi::CStr::from_ptr(view.format),
                )
            };
            assert_eq!((shape, strides), (&[2, 3][..], &[12, 4][..]));
            assert_eq!(format, c"i");
            assert!(view.suboffsets.is_null());
            // SAFETY: m is live.
            let before = unsafe { pyo3::ffi::Py_REFCNT(m.as_ptr()) };
            // SAFETY: filled above, released once.
            unsafe { PyBuffer_Release(&mut view) };
            // SAFETY: as above.
            assert_eq!(unsafe { pyo3::ffi::Py_REFCNT(m.as_ptr()) }, before - 1);
            assert!(view.obj.is_null());
            let int = 1i32.into_pyobject(py).unwrap();
            // SAFETY: int is live (and not a buffer exporter).
            assert_eq!(unsafe { PyObject_CheckBuffer(int.as_ptr()) }, 0);
        });
    }
}
