//! Export: turn a Rust owner of memory into a managed tensor.
//!
//! Every exported tensor is **one heap allocation** holding the managed
//! struct, the owner, and the shape and strides arrays; its deleter drops the
//! owner and frees that block, from any thread (owners are `Send`). Our
//! exports always fill `strides` when `ndim != 0`, set `shape`/`strides` to
//! NULL for 0-d tensors and `data` to NULL for size-zero ones, and fold
//! `byte_offset` into `data` for addressable devices (many consumers ignore
//! `byte_offset`).
//!
//! ```
//! use dlpack_core::export::Export;
//!
//! let t = Export::new(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0])
//!     .shape(&[2, 3])
//!     .versioned()
//!     .unwrap();
//! let view = t.view();
//! assert_eq!(view.shape(), &[2, 3]);
//! assert_eq!(view.strides().collect::<Vec<_>>(), [3, 1]);
//! assert_eq!(view.as_slice::<f32>().unwrap()[4], 5.0);
//! // Handing the raw pointer to a consumer; it calls the deleter once.
//! let raw = t.into_raw();
//! # drop(unsafe { dlpack_core::managed::ManagedTensorVersioned::from_raw(raw) });
//! ```

use alloc::alloc::{Layout as AllocLayout, alloc, dealloc, handle_alloc_error};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};

use crate::dtype::{Element, Storage};
use crate::error::Error;
use crate::ffi::{
    DLDataType, DLDevice, DLManagedTensor, DLManagedTensorVersioned, DLPACK_FLAG_BITMASK_IS_COPIED,
    DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED, DLPACK_FLAG_BITMASK_READ_ONLY, DLPackVersion,
    DLTensor,
};
use crate::layout::{self, Layout};
use crate::managed::{Managed, ManagedAbi, ManagedTensor, ManagedTensorVersioned};
use crate::tensor::TensorView;

mod plan;
pub use plan::{PlanSource, fulfil};

/// The memory a [`TensorOwner`] keeps alive.
#[derive(Copy, Clone, Debug)]
pub struct Memory {
    /// Base address (or device pointer / opaque handle) of the memory.
    pub ptr: *mut c_void,
    /// Bytes valid from `ptr`.
    pub len: usize,
    /// Where the memory lives.
    pub device: DLDevice,
    /// The owner's element type, if it has one (used when none is given).
    pub dtype: Option<DLDataType>,
    /// Whether the owner only grants shared (read-only) access.
    pub read_only: bool,
}

/// A Rust value that keeps tensor memory alive while a consumer uses it.
///
/// # Safety
///
/// The memory described by [`TensorOwner::memory`] must stay valid, at the
/// same address, for as long as the value lives — including after the value
/// is moved (heap buffers such as `Vec`'s qualify; inline arrays do not) —
/// and must be writable unless `read_only` is set. Dropping the value may
/// happen on any thread.
pub unsafe trait TensorOwner: Send + 'static {
    /// Describes the memory. Called before the owner is moved into the
    /// exported tensor (for its length, device and flags) and, for memory
    /// the host can address, once more after, where the owner sits for
    /// good, for the data pointer (a `Box` asserts unique ownership when it
    /// moves); both calls must describe the same memory. Device memory is
    /// asked for once: its address is not a Rust pointer a move could
    /// invalidate, and asking may cost a driver call.
    fn memory(&mut self) -> Memory;
}

// SAFETY: a Vec's heap buffer does not move when the Vec is moved, and it is
// valid for len elements; T: Send makes the Vec Send.
unsafe impl<T: Element> TensorOwner for Vec<T> {
    fn memory(&mut self) -> Memory {
        Memory {
            ptr: self.as_mut_ptr().cast(),
            len: core::mem::size_of_val(self.as_slice()),
            device: DLDevice::cpu(),
            dtype: Some(T::DTYPE),
            read_only: false,
        }
    }
}

