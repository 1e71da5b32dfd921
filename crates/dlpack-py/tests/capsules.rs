//! Capsule and ownership rules, with embedded Python: names per ABI,
//! rename-on-consume exactly once, destructors that free only unconsumed
//! capsules, refusals that release exactly once, and deleters run on other
//! threads.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use dlpack_core::export::Export;
use dlpack_core::ffi::{DLDataType, DLDevice, DLManagedTensorVersioned, DLPackVersion, DLTensor};
use dlpack_core::protocol::DlpackRequest;
use dlpack_py::Tensor;
use dlpack_py::capsule::{RawManaged, capsule_info, consume_capsule, new_capsule};
use dlpack_py::live_tensors;
use dlpack_py::{ExtractOptions, ImportPath, extract};
use pyo3::exceptions::{PyBufferError, PyTypeError, PyValueError};
use pyo3::prelude::*;

/// The live counter is global: tests that read it run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Every test runs alone: the live-tensor counter is process-wide, so a
/// test that counts must not see another test's tensors come and go.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn shared_f32(n: usize) -> Tensor {
    let t = Export::new(vec![1.0f32; n]).versioned().unwrap();
    Tensor::new(t)
}

fn req(max_version: Option<(i64, i64)>) -> DlpackRequest {
    DlpackRequest {
        max_version,
        ..DlpackRequest::default()
    }
}

#[test]
fn names_follow_max_version() {
    let _g = serial();
    Python::attach(|py| {
        let s = shared_f32(4);
        for (mv, name) in [
            (None, "dltensor"),
            (Some((0, 8)), "dltensor"),
            (Some((1, 0)), "dltensor_versioned"),
            (Some((1, 3)), "dltensor_versioned"),
            (Some((2, 0)), "dltensor_versioned"),
        ] {
            let cap = new_capsule(py, s.export(&req(mv)).unwrap()).unwrap();
            let info = capsule_info(&cap).unwrap();
            let got: String = info.get_item("name").unwrap().unwrap().extract().unwrap();
            assert_eq!(got, name, "max_version={mv:?}");
        }
    });
}

#[test]
fn consumed_twice_is_value_error() {
    let _g = serial();
    Python::attach(|py| {
        let s = shared_f32(4);
        let cap = new_capsule(py, s.export(&req(Some((1, 3)))).unwrap()).unwrap();
        let t = consume_capsule(&cap).unwrap();
        assert_eq!(t.view().shape(), &[4]);
        let err = consume_capsule(&cap).unwrap_err();
        assert!(err.is_instance_of::<PyValueError>(py), "{err}");
        assert!(err.to_string().contains("already consumed"));
    });
}

#[test]
fn destructor_frees_only_unconsumed() {
    let _g = serial();
    Python::attach(|py| {
        let base = live_tensors();
        let s = shared_f32(4);
        // Unconsumed: dropping the capsule frees the exported tensor.
        let cap = new_capsule(py, s.export(&req(Some((1, 3)))).unwrap()).unwrap();
        assert_eq!(live_tensors(), base + 1);
        drop(cap);
        assert_eq!(live_tensors(), base);
        // Consumed: the capsule's destructor must not free; the consumer does.
        let cap = new_capsule(py, s.export(&req(None)).unwrap()).unwrap();
        let t = consume_capsule(&cap).unwrap();
        drop(cap);
        assert_eq!(live_tensors(), base + 1, "freed by a consumed capsule");
        assert_eq!(t.view().shape(), &[4]);
        drop(t);
        assert_eq!(live_tensors(), base);
    });
}

static DELETED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count_delete(p: *mut DLManagedTensorVersioned) {
    DELETED.fetch_add(1, Ordering::SeqCst);
    // SAFETY: allocated with Box in the test below, released once.
    drop(unsafe { Box::from_raw(p) });
}

