//! Files written by `consumer::serialize` read back through `SafetensorsFile`:
//! every dtype, values, addresses inside the mapping, read-only, lifetimes.

use std::path::PathBuf;

use dlpack_core::export::Export;
use dlpack_core::ffi::DLDataType;
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_safetensors::{Dtype, Error, SafetensorsFile, consumer};

/// A temporary folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "dlpack-safetensors-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tensor written: name, dtype, shape, bytes.
type Written = (String, Dtype, Vec<i64>, Vec<u8>);

/// One tensor of each dtype, with distinct bytes.
fn every_dtype() -> Vec<Written> {
    Dtype::ALL
        .iter()
        .enumerate()
        .map(|(i, &dtype)| {
            // 8 elements: whole bytes for the packed F4 (32 bits) and F6 (48 bits).
            let shape = vec![2, 4];
            let len = 8 * usize::from(dtype.bits()) / 8;
            let bytes = (0..len).map(|b| (b * 7 + i) as u8).collect();
            (format!("t_{}", dtype.name()), dtype, shape, bytes)
        })
        .collect()
}

fn write_every_dtype(dir: &TempDir) -> (PathBuf, Vec<Written>) {
    let tensors = every_dtype();
    let exports: Vec<ManagedTensorVersioned> = tensors
        .iter()
        .map(|(_, dtype, shape, bytes)| {
            Export::new(bytes.clone())
                .dtype(dtype.to_dlpack())
                .shape(shape)
                .versioned()
                .unwrap()
        })
        .collect();
    let views: Vec<_> = exports.iter().map(|t| t.view()).collect();
    let named: Vec<_> = tensors
        .iter()
        .zip(&views)
        .map(|((name, ..), v)| (name.as_str(), v))
        .collect();
    let bytes = consumer::serialize(&named, &[("format", "np"), ("k\"ey", "v\\al\n")]).unwrap();
    let path = dir.0.join("all.safetensors");
    std::fs::write(&path, bytes).unwrap();
    (path, tensors)
}

#[test]
#[cfg_attr(miri, ignore = "memory maps are an operating-system facility")]
fn every_dtype_is_shared_from_the_mapping_read_only() {
    let dir = TempDir::new("every");
    let (path, tensors) = write_every_dtype(&dir);
    let file = SafetensorsFile::open(&path).unwrap();
    assert_eq!(file.len(), tensors.len());
    let meta: Vec<_> = file.header().metadata().collect();
    assert_eq!(meta, [("format", "np"), ("k\"ey", "v\\al\n")]);
    let base = file.bytes().as_ptr() as usize;
    for (name, dtype, shape, bytes) in &tensors {
        let info = file.header().tensor(name).unwrap();
        let t = file.tensor(name).unwrap();
        let view = t.view();
        assert_eq!(view.dtype(), dtype.to_dlpack(), "{name}");
        assert_eq!(view.shape(), &shape[..]);
        assert!(t.flags().is_read_only());
        assert!(!t.flags().is_copied());
        // Zero-copy: the address is the tensor's place in the mapping.
        let expected = base + file.header().data_start() + info.data_offsets[0] as usize;
        assert_eq!(view.data_ptr() as usize, expected, "{name}");
        assert_eq!(
            expected % dtype.alignment(),
            0,
            "{name}: the writer's layout aligns"
        );
        // SAFETY: a validated compact host tensor of bytes.len() bytes.
        let got = unsafe { std::slice::from_raw_parts(view.data_ptr(), bytes.len()) };
        assert_eq!(got, &bytes[..], "{name}");
    }
}