// SAFETY: as for Vec: the boxed slice's buffer is stable under moves.
unsafe impl<T: Element> TensorOwner for Box<[T]> {
    fn memory(&mut self) -> Memory {
        Memory {
            ptr: self.as_mut_ptr().cast(),
            len: core::mem::size_of_val(&**self),
            device: DLDevice::cpu(),
            dtype: Some(T::DTYPE),
            read_only: false,
        }
    }
}

/// Builder of an exported tensor: shape, strides, dtype, flags, then
/// [`Export::versioned`] or [`Export::legacy`].
#[derive(Debug)]
pub struct Export<'a, O> {
    owner: O,
    memory: Memory,
    dtype: Option<DLDataType>,
    shape: Option<&'a [i64]>,
    strides: Option<&'a [i64]>,
    byte_offset: u64,
    flags: u64,
    layout: Option<Layout>,
}

impl<'a, O: TensorOwner> Export<'a, O> {
    /// Starts an export of `owner`'s memory: by default a 1-D, compact tensor
    /// of the owner's element type over all its bytes, read-only when the
    /// owner grants only shared access.
    pub fn new(mut owner: O) -> Self {
        let memory = owner.memory();
        Export {
            owner,
            memory,
            dtype: None,
            shape: None,
            strides: None,
            byte_offset: 0,
            flags: if memory.read_only {
                DLPACK_FLAG_BITMASK_READ_ONLY
            } else {
                0
            },
            layout: None,
        }
    }

    /// The element type (required when the owner has none).
    pub fn dtype(mut self, dtype: DLDataType) -> Self {
        self.dtype = Some(dtype);
        self
    }

    /// The extents.
    pub fn shape(mut self, shape: &'a [i64]) -> Self {
        self.shape = Some(shape);
        self
    }

    /// The strides in elements (compact row-major when not given). Negative
    /// strides are allowed: the first element is at `byte_offset`.
    pub fn strides(mut self, strides: &'a [i64]) -> Self {
        self.strides = Some(strides);
        self
    }

    /// Offset in bytes from the owner's base to the first element.
    pub fn byte_offset(mut self, byte_offset: u64) -> Self {
        self.byte_offset = byte_offset;
        self
    }

