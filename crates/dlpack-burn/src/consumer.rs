//! DLPack → burn: validated tensors as `TensorData`, zero-copy.
//!
//! [`into_tensor_data`] wraps the tensor's memory in burn's `Bytes` through a
//! custom allocation that owns the managed tensor: no element is copied, and
//! the producer's deleter runs exactly once, when the last `Bytes` over it
//! is dropped (burn's clones share it). burn's ndarray backend keeps such
//! bytes as borrowed storage, so [`into_tensor`] makes a `Tensor` that reads
//! the producer's memory in place; burn copies on the first write (it never
//! writes borrowed storage), and `into_data` of such a tensor copies.
//!
//! Checks run in this order, each with a typed error naming the value:
//!
//! 1. the core's validation, when the handle is made (NULL data with
//!    elements, negative extents, overflowing layouts: [`Error::Tensor`]);
//! 2. the dtype has a burn dtype ([`Error::NoBurnDtype`]);
//! 3. the memory is host-accessible and the first element aligned
//!    ([`Error::Tensor`] with the core's `NotHostAccessible` / `Misaligned`);
//! 4. the layout is compact row-major ([`Error::NotCompact`]), which
//!    `TensorData` needs; only [`copy_tensor_data`] takes other layouts, and
//!    copies once.
//!
//! Read-only tensors (`READ_ONLY`, and legacy tensors, which cannot say)
//! are imported zero-copy too: burn's writes to them go to a private copy.

use core::ptr::NonNull;

use burn_std::{Bytes, DType, Shape, TensorData};
use burn_tensor::kind::{Basic, Kind, TensorKind};
use burn_tensor::{Device, Tensor};
use dlpack_core::managed::{AnyManagedTensor, Managed, ManagedAbi};
use dlpack_core::tensor::{Access, TensorView};

use crate::allocation::TensorAllocation;
use crate::dtype::burn_dtype;
use crate::error::Error;

/// `TensorData` over a managed tensor's memory, zero-copy.
///
/// # Errors
///
/// The first rule of the [module](self)'s list the tensor breaks (2 to 4).
/// The tensor is dropped (its deleter runs) on error.
///
/// # Examples
///
/// ```
/// use burn_std::DType;
/// use dlpack_burn::consumer::into_tensor_data;
/// use dlpack_core::export::Export;
///
/// let t = Export::new(vec![1i32, 2, 3, 4, 5, 6]).shape(&[2, 3]).versioned()?;
/// let address = t.view().data_ptr();
/// let data = into_tensor_data(t)?;
/// assert_eq!(data.dtype(), DType::I32);
/// assert_eq!(data.shape().as_slice(), &[2, 3]);
/// assert_eq!(data.bytes().as_ptr(), address.cast_const()); // no copy
/// assert_eq!(data.as_slice::<i32>()?, &[1, 2, 3, 4, 5, 6]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn into_tensor_data<M: ManagedAbi>(tensor: Managed<M>) -> Result<TensorData, Error> {
    let view = tensor.view();
    let Checked {
        dtype,
        shape,
        first,
        len,
    } = checked(&view)?;
    if !view.is_c_contiguous() && len != 0 {
        return Err(not_compact(&view));
    }
    let writable = view.flags().access() == Access::Writable;
    let align = dtype.size();
    // SAFETY: `first` is the aligned first element of a compact run of
    // `len` bytes (checked), in host memory the tensor keeps alive and
    // initialised (DLPack contract), writable when the producer says so;
    // dangling and aligned when `len == 0`. `align` is a dtype's size:
    // 1, 2, 4 or 8.
    let bytes = unsafe { TensorAllocation::bytes(tensor, first, len, align, writable) };
    TensorData::try_from_bytes(bytes, shape, dtype).map_err(Error::Data)
}

/// [`into_tensor_data`] for a tensor of either ABI.
///
/// # Errors
///
/// As [`into_tensor_data`].
pub fn any_into_tensor_data(tensor: AnyManagedTensor) -> Result<TensorData, Error> {
    match tensor {
        AnyManagedTensor::Legacy(t) => into_tensor_data(t),
        AnyManagedTensor::Versioned(t) => into_tensor_data(t),
    }
}

