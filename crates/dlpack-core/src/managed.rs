//! Owning handles for managed tensors: [`ManagedTensor`] (legacy
//! `DLManagedTensor`), [`ManagedTensorVersioned`] (`DLManagedTensorVersioned`)
//! and [`AnyManagedTensor`] (either, as a consumer receives them).
//!
//! A handle owns the tensor: dropping it calls the producer's deleter exactly
//! once (never when the deleter is NULL), from whatever thread drops it.
//! [`Managed::from_raw`] takes ownership in every outcome: when the tensor is
//! refused (a major version other than 1, or a rule of
//! [`TensorView::from_raw`] broken), the deleter runs before the error is
//! returned, so the caller has nothing left to free.

use core::fmt;
use core::ptr::NonNull;
use core::slice;

use crate::dtype::{Element, Storage};
use crate::error::Error;
use crate::ffi::{DLManagedTensor, DLManagedTensorVersioned, DLPackVersion, DLTensor};
use crate::layout::Layout;
use crate::tensor::{Flags, TensorView};

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::ffi::DLManagedTensor {}
    impl Sealed for crate::ffi::DLManagedTensorVersioned {}
}

/// The two managed-tensor ABIs, for code generic over both.
///
/// Sealed: implemented by [`DLManagedTensor`] and [`DLManagedTensorVersioned`]
/// only.
pub trait ManagedAbi: sealed::Sealed + Sized + 'static {
    /// Whether this is the versioned ABI.
    const VERSIONED: bool;
    /// The tensor description.
    fn dl_tensor(&self) -> &DLTensor;
    /// The tensor description, mutably.
    fn dl_tensor_mut(&mut self) -> &mut DLTensor;
    /// The flags ([`Flags::LEGACY`] for the legacy ABI).
    fn flags(&self) -> Flags;
    /// The deleter.
    fn deleter(&self) -> Option<unsafe extern "C" fn(*mut Self)>;
}

impl ManagedAbi for DLManagedTensor {
    const VERSIONED: bool = false;
    fn dl_tensor(&self) -> &DLTensor {
        &self.dl_tensor
    }
    fn dl_tensor_mut(&mut self) -> &mut DLTensor {
        &mut self.dl_tensor
    }
    fn flags(&self) -> Flags {
        Flags::LEGACY
    }
    fn deleter(&self) -> Option<unsafe extern "C" fn(*mut Self)> {
        self.deleter
    }
}

impl ManagedAbi for DLManagedTensorVersioned {
    const VERSIONED: bool = true;
    fn dl_tensor(&self) -> &DLTensor {
        &self.dl_tensor
    }
    fn dl_tensor_mut(&mut self) -> &mut DLTensor {
        &mut self.dl_tensor
    }
    fn flags(&self) -> Flags {
        Flags::from_bits(self.flags)
    }
    fn deleter(&self) -> Option<unsafe extern "C" fn(*mut Self)> {
        self.deleter
    }
}

/// An owned, validated managed tensor of either ABI.
///
/// Use the aliases [`ManagedTensor`] and [`ManagedTensorVersioned`].
pub struct Managed<M: ManagedAbi> {
    ptr: NonNull<M>,
    layout: Layout,
    storage: Storage,
}

/// An owned legacy `DLManagedTensor` (capsule name `"dltensor"`).
pub type ManagedTensor = Managed<DLManagedTensor>;
/// An owned `DLManagedTensorVersioned` (capsule name `"dltensor_versioned"`).
pub type ManagedTensorVersioned = Managed<DLManagedTensorVersioned>;

// SAFETY: the DLPack standard requires deleters to be callable from any
// thread (taking the GIL themselves when they touch Python), and the tensor
// data is shared memory whose synchronisation the standard leaves to streams
// and the caller; our own exports require `Send` owners.
unsafe impl<M: ManagedAbi> Send for Managed<M> {}
// SAFETY: `&Managed` only reads the descriptor and hands out shared views.
unsafe impl<M: ManagedAbi> Sync for Managed<M> {}

