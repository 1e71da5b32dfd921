//! Read-only is never upgraded, from Rust: a `Tensor` holding a legacy
//! tensor (which cannot say that its data may be written) exports it as
//! read-only wherever the export can say so, and a borrowed bare `DLTensor`
//! of the exchange API is not writable.

use dlpack_core::export::Export;
use dlpack_core::ffi::DLPACK_FLAG_BITMASK_READ_ONLY;
use dlpack_core::protocol::DlpackRequest;
use dlpack_core::tensor::Access;
use dlpack_py::Tensor;
use dlpack_py::capsule::{capsule_info, new_capsule};
use dlpack_py::with_borrowed;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A capsule's flags (0 for legacy ones) and name, read without consuming it.
fn flags_and_name(cap: &Bound<'_, PyAny>) -> (u64, String) {
    let info = capsule_info(cap).unwrap();
    let get = |k: &str| info.get_item(k).unwrap().unwrap();
    (
        get("flags").extract().unwrap(),
        get("name").extract().unwrap(),
    )
}

#[test]
fn tensor_over_a_legacy_tensor_is_read_only_where_it_can_say_so() {
    Python::attach(|py| {
        let legacy = Export::new(vec![1.0f32, 2.0, 3.0]).legacy().unwrap();
        let shared = Tensor::new(legacy);
        assert!(shared.read_only());
        let req = |max_version| DlpackRequest {
            max_version,
            ..DlpackRequest::default()
        };
        for mv in [(1, 0), (1, 3)] {
            let cap = new_capsule(py, shared.export(&req(Some(mv))).unwrap()).unwrap();
            let (flags, name) = flags_and_name(&cap);
            assert_eq!(name, "dltensor_versioned");
            assert_eq!(flags & DLPACK_FLAG_BITMASK_READ_ONLY, 1, "{mv:?}");
        }
        // Legacy as it came: not refused.
        let cap = new_capsule(py, shared.export(&req(None)).unwrap()).unwrap();
        assert_eq!(flags_and_name(&cap).1, "dltensor");

        // The Python object's other surfaces say read-only too.
        let t = Bound::new(py, shared).unwrap();
        let locals = PyDict::new(py);
        locals.set_item("t", &t).unwrap();
        let ro: (bool, bool, bool) = py
            .eval(
                c"(t.readonly, memoryview(t).readonly, t.__array_interface__['data'][1])",
                None,
                Some(&locals),
            )
            .unwrap()
            .extract()
            .unwrap();
        assert_eq!(ro, (true, true, true));
    });
}

#[test]
fn borrowed_exchange_api_views_are_not_writable() {
    Python::attach(|py| {
        // A read-only tensor behind our own exchange API table: its bare
        // DLTensor cannot carry READ_ONLY, so the borrowed view must not
        // claim the data writable.
        let t = Export::new(vec![1u8, 2, 3])
            .read_only(true)
            .versioned()
            .unwrap();
        let obj = Bound::new(py, Tensor::new(t)).unwrap().into_any();
        let access = with_borrowed(&obj, |v| v.flags().access()).unwrap();
        assert_eq!(access, Access::Unknown);
        assert!(!with_borrowed(&obj, |v| v.flags().is_writable()).unwrap());
    });
}
