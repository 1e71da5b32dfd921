//! `dlpack._BufferBase`: the native base type of [`Tensor`] and
//! [`DLPackObject`], which carries their buffer-protocol slot.
//!
//! pyo3 emits `bf_getbuffer` from `#[pymethods]` under `abi3` only from
//! Python 3.11, so an `abi3` build for an older Python cannot get the slot
//! from there. CPython accepts the `Py_bf_getbuffer` slot in
//! `PyType_FromSpec` since 3.9, and copies a base type's buffer slots into a
//! subtype that defines none (`inherit_slots`). So this module creates, once
//! per interpreter and before either class, a small heap type that holds the
//! slot, and both classes are `#[pyclass(extends = BufferBase)]`:
//! `memoryview(obj)`, `np.asarray(obj)` and `PyObject_GetBuffer` find the
//! slot through the class. The same code serves every build (one path to
//! test). The base adds no fields, so an instance has exactly the layout of
//! a class extending `object`.
//!
//! The type's slots, each with the reason it is there:
//!
//! - `bf_getbuffer`: the buffer export (`surface::getbuffer_any`). There is
//!   no `bf_releasebuffer`: nothing is held per view, and `PyBuffer_Release`
//!   then only drops the view's reference to the object.
//! - `tp_new`: pyo3 creates an instance of a class with a native base by
//!   calling the base's `tp_new` with the class. It allocates with the
//!   class's `tp_alloc` (so a `freelist` class keeps its free list), and
//!   refuses every type other than `Tensor` and `DLPackObject` (the base
//!   itself, a Python subclass of it): the slots only ever see instances of
//!   the two classes. (From Python, `_BufferBase.__new__(Tensor)` never gets
//!   here: CPython refuses a `__new__` that would bypass the class's own.)
//! - `tp_dealloc`: frees the memory with the class's `tp_free` and drops the
//!   instance's reference to its type, as CPython expects of a heap type.
//!   pyo3 ends the deallocation of the classes the same way, through the
//!   base's part of the layout ([`BufferBaseLayout`]), without a second
//!   slot lookup; that is what it does for a class without `extends`.
//! - `tp_traverse` (and `Py_TPFLAGS_HAVE_GC`): visits the instance's type,
//!   as every heap type must. pyo3's `tp_traverse` of the class leaves that
//!   to the nearest heap-type base with a traverse function of its own.
//!
//! The type is created on first use by [`PyTypeInfo::type_object_raw`]
//! (which pyo3 calls when it creates either class), so the classes work from
//! any module that links this crate and in embedded interpreters; the
//! extension module creates it first with [`init`] to report a failure as an
//! import error. If creating it fails anywhere else (a `MemoryError`), the
//! error is printed as unraisable and the classes extend `object` instead,
//! without the buffer protocol: `type_object_raw` cannot fail, and the
//! fallback keeps every slot pyo3 calls consistent (pyo3 treats an `object`
//! base exactly as a class without `extends`).

use std::ffi::{c_int, c_void};
use std::ptr;

use pyo3::impl_::pycell::{PyClassObjectBaseLayout, PyStaticClassObject};
use pyo3::impl_::pyclass::{PyClassBaseType, PyClassImpl};
use pyo3::impl_::pyclass_init::PyNativeTypeInitializer;
use pyo3::prelude::*;
use pyo3::pycell::PyBorrowError;
use pyo3::sync::PyOnceLock;
use pyo3::type_object::{PyLayout, PySizedLayout};
use pyo3::types::PyType;
use pyo3::{PyTypeInfo, ffi};

use crate::classes::object::DLPackObject;
use crate::classes::surface::getbuffer_any;
use crate::classes::tensor::Tensor;
use crate::cpython::pybuffer::Py_buffer;
use crate::error::type_err;

/// The Python type `dlpack._BufferBase` (see the module docs).
#[repr(transparent)]
pub struct BufferBase(PyAny);