impl<M: ManagedAbi> Managed<M> {
    /// Takes ownership of a managed tensor received from a producer and
    /// validates it.
    ///
    /// For the versioned ABI, a `version.major` other than 1 is refused
    /// after calling the deleter and touching nothing else, as the standard
    /// requires. On any error the deleter has run.
    ///
    /// # Safety
    ///
    /// `ptr` is NULL or points to a managed tensor of this ABI that the
    /// caller owns (it will be released exactly once, by this handle or
    /// before an error is returned), and its `dl_tensor` satisfies the
    /// contract of [`TensorView::from_raw`] until the deleter runs.
    ///
    /// # Errors
    ///
    /// [`Error::NullManagedTensor`], [`Error::UnsupportedVersion`], or the
    /// first validation rule the tensor breaks.
    // Inlined (with the validation) into the consumer: the handle is then
    // built in registers, not through a 56-byte `Result` in memory, and the
    // call's register saves go; about 40 instructions of an import's 140.
    #[inline(always)]
    pub unsafe fn from_raw(ptr: *mut M) -> Result<Self, Error> {
        let ptr = NonNull::new(ptr).ok_or(Error::NullManagedTensor)?;
        if M::VERSIONED {
            // SAFETY: the versioned ABI starts with DLPackVersion at offset 0
            // in every major version; ptr is valid by the caller's contract.
            let version = unsafe { ptr.cast::<DLPackVersion>().read() };
            if version.major != DLPackVersion::CURRENT.major {
                // SAFETY: the deleter sits at the same offset in every major
                // version ("Future ABI changes should keep everything until
                // this field stable"); it may be called on any tensor.
                unsafe { release_unknown_major(ptr.cast::<DLManagedTensorVersioned>()) };
                return Err(Error::UnsupportedVersion { version });
            }
        }
        // SAFETY: ptr is valid; the descriptor satisfies the view contract.
        let checked = unsafe {
            let managed = ptr.as_ref();
            TensorView::from_raw(managed.dl_tensor(), managed.flags())
                .map(|view| (*view.layout(), view.storage()))
        };
        match checked {
            Ok((layout, storage)) => Ok(Managed {
                ptr,
                layout,
                storage,
            }),
            Err(err) => {
                drop(Managed {
                    ptr,
                    layout: EMPTY_LAYOUT,
                    storage: Storage::Bytes(1),
                });
                Err(err)
            }
        }
    }

    /// Wraps a tensor this crate built itself, already known to be valid.
    ///
    /// # Safety
    ///
    /// `ptr` is owned and its descriptor was built with `layout` and
    /// `storage` (so validation would pass with these results).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) unsafe fn from_trusted(ptr: NonNull<M>, layout: Layout, storage: Storage) -> Self {
        Managed {
            ptr,
            layout,
            storage,
        }
    }

    /// Gives up ownership; the caller must arrange for the deleter to run
    /// (e.g. by handing the pointer to a consumer, or [`Managed::from_raw`]).
    pub fn into_raw(self) -> *mut M {
        let ptr = self.ptr.as_ptr();
        core::mem::forget(self);
        ptr
    }

    /// The managed struct, still owned by this handle.
    pub fn as_ptr(&self) -> *mut M {
        self.ptr.as_ptr()
    }

    fn managed(&self) -> &M {
        // SAFETY: the handle owns a valid managed tensor until drop.
        unsafe { self.ptr.as_ref() }
    }

    /// The validated view of the tensor.
    pub fn view(&self) -> TensorView<'_> {
        let managed = self.managed();
        // SAFETY: validated in from_raw (or built trusted) with these results;
        // the descriptor is owned by self and unchanged since.
        unsafe {
            TensorView::from_validated(
                managed.dl_tensor(),
                self.layout,
                self.storage,
                managed.flags(),
            )
        }
    }

    /// The flags ([`Flags::LEGACY`] for legacy tensors).
    pub fn flags(&self) -> Flags {
        self.managed().flags()
    }

    /// The raw descriptor.
    pub fn dl_tensor(&self) -> &DLTensor {
        self.managed().dl_tensor()
    }

    /// The elements as a mutable slice, for a writable, C-contiguous,
    /// host-accessible tensor of `T`s.
    ///
    /// # Errors
    ///
    /// [`Error::ReadOnly`] when the tensor is read-only or legacy (which
    /// cannot signal writability), else as [`TensorView::as_slice`].
    pub fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T], Error> {
        if !self.flags().is_writable() {
            return Err(Error::ReadOnly);
        }
        let view = self.view();
        let ptr = view.element_ptr::<T>()?;
        if !view.is_c_contiguous() {
            return Err(Error::NotContiguous);
        }
        let len = view.num_elements() as usize;
        // SAFETY: as in TensorView::as_slice; the producer marked the data
        // writable and `&mut self` makes this the only view handed out.
        Ok(unsafe { slice::from_raw_parts_mut(ptr, len) })
    }
}

