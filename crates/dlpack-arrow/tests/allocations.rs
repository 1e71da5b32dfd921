//! The heap work of each conversion, counted: an export is one allocation
//! (the core's block) and no copy; an import is one allocation (the
//! buffer's owner `Arc`) besides Arrow's own `Arc` of the buffer.

use arrow_array::Float32Array;
use arrow_array::types::Float32Type;
use dlpack_arrow::ToDlpack;
use dlpack_arrow::consumer::ArrowImport;
use dlpack_test_support::{Counting, counted};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn export_is_one_allocation_import_two() {
    let array = Float32Array::from(vec![0.5f32; 1 << 16]);
    let (t, allocs, frees) = counted(|| array.to_dlpack_versioned().unwrap());
    assert_eq!((allocs, frees), (1, 0), "export: the core's block");
    let ((), _, frees) = counted(|| drop(t));
    assert_eq!(
        frees, 1,
        "release: the block (the array still holds the data)"
    );

    let t = array.to_dlpack_versioned().unwrap();
    let (back, allocs, _) = counted(|| ArrowImport::new(t).primitive::<Float32Type>().unwrap());
    assert_eq!(
        allocs, 2,
        "import: the owner Arc and Arrow's Bytes Arc, never the values"
    );
    assert_eq!(back.len(), 1 << 16);
}