impl std::fmt::Debug for BufferBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BufferBase")
    }
}

/// The type object, created once per interpreter.
static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Creates the type now, if it does not exist yet.
///
/// # Errors
///
/// The error of `PyType_FromSpec`.
pub(crate) fn init(py: Python<'_>) -> PyResult<()> {
    TYPE.get_or_try_init(py, || create(py)).map(|_| ())
}

/// A `PyType_Slot` array in a static (CPython only reads it).
struct Slots([ffi::PyType_Slot; 6]);

// SAFETY: immutable; the pointers are functions and a static C string.
unsafe impl Sync for Slots {}

static SLOTS: Slots = Slots([
    ffi::PyType_Slot {
        slot: ffi::Py_bf_getbuffer,
        pfunc: bf_getbuffer as *mut c_void,
    },
    ffi::PyType_Slot {
        slot: ffi::Py_tp_new,
        pfunc: tp_new as *mut c_void,
    },
    ffi::PyType_Slot {
        slot: ffi::Py_tp_dealloc,
        pfunc: tp_dealloc as *mut c_void,
    },
    ffi::PyType_Slot {
        slot: ffi::Py_tp_traverse,
        pfunc: tp_traverse as *mut c_void,
    },
    ffi::PyType_Slot {
        slot: ffi::Py_tp_doc,
        pfunc: c"Base of dlpack.Tensor and dlpack.DLPackObject that exports their host memory \
                through the buffer protocol (internal; it has no instances of its own)."
            .as_ptr()
            .cast_mut()
            .cast(),
    },
    ffi::PyType_Slot {
        slot: 0,
        pfunc: ptr::null_mut(),
    },
]);

fn create(py: Python<'_>) -> PyResult<Py<PyType>> {
    let mut spec = ffi::PyType_Spec {
        // A static string: Python < 3.11 keeps a pointer into it (bpo-45315).
        name: c"dlpack._BufferBase".as_ptr(),
        basicsize: size_of::<ffi::PyObject>() as c_int,
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_BASETYPE | ffi::Py_TPFLAGS_HAVE_GC) as _,
        slots: SLOTS.0.as_ptr().cast_mut(),
    };
    // SAFETY: a valid spec; CPython copies the slot array and only reads the
    // static name and doc; the thread is attached.
    let t = unsafe { ffi::PyType_FromSpec(&mut spec) };
    // SAFETY: a new reference to a type object, or NULL with an exception set.
    Ok(unsafe { Bound::from_owned_ptr_or_err(py, t)?.cast_into_unchecked::<PyType>() }.unbind())
}

// SAFETY: `type_object_raw` returns the same live type object every time (the
// static, or `object` for good if creating the type failed, see the module
// docs); instances are `PyObject`s.
unsafe impl PyTypeInfo for BufferBase {
    fn type_object_raw(py: Python<'_>) -> *mut ffi::PyTypeObject {
        TYPE.get_or_init(py, || {
            create(py).unwrap_or_else(|err| {
                err.write_unraisable(py, None);
                py.get_type::<PyAny>().unbind()
            })
        })
        .as_ptr()
        .cast()
    }
}

impl pyo3::types::DerefToPyAny for BufferBase {}

/// The base's part of an instance: a bare `PyObject` (basicsize above).
#[repr(C)]
pub struct BufferBaseLayout {
    ob_base: ffi::PyObject,
}

impl std::fmt::Debug for BufferBaseLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BufferBaseLayout")
    }
}

// SAFETY: the layout of an instance of the base (a bare PyObject).
unsafe impl PyLayout<BufferBase> for BufferBaseLayout {}
impl PySizedLayout<BufferBase> for BufferBaseLayout {}

/// What pyo3 does with the base's part of an instance: nothing to check, and
/// the end of deallocation ([`dealloc`]), called by pyo3's `tp_dealloc` of
/// the class after it untracked the object, dropped the Rust value and
/// cleared `__dict__` and weak references (for classes that have them).
impl PyClassObjectBaseLayout<BufferBase> for BufferBaseLayout {
    fn ensure_threadsafe(&self) {}