/// New `TensorData` holding a copy of the tensor's elements, from any
/// layout: the explicit way to take what [`into_tensor_data`] refuses with
/// [`Error::NotCompact`] (transposes, steps, negative strides, broadcasts).
/// A compact tensor is copied in one `memcpy`. One allocation: the bytes.
///
/// # Errors
///
/// As [`into_tensor_data`], without [`Error::NotCompact`];
/// [`Error::CopyTooLarge`] when the copy's bytes cannot be allocated (a
/// broadcast of a few bytes can describe terabytes).
///
/// # Examples
///
/// ```
/// use dlpack_burn::{Error, consumer::{copy_tensor_data, into_tensor_data}};
/// use dlpack_core::export::Export;
///
/// // A 2 x 3 matrix seen transposed (3 x 2, column-major strides).
/// let t = Export::new(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0])
///     .shape(&[3, 2])
///     .strides(&[1, 3])
///     .versioned()?;
/// let data = copy_tensor_data(&t.view())?;
/// assert_eq!(data.as_slice::<f32>()?, &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// assert!(matches!(into_tensor_data(t), Err(Error::NotCompact { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn copy_tensor_data(view: &TensorView<'_>) -> Result<TensorData, Error> {
    let Checked {
        dtype,
        shape,
        first,
        len,
    } = checked(view)?;
    let size = dtype.size();
    let mut bytes = zeroed(len, size)?;
    let out: &mut [u8] = &mut bytes;
    if len == 0 {
    } else if view.is_c_contiguous() {
        // SAFETY: a compact run of `len` readable bytes from `first`
        // (checked; TensorView contract); `out` holds `len` bytes.
        unsafe { core::ptr::copy_nonoverlapping(first.as_ptr(), out.as_mut_ptr(), len) };
    } else {
        let extents: Vec<i64> = view.shape().to_vec();
        let strides: Vec<i64> = view.strides().collect();
        let mut index = vec![0i64; extents.len()];
        for chunk in out.chunks_exact_mut(size) {
            // Cannot overflow: each term lies between 0 and
            // (extent - 1) * stride, so the sum lies within the layout's
            // reach, which the core checked fits isize in bytes.
            let offset: i64 = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
            // SAFETY: an index inside the shape; its element lies within the
            // memory the layout reaches, readable while `view` lives
            // (TensorView contract); `size` bytes, in `chunk`'s own buffer.
            unsafe {
                let src = first.as_ptr().offset(offset as isize * size as isize);
                core::ptr::copy_nonoverlapping(src, chunk.as_mut_ptr(), size);
            }
            // Next index in row-major order.
            for axis in (0..index.len()).rev() {
                index[axis] += 1;
                if index[axis] < extents[axis] {
                    break;
                }
                index[axis] = 0;
            }
        }
    }
    TensorData::try_from_bytes(bytes, shape, dtype).map_err(Error::Data)
}

/// `len` zeroed bytes in burn's `Bytes`, allocated as words of the
/// element's `size` so that their alignment is the element's (burn's
/// `from_bytes_vec` would re-align a byte vector by copying it, and
/// burn-ndarray takes the buffer over as a `Vec` of the element type only
/// when the alignments match).
fn zeroed(len: usize, size: usize) -> Result<Bytes, Error> {
    macro_rules! words {
        ($word:ty) => {{
            let mut words: Vec<$word> = Vec::new();
            words
                .try_reserve_exact(len / size)
                .map_err(|_| Error::CopyTooLarge { bytes: len })?;
            words.resize(len / size, 0);
            Bytes::from_elems(words)
        }};
    }
    Ok(match size {
        1 => words!(u8),
        2 => words!(u16),
        4 => words!(u32),
        _ => words!(u64),
    })
}

/// A burn `Tensor` of rank `D` and kind `K` on `device` over a managed
/// tensor, zero-copy on the ndarray backend (see the [module](self) docs;
/// other backends upload the bytes to their device).
///
/// The dtype is kept as it is (burn would otherwise convert to the
/// device's default float or int dtype, a copy).
///
/// # Errors
///
/// As [`into_tensor_data`], and the core's `NdimMismatch` for another rank,
/// [`Error::Kind`] for a dtype of another kind (a float tensor asked for
/// as `Int`), [`Error::DeviceDtype`] for a dtype the device lacks (the
/// ndarray backend has no `f16` or `bf16` tensors).
///
/// # Examples
///
/// ```
/// # #![allow(deprecated)]
/// use burn_tensor::{Device, Int, Tensor};
/// use dlpack_burn::consumer::into_tensor;
/// use dlpack_core::export::Export;
///
/// let device = Device::ndarray();
/// let t = Export::new(vec![1i64, 2, 3, 4]).shape(&[2, 2]).versioned()?;
/// let tensor: Tensor<2, Int> = into_tensor(t, &device)?;
/// let sum = tensor.sum().into_scalar::<i64>();
/// assert_eq!(sum, 10);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn into_tensor<const D: usize, K, M>(
    tensor: Managed<M>,
    device: &Device,
) -> Result<Tensor<D, K>, Error>
where
    K: TensorKind + Basic,
    M: ManagedAbi,
{
    let ndim = tensor.view().ndim();
    if ndim != D {
        return Err(dlpack_core::Error::NdimMismatch {
            expected: D,
            found: ndim,
        }
        .into());
    }
    data_into_tensor(into_tensor_data(tensor)?, device)
}