    /// Marks the tensor read-only (it then cannot be exported as legacy).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.set_flag(
            DLPACK_FLAG_BITMASK_READ_ONLY,
            read_only || self.memory.read_only,
        );
        self
    }

    /// Marks the tensor as a copy that the consumer solely owns.
    pub fn copied(mut self, copied: bool) -> Self {
        self.set_flag(DLPACK_FLAG_BITMASK_IS_COPIED, copied);
        self
    }

    /// Marks sub-byte elements as padded to one byte each.
    pub fn subbyte_padded(mut self, padded: bool) -> Self {
        self.set_flag(DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED, padded);
        self
    }

    /// Supplies the layout analysis of this export's shape and strides,
    /// computed earlier by the caller (for instance to find the memory span
    /// before building the owner, or taken from the [`TensorView`] of the
    /// tensor being re-exported), so that building does not analyze them a
    /// second time. Bounds against the owner's memory are still checked.
    ///
    /// # Safety
    ///
    /// `layout` must equal what [`layout::analyze`] returns for the shape,
    /// the strides (`None` when none are given) and the element storage
    /// (the dtype's, with this export's sub-byte padding flag) with which
    /// the export is finally built. Debug builds check it.
    ///
    /// [`TensorView`]: crate::tensor::TensorView
    ///
    /// ```
    /// use dlpack_core::export::Export;
    /// use dlpack_core::{dtype::Storage, layout::analyze};
    ///
    /// let layout = analyze(&[2, 3], None, Storage::Bytes(4)).unwrap();
    /// // SAFETY: the same shape, no strides and the storage of f32.
    /// let t = unsafe { Export::new(vec![0f32; 6]).shape(&[2, 3]).with_layout(layout) }
    ///     .versioned()
    ///     .unwrap();
    /// assert_eq!(*t.view().layout(), layout);
    /// ```
    pub unsafe fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = Some(layout);
        self
    }

    fn set_flag(&mut self, bit: u64, on: bool) {
        if on {
            self.flags |= bit;
        } else {
            self.flags &= !bit;
        }
    }

    /// Builds a `DLManagedTensorVersioned` (version 1.3, with flags).
    ///
    /// # Errors
    ///
    /// When the dtype is missing or has no size ([`Error::UnsupportedDtype`],
    /// [`Error::ZeroSizedElement`], [`Error::InvalidBitWidth`]), the layout
    /// is malformed, or it reaches outside the owner's memory
    /// ([`Error::OutOfBounds`]). The owner is dropped.
    #[inline]
    pub fn versioned(self) -> Result<ManagedTensorVersioned, Error> {
        self.build()
    }

    /// Builds a legacy `DLManagedTensor`.
    ///
    /// # Errors
    ///
    /// As [`Export::versioned`], and [`Error::ReadOnlyLegacyExport`] for
    /// read-only data, which the legacy ABI cannot mark.
    #[inline]
    pub fn legacy(self) -> Result<ManagedTensor, Error> {
        if self.flags & DLPACK_FLAG_BITMASK_READ_ONLY != 0 {
            return Err(Error::ReadOnlyLegacyExport);
        }
        self.build()
    }

    // Inlined into `versioned` / `legacy` and so into the caller: what the
    // builder was told (an owner whose memory is host memory of a known
    // dtype, no strides, no layout) is known there, and the branches on it
    // fold; the checks on the shape's values all stay.
    #[inline(always)]
    fn build<M: Assemble>(self) -> Result<Managed<M>, Error> {
        let m = self.memory;
        let dtype = self.dtype.or(m.dtype).ok_or(Error::UnsupportedDtype {
            dtype: DLDataType {
                code: 0,
                bits: 0,
                lanes: 0,
            },
        })?;
        let storage =
            dtype.storage(self.flags & DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED != 0)?;
        let default_shape;
        let shape = match self.shape {
            Some(shape) => shape,
            None => {
                let count = match storage {
                    Storage::Bytes(size) => m.len / size as usize,
                    Storage::PackedBits(bits) => m.len * 8 / bits as usize,
                };
                default_shape = [i64::try_from(count).map_err(|_| Error::LayoutOverflow)?];
                &default_shape[..]
            }
        };
        let layout = match self.layout {
            Some(layout) => {
                debug_assert_eq!(
                    layout::analyze(shape, self.strides, storage).ok(),
                    Some(layout),
                    "Export::with_layout was given a layout that does not match"
                );
                layout
            }
            None => layout::analyze(shape, self.strides, storage)?,
        };
        // Every byte the layout reaches lies in the owner's memory:
        // `byte_offset + start >= 0` and `byte_offset + end <= len`, where
        // `start <= 0 < end` for a non-empty layout (checked in u64: the
        // offsets fit in isize, so the sums cannot wrap).
        if layout.elements != 0
            && (self.byte_offset < layout.start.unsigned_abs()
                || self
                    .byte_offset
                    .checked_add(layout.end as u64)
                    .is_none_or(|end| end > m.len as u64))
        {
            let first = i128::from(self.byte_offset);
            return Err(Error::OutOfBounds {
                start: first + i128::from(layout.start),
                end: first + i128::from(layout.end),
                len: m.len,
            });
        }
        let addressable = m.device.device_type.has_addressable_data();
        let (data, byte_offset) = if layout.elements == 0 {
            (ptr::null_mut(), 0)
        } else if addressable {
            // In bounds of the owner's memory (checked above).
            (
                m.ptr
                    .cast::<u8>()
                    .wrapping_add(self.byte_offset as usize)
                    .cast(),
                0,
            )
        } else {
            (m.ptr, self.byte_offset)
        };
        let header = Header {
            data,
            device: m.device,
            dtype,
            byte_offset,
            flags: self.flags,
        };
        // For host memory, the data pointer is taken again from the owner
        // where it sits for good (see `TensorOwner::memory`); a direct call,
        // so that the compiler keeps only the pointer of what it returns.
        let rebase = layout.elements != 0 && m.device.device_type.is_host_accessible();
        let offset = if addressable {
            self.byte_offset as usize
        } else {
            0
        };
        build_block::<M, O>(
            self.owner,
            header,
            shape,
            self.strides,
            layout,
            storage,
            |owner: &mut O, data| {
                if rebase {
                    owner.memory().ptr.cast::<u8>().wrapping_add(offset).cast()
                } else {
                    data
                }
            },
        )
    }
}