impl ManagedTensorVersioned {
    /// The ABI version the producer wrote.
    pub fn version(&self) -> DLPackVersion {
        self.managed().version
    }
}

impl<M: ManagedAbi> Drop for Managed<M> {
    fn drop(&mut self) {
        let ptr = self.ptr.as_ptr();
        if let Some(deleter) = self.managed().deleter() {
            // SAFETY: the handle owns the tensor and runs its deleter exactly
            // once; nothing touches it afterwards.
            unsafe { deleter(ptr) };
        }
    }
}

impl<M: ManagedAbi> fmt::Debug for Managed<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(if M::VERSIONED {
            "ManagedTensorVersioned"
        } else {
            "ManagedTensor"
        })
        .field("tensor", &self.view())
        .finish()
    }
}

const EMPTY_LAYOUT: Layout = Layout {
    elements: 0,
    start: 0,
    end: 0,
    c_contiguous: true,
};

/// Calls the deleter of a versioned tensor whose major version is unknown.
///
/// # Safety
///
/// `ptr` is an owned versioned tensor; only its deleter field is read.
unsafe fn release_unknown_major(ptr: NonNull<DLManagedTensorVersioned>) {
    // SAFETY: the deleter's offset is stable across majors (see from_raw);
    // reading it through a raw field pointer avoids asserting anything about
    // the rest of the struct.
    let deleter = unsafe { core::ptr::addr_of!((*ptr.as_ptr()).deleter).read() };
    if let Some(deleter) = deleter {
        // SAFETY: owned; called once.
        unsafe { deleter(ptr.as_ptr()) };
    }
}

/// A managed tensor of either ABI, as consumers receive them (a producer may
/// answer `max_version=(1, x)` with a legacy tensor).
#[derive(Debug)]
pub enum AnyManagedTensor {
    /// A legacy `DLManagedTensor`.
    Legacy(ManagedTensor),
    /// A `DLManagedTensorVersioned`.
    Versioned(ManagedTensorVersioned),
}

impl AnyManagedTensor {
    /// The validated view of the tensor.
    pub fn view(&self) -> TensorView<'_> {
        match self {
            AnyManagedTensor::Legacy(t) => t.view(),
            AnyManagedTensor::Versioned(t) => t.view(),
        }
    }

    /// The flags ([`Flags::LEGACY`] for legacy tensors).
    pub fn flags(&self) -> Flags {
        match self {
            AnyManagedTensor::Legacy(t) => t.flags(),
            AnyManagedTensor::Versioned(t) => t.flags(),
        }
    }

    /// As [`Managed::as_mut_slice`].
    ///
    /// # Errors
    ///
    /// As [`Managed::as_mut_slice`].
    pub fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T], Error> {
        match self {
            AnyManagedTensor::Legacy(t) => t.as_mut_slice(),
            AnyManagedTensor::Versioned(t) => t.as_mut_slice(),
        }
    }
}

impl From<ManagedTensor> for AnyManagedTensor {
    fn from(t: ManagedTensor) -> Self {
        AnyManagedTensor::Legacy(t)
    }
}

impl From<ManagedTensorVersioned> for AnyManagedTensor {
    fn from(t: ManagedTensorVersioned) -> Self {
        AnyManagedTensor::Versioned(t)
    }
}
