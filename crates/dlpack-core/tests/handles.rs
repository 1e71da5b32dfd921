//! Ownership: deleters run exactly once in every path (dropped unconsumed,
//! consumed, into_raw/from_raw, refused, panics, other threads), and
//! round trips through the raw structs keep every value and address.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dlpack_core::Error;
use dlpack_core::export::{Export, Memory, TensorOwner, legacy_to_versioned, versioned_to_legacy};
use dlpack_core::ffi::{
    DLDataType, DLDevice, DLManagedTensor, DLManagedTensorVersioned, DLPACK_FLAG_BITMASK_IS_COPIED,
    DLPACK_FLAG_BITMASK_READ_ONLY, DLPackVersion, DLTensor,
};
use dlpack_core::managed::{AnyManagedTensor, ManagedTensor, ManagedTensorVersioned};

/// A foreign versioned tensor whose deleter counts its calls.
struct Foreign {
    managed: DLManagedTensorVersioned,
    shape: [i64; 1],
    data: [f32; 3],
    calls: Arc<AtomicUsize>,
}

unsafe extern "C" fn count_versioned(m: *mut DLManagedTensorVersioned) {
    // SAFETY: manager_ctx is the Box<Foreign> this test leaked; called once.
    let foreign = unsafe { Box::from_raw((*m).manager_ctx.cast::<Foreign>()) };
    foreign.calls.fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" fn count_legacy(m: *mut DLManagedTensor) {
    // SAFETY: manager_ctx is the Box<ForeignLegacy> this test leaked.
    let foreign = unsafe { Box::from_raw((*m).manager_ctx.cast::<ForeignLegacy>()) };
    foreign.calls.fetch_add(1, Ordering::SeqCst);
}

struct ForeignLegacy {
    managed: DLManagedTensor,
    shape: [i64; 1],
    data: [f32; 3],
    calls: Arc<AtomicUsize>,
}

fn empty_tensor() -> DLTensor {
    DLTensor {
        data: ptr::null_mut(),
        device: DLDevice::cpu(),
        ndim: 1,
        dtype: DLDataType::F32,
        shape: ptr::null_mut(),
        strides: ptr::null_mut(),
        byte_offset: 0,
    }
}

fn foreign(version: DLPackVersion, ndim: i32) -> (*mut DLManagedTensorVersioned, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let raw = Box::into_raw(Box::new(Foreign {
        managed: DLManagedTensorVersioned {
            version,
            manager_ctx: ptr::null_mut(),
            deleter: Some(count_versioned),
            flags: 0,
            dl_tensor: empty_tensor(),
        },
        shape: [3],
        data: [1.0, 2.0, 3.0],
        calls: calls.clone(),
    }));
    // SAFETY: raw is a fresh Box; pointers into it are derived from it.
    unsafe {
        (*raw).managed.manager_ctx = raw.cast();
        (*raw).managed.dl_tensor.data = ptr::addr_of_mut!((*raw).data).cast();
        (*raw).managed.dl_tensor.shape = ptr::addr_of_mut!((*raw).shape).cast();
        (*raw).managed.dl_tensor.ndim = ndim;
        (ptr::addr_of_mut!((*raw).managed), calls)
    }
}

fn foreign_legacy() -> (*mut DLManagedTensor, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let raw = Box::into_raw(Box::new(ForeignLegacy {
        managed: DLManagedTensor {
            dl_tensor: empty_tensor(),
            manager_ctx: ptr::null_mut(),
            deleter: Some(count_legacy),
        },
        shape: [3],
        data: [1.0, 2.0, 3.0],
        calls: calls.clone(),
    }));
    // SAFETY: as in foreign().
    unsafe {
        (*raw).managed.manager_ctx = raw.cast();
        (*raw).managed.dl_tensor.data = ptr::addr_of_mut!((*raw).data).cast();
        (*raw).managed.dl_tensor.shape = ptr::addr_of_mut!((*raw).shape).cast();
        (ptr::addr_of_mut!((*raw).managed), calls)
    }
}

