//! DLPack → candle: a **copy** into a new CPU `Tensor`.
//!
//! candle's CPU storage is an owned `Vec` of its element type, and a
//! `Tensor` cannot borrow or wrap foreign memory, so every import copies:
//! the functions say so in their names ([`copy_into_tensor`],
//! [`CopyIntoTensor`]). The copy is made once, straight into the `Vec`
//! candle keeps (no intermediate buffer): one `memcpy` for a compact
//! tensor, an element gather in row-major order for any other strides
//! (transposes, crops, negative strides, broadcasts). The new tensor is
//! contiguous, owns its data, and shares nothing with the source, which can
//! be released at once; it is not read-only (candle has no such notion).
//!
//! Checks, in order: a dtype candle has ([`Error::Dtype`]), host-accessible
//! memory ([`Error::Tensor`] with the core's `NotHostAccessible`), and for
//! packed sub-byte dtypes a compact layout from a whole byte
//! ([`Error::SubByteLayout`]).

use candle_core::{DType, Device, Tensor, WithDType};
use dlpack_core::managed::{AnyManagedTensor, Managed, ManagedAbi};
use dlpack_core::tensor::TensorView;

use crate::dtype;
use crate::error::Error;

/// A new contiguous CPU tensor holding a copy of the tensor's elements,
/// from any strides.
///
/// # Errors
///
/// See the [module](self) docs; [`Error::Candle`] if candle refuses the
/// tensor.
///
/// # Examples
///
/// ```
/// use dlpack_core::export::Export;
///
/// // A 2 x 3 tensor seen transposed (strides [1, 3]).
/// let t = Export::new(vec![1i64, 2, 3, 4, 5, 6]).shape(&[3, 2]).strides(&[1, 3]).versioned()?;
/// let c = dlpack_candle::copy_into_tensor(&t.view())?;
/// assert_eq!(c.to_vec2::<i64>()?, [[1, 4], [2, 5], [3, 6]]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn copy_into_tensor(view: &TensorView<'_>) -> Result<Tensor, Error> {
    let dl = view.dtype();
    let dtype = dtype::from_dlpack(dl).ok_or(Error::Dtype { dtype: dl })?;
    let device = view.device();
    if !device.device_type.is_host_accessible() {
        return Err(dlpack_core::Error::NotHostAccessible { device }.into());
    }
    // Extents are non-negative and their product fits the address space
    // (core validation), so each fits usize.
    let dims: Vec<usize> = view.shape().iter().map(|&d| d as usize).collect();
    let n = view.num_elements() as usize;
    match dtype {
        DType::U8 => typed::<u8>(view, n, dims),
        DType::U32 => typed::<u32>(view, n, dims),
        DType::I16 => typed::<i16>(view, n, dims),
        DType::I32 => typed::<i32>(view, n, dims),
        DType::I64 => typed::<i64>(view, n, dims),
        DType::BF16 => typed::<half::bf16>(view, n, dims),
        DType::F16 => typed::<half::f16>(view, n, dims),
        DType::F32 => typed::<f32>(view, n, dims),
        DType::F64 => typed::<f64>(view, n, dims),
        DType::F8E4M3 => typed::<float8::F8E4M3>(view, n, dims),
        // candle holds these as raw bytes, built from a byte slice.
        DType::F8E8M0 => {
            let bytes = gather::<u8>(view, n);
            Ok(Tensor::from_raw_buffer(&bytes, dtype, &dims, &Device::Cpu)?)
        }
        _ => packed(view, dtype, &dims),
    }
}

/// The elements as a `Vec<T>`, then a tensor that takes the `Vec`.
fn typed<T: WithDType>(view: &TensorView<'_>, n: usize, dims: Vec<usize>) -> Result<Tensor, Error> {
    Ok(Tensor::from_vec(gather::<T>(view, n), dims, &Device::Cpu)?)
}