/// Host memory for a copy of a tensor: 16-byte aligned words, so that every
/// element type (up to complex128) is aligned. Device crates fill it from
/// device memory and export it with [`copy_to_host`].
///
/// The words are a `Vec`, not a `Box<[u128]>`: moving a `Box` into the
/// exported block asserts unique ownership of its buffer, which invalidates
/// the data pointer taken before the move (miri's Stacked Borrows reports
/// it); a `Vec`'s buffer is not retagged when the `Vec` moves.
#[derive(Debug)]
pub struct HostCopy {
    words: Vec<u128>,
    len: usize,
}

impl HostCopy {
    /// `len` zeroed bytes.
    pub fn zeroed(len: usize) -> Self {
        HostCopy {
            words: alloc::vec![0u128; len.div_ceil(16)],
            len,
        }
    }

    /// The bytes, to fill.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: initialised plain words are valid bytes; len <= 16 * words.
        unsafe { core::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), self.len) }
    }
}

// SAFETY: the Vec's buffer does not move with the owner, holds `len`
// initialised bytes, and is owned (writable, Send).
unsafe impl TensorOwner for HostCopy {
    fn memory(&mut self) -> Memory {
        Memory {
            ptr: self.words.as_mut_ptr().cast(),
            len: self.len,
            device: DLDevice::cpu(),
            dtype: None,
            read_only: false,
        }
    }
}

/// Copies the bytes a tensor's layout reaches into host memory with `fill`
/// (given the address of the lowest byte and the buffer to fill) and
/// exports the copy on `(kDLCPU, 0)` with the same shape, strides and dtype,
/// flagged `IS_COPIED`. `fill` is not called for a size-zero tensor.
///
/// # Errors
///
/// What `fill` returns, or an export error.
///
/// ```
/// use dlpack_core::export::{copy_to_host, Export};
///
/// let t = Export::new(vec![1u16, 2, 3, 4]).shape(&[2]).strides(&[-2]).byte_offset(4).versioned()?;
/// // A "device" that is host memory here: the fill copies the reached bytes
/// // (a device crate would pass `first`, their address, to its driver).
/// let view = t.view();
/// let lowest = view.data_ptr().wrapping_offset(view.layout().start as isize);
/// let copy = copy_to_host(&view, |first, bytes| {
///     assert_eq!(first, lowest as u64);
///     // SAFETY: the view's layout reaches exactly these bytes of the Vec.
///     let src = unsafe { core::slice::from_raw_parts(lowest, bytes.len()) };
///     bytes.copy_from_slice(src);
///     Ok::<(), dlpack_core::Error>(())
/// })?;
/// assert!(copy.flags().is_copied());
/// let p = copy.view().element_ptr::<u16>()?;
/// assert_eq!(unsafe { (*p, *p.offset(-2)) }, (3, 1));
/// # Ok::<(), dlpack_core::Error>(())
/// ```
pub fn copy_to_host<E: From<Error>>(
    view: &TensorView<'_>,
    fill: impl FnOnce(u64, &mut [u8]) -> Result<(), E>,
) -> Result<ManagedTensorVersioned, E> {
    let layout = *view.layout();
    let span = layout.span_bytes() as usize;
    let mut host = HostCopy::zeroed(span);
    if span != 0 {
        fill(
            (view.data_ptr() as u64).wrapping_add_signed(layout.start),
            host.bytes_mut(),
        )?;
    }
    let strides: Vec<i64> = view.strides().collect();
    Ok(Export::new(host)
        .dtype(view.dtype())
        .shape(view.shape())
        .strides(&strides)
        .byte_offset(layout.start.unsigned_abs())
        .subbyte_padded(view.flags().is_subbyte_padded())
        .copied(true)
        .versioned()?)
}