    fn check_threadsafe(&self) -> Result<(), PyBorrowError> {
        Ok(())
    }

    unsafe fn tp_dealloc(_py: Python<'_>, slf: *mut ffi::PyObject) {
        // SAFETY: by the trait's contract, slf is an instance whose class
        // part is gone, and is not used afterwards.
        unsafe { dealloc(slf) }
    }
}

/// The classes are laid out as if they extended `object` (as pyo3 lays out
/// a class without `extends`): the base adds no fields.
impl PyClassBaseType for BufferBase {
    type LayoutAsBase = BufferBaseLayout;
    type BaseNativeType = BufferBase;
    type Initializer = PyNativeTypeInitializer<Self>;
    type PyClassMutability = <PyAny as PyClassBaseType>::PyClassMutability;
    type Layout<T: PyClassImpl> = PyStaticClassObject<T>;
}

/// Whether `ty` is exactly one of the classes built on the base.
fn is_ours(py: Python<'_>, ty: *mut ffi::PyTypeObject) -> bool {
    let is = |lazy: PyResult<&Bound<'_, PyType>>| lazy.is_ok_and(|t| ptr::eq(t.as_type_ptr(), ty));
    #[cfg(test)]
    if is(tests::probe_type(py)) {
        return true;
    }
    // DLPackObject first: asdlpack creates one per call.
    is(DLPackObject::lazy_type_object().get_or_try_init(py))
        || is(Tensor::lazy_type_object().get_or_try_init(py))
        || extension().is_some_and(|e| is((e.type_object)(py)))
}

/// A class on the base that is defined above the classes layer (the test
/// helpers' `BufferExporter`, [`crate::testing`]): its type object and its
/// buffer export. It registers itself with [`extend`], so that this layer
/// does not name it.
#[derive(Clone, Copy)]
pub(crate) struct Extension {
    /// The class's type object.
    pub(crate) type_object: for<'py> fn(Python<'py>) -> PyResult<&'py Bound<'py, PyType>>,
    /// Fills a `Py_buffer` for an instance (the contract of `getbuffer_any`).
    pub(crate) getbuffer: unsafe fn(&Bound<'_, PyAny>, *mut Py_buffer, c_int) -> PyResult<()>,
}

impl Extension {
    /// Whether `obj` is an instance of the class.
    pub(crate) fn is_type(&self, obj: &Bound<'_, PyAny>) -> bool {
        (self.type_object)(obj.py()).is_ok_and(|t| obj.is_instance(t).unwrap_or(false))
    }
}

static EXTENSION: std::sync::OnceLock<Extension> = std::sync::OnceLock::new();

/// Registers the one [`Extension`] (a second registration is ignored).
pub(crate) fn extend(e: Extension) {
    let _ = EXTENSION.set(e);
}

/// The registered [`Extension`], if any.
pub(crate) fn extension() -> Option<&'static Extension> {
    EXTENSION.get()
}

/// `tp_new`: an uninitialised instance of `subtype` (pyo3 writes the Rust
/// value into it), for `Tensor` and `DLPackObject` only.
///
/// # Safety
///
/// Called by CPython or pyo3 with an attached thread state and a type object.
unsafe extern "C" fn tp_new(
    subtype: *mut ffi::PyTypeObject,
    _args: *mut ffi::PyObject,
    _kwds: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: tp_new is called with an attached thread state.
    let py = unsafe { Python::assume_attached() };
    let ours = crate::error::c_status(py, || {
        if is_ours(py, subtype) {
            Ok(())
        } else {
            Err(type_err(
                "dlpack._BufferBase is the base of dlpack.Tensor and dlpack.DLPackObject only; \
                 create those with dlpack.asdlpack or from Rust",
            ))
        }
    });
    if ours != 0 {
        return ptr::null_mut();
    }
    // SAFETY: subtype is one of our heap types (PyType_GetSlot accepts heap
    // types on every version); its tp_alloc is an allocfunc.
    let alloc = unsafe { ffi::PyType_GetSlot(subtype, ffi::Py_tp_alloc) };
    if alloc.is_null() {
        // SAFETY: as above; the generic allocator works for every heap type.
        return unsafe { ffi::PyType_GenericAlloc(subtype, 0) };
    }
    // SAFETY: the slot holds an allocfunc.
    let alloc = unsafe { std::mem::transmute::<*mut c_void, ffi::allocfunc>(alloc) };
    // SAFETY: allocating one instance of subtype, thread attached.
    unsafe { alloc(subtype, 0) }
}

