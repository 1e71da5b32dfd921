//! Owners whose buffer pointer must survive the move into the exported
//! block: a `Box<[T]>` asserts unique ownership when moved, so the data
//! pointer is taken from the owner where it sits for good (miri checks).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dlpack_core::export::{Export, Memory, TensorOwner};
use dlpack_core::ffi::{DLDataType, DLDevice};

#[test]
fn boxed_slice_export_reads_back() {
    let b: Box<[i32]> = vec![1, 2, 3, 4, 5, 6].into_boxed_slice();
    let t = Export::new(b).shape(&[2, 3]).versioned().unwrap();
    assert_eq!(t.view().as_slice::<i32>().unwrap(), &[1, 2, 3, 4, 5, 6]);
    let t = Export::new(vec![1u8, 2, 3, 4].into_boxed_slice())
        .shape(&[2])
        .strides(&[-2])
        .byte_offset(2)
        .legacy()
        .unwrap();
    let p = t.view().element_ptr::<u8>().unwrap();
    // SAFETY: offsets within the validated layout.
    assert_eq!(unsafe { (*p, *p.offset(-2)) }, (3, 1));
}

/// An owner of "device" memory (an address it does not dereference) that
/// counts how often it is asked for its memory.
struct DeviceAddress {
    device: DLDevice,
    asked: Arc<AtomicUsize>,
}

// SAFETY: the address is only described, never dereferenced by this test;
// it does not move with the owner.
unsafe impl TensorOwner for DeviceAddress {
    fn memory(&mut self) -> Memory {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Memory {
            ptr: std::ptr::without_provenance_mut(0x7000_0000),
            len: 64,
            device: self.device,
            dtype: Some(DLDataType::U8),
            read_only: false,
        }
    }
}

#[test]
fn device_owners_are_asked_for_their_memory_once() {
    // A device owner's `memory` may cost driver calls (cudarc's tracked
    // device pointer): an export asks once; the data pointer is the one
    // it answered, plus the byte offset.
    for device in [DLDevice::cuda(0), DLDevice::rocm(1)] {
        let asked = Arc::new(AtomicUsize::new(0));
        let owner = DeviceAddress {
            device,
            asked: asked.clone(),
        };
        let t = Export::new(owner)
            .shape(&[32])
            .byte_offset(8)
            .versioned()
            .unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 1, "{device:?}");
        assert_eq!(t.view().data_ptr() as usize, 0x7000_0008);
        assert_eq!(t.view().device(), device);
    }
}