/// Wraps a legacy tensor as a versioned one without copying: the new tensor
/// owns the old one and releases it from its deleter.
///
/// The result is always `READ_ONLY`: the legacy ABI cannot say that the data
/// may be written ([`Access::Unknown`](crate::tensor::Access::Unknown)), and
/// a conversion never upgrades that. `flags` are further flags to claim
/// (`IS_COPIED` when the caller knows the data is a copy it hands over).
///
/// # Errors
///
/// Only if the tensor's description cannot be represented (not expected for
/// a validated handle).
///
/// ```
/// use dlpack_core::export::{Export, legacy_to_versioned};
///
/// let legacy = Export::new(vec![1u8, 2, 3]).legacy()?;
/// let mut versioned = legacy_to_versioned(legacy, 0)?;
/// assert!(versioned.flags().is_read_only());
/// assert!(versioned.as_mut_slice::<u8>().is_err());
/// assert_eq!(versioned.view().as_slice::<u8>()?, &[1, 2, 3]);
/// # Ok::<(), dlpack_core::Error>(())
/// ```
pub fn legacy_to_versioned(
    tensor: ManagedTensor,
    flags: u64,
) -> Result<ManagedTensorVersioned, Error> {
    rewrap(tensor, flags)
}

/// Wraps a versioned tensor as a legacy one without copying.
///
/// # Errors
///
/// [`Error::ReadOnlyLegacyExport`] when the tensor is read-only.
pub fn versioned_to_legacy(tensor: ManagedTensorVersioned) -> Result<ManagedTensor, Error> {
    if tensor.flags().is_read_only() {
        return Err(Error::ReadOnlyLegacyExport);
    }
    rewrap(tensor, 0)
}

fn rewrap<From: ManagedAbi, To: Assemble>(
    tensor: Managed<From>,
    flags: u64,
) -> Result<Managed<To>, Error> {
    let view = tensor.view();
    let raw = *view.raw();
    let layout = *view.layout();
    let storage = view.storage();
    // What the source said about writing is carried, never upgraded (a
    // legacy source cannot say: READ_ONLY); the legacy ABI stores no flags.
    let flags = flags
        | view.flags().access().versioned_flags()
        | (view.flags().bits() & DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED);
    // Shape and strides are copied into the new block, so the new tensor
    // does not depend on how long the old descriptor's arrays live.
    let shape: *const [i64] = view.shape();
    let strides = view.raw_strides().map(|s| s as *const [i64]);
    let header = Header {
        data: raw.data,
        device: raw.device,
        dtype: raw.dtype,
        byte_offset: raw.byte_offset,
        flags,
    };
    // SAFETY: shape/strides borrow the old descriptor, which stays alive
    // (owned by `tensor`) until build_block has copied them; `tensor` is
    // moved into the block only after the copy (see build_block).
    unsafe {
        build_block::<To, Managed<From>>(
            tensor,
            header,
            &*shape,
            strides.map(|s| &*s),
            layout,
            storage,
            |_, data| data,
        )
    }
}

/// The descriptor fields other than shape and strides.
struct Header {
    data: *mut c_void,
    device: DLDevice,
    dtype: DLDataType,
    byte_offset: u64,
    flags: u64,
}

/// How to fill each ABI's managed struct.
trait Assemble: ManagedAbi {
    fn assemble(
        tensor: DLTensor,
        ctx: *mut c_void,
        deleter: unsafe extern "C" fn(*mut Self),
        flags: u64,
    ) -> Self;
}

