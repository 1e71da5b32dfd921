//! Owners whose buffer pointer must survive the move into the exported
//! block: a `Box<[T]>` asserts unique ownership when moved, so the data
//! pointer is taken from the owner where it sits for good (miri checks).

use dlpack_core::export::Export;

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