#[test]
fn unknown_major_is_released_once_and_refused() {
    let _g = serial();
    Python::attach(|py| {
        DELETED.store(0, Ordering::SeqCst);
        let m = Box::new(DLManagedTensorVersioned {
            version: DLPackVersion { major: 2, minor: 0 },
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(count_delete),
            flags: 0,
            dl_tensor: DLTensor {
                data: std::ptr::null_mut(),
                device: DLDevice::cpu(),
                ndim: 0,
                dtype: DLDataType::F32,
                shape: std::ptr::null_mut(),
                strides: std::ptr::null_mut(),
                byte_offset: 0,
            },
        });
        let cap = new_capsule(py, RawManaged::Versioned(Box::into_raw(m))).unwrap();
        let err = consume_capsule(&cap).unwrap_err();
        assert!(err.is_instance_of::<PyBufferError>(py), "{err}");
        assert_eq!(DELETED.load(Ordering::SeqCst), 1);
        drop(cap); // renamed before validation: the destructor does nothing
        assert_eq!(DELETED.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn failure_before_rename_leaves_capsule_to_its_destructor() {
    let _g = serial();
    Python::attach(|py| {
        let base = live_tensors();
        let s = shared_f32(2);
        let cap = new_capsule(py, s.export(&req(Some((1, 3)))).unwrap()).unwrap();
        // A refusal before taking ownership (a forced wrong protocol) must
        // not consume the capsule.
        let opts = ExtractOptions {
            protocol: Some(dlpack_py::Protocol::Buffer),
            ..ExtractOptions::default()
        };
        assert!(extract(&cap, &opts).is_err());
        let info = capsule_info(&cap).unwrap();
        let name: String = info.get_item("name").unwrap().unwrap().extract().unwrap();
        assert_eq!(name, "dltensor_versioned");
        drop(cap);
        assert_eq!(live_tensors(), base);
        // Not a capsule at all: TypeError.
        let err = consume_capsule(&3i32.into_pyobject(py).unwrap().into_any()).unwrap_err();
        assert!(err.is_instance_of::<PyTypeError>(py));
    });
}

#[test]
fn read_only_legacy_is_buffer_error() {
    let _g = serial();
    Python::attach(|py| {
        let t = Export::new(vec![1u8; 3])
            .read_only(true)
            .versioned()
            .unwrap();
        let s = Tensor::new(t);
        let err = s.export(&req(None)).unwrap_err();
        assert!(err.is_instance_of::<PyBufferError>(py), "{err}");
        let cap = new_capsule(py, s.export(&req(Some((1, 0)))).unwrap()).unwrap();
        let flags: u64 = capsule_info(&cap)
            .unwrap()
            .get_item("flags")
            .unwrap()
            .unwrap()
            .extract()
            .unwrap();
        assert_eq!(flags & 1, 1);
    });
}

#[test]
fn deleter_runs_on_another_thread() {
    let _g = serial();
    Python::attach(|py| {
        let base = live_tensors();
        let ba = py.eval(c"bytearray(b'abcdefgh')", None, None).unwrap();
        let t = extract(&ba, &ExtractOptions::default()).unwrap();
        assert_eq!(t.path(), ImportPath::Buffer);
        assert_eq!(live_tensors(), base + 1);
        // The held Py_buffer blocks resizing.
        assert!(ba.call_method1("extend", (b"x".as_slice(),)).is_err());
        // Release on a thread that must attach to Python itself.
        py.detach(|| std::thread::spawn(move || drop(t)).join().unwrap());
        assert_eq!(live_tensors(), base);
        ba.call_method1("extend", (b"x".as_slice(),)).unwrap();
    });
}

#[test]
fn tensor_roundtrip_through_python() {
    let _g = serial();
    Python::attach(|py| {
        let t = Tensor::new(Export::new(vec![1i64, 2, 3]).versioned().unwrap());
        let obj = Bound::new(py, t).unwrap().into_any();
        let cap = obj.call_method("__dlpack__", (), None).unwrap();
        let back = consume_capsule(&cap).unwrap();
        assert_eq!(back.view().as_slice::<i64>().unwrap(), &[1, 2, 3]);
        let err = obj
            .call_method(
                "__dlpack__",
                (),
                Some(&[("stream", 1)].into_py_dict(py).unwrap()),
            )
            .unwrap_err();
        assert!(err.is_instance_of::<PyValueError>(py), "{err}");
        // The exchange API of our own type is found and used.
        let t = extract(&obj, &ExtractOptions::default()).unwrap();
        assert_eq!(t.path(), ImportPath::ExchangeApi);
    });
}

use pyo3::types::IntoPyDict;
