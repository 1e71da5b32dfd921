//! candle → DLPack: any CPU `Tensor`, any layout, zero-copy and
//! `READ_ONLY`.
//!
//! The exported tensor describes candle's own layout: shape, strides (in
//! elements; 0 for a broadcast axis) and `start_offset` (folded into the
//! data pointer), over the storage's `Vec`. Its owner is a clone of the
//! `Tensor` (one reference count), which keeps the storage alive until the
//! consumer's deleter runs, on any thread. Cost: the core's one allocation;
//! candle's extents and strides are read in place as `i64` on 64-bit
//! targets (the core checks them as it checks a foreign tensor's).
//!
//! # Why the pointer may outlive the storage lock
//!
//! candle keeps a tensor's storage behind an `RwLock`; the data pointer is
//! read under `Tensor::storage_and_layout`'s read guard, and the guard is
//! dropped before the consumer sees the pointer (holding it for the
//! consumer's lifetime would make every later in-place op on the tensor
//! wait for the consumer, a deadlock when both are on one thread). This is
//! sound because of how candle-core 0.11 uses the lock, checked against its
//! source:
//!
//! - the `Vec` of a CPU storage lives as long as the storage, which lives as
//!   long as the `Arc` every tensor sharing it holds, ours included;
//! - nothing in candle-core replaces or resizes the `Vec` of an existing
//!   storage: the write guard is taken only by the in-place ops
//!   (`const_set`/`zero_set`, `scatter_set`, `scatter_add_set`,
//!   `slice_set`, `Var::set`, the `inplace_op*` of custom ops), and each of
//!   them writes elements inside the `Vec` it was given
//!   (`tests/lifetimes.rs` checks that the address stays put through them);
//!
//! so the address stays valid until the owner is dropped. Two things the
//! lock cannot give a consumer, as with any shared DLPack tensor: values
//! written by candle's in-place ops are seen by the consumer (it shares the
//! memory), so do not run in-place ops on a tensor while a consumer reads it
//! from another thread; and a user's own `InplaceOp*::cpu_fwd`, which gets
//! `&mut CpuStorage`, must write into the storage, not assign a new one
//! (`*storage = ...` would free memory a consumer still reads).
//!
//! # Read-only
//!
//! Exports are `READ_ONLY`: candle tensors are immutable by convention
//! (ops return new tensors), and views, clones and `Var`s share one storage,
//! so a consumer's write would change tensors it never saw. NumPy gives a
//! read-only array; PyTorch, which has no read-only tensors, a tensor that
//! must not be written. Because the legacy ABI cannot say read-only, the
//! export is versioned only.
//!
//! Packed sub-byte dtypes (`F4`, `F6E2M3`, `F6E3M2`) are exported only
//! compact and starting on a whole byte ([`Error::SubByteLayout`]).

use core::ffi::c_void;

use candle_core::{CpuStorage, Storage, Tensor};
use dlpack_core::export::{Export, Memory, TensorOwner};
use dlpack_core::ffi::DLDevice;
use dlpack_core::managed::ManagedTensorVersioned;

use crate::dtype;
use crate::error::Error;

/// candle's `usize` extents and strides as the `i64`s DLPack reads, in
/// place: the core's export checks every extent and stride as it would a
/// foreign tensor's (one above `i64::MAX` would read as negative and be
/// refused), so nothing is converted or copied.
#[cfg(target_pointer_width = "64")]
#[inline]
fn as_i64(values: &[usize]) -> &[i64] {
    // SAFETY: on 64-bit targets usize and i64 have the same size and
    // alignment, and every bit pattern is a valid i64.
    unsafe { core::slice::from_raw_parts(values.as_ptr().cast(), values.len()) }
}

/// A clone of the exported tensor: the owner the core keeps in the block.
struct Owner(Tensor);

/// Base address and byte length of a CPU storage's `Vec`.
fn cpu_bytes(storage: &CpuStorage) -> (*mut c_void, usize) {
    fn of<T>(v: &[T]) -> (*mut c_void, usize) {
        (v.as_ptr().cast_mut().cast(), core::mem::size_of_val(v))
    }
    match storage {
        CpuStorage::U8(v) => of(v),
        CpuStorage::U32(v) => of(v),
        CpuStorage::I16(v) => of(v),
        CpuStorage::I32(v) => of(v),
        CpuStorage::I64(v) => of(v),
        CpuStorage::BF16(v) => of(v),
        CpuStorage::F16(v) => of(v),
        CpuStorage::F32(v) => of(v),
        CpuStorage::F64(v) => of(v),
        CpuStorage::F8E4M3(v) => of(v),
        CpuStorage::F6E2M3(v)
        | CpuStorage::F6E3M2(v)
        | CpuStorage::F4(v)
        | CpuStorage::F8E8M0(v) => of(v),
    }
}