/// `TensorData` into a burn `Tensor` of its own dtype, after the checks of
/// [`into_tensor`] (kind, device dtype), which burn would otherwise answer
/// with a panic or a conversion.
///
/// # Errors
///
/// [`Error::Kind`], [`Error::DeviceDtype`], and the core's `NdimMismatch`.
pub fn data_into_tensor<const D: usize, K>(
    data: TensorData,
    device: &Device,
) -> Result<Tensor<D, K>, Error>
where
    K: TensorKind + Basic,
{
    let dtype = data.dtype();
    let rank = data.shape().num_dims();
    if rank != D {
        return Err(dlpack_core::Error::NdimMismatch {
            expected: D,
            found: rank,
        }
        .into());
    }
    let fits = match K::KIND {
        Kind::Float => dtype.is_float(),
        Kind::Int => dtype.is_int() || dtype.is_uint(),
        Kind::Bool => dtype.is_bool(),
    };
    if !fits {
        return Err(Error::Kind {
            dtype,
            kind: K::KIND.as_str(),
        });
    }
    if !device.supports_dtype(dtype) {
        return Err(Error::DeviceDtype {
            dtype,
            device: format!("{device:?}"),
        });
    }
    Ok(Tensor::from_data(data, (device, dtype)))
}

/// The conversions of owning tensor handles into burn values.
///
/// Implemented for [`Managed`] (both ABIs) and [`AnyManagedTensor`].
///
/// # Examples
///
/// ```
/// use dlpack_burn::IntoBurn;
/// use dlpack_core::export::Export;
///
/// let t = Export::new(vec![true, false, true]).versioned()?;
/// let data = t.into_tensor_data()?;
/// assert_eq!(data.as_slice::<bool>()?, &[true, false, true]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait IntoBurn: Sized {
    /// `TensorData` over the tensor's memory; see [`into_tensor_data`].
    ///
    /// # Errors
    ///
    /// As [`into_tensor_data`].
    fn into_tensor_data(self) -> Result<TensorData, Error>;

    /// A burn tensor over the tensor's memory; see [`into_tensor`].
    ///
    /// # Errors
    ///
    /// As [`into_tensor`].
    fn into_burn_tensor<const D: usize, K>(self, device: &Device) -> Result<Tensor<D, K>, Error>
    where
        K: TensorKind + Basic,
    {
        data_into_tensor(self.into_tensor_data()?, device)
    }
}

impl<M: ManagedAbi> IntoBurn for Managed<M> {
    fn into_tensor_data(self) -> Result<TensorData, Error> {
        into_tensor_data(self)
    }
}

impl IntoBurn for AnyManagedTensor {
    fn into_tensor_data(self) -> Result<TensorData, Error> {
        any_into_tensor_data(self)
    }
}

/// A tensor that passed rules 2 and 3.
struct Checked {
    dtype: DType,
    shape: Shape,
    /// The first element, aligned (dangling and aligned when empty).
    first: NonNull<u8>,
    /// Bytes of the elements, compact.
    len: usize,
}

/// Rules 2 and 3, and the shape and size in burn's terms.
fn checked(view: &TensorView<'_>) -> Result<Checked, Error> {
    let dtype = burn_dtype(view.dtype())?;
    let device = view.device();
    if !device.device_type.is_host_accessible() {
        return Err(dlpack_core::Error::NotHostAccessible { device }.into());
    }
    let size = dtype.size();
    // The layout's byte reach fits isize (core), but not always the
    // elements' bytes: a broadcast (stride 0) reaches one element.
    let len = usize::try_from(view.num_elements())
        .ok()
        .and_then(|elements| elements.checked_mul(size))
        .filter(|&len| len <= isize::MAX as usize)
        .ok_or(dlpack_core::Error::ElementCountOverflow)?;
    let first = if view.num_elements() == 0 {
        // Aligned for every dtype (16 >= 8).
        NonNull::<u128>::dangling().cast::<u8>()
    } else {
        let ptr = view.data_ptr();
        if !(ptr as usize).is_multiple_of(size) {
            return Err(dlpack_core::Error::Misaligned {
                address: ptr as usize,
                align: size,
            }
            .into());
        }
        // Not NULL: the core refuses NULL data for a tensor with elements.
        NonNull::new(ptr).ok_or(dlpack_core::Error::NullData {
            elements: view.num_elements(),
        })?
    };
    let shape: Shape = view.shape().iter().map(|&e| e as usize).collect();
    Ok(Checked {
        dtype,
        shape,
        first,
        len,
    })
}

#[cold]
fn not_compact(view: &TensorView<'_>) -> Error {
    let shape = view.shape().to_vec();
    let mut compact = vec![1i64; shape.len()];
    for axis in (0..shape.len().saturating_sub(1)).rev() {
        // Cannot overflow: the product of the extents fits (core).
        compact[axis] = compact[axis + 1] * shape[axis + 1].max(1);
    }
    Error::NotCompact {
        shape,
        strides: view.strides().collect(),
        compact,
    }
}
