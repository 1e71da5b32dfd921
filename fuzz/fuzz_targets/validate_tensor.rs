//! Fuzzes validation of foreign tensors and the views built on it.
//!
//! The input describes a `DLTensor` over a real 256-byte buffer: any shape,
//! strides (or NULL), byte_offset, dtype, device and flags. Validation must
//! never panic; when it accepts a tensor whose reach lies inside the buffer,
//! every element is read through the view (AddressSanitizer checks each
//! access), and the ndarray view must agree element by element.
#![no_main]

use dlpack_core::dtype::Storage;
use dlpack_core::ffi::{DLDataType, DLDevice, DLDeviceType, DLTensor};
use dlpack_core::tensor::{Flags, TensorView};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const BUF: usize = 256;

#[repr(align(64))]
struct Buffer([u8; BUF]);

fn dims(u: &mut Unstructured<'_>, ndim: usize) -> Result<Vec<i64>> {
    (0..ndim)
        .map(|_| {
            // Mostly small values, sometimes extreme ones.
            Ok(match u.int_in_range(0u8..=9)? {
                0 => u.arbitrary::<i64>()?,
                1 => -i64::from(u.int_in_range(0u8..=8)?),
                _ => i64::from(u.int_in_range(0u8..=6)?),
            })
        })
        .collect()
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let mut buffer = Buffer([0; BUF]);
    for (i, b) in buffer.0.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(7) & 1; // 0/1 so bool views stay valid
    }
    let ndim_raw: i32 = match u.int_in_range(0u8..=7)? {
        0 => u.arbitrary()?,
        n => i32::from(n) - 1,
    };
    let ndim = ndim_raw.clamp(0, 6) as usize;
    let mut shape = dims(u, ndim)?;
    let mut strides = dims(u, ndim)?;
    let null_shape = u.ratio(1, 16)?;
    let null_strides = u.ratio(1, 4)?;
    let byte_offset: u64 = if u.ratio(1, 16)? { u.arbitrary()? } else { u64::from(u.int_in_range(0u8..=255)?) };
    let dtype = DLDataType { code: u.int_in_range(0..=20)?, bits: u.arbitrary()?, lanes: u.int_in_range(0..=4)? };
    let device = DLDevice::new(DLDeviceType(u.int_in_range(0..=21)?), 0);
    let flags = if u.ratio(1, 8)? { Flags::LEGACY } else { Flags::from_bits(u.arbitrary()?) };
    let null_data = u.ratio(1, 16)?;
    let raw = DLTensor {
        data: if null_data { std::ptr::null_mut() } else { buffer.0.as_mut_ptr().cast() },
        device,
        ndim: ndim_raw,
        dtype,
        shape: if null_shape { std::ptr::null_mut() } else { shape.as_mut_ptr() },
        strides: if null_strides { std::ptr::null_mut() } else { strides.as_mut_ptr() },
        byte_offset,
    };
    if ndim_raw != ndim as i32 && ndim_raw > 0 {
        // shape/strides hold fewer than ndim entries: not a conforming
        // descriptor, so validation may not be asked to read it.
        return Ok(());
    }
    // SAFETY: shape/strides hold ndim i64s (or are NULL); data is a real
    // buffer; elements are read only when the validated reach is inside it.
    let Ok(view) = (unsafe { TensorView::from_raw(&raw, flags) }) else {
        return Ok(());
    };
    let layout = *view.layout();
    assert!(layout.start <= 0 && layout.start <= layout.end);
    if layout.elements == 0 || !device.device_type.is_host_accessible() {
        return Ok(());
    }
    let first = byte_offset as i128;
    if first + i128::from(layout.start) < 0 || first + i128::from(layout.end) > BUF as i128 {
        return Ok(()); // valid by the rules, but reaches past our buffer
    }
    let Storage::Bytes(size) = view.storage() else { return Ok(()) };
    // Walk every element through the view's strides and touch its bytes.
    let base = view.data_ptr();
    let strides: Vec<i64> = view.strides().collect();
    let mut index = vec![0i64; view.ndim()];
    let mut sum = 0u64;
    let mut reads = Vec::new();
    for _ in 0..layout.elements.min(4096) {
        let off: i64 = index.iter().zip(&strides).map(|(i, s)| i * s).sum::<i64>() * i64::from(size);
        assert!(off >= layout.start && off + i64::from(size) <= layout.end, "element outside the validated reach");
        for b in 0..size as usize {
            // SAFETY: inside [start, end) of a layout inside the buffer.
            sum += u64::from(unsafe { *base.offset(off as isize).add(b) });
        }
        reads.push(off);
        for axis in (0..index.len()).rev() {
            index[axis] += 1;
            if index[axis] < view.shape()[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    std::hint::black_box(sum);
    // Typed views agree with the raw walk.
    if let Ok(array) = dlpack_ndarray::import::array_view_dyn::<u8>(&view) {
        for (value, off) in array.iter().zip(&reads) {
            // SAFETY: as above.
            assert_eq!(*value, unsafe { *base.offset(*off as isize) });
        }
    }
    if let Ok(slice) = view.as_slice::<u8>() {
        assert_eq!(slice.len() as u64, layout.elements);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