impl Assemble for DLManagedTensor {
    fn assemble(
        dl_tensor: DLTensor,
        ctx: *mut c_void,
        deleter: unsafe extern "C" fn(*mut Self),
        _: u64,
    ) -> Self {
        DLManagedTensor {
            dl_tensor,
            manager_ctx: ctx,
            deleter: Some(deleter),
        }
    }
}

impl Assemble for DLManagedTensorVersioned {
    fn assemble(
        dl_tensor: DLTensor,
        ctx: *mut c_void,
        deleter: unsafe extern "C" fn(*mut Self),
        flags: u64,
    ) -> Self {
        DLManagedTensorVersioned {
            version: DLPackVersion::CURRENT,
            manager_ctx: ctx,
            deleter: Some(deleter),
            flags,
            dl_tensor,
        }
    }
}

/// The single allocation behind an exported tensor: the managed struct
/// first (so the managed pointer is the block pointer), then the owner, then
/// `2 * ndim` `i64`s (shape, then strides).
#[repr(C)]
struct Block<M, O> {
    managed: M,
    /// The allocation's size in bytes (its alignment is [`Block::ALIGN`]).
    size: usize,
    owner: ManuallyDrop<O>,
}

impl<M, O> Block<M, O> {
    /// Where the shape and strides start: after the block, aligned for i64.
    const DIMS_OFFSET: usize = size_of::<Self>().next_multiple_of(core::mem::align_of::<i64>());
    /// The alignment of the whole allocation.
    const ALIGN: usize = if core::mem::align_of::<Self>() > core::mem::align_of::<i64>() {
        core::mem::align_of::<Self>()
    } else {
        core::mem::align_of::<i64>()
    };
}

/// The allocation of a block with `ndim` dimensions, and the offset of its
/// shape and strides (`2 * ndim` `i64`s after the block).
#[inline]
fn block_layout<M, O>(ndim: usize) -> Result<(AllocLayout, usize), Error> {
    let size = ndim
        .checked_mul(2 * size_of::<i64>())
        .and_then(|dims| dims.checked_add(Block::<M, O>::DIMS_OFFSET))
        .ok_or(Error::TooManyDims { ndim })?;
    let layout = AllocLayout::from_size_align(size, Block::<M, O>::ALIGN)
        .map_err(|_| Error::TooManyDims { ndim })?;
    Ok((layout.pad_to_align(), Block::<M, O>::DIMS_OFFSET))
}

