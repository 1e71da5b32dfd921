//! Export of an owned Vec makes exactly one heap allocation (header, shape,
//! strides and owner in one block), and frees exactly one.

use dlpack_core::export::Export;
use dlpack_test_support::{Counting, counts};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn export_is_one_allocation() {
    for shape in [
        &[1024i64][..],
        &[4, 8, 8, 4],
        &[],
        &[2, 0, 3],
        &[1, 1, 1, 1, 1, 1, 1, 1, 2],
    ] {
        let n: i64 = shape.iter().product();
        let data = vec![0.5f32; n as usize];
        let (a0, f0) = counts();
        let versioned = Export::new(data).shape(shape).versioned().unwrap();
        let (a1, _) = counts();
        assert_eq!(a1 - a0, 1, "allocations for the export of shape {shape:?}");
        let raw = versioned.into_raw();
        // SAFETY: the deleter of our own export, called once as a consumer would.
        unsafe { ((*raw).deleter.unwrap())(raw) };
        let (a2, f2) = counts();
        assert_eq!(a2, a1, "the deleter allocates nothing");
        let buffers = usize::from(n > 0); // an empty Vec owns no heap buffer
        assert_eq!(
            f2 - f0,
            1 + buffers,
            "the block and the Vec's buffer are freed ({shape:?})"
        );
    }
    let data = vec![1u8; 16];
    let (a0, _) = counts();
    let legacy = Export::new(data)
        .shape(&[4, 4])
        .strides(&[1, 4])
        .legacy()
        .unwrap();
    assert_eq!(counts().0 - a0, 1);
    drop(legacy);
}