/// The end of an instance's deallocation: frees the memory with its type's
/// `tp_free` and drops the instance's reference to its heap type, as
/// CPython expects of a heap type's `tp_dealloc` (and as pyo3 does for a
/// class without `extends`). Both the base's `tp_dealloc` slot and pyo3's
/// deallocation of the classes ([`BufferBaseLayout`]) end here.
///
/// # Safety
///
/// `obj` is an untracked instance of a heap type derived from the base whose
/// own parts were released; it is not used afterwards.
unsafe fn dealloc(obj: *mut ffi::PyObject) {
    // SAFETY: obj is live until freed below; its type is a heap type, kept
    // alive by obj's reference until the decref below.
    let ty = unsafe { ffi::Py_TYPE(obj) };
    // SAFETY: PyType_GetSlot accepts heap types on every version.
    let free = unsafe { ffi::PyType_GetSlot(ty, ffi::Py_tp_free) };
    if free.is_null() {
        // SAFETY: pyo3 classes are GC types allocated by PyType_GenericAlloc.
        unsafe { ffi::PyObject_GC_Del(obj.cast()) };
    } else {
        // SAFETY: the slot holds a freefunc; frees the instance once.
        unsafe { std::mem::transmute::<*mut c_void, ffi::freefunc>(free)(obj.cast()) };
    }
    // SAFETY: the reference the instance held.
    unsafe { ffi::Py_DECREF(ty.cast()) };
}

/// `tp_dealloc` slot (see [`dealloc`]); pyo3 does not go through it, and the
/// base has no instances of its own, so it is there for completeness.
///
/// # Safety
///
/// As [`dealloc`].
unsafe extern "C" fn tp_dealloc(obj: *mut ffi::PyObject) {
    // No panic: FFI calls only.
    // SAFETY: GC types are untracked before deallocation (untracking twice
    // is harmless); then as dealloc.
    unsafe {
        ffi::PyObject_GC_UnTrack(obj.cast());
        dealloc(obj);
    }
}

/// `tp_traverse`: the instance's reference to its (heap) type.
///
/// # Safety
///
/// Called by the GC (through pyo3's `tp_traverse` of the class) with a live
/// object and a visit function.
unsafe extern "C" fn tp_traverse(
    obj: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    // No panic: FFI calls only.
    // SAFETY: obj is live; Py_TYPE reads its type; visit is the GC's.
    unsafe { visit(ffi::Py_TYPE(obj).cast(), arg) }
}

/// `bf_getbuffer`: fills `view` for `obj` (a `BufferError` when the data
/// cannot be described, as the standard asks).
///
/// # Safety
///
/// Called by CPython (`PyObject_GetBuffer`) with an attached thread state, a
/// live object and a `Py_buffer` to fill.
unsafe extern "C" fn bf_getbuffer(
    obj: *mut ffi::PyObject,
    view: *mut Py_buffer,
    flags: c_int,
) -> c_int {
    // SAFETY: bf_getbuffer is called with an attached thread state.
    let py = unsafe { Python::assume_attached() };
    let rc = crate::error::c_status(py, || {
        if view.is_null() {
            return Err(crate::error::buffer_err("bf_getbuffer: NULL view"));
        }
        // SAFETY: obj is live for the call (borrowed).
        let obj = unsafe { Borrowed::from_ptr(py, obj) };
        // SAFETY: view is writable (checked non-NULL; CPython passes one).
        unsafe { getbuffer_any(&obj, view, flags) }
    });
    if rc != 0 && !view.is_null() {
        // SAFETY: writable; on failure the protocol wants view->obj NULL.
        unsafe { (*view).obj = ptr::null_mut() };
    }
    rc
}

