//! Malformed foreign tensors, one row each, with the error each must produce.

use core::ptr;

use dlpack_core::Error;
use dlpack_core::ffi::{DLDataType, DLDataTypeCode, DLDevice, DLDeviceType, DLTensor};
use dlpack_core::tensor::{Flags, TensorView};

struct Case {
    name: &'static str,
    data: *mut u8,
    device: DLDevice,
    dtype: DLDataType,
    shape: Option<Vec<i64>>,
    strides: Option<Vec<i64>>,
    ndim: Option<i32>,
    byte_offset: u64,
    flags: Flags,
    expect: Result<(), Error>,
}

fn case(name: &'static str, shape: &[i64]) -> Case {
    Case {
        name,
        data: ptr::without_provenance_mut(0x1000),
        device: DLDevice::cpu(),
        dtype: DLDataType::F32,
        shape: Some(shape.to_vec()),
        strides: None,
        ndim: None,
        byte_offset: 0,
        flags: Flags::from_bits(0),
        expect: Ok(()),
    }
}

impl Case {
    fn strides(mut self, s: &[i64]) -> Self {
        self.strides = Some(s.to_vec());
        self
    }
    fn expect(mut self, e: Error) -> Self {
        self.expect = Err(e);
        self
    }
    fn run(mut self) {
        let ndim = self
            .ndim
            .unwrap_or(self.shape.as_ref().map_or(0, |s| s.len() as i32));
        let raw = DLTensor {
            data: self.data.cast(),
            device: self.device,
            ndim,
            dtype: self.dtype,
            shape: self
                .shape
                .as_mut()
                .map_or(ptr::null_mut(), |s| s.as_mut_ptr()),
            strides: self
                .strides
                .as_mut()
                .map_or(ptr::null_mut(), |s| s.as_mut_ptr()),
            byte_offset: self.byte_offset,
        };
        // SAFETY: shape/strides point to `ndim` i64s (or are NULL); no
        // data is read by validation.
        let got = unsafe { TensorView::from_raw(&raw, self.flags) }.map(|_| ());
        assert_eq!(got, self.expect, "case {}", self.name);
        if let Err(e) = got {
            // Every refusal explains itself.
            assert!(!e.to_string().is_empty());
        }
    }
}

#[test]
fn malformed_inputs_table() {
    let f4 = DLDataType::new(DLDataTypeCode::kDLFloat4_e2m1fn, 4, 1);
    let int3 = DLDataType::new(DLDataTypeCode::kDLInt, 3, 1);
    let zero_lanes = DLDataType::new(DLDataTypeCode::kDLFloat, 32, 0);
    let cases = vec![
        case("plain 2x3", &[2, 3]),
        case("strided", &[2, 3]).strides(&[1, 2]),
        case("negative strides", &[2, 3]).strides(&[-3, -1]),
        Case {
            ndim: Some(-1),
            ..case("negative ndim", &[])
        }
        .expect(Error::NegativeNdim { ndim: -1 }),
        Case {
            shape: None,
            ndim: Some(2),
            ..case("NULL shape with ndim 2", &[])
        }
        .expect(Error::NullShape { ndim: 2 }),
        Case {
            shape: None,
            ..case("0-d with NULL shape", &[])
        },
        case("negative extent", &[2, -3]).expect(Error::NegativeExtent {
            axis: 1,
            extent: -3,
        }),
        Case {
            data: ptr::null_mut(),
            ..case("NULL data with elements", &[2, 3])
        }
        .expect(Error::NullData { elements: 6 }),
        Case {
            data: ptr::null_mut(),
            ..case("NULL data, size zero", &[2, 0])
        },
        Case {
            data: ptr::null_mut(),
            ..case("NULL data, 0-d", &[])
        }
        .expect(Error::NullData { elements: 1 }),
        Case {
            data: ptr::without_provenance_mut(0x1234),
            ..case("non-NULL data, size zero", &[0])
        },
        case("element count overflow", &[1 << 40, 1 << 40]).expect(Error::ElementCountOverflow),
        case("reach overflow", &[1 << 31, 1 << 31]).expect(Error::LayoutOverflow),
        case("stride overflow", &[3])
            .strides(&[i64::MAX])
            .expect(Error::LayoutOverflow),
        case("stride underflow", &[3])
            .strides(&[i64::MIN])
            .expect(Error::LayoutOverflow),
        case("size zero, absurd strides", &[0, 5]).strides(&[i64::MAX, i64::MIN]),
        Case {
            byte_offset: u64::MAX,
            ..case("byte_offset overflows address", &[2])
        }
        .expect(Error::AddressOverflow {
            byte_offset: u64::MAX,
        }),
        Case {
            data: ptr::without_provenance_mut(usize::MAX),
            ..case("data at the top of the address space", &[2])
        }
        .expect(Error::AddressOverflow { byte_offset: 0 }),
        Case {
            data: ptr::without_provenance_mut(0x10),
            ..case("negative reach below address 0", &[4])
        }
        .strides(&[-16])
        .expect(Error::AddressOverflow { byte_offset: 0 }),
        Case {
            device: DLDevice::new(DLDeviceType::kDLOpenCL, 0),
            byte_offset: u64::MAX,
            ..case("opaque handle: byte_offset is not address arithmetic", &[2])
        },
        Case {
            dtype: zero_lanes,
            ..case("zero lanes", &[2])
        }
        .expect(Error::ZeroSizedElement { dtype: zero_lanes }),
        Case {
            dtype: int3,
            ..case("3-bit int", &[2])
        }
        .expect(Error::InvalidBitWidth { dtype: int3 }),
        Case {
            dtype: f4,
            ..case("packed float4", &[5])
        },
        Case {
            dtype: f4,
            flags: Flags::from_bits(4),
            ..case("padded float4", &[5])
        },
        Case {
            dtype: DLDataType {
                code: 99,
                bits: 16,
                lanes: 1,
            },
            ..case("unknown code is carried", &[2])
        },
        Case {
            device: DLDevice::new(DLDeviceType(42), 0),
            ..case("unknown device is carried", &[2])
        },
    ];
    for c in cases {
        c.run();
    }
}

