//! Every candle dtype and layout out and back: the export describes
//! candle's own memory (address, shape, strides, offset, dtype), and the
//! copy back holds the same values in a new storage.

use candle_core::{DType, Device, Storage, Tensor};
use dlpack_candle::{CopyIntoTensor, Error, ToDlpack, copy_into_tensor, export};
use dlpack_core::export::Export;
use dlpack_core::ffi::{DLDataType, DLDataTypeCode};
use dlpack_core::managed::ManagedTensorVersioned;

/// The address of a CPU tensor's storage `Vec`.
fn storage_ptr(t: &Tensor) -> usize {
    let (s, _) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*s else {
        panic!("not CPU")
    };
    match cpu {
        candle_core::CpuStorage::U8(v) => v.as_ptr() as usize,
        candle_core::CpuStorage::U32(v) => v.as_ptr() as usize,
        candle_core::CpuStorage::I16(v) => v.as_ptr() as usize,
        candle_core::CpuStorage::I32(v) => v.as_ptr() as usize,
        candle_core::CpuStorage::I64(v) => v.as_ptr() as usize,
        candle_core::CpuStorage::BF16(v) => v.as_ptr() as usize,
        candle_core::CpuStorage::F16(v) => v.as_ptr() as usize,
        candle_core::CpuStorage::F32(v) => v.as_ptr() as usize,
        candle_core::CpuStorage::F64(v) => v.as_ptr() as usize,
        candle_core::CpuStorage::F8E4M3(v) => v.as_ptr() as usize,
        candle_core::CpuStorage::F6E2M3(v)
        | candle_core::CpuStorage::F6E3M2(v)
        | candle_core::CpuStorage::F4(v)
        | candle_core::CpuStorage::F8E8M0(v) => v.as_ptr() as usize,
    }
}

/// Exports, hands the raw pointer over, takes it back as a consumer would.
fn through_c(t: &Tensor) -> ManagedTensorVersioned {
    let raw = t.to_dlpack().unwrap().into_raw();
    // SAFETY: `raw` comes from an export and is consumed once.
    unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap()
}