#[test]
fn foreign_deleter_runs_once_on_drop() {
    let (raw, calls) = foreign(DLPackVersion::CURRENT, 1);
    // SAFETY: an owned, valid versioned tensor.
    let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
    assert_eq!(t.view().as_slice::<f32>().unwrap(), &[1.0, 2.0, 3.0]);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    drop(t);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn unknown_major_releases_without_reading_the_tensor() {
    // ndim -7 would be refused as NegativeNdim if the descriptor were read.
    let (raw, calls) = foreign(DLPackVersion { major: 2, minor: 0 }, -7);
    // SAFETY: owned; from_raw must only read version and deleter.
    let err = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap_err();
    assert_eq!(
        err,
        Error::UnsupportedVersion {
            version: DLPackVersion { major: 2, minor: 0 }
        }
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn refused_tensor_is_released_once() {
    let (raw, calls) = foreign(DLPackVersion { major: 1, minor: 9 }, -1);
    // SAFETY: owned, but its ndim breaks the rules.
    let err = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap_err();
    assert_eq!(err, Error::NegativeNdim { ndim: -1 });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn minor_versions_above_ours_are_accepted() {
    let (raw, calls) = foreign(
        DLPackVersion {
            major: 1,
            minor: 99,
        },
        1,
    );
    // SAFETY: owned and valid.
    let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
    assert_eq!(
        t.version(),
        DLPackVersion {
            major: 1,
            minor: 99
        }
    );
    drop(t);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn null_pointer_and_null_deleter() {
    // SAFETY: NULL is allowed and refused.
    let err = unsafe { ManagedTensor::from_raw(ptr::null_mut()) }.unwrap_err();
    assert_eq!(err, Error::NullManagedTensor);

    let mut shape = [2i64];
    let mut data = [7u8, 8];
    let mut managed = DLManagedTensor {
        dl_tensor: DLTensor {
            data: data.as_mut_ptr().cast(),
            device: DLDevice::cpu(),
            ndim: 1,
            dtype: DLDataType::U8,
            shape: shape.as_mut_ptr(),
            strides: ptr::null_mut(),
            byte_offset: 0,
        },
        manager_ctx: ptr::null_mut(),
        deleter: None,
    };
    // SAFETY: valid; a NULL deleter means nothing to call.
    let t = unsafe { ManagedTensor::from_raw(&mut managed) }.unwrap();
    assert_eq!(t.view().as_slice::<u8>().unwrap(), &[7, 8]);
    drop(t);
}

#[test]
fn into_raw_then_from_raw_keeps_one_release() {
    let (raw, calls) = foreign(DLPackVersion::CURRENT, 1);
    // SAFETY: owned and valid.
    let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
    let raw = t.into_raw();
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // SAFETY: the pointer from into_raw, owned again.
    let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
    drop(t);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn panic_while_in_use_releases_once() {
    let (raw, calls) = foreign_legacy();
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: owned and valid.
        let t = unsafe { ManagedTensor::from_raw(raw) }.unwrap();
        let _values = t.view().as_slice::<f32>().unwrap();
        panic!("consumer failed while holding the tensor");
    }));
    assert!(result.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "threads are slow under miri; covered by the export test below"
)]
fn released_from_another_thread() {
    let (raw, calls) = foreign(DLPackVersion::CURRENT, 1);
    // SAFETY: owned and valid.
    let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
    std::thread::spawn(move || drop(t)).join().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn legacy_tensors_are_not_writable() {
    let (raw, calls) = foreign_legacy();
    // SAFETY: owned and valid.
    let mut t = AnyManagedTensor::from(unsafe { ManagedTensor::from_raw(raw) }.unwrap());
    assert!(t.flags().is_legacy());
    assert_eq!(t.as_mut_slice::<f32>().unwrap_err(), Error::ReadOnly);
    drop(t);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// An owner that counts its drops.
struct Counted {
    data: Vec<u32>,
    drops: Arc<AtomicUsize>,
    read_only: bool,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: the Vec's buffer is stable under moves and lives as long as Counted.
unsafe impl TensorOwner for Counted {
    fn memory(&mut self) -> Memory {
        Memory {
            ptr: self.data.as_mut_ptr().cast(),
            len: self.data.len() * 4,
            device: DLDevice::cpu(),
            dtype: Some(DLDataType::U32),
            read_only: self.read_only,
        }
    }
}

fn counted(read_only: bool) -> (Counted, Arc<AtomicUsize>) {
    let drops = Arc::new(AtomicUsize::new(0));
    (
        Counted {
            data: (0..6).collect(),
            drops: drops.clone(),
            read_only,
        },
        drops,
    )
}

#[test]
fn export_paths_drop_the_owner_once() {
    // Dropped unconsumed.
    let (owner, drops) = counted(false);
    let t = Export::new(owner).shape(&[2, 3]).versioned().unwrap();
    drop(t);
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    // Consumed by a C consumer calling the deleter itself.
    let (owner, drops) = counted(false);
    let raw = Export::new(owner)
        .shape(&[2, 3])
        .legacy()
        .unwrap()
        .into_raw();
    // SAFETY: raw is owned; a consumer calls the deleter once.
    unsafe { ((*raw).deleter.unwrap())(raw) };
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    // into_raw / from_raw, then dropped on another thread.
    let (owner, drops) = counted(false);
    let raw = Export::new(owner).versioned().unwrap().into_raw();
    // SAFETY: raw came from into_raw.
    let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
    assert_eq!(t.view().shape(), &[6]);
    std::thread::spawn(move || drop(t)).join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    // Refused export: the owner is dropped, once.
    let (owner, drops) = counted(false);
    let err = Export::new(owner).shape(&[2, 4]).versioned().unwrap_err();
    assert_eq!(
        err,
        Error::OutOfBounds {
            start: 0,
            end: 32,
            len: 24
        }
    );
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    // A panic while the exported tensor is in use.
    let (owner, drops) = counted(false);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _t = Export::new(owner).versioned().unwrap();
        panic!("boom");
    }));
    assert!(r.is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn read_only_owners_export_read_only_and_never_legacy() {
    let (owner, drops) = counted(true);
    let t = Export::new(owner).versioned().unwrap();
    assert!(t.flags().is_read_only());
    assert_eq!(t.dl_tensor().dtype, DLDataType::U32);
    assert_eq!(
        versioned_to_legacy(t).unwrap_err(),
        Error::ReadOnlyLegacyExport
    );
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    let (owner, drops) = counted(true);
    assert_eq!(
        Export::new(owner).legacy().unwrap_err(),
        Error::ReadOnlyLegacyExport
    );
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn rewrapping_between_abis_is_zero_copy_and_releases_once() {
    let (raw, calls) = foreign_legacy();
    // SAFETY: owned and valid.
    let legacy = unsafe { ManagedTensor::from_raw(raw) }.unwrap();
    let data = legacy.view().data_ptr();
    let versioned = legacy_to_versioned(legacy, DLPACK_FLAG_BITMASK_READ_ONLY).unwrap();
    assert_eq!(versioned.view().data_ptr(), data);
    assert!(versioned.flags().is_read_only());
    assert_eq!(
        versioned.view().as_slice::<f32>().unwrap(),
        &[1.0, 2.0, 3.0]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    drop(versioned);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let (raw, calls) = foreign(DLPackVersion::CURRENT, 1);
    // SAFETY: owned and valid.
    let versioned = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
    let legacy = versioned_to_legacy(versioned).unwrap();
    assert_eq!(legacy.view().shape(), &[3]);
    drop(legacy);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn legacy_tensors_become_read_only_versioned_tensors() {
    // The legacy ABI cannot say the data may be written, so the versioned
    // tensor made from it is READ_ONLY whatever flags the caller claims:
    // no flags, or IS_COPIED (which is kept).
    for claimed in [0, DLPACK_FLAG_BITMASK_IS_COPIED] {
        let (raw, calls) = foreign_legacy();
        // SAFETY: owned and valid.
        let legacy = unsafe { ManagedTensor::from_raw(raw) }.unwrap();
        let mut versioned = legacy_to_versioned(legacy, claimed).unwrap();
        let flags = versioned.flags();
        assert!(flags.is_read_only(), "claimed {claimed:#x}: {flags:?}");
        assert_eq!(flags.is_copied(), claimed != 0, "{flags:?}");
        assert_eq!(
            versioned.as_mut_slice::<f32>().unwrap_err(),
            Error::ReadOnly
        );
        // Read-only now, it cannot go back to the legacy ABI either.
        assert_eq!(
            versioned_to_legacy(versioned).unwrap_err(),
            Error::ReadOnlyLegacyExport
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn exported_descriptor_follows_the_producer_rules() {
    // 0-d: shape and strides NULL.
    let t = Export::new(vec![5.0f64]).shape(&[]).versioned().unwrap();
    let raw = t.dl_tensor();
    assert!(raw.shape.is_null() && raw.strides.is_null());
    assert_eq!(raw.ndim, 0);
    assert_eq!(t.view().as_slice::<f64>().unwrap(), &[5.0]);
    assert_eq!(t.version(), DLPackVersion { major: 1, minor: 3 });

    // Size zero: data NULL, strides filled.
    let t = Export::new(Vec::<i8>::new())
        .shape(&[0, 3])
        .versioned()
        .unwrap();
    assert!(t.dl_tensor().data.is_null());
    assert!(!t.dl_tensor().strides.is_null());
    assert_eq!(t.view().as_slice::<i8>().unwrap(), &[] as &[i8]);

    // byte_offset folded into data on the CPU.
    let v: Vec<u16> = (0..8).collect();
    let base = v.as_ptr() as usize;
    let t = Export::new(v)
        .shape(&[3])
        .strides(&[-2])
        .byte_offset(12)
        .versioned()
        .unwrap();
    assert_eq!(t.dl_tensor().byte_offset, 0);
    assert_eq!(t.dl_tensor().data as usize, base + 12);
    let view = t.view();
    let p = view.element_ptr::<u16>().unwrap();
    // SAFETY: offsets within the validated layout.
    let got: Vec<u16> = (0..3).map(|i| unsafe { *p.offset(-2 * i) }).collect();
    assert_eq!(got, [6, 4, 2]);

    // Reaching below the owner's base is refused.
    let err = Export::new(vec![0u16; 8])
        .shape(&[3])
        .strides(&[-2])
        .byte_offset(2)
        .versioned()
        .unwrap_err();
    assert_eq!(
        err,
        Error::OutOfBounds {
            start: -6,
            end: 4,
            len: 16
        }
    );
}