#[inline(always)]
fn build_block<M: Assemble, O: Send + 'static>(
    owner: O,
    header: Header,
    shape: &[i64],
    strides: Option<&[i64]>,
    layout: Layout,
    storage: Storage,
    rebase: impl FnOnce(&mut O, *mut c_void) -> *mut c_void,
) -> Result<Managed<M>, Error> {
    let ndim = shape.len();
    let ndim_c = i32::try_from(ndim).map_err(|_| Error::TooManyDims { ndim })?;
    let (alloc_layout, dims_offset) = block_layout::<M, O>(ndim)?;
    // SAFETY: the layout has non-zero size (it contains M).
    let block = unsafe { alloc(alloc_layout) }.cast::<Block<M, O>>();
    if block.is_null() {
        handle_alloc_error(alloc_layout);
    }
    // All interior pointers derive from `block` (the allocation's raw
    // pointer), never from a reference, so later references to the managed
    // struct do not invalidate them.
    // SAFETY: dims_offset is within the allocation (from Layout::extend).
    let dims = unsafe { block.cast::<u8>().add(dims_offset) }.cast::<i64>();
    let (shape_ptr, strides_ptr) = if ndim == 0 {
        (ptr::null_mut(), ptr::null_mut())
    } else {
        // SAFETY: 2 * ndim i64s fit after dims_offset by construction.
        (dims, unsafe { dims.add(ndim) })
    };
    if ndim != 0 {
        // SAFETY: shape_ptr/strides_ptr address ndim writable, aligned i64s
        // each, disjoint from `shape`/`strides` (a fresh allocation).
        // Element-wise loops rather than `memcpy`: ndim is small, and a
        // library call costs more than the copy.
        let filled = unsafe {
            let shape_out = core::slice::from_raw_parts_mut(shape_ptr, ndim);
            let out = core::slice::from_raw_parts_mut(strides_ptr, ndim);
            match strides {
                Some(strides) => {
                    debug_assert_eq!(strides.len(), ndim, "checked by the layout analysis");
                    let strides = &strides[..ndim];
                    // Not `copy_from_slice`: for a few dimensions the
                    // library call costs more than the copy.
                    #[allow(clippy::manual_memcpy)]
                    for axis in 0..ndim {
                        shape_out[axis] = shape[axis];
                        out[axis] = strides[axis];
                    }
                    Ok(())
                }
                // The strides of a non-empty tensor are partial products
                // of its element count, which fits (checked by the layout
                // analysis); a size-zero shape's may not.
                None if layout.elements != 0 => {
                    // An index loop: a reversed zip of three slices costs
                    // more per axis than the copy itself.
                    let shape = &shape[..ndim];
                    let mut stride: i64 = 1;
                    let mut axis = ndim;
                    while axis != 0 {
                        axis -= 1;
                        let extent = shape[axis];
                        shape_out[axis] = extent;
                        out[axis] = stride;
                        stride = stride.wrapping_mul(extent);
                    }
                    Ok(())
                }
                None => {
                    shape_out.copy_from_slice(shape);
                    layout::row_major_strides(shape, out)
                }
            }
        };
        if let Err(err) = filled {
            // SAFETY: allocated above with this layout; nothing else refers
            // to it yet.
            unsafe { dealloc(block.cast(), alloc_layout) };
            return Err(err);
        }
    }
    // The owner goes to its final place first; the data pointer is then
    // taken from it there (`rebase`, given the header's pointer), so no
    // move of the owner (a `Box` asserts unique ownership when moved) can
    // invalidate the pointer consumers use.
    // SAFETY: `block` is a fresh allocation laid out for Block<M, O>; the
    // fields are written in place through raw pointers.
    let data = unsafe {
        ptr::addr_of_mut!((*block).size).write(alloc_layout.size());
        let owner_slot = ptr::addr_of_mut!((*block).owner);
        owner_slot.write(ManuallyDrop::new(owner));
        rebase(&mut *(*owner_slot), header.data)
    };
    let dl_tensor = DLTensor {
        data,
        device: header.device,
        ndim: ndim_c,
        dtype: header.dtype,
        shape: shape_ptr,
        strides: strides_ptr,
        byte_offset: header.byte_offset,
    };
    let managed = M::assemble(dl_tensor, block.cast(), delete_block::<M, O>, header.flags);
    // SAFETY: as above; the managed struct is the block's first field.
    unsafe { ptr::addr_of_mut!((*block).managed).write(managed) };
    // SAFETY: non-null (checked), and `managed` is at offset 0.
    let ptr = unsafe { NonNull::new_unchecked(block.cast::<M>()) };
    // SAFETY: we built the descriptor from a validated layout and storage.
    Ok(unsafe { Managed::from_trusted(ptr, layout, storage) })
}

/// The deleter of every exported tensor: drops the owner and frees the block.
///
/// A panic in the owner's `Drop` cannot unwind out of this `extern "C"`
/// function; Rust aborts the process instead.
unsafe extern "C" fn delete_block<M, O>(managed: *mut M) {
    if managed.is_null() {
        return;
    }
    let block = managed.cast::<Block<M, O>>();
    // SAFETY: `managed` is the first field of a Block<M, O> allocated by
    // build_block (this deleter is only installed there), not yet freed: the
    // DLPack contract has the deleter called exactly once.
    unsafe {
        let size = ptr::addr_of!((*block).size).read();
        ManuallyDrop::drop(&mut *ptr::addr_of_mut!((*block).owner));
        // The size and alignment of the allocation, as block_layout made
        // them (a valid layout).
        dealloc(
            block.cast(),
            AllocLayout::from_size_align_unchecked(size, Block::<M, O>::ALIGN),
        );
    }
}