#[test]
fn typed_accessors_refuse_what_validation_carries() {
    let mut data = [0u32; 4];
    let mut shape = [4i64];
    let mut raw = DLTensor {
        data: data.as_mut_ptr().cast(),
        device: DLDevice::cpu(),
        ndim: 1,
        dtype: DLDataType::U32,
        shape: shape.as_mut_ptr(),
        strides: ptr::null_mut(),
        byte_offset: 0,
    };
    let view = |raw: &DLTensor| {
        // SAFETY: describes `data` and `shape`, which outlive the view.
        unsafe { TensorView::from_raw(raw, Flags::from_bits(0)) }
            .unwrap()
            .as_slice::<u32>()
            .map(|s| s.len())
    };
    assert_eq!(view(&raw), Ok(4));

    raw.dtype = DLDataType {
        code: 99,
        bits: 32,
        lanes: 1,
    };
    assert_eq!(
        view(&raw),
        Err(Error::UnsupportedDtype { dtype: raw.dtype })
    );

    raw.dtype = DLDataType::I32;
    assert_eq!(
        view(&raw),
        Err(Error::DtypeMismatch {
            expected: DLDataType::U32,
            found: DLDataType::I32
        })
    );

    raw.dtype = DLDataType::U32;
    raw.device = DLDevice::cuda(0);
    assert_eq!(
        view(&raw),
        Err(Error::NotHostAccessible {
            device: DLDevice::cuda(0)
        })
    );

    raw.device = DLDevice::new(DLDeviceType::kDLCUDAHost, 0);
    assert_eq!(view(&raw), Ok(4), "pinned host memory is host-accessible");

    raw.device = DLDevice::cpu();
    raw.byte_offset = 2;
    // SAFETY: raw.shape points to `shape`, alive and unborrowed.
    unsafe { *raw.shape = 3 };
    let addr = data.as_ptr() as usize + 2;
    assert_eq!(
        view(&raw),
        Err(Error::Misaligned {
            address: addr,
            align: 4
        })
    );

    raw.byte_offset = 4;
    let mut strides = [-1i64];
    raw.strides = strides.as_mut_ptr();
    // SAFETY: as above.
    unsafe { *raw.shape = 2 };
    assert_eq!(view(&raw), Err(Error::NotContiguous));
}

#[test]
fn byte_offset_and_negative_strides_address_the_right_elements() {
    let mut data: Vec<i16> = (0..12).collect();
    // A reversed column: elements 10, 6, 2 of a 3x4 matrix, first element at 10.
    let mut shape = [3i64];
    let mut strides = [-4i64];
    let raw = DLTensor {
        data: data.as_mut_ptr().cast(),
        device: DLDevice::cpu(),
        ndim: 1,
        dtype: DLDataType::I16,
        shape: shape.as_mut_ptr(),
        strides: strides.as_mut_ptr(),
        byte_offset: 10 * 2,
    };
    // SAFETY: describes `data`, `shape` and `strides`, which outlive the view.
    let view = unsafe { TensorView::from_raw(&raw, Flags::from_bits(0)) }.unwrap();
    let first = view.element_ptr::<i16>().unwrap();
    let values: Vec<i16> = (0..3)
        // SAFETY: the validated layout covers these offsets.
        .map(|i| unsafe { *first.offset(i * view.stride(0) as isize) })
        .collect();
    assert_eq!(values, [10, 6, 2]);
    assert_eq!(view.layout().start, -16);
    assert_eq!(view.layout().end, 2);
}

#[test]
fn null_strides_read_as_row_major() {
    let mut shape = [2i64, 3, 4];
    let raw = DLTensor {
        data: ptr::without_provenance_mut(0x1000),
        device: DLDevice::cpu(),
        ndim: 3,
        dtype: DLDataType::F64,
        shape: shape.as_mut_ptr(),
        strides: ptr::null_mut(),
        byte_offset: 0,
    };
    // SAFETY: shape points to 3 i64s; no data is read.
    let view = unsafe { TensorView::from_raw(&raw, Flags::from_bits(0)) }.unwrap();
    assert_eq!(view.strides().collect::<Vec<_>>(), [12, 4, 1]);
    assert!(view.is_c_contiguous());
    assert!(!view.is_f_contiguous());
    assert_eq!(view.num_elements(), 24);
}