fn same_values(a: &Tensor, b: &Tensor) {
    assert_eq!(a.dims(), b.dims());
    assert_eq!(a.dtype(), b.dtype());
    // Through f32 (candle's F8E4M3 -> F64 conversion recurses without end in 0.11.1).
    let f = |t: &Tensor| {
        t.to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(f(a), f(b));
}

#[test]
fn every_computable_dtype_round_trips_zero_copy_out() {
    let base = Tensor::arange(0f32, 24., &Device::Cpu)
        .unwrap()
        .reshape((2, 3, 4))
        .unwrap();
    let rows = [
        (DType::U8, DLDataType::U8),
        (DType::U32, DLDataType::U32),
        (DType::I16, DLDataType::I16),
        (DType::I32, DLDataType::I32),
        (DType::I64, DLDataType::I64),
        (DType::BF16, DLDataType::BF16),
        (DType::F16, DLDataType::F16),
        (DType::F32, DLDataType::F32),
        (DType::F64, DLDataType::F64),
        (
            DType::F8E4M3,
            DLDataType::new(DLDataTypeCode::kDLFloat8_e4m3fn, 8, 1),
        ),
    ];
    for (dtype, dl) in rows {
        let t = base.to_dtype(dtype).unwrap();
        let d = through_c(&t);
        let view = d.view();
        assert_eq!(view.dtype(), dl, "{dtype:?}");
        assert_eq!(view.shape(), &[2, 3, 4]);
        assert_eq!(view.strides().collect::<Vec<_>>(), [12, 4, 1]);
        assert_eq!(
            view.data_ptr() as usize,
            storage_ptr(&t),
            "{dtype:?}: zero-copy"
        );
        assert!(d.flags().is_read_only());
        let back = d.copy_into_tensor().unwrap();
        assert_ne!(storage_ptr(&back), storage_ptr(&t), "the import copies");
        same_values(&back, &t);
    }
}

#[test]
fn byte_dtypes_candle_cannot_compute_round_trip_as_bytes() {
    // F8E8M0: one byte per element; F4 and F6: packed (two F4 per byte).
    let bytes = [0x12u8, 0x34, 0x56, 0x78, 0x9a, 0xbc];
    let cases = [
        (
            DType::F8E8M0,
            DLDataType::new(DLDataTypeCode::kDLFloat8_e8m0fnu, 8, 1),
            vec![6],
        ),
        (
            DType::F4,
            DLDataType::new(DLDataTypeCode::kDLFloat4_e2m1fn, 4, 1),
            vec![3, 4],
        ),
        (
            DType::F6E2M3,
            DLDataType::new(DLDataTypeCode::kDLFloat6_e2m3fn, 6, 1),
            vec![8],
        ),
        (
            DType::F6E3M2,
            DLDataType::new(DLDataTypeCode::kDLFloat6_e3m2fn, 6, 1),
            vec![2, 4],
        ),
    ];
    for (dtype, dl, dims) in cases {
        let t = Tensor::from_raw_buffer(&bytes, dtype, &dims, &Device::Cpu).unwrap();
        let d = export(&t).unwrap();
        assert_eq!(d.view().dtype(), dl);
        assert_eq!(d.view().data_ptr() as usize, storage_ptr(&t), "{dtype:?}");
        assert_eq!(d.view().layout().span_bytes(), 6, "{dtype:?}");
        let back = copy_into_tensor(&d.view()).unwrap();
        assert_eq!(back.dtype(), dtype);
        assert_eq!(back.dims(), &dims[..]);
        let (s, _) = back.storage_and_layout();
        let Storage::Cpu(cpu) = &*s else {
            unreachable!()
        };
        assert_eq!(cpu.as_slice::<u8>().ok(), None); // typed access is candle's business
        drop(s);
        let d2 = export(&back).unwrap();
        // SAFETY: the export's layout reaches 6 bytes from its data pointer.
        let copied = unsafe { std::slice::from_raw_parts(d2.view().data_ptr(), 6) };
        assert_eq!(copied, bytes, "{dtype:?}");
    }
}

#[test]
fn candle_layouts_are_exported_as_they_are() {
    let t = Tensor::arange(0i64, 12, &Device::Cpu)
        .unwrap()
        .reshape((3, 4))
        .unwrap();
    let base = storage_ptr(&t);
    // Transposed.
    let tt = t.t().unwrap();
    let d = export(&tt).unwrap();
    assert_eq!(
        (d.view().shape(), d.view().strides().collect::<Vec<_>>()),
        (&[4i64, 3][..], vec![1, 4])
    );
    assert_eq!(d.view().data_ptr() as usize, base);
    same_values(&d.copy_into_tensor().unwrap(), &tt);
    // A crop with a start offset.
    let crop = t.narrow(0, 1, 2).unwrap().narrow(1, 2, 2).unwrap();
    let d = export(&crop).unwrap();
    assert_eq!(d.view().strides().collect::<Vec<_>>(), [4, 1]);
    assert_eq!(
        d.view().data_ptr() as usize,
        base + 6 * 8,
        "start_offset 6 elements"
    );
    same_values(&d.copy_into_tensor().unwrap(), &crop);
    // A broadcast: stride 0.
    let row = Tensor::new(&[1f32, 2., 3.], &Device::Cpu).unwrap();
    let b = row.broadcast_as((4, 3)).unwrap();
    let d = export(&b).unwrap();
    assert_eq!(d.view().strides().collect::<Vec<_>>(), [0, 1]);
    same_values(&d.copy_into_tensor().unwrap(), &b);
    // 0-d and size zero.
    let s = Tensor::new(7u32, &Device::Cpu).unwrap();
    let d = export(&s).unwrap();
    assert_eq!(d.view().ndim(), 0);
    assert_eq!(d.copy_into_tensor().unwrap().to_scalar::<u32>().unwrap(), 7);
    let e = Tensor::zeros((0, 3), DType::F32, &Device::Cpu).unwrap();
    let d = export(&e).unwrap();
    assert_eq!(d.view().shape(), &[0, 3]);
    assert_eq!(d.copy_into_tensor().unwrap().dims(), &[0, 3]);
    // A high rank.
    let deep = Tensor::ones(
        vec![1usize; 9].into_iter().chain([2]).collect::<Vec<_>>(),
        DType::U8,
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(export(&deep).unwrap().view().ndim(), 10);
}

#[test]
fn foreign_strides_are_copied_in_row_major_order() {
    // Negative strides: a 2 x 3 matrix flipped in both axes.
    let t = Export::new(vec![1i32, 2, 3, 4, 5, 6])
        .shape(&[2, 3])
        .strides(&[-3, -1])
        .byte_offset(5 * 4)
        .versioned()
        .unwrap();
    let c = copy_into_tensor(&t.view()).unwrap();
    assert_eq!(c.to_vec2::<i32>().unwrap(), [[6, 5, 4], [3, 2, 1]]);
    // Every other column, unaligned start is fine too (bytes).
    let t = Export::new((0u8..12).collect::<Vec<_>>())
        .shape(&[3, 2])
        .strides(&[4, 2])
        .byte_offset(1)
        .versioned()
        .unwrap();
    let c = copy_into_tensor(&t.view()).unwrap();
    assert_eq!(c.to_vec2::<u8>().unwrap(), [[1, 3], [5, 7], [9, 11]]);
    assert!(c.is_contiguous());
}

#[test]
fn bad_inputs_are_refused_with_a_typed_error() {
    // A dtype candle lacks.
    let t = Export::new(vec![1u16, 2]).versioned().unwrap();
    match copy_into_tensor(&t.view()) {
        Err(Error::Dtype { dtype }) => assert_eq!(dtype, DLDataType::U16),
        other => panic!("{other:?}"),
    }
    let t = Export::new(vec![true, false]).versioned().unwrap();
    assert!(matches!(
        copy_into_tensor(&t.view()),
        Err(Error::Dtype { .. })
    ));
    // Packed sub-byte elements are not addressable: a crop is refused both ways.
    let f4 =
        Tensor::from_raw_buffer(&[0xab, 0xcd, 0xef], DType::F4, &[2, 3], &Device::Cpu).unwrap();
    let crop = f4.narrow(1, 0, 2).unwrap();
    match export(&crop) {
        Err(Error::SubByteLayout { shape, strides, .. }) => {
            assert_eq!((shape, strides), (vec![2, 2], vec![3, 1]))
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    let err = export(&crop).unwrap_err();
    assert!(err.to_string().contains("[3, 1]"), "{err}");
    assert_eq!(err.kind(), dlpack_core::ErrorKind::Buffer);
    // Read-only: the legacy ABI cannot carry it, so the core refuses that rewrap.
    let d = export(&Tensor::new(&[1f32], &Device::Cpu).unwrap()).unwrap();
    assert_eq!(
        dlpack_core::export::versioned_to_legacy(d).unwrap_err(),
        dlpack_core::Error::ReadOnlyLegacyExport
    );
}

#[test]
fn device_memory_is_refused() {
    use dlpack_core::export::{Memory, TensorOwner};
    use dlpack_core::ffi::DLDevice;
    /// Pretends to be CUDA memory (the data is never read).
    struct OnCuda(Vec<f32>);
    // SAFETY: the Vec's buffer is stable and owned; nothing reads it as CUDA memory.
    unsafe impl TensorOwner for OnCuda {
        fn memory(&mut self) -> Memory {
            Memory {
                ptr: self.0.as_mut_ptr().cast(),
                len: self.0.len() * 4,
                device: DLDevice::cuda(0),
                dtype: Some(DLDataType::F32),
                read_only: false,
            }
        }
    }
    let t = Export::new(OnCuda(vec![0.0; 4]))
        .shape(&[4])
        .versioned()
        .unwrap();
    match copy_into_tensor(&t.view()) {
        Err(Error::Tensor(dlpack_core::Error::NotHostAccessible { device })) => {
            assert_eq!(device, DLDevice::cuda(0))
        }
        other => panic!("{other:?}"),
    }
}