#[cfg(test)]
mod tests {
    use pyo3::types::PyDict;

    use super::*;

    /// A class on the base with the pyo3 options the two classes do not use
    /// (yet): `weakref`, `dict` and a free list.
    #[pyclass(extends = BufferBase, weakref, dict, freelist = 4, module = "dlpack")]
    pub(super) struct Probe(#[allow(dead_code)] Vec<u8>);

    pub(super) fn probe_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
        Probe::lazy_type_object().get_or_try_init(py)
    }

    fn run(py: Python<'_>, code: &std::ffi::CStr, ns: &Bound<'_, PyDict>) {
        py.run(code, Some(ns), None).unwrap();
    }

    #[test]
    fn the_classes_extend_the_base_and_the_base_has_no_instances() {
        Python::attach(|py| {
            let base = py.get_type::<BufferBase>();
            assert_eq!(base.name().unwrap().to_string(), "_BufferBase");
            assert_eq!(base.module().unwrap().to_string(), "dlpack");
            for class in [py.get_type::<Tensor>(), py.get_type::<DLPackObject>()] {
                assert!(class.getattr("__base__").unwrap().is(&base));
            }
            let err = base.call0().unwrap_err();
            assert!(err.is_instance_of::<pyo3::exceptions::PyTypeError>(py));
            // A Python subclass can be declared but not instantiated, not
            // even through the base's __new__.
            let ns = PyDict::new(py);
            ns.set_item("B", &base).unwrap();
            run(py, c"class Sub(B): pass", &ns);
            let sub = ns.get_item("Sub").unwrap().unwrap();
            assert!(sub.call0().is_err());
            assert!(base.call_method1("__new__", (&sub,)).is_err());
            assert!(base.call_method1("__new__", (&base,)).is_err());
        });
    }

    /// Allocation through the class's `tp_alloc` (the free list), release of
    /// `__dict__` and weak references by pyo3 before the base frees the
    /// memory, one type reference per instance, and the GC's view of it.
    #[test]
    fn weakref_dict_and_freelist_classes_on_the_base() {
        Python::attach(|py| {
            let ns = PyDict::new(py);
            let make = || Bound::new(py, Probe(vec![7; 100])).unwrap();
            let ty = py.get_type::<Probe>();
            ns.set_item("T", &ty).unwrap();
            // SAFETY: ty is live.
            let refs = || unsafe { ffi::Py_REFCNT(ty.as_ptr()) };
            let before = refs();
            let p = make();
            assert_eq!(refs(), before + 1);
            ns.set_item("p", &p).unwrap();
            run(
                py,
                c"import gc, weakref
dead = []
p.attr = [1, 2]
w = weakref.ref(p, lambda _: dead.append(1))
assert p.__dict__ == {'attr': [1, 2]}
assert T in gc.get_referents(p) and p.__dict__ in gc.get_referents(p)
try:
    memoryview(p)
    raise AssertionError('a buffer from a class without one')
except BufferError:
    pass
del p",
                &ns,
            );
            let addr = p.as_ptr() as usize;
            drop(p);
            run(py, c"assert w() is None and dead == [1]", &ns);
            assert_eq!(refs(), before);
            // The free list hands the memory back to the next instance.
            let q = make();
            assert_eq!(q.as_ptr() as usize, addr);
            assert_eq!(refs(), before + 1);
            drop(q);
            assert_eq!(refs(), before);
        });
    }
}