// SAFETY: the memory is the `Vec` of the tensor's CPU storage, read under
// candle's read guard. The owner holds a clone of the tensor, hence the
// storage's `Arc`, so the `Vec` is freed only after the owner is dropped;
// its heap buffer does not move when the owner moves; and candle-core 0.11
// never replaces or resizes the `Vec` of a live storage (its write guard is
// taken only by in-place ops that write elements inside it; see the module
// docs), so the address stays valid for the owner's life after the guard is
// dropped. Every byte is an initialised element. It is reported read-only:
// consumers get no write access. `Tensor` is Send (an `Arc` of a
// `Send + Sync` value), so the owner may be dropped on any thread.
unsafe impl TensorOwner for Owner {
    fn memory(&mut self) -> Memory {
        let (storage, _) = self.0.storage_and_layout();
        let (ptr, len) = match &*storage {
            Storage::Cpu(cpu) => cpu_bytes(cpu),
            // Not reached: `export` refuses other devices first. An empty
            // memory makes the core refuse the export.
            _ => (core::ptr::null_mut(), 0),
        };
        Memory {
            ptr,
            len,
            device: DLDevice::cpu(),
            dtype: None,
            read_only: true,
        }
    }
}

/// Exports a CPU tensor of any layout and dtype as a
/// `DLManagedTensorVersioned`, zero-copy and `READ_ONLY`; the export holds
/// a clone of `tensor` (the storage stays alive until the consumer's
/// deleter runs).
///
/// # Errors
///
/// [`Error::CandleDevice`] for a tensor that is not on the CPU;
/// [`Error::SubByteLayout`] for a packed sub-byte tensor that is not
/// compact from a whole byte; [`Error::Tensor`] if the core refuses the
/// layout (not expected for a layout candle made).
///
/// # Examples
///
/// ```
/// use candle_core::{Device, Tensor};
///
/// let t = Tensor::arange(0f32, 6., &Device::Cpu)?.reshape((2, 3))?.t()?; // a transposed view
/// let d = dlpack_candle::export(&t)?;
/// let view = d.view();
/// assert_eq!(view.shape(), &[3, 2]);
/// assert_eq!(view.strides().collect::<Vec<_>>(), [1, 3]); // candle's own strides
/// assert!(d.flags().is_read_only());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn export(tensor: &Tensor) -> Result<ManagedTensorVersioned, Error> {
    if !tensor.device().is_cpu() {
        return Err(Error::CandleDevice {
            device: format!("{:?}", tensor.device().location()),
        });
    }
    // Every candle-core 0.11 dtype has a row; a newer variant would not.
    let dl = dtype::to_dlpack(tensor.dtype()).ok_or(Error::CandleDtype {
        dtype: tensor.dtype(),
    })?;
    let layout = tensor.layout();
    #[cfg(target_pointer_width = "64")]
    let (shape, strides) = (as_i64(layout.dims()), as_i64(layout.stride()));
    #[cfg(not(target_pointer_width = "64"))]
    let widened: [Vec<i64>; 2] =
        [layout.dims(), layout.stride()].map(|v| v.iter().map(|&x| x as i64).collect());
    #[cfg(not(target_pointer_width = "64"))]
    let (shape, strides) = (&widened[0][..], &widened[1][..]);
    let offset = layout.start_offset() as u64;
    let bits = u64::from(dl.bits);
    let byte_offset = if bits % 8 == 0 {
        offset
            .checked_mul(bits / 8)
            .ok_or(dlpack_core::Error::LayoutOverflow)?
    } else {
        // Packed: only a compact run starting on a whole byte.
        let start_bits = offset.checked_mul(bits);
        match start_bits {
            Some(start) if layout.is_contiguous() && start % 8 == 0 => start / 8,
            _ => {
                return Err(Error::SubByteLayout {
                    dtype: dl,
                    shape: shape.to_vec(),
                    strides: strides.to_vec(),
                    offset,
                });
            }
        }
    };
    Ok(Export::new(Owner(tensor.clone()))
        .dtype(dl)
        .shape(shape)
        .strides(strides)
        .byte_offset(byte_offset)
        .read_only(true)
        .versioned()?)
}

/// Zero-copy export of candle tensors; see [`export`].
///
/// # Examples
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dlpack_candle::ToDlpack;
///
/// let t = Tensor::new(&[[1u8, 2], [3, 4]], &Device::Cpu)?;
/// let raw = t.to_dlpack()?.into_raw(); // hand the pointer to any DLPack consumer
/// # drop(unsafe { dlpack_core::managed::ManagedTensorVersioned::from_raw(raw) });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ToDlpack {
    /// A `DLManagedTensorVersioned` over the tensor's storage, `READ_ONLY`.
    ///
    /// # Errors
    ///
    /// As [`export`].
    fn to_dlpack(&self) -> Result<ManagedTensorVersioned, Error>;
}

impl ToDlpack for Tensor {
    #[inline]
    fn to_dlpack(&self) -> Result<ManagedTensorVersioned, Error> {
        export(self)
    }
}