#[test]
#[cfg_attr(miri, ignore = "memory maps are an operating-system facility")]
fn tensors_outlive_the_file_and_drop_on_any_thread() {
    let dir = TempDir::new("life");
    let (path, _) = write_every_dtype(&dir);
    let file = SafetensorsFile::open(&path).unwrap();
    let clone = file.clone();
    let t = file.tensor("t_F32").unwrap();
    let all = file.tensors(false).unwrap();
    let expected: Vec<f32> = t.view().as_slice::<f32>().unwrap().to_vec();
    drop(all);
    drop(file);
    drop(clone);
    // The mapping is still there: reading it after every file handle is
    // gone is what miri-free tests can check; ASan/valgrind would flag a
    // use after unmap, and the values would be garbage or a SIGSEGV.
    assert_eq!(t.view().as_slice::<f32>().unwrap(), &expected[..]);
    // The raw pointer travels to another thread, where the deleter runs.
    let raw = t.into_raw() as usize;
    std::thread::spawn(move || {
        // SAFETY: the pointer of the export above, consumed once.
        let t = unsafe {
            ManagedTensorVersioned::from_raw(raw as *mut dlpack_core::ffi::DLManagedTensorVersioned)
        }
        .unwrap();
        assert_eq!(t.view().as_slice::<f32>().unwrap(), &expected[..]);
    })
    .join()
    .unwrap();
}

#[test]
fn tensors_from_bytes_and_copies() {
    let t = Export::new(vec![1.0f64, 2.0, 3.0]).versioned().unwrap();
    let b = Export::new(vec![true, false]).versioned().unwrap();
    let bytes = consumer::serialize(&[("x", &t.view()), ("b", &b.view())], &[]).unwrap();
    let file = SafetensorsFile::from_bytes(bytes).unwrap();
    assert_eq!(file.names().collect::<Vec<_>>(), ["x", "b"]); // by alignment: f64 first
    let copy = file.copy_tensor("x").unwrap();
    assert!(copy.flags().is_copied());
    assert!(copy.flags().is_writable());
    assert_eq!(copy.view().as_slice::<f64>().unwrap(), &[1.0, 2.0, 3.0]);
    let range = file.bytes().as_ptr_range();
    assert!(!range.contains(&copy.view().data_ptr().cast_const()));
    match file.tensor("b") {
        Ok(shared) => {
            assert_eq!(shared.view().as_slice::<bool>().unwrap(), &[true, false]);
            assert!(range.contains(&shared.view().data_ptr().cast_const()));
        }
        Err(err) => panic!("a bool tensor needs no alignment: {err}"),
    }
    assert!(matches!(file.tensor("nope"), Err(Error::NotFound { name }) if name == "nope"));
}

#[test]
fn empty_and_zero_size_tensors() {
    let file = SafetensorsFile::from_bytes(consumer::serialize(&[], &[]).unwrap()).unwrap();
    assert!(file.is_empty());
    let z = Export::new(Vec::<f32>::new())
        .shape(&[3, 0])
        .versioned()
        .unwrap();
    let s = Export::new(vec![7i64]).shape(&[]).versioned().unwrap();
    let bytes = consumer::serialize(&[("z", &z.view()), ("s", &s.view())], &[]).unwrap();
    let file = SafetensorsFile::from_bytes(bytes).unwrap();
    let z = file.tensor("z").unwrap();
    assert_eq!(z.view().shape(), &[3, 0]);
    assert_eq!(z.view().num_elements(), 0);
    let s = file.copy_tensor("s").unwrap();
    assert_eq!(s.view().shape(), &[] as &[i64]);
    assert_eq!(s.view().as_slice::<i64>().unwrap(), &[7]);
}

#[test]
fn serialize_refuses_what_the_format_cannot_hold() {
    let c = Export::new(vec![0u8; 16])
        .dtype(DLDataType::C128)
        .versioned()
        .unwrap();
    assert!(matches!(
        consumer::serialize(&[("c", &c.view())], &[]),
        Err(Error::UnsupportedDtype { tensor, .. }) if tensor == "c"
    ));
    let t = Export::new(vec![0u8; 6])
        .shape(&[2, 3])
        .strides(&[1, 2])
        .versioned()
        .unwrap();
    assert!(matches!(
        consumer::serialize(&[("t", &t.view())], &[]),
        Err(Error::Export(dlpack_core::Error::NotContiguous))
    ));
    let a = Export::new(vec![0u8]).versioned().unwrap();
    assert!(matches!(
        consumer::serialize(&[("a", &a.view()), ("a", &a.view())], &[]),
        Err(Error::DuplicateName { name }) if name == "a"
    ));
}