/// Copies the `n` elements of a tensor whose dtype is `T`'s size (checked
/// by the caller through the dtype table), in row-major order.
///
/// `T` must accept every bit pattern (integers, IEEE and bfloat halves,
/// float8 bytes: all do).
fn gather<T: Copy>(view: &TensorView<'_>, n: usize) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let size = core::mem::size_of::<T>();
    let first = view.data_ptr();
    if view.is_c_contiguous() {
        // SAFETY: a compact run of `n` elements of `size` bytes starts at
        // `first`, readable while `view` lives (TensorView contract); `out`
        // has room for `n` elements and does not overlap foreign memory;
        // every bit pattern is a valid `T`, so the `n` copied elements are
        // initialised.
        unsafe {
            core::ptr::copy_nonoverlapping(first, out.as_mut_ptr().cast::<u8>(), n * size);
            out.set_len(n);
        }
        return out;
    }
    let shape = view.shape();
    let strides: Vec<i64> = view.strides().collect();
    let mut index = vec![0i64; shape.len()];
    let mut offset = 0i64; // in elements, from the first element
    for _ in 0..n {
        // SAFETY: `index` is inside the shape, so the element lies in the
        // layout's reach, which the core checked lies inside the producer's
        // memory, readable while `view` lives; the byte offset fits isize
        // (the reach does). Unaligned reads: alignment is not required of
        // the producer here.
        let value = unsafe {
            first
                .offset(offset as isize * size as isize)
                .cast::<T>()
                .read_unaligned()
        };
        out.push(value);
        // Next index, row-major; the offset follows it (every term and
        // partial sum lies within the checked reach: no overflow).
        for axis in (0..shape.len()).rev() {
            if index[axis] + 1 < shape[axis] {
                index[axis] += 1;
                offset += strides[axis];
                break;
            }
            offset -= strides[axis] * (shape[axis] - 1);
            index[axis] = 0;
        }
    }
    out
}

/// A packed sub-byte tensor: compact from a whole byte, copied as bytes.
fn packed(view: &TensorView<'_>, dtype: DType, dims: &[usize]) -> Result<Tensor, Error> {
    let dl = view.dtype();
    let layout = view.layout();
    let refuse = || Error::SubByteLayout {
        dtype: dl,
        shape: view.shape().to_vec(),
        strides: view.strides().collect(),
        offset: 0,
    };
    // Padded sub-byte elements (one per byte) are not how candle holds them.
    if view.flags().is_subbyte_padded() || !view.is_c_contiguous() {
        return Err(refuse());
    }
    let len = layout.span_bytes() as usize;
    let bytes: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: the layout's reach is `len` bytes from its lowest byte,
        // which for a compact tensor is the first; readable while `view`
        // lives (TensorView contract).
        unsafe { core::slice::from_raw_parts(view.data_ptr(), len) }
    };
    Ok(Tensor::from_raw_buffer(bytes, dtype, dims, &Device::Cpu)?)
}

/// Copies of owning tensor handles into candle tensors; see
/// [`copy_into_tensor`]. The handle stays usable (and keeps its memory).
///
/// # Examples
///
/// ```
/// use dlpack_candle::CopyIntoTensor;
/// use dlpack_core::export::Export;
///
/// let t = Export::new(vec![0.5f32; 4]).shape(&[2, 2]).versioned()?;
/// let c = t.copy_into_tensor()?;
/// drop(t); // the copy owns its data
/// assert_eq!(c.sum_all()?.to_scalar::<f32>()?, 2.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait CopyIntoTensor {
    /// A new CPU tensor with a copy of the elements.
    ///
    /// # Errors
    ///
    /// As [`copy_into_tensor`].
    fn copy_into_tensor(&self) -> Result<Tensor, Error>;
}

impl<M: ManagedAbi> CopyIntoTensor for Managed<M> {
    fn copy_into_tensor(&self) -> Result<Tensor, Error> {
        copy_into_tensor(&self.view())
    }
}

impl CopyIntoTensor for AnyManagedTensor {
    fn copy_into_tensor(&self) -> Result<Tensor, Error> {
        copy_into_tensor(&self.view())
    }
}
