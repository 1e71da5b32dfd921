//! The bytes of a DLPack tensor as a burn [`Bytes`], without a copy.
//!
//! burn's `Bytes` is a length over a boxed [`AllocationController`], a
//! public trait whose implementations say where the memory is and how it is
//! released. [`TensorAllocation`] is one over a managed tensor: it owns the
//! [`Managed`] handle (shared by [`Arc`] among the duplicates burn makes when
//! it clones `Bytes`), so the producer's deleter runs exactly once, when the
//! last `Bytes` over the tensor is dropped, on whatever thread that is.
//!
//! Reads are served from the tensor's memory. A write is served in place
//! only when the producer marked the data writable (a versioned tensor
//! without `READ_ONLY`) and no duplicate shares it; otherwise burn's access
//! policy decides: copy-on-write into a private buffer (the default), or
//! [`AccessError::WouldCopy`] for a no-copy writer. The allocation reports
//! [`AllocationProperty::Other`]: burn's ndarray backend then keeps the bytes
//! as borrowed storage (zero-copy) instead of asking for a `Vec`, which this
//! memory cannot become ([`AllocationController::try_detach`] is `None`).

use core::mem::MaybeUninit;
use core::ptr::NonNull;
use std::sync::Arc;

use burn_std::{AccessError, AccessPolicy, AllocationController, AllocationProperty, Bytes};
use dlpack_core::managed::{Managed, ManagedAbi};

/// The tensor and the run of bytes burn sees.
struct Foreign<M: ManagedAbi> {
    /// Keeps the memory alive; its deleter runs when this is dropped.
    _tensor: Managed<M>,
    /// The first byte (aligned for the dtype; dangling when `len == 0`).
    data: NonNull<u8>,
    /// The producer marked the data writable.
    writable: bool,
}

// SAFETY: `Managed` is Send and Sync (its deleter may run on any thread);
// `data` points into the memory it keeps alive, which is only written
// through `&mut` access to a controller holding the only reference
// (`memory_mut`), so sharing it between threads is sharing `&[u8]`.
unsafe impl<M: ManagedAbi> Send for Foreign<M> {}
// SAFETY: as above.
unsafe impl<M: ManagedAbi> Sync for Foreign<M> {}

enum State<M: ManagedAbi> {
    /// The tensor's own memory.
    Foreign(Arc<Foreign<M>>),
    /// A private copy made on a write (copy-on-write): 16-byte words, so
    /// every dtype is aligned.
    Private(Vec<u128>),
}

/// An [`AllocationController`] over the memory of a managed tensor.
pub(crate) struct TensorAllocation<M: ManagedAbi> {
    state: State<M>,
    len: usize,
    align: usize,
}

impl<M: ManagedAbi> TensorAllocation<M> {
    /// Wraps `tensor` as `len` bytes from `data`.
    ///
    /// # Safety
    ///
    /// `data` is aligned to `align` (a power of two <= 16) and `len` bytes
    /// from it are initialised, readable memory kept alive by `tensor`
    /// (and writable when `writable`); `data` is dangling and aligned when
    /// `len == 0`.
    pub(crate) unsafe fn bytes(
        tensor: Managed<M>,
        data: NonNull<u8>,
        len: usize,
        align: usize,
        writable: bool,
    ) -> Bytes {
        let controller = TensorAllocation {
            state: State::Foreign(Arc::new(Foreign {
                _tensor: tensor,
                data,
                writable,
            })),
            len,
            align,
        };
        // SAFETY: the controller's memory is `len` initialised bytes (the
        // caller's contract).
        unsafe { Bytes::from_controller(Box::new(controller), len) }
    }

    /// Replaces the tensor's memory with a private copy (copy-on-write).
    fn privatise(&mut self) -> &mut [MaybeUninit<u8>] {
        if let State::Foreign(foreign) = &self.state {
            let mut words = vec![0u128; self.len.div_ceil(16)];
            if self.len != 0 {
                // SAFETY: `foreign.data` holds `len` readable bytes (see
                // `bytes`); `words` holds at least `len` bytes and is a
                // distinct allocation.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        foreign.data.as_ptr(),
                        words.as_mut_ptr().cast::<u8>(),
                        self.len,
                    );
                }
            }
            // Drops this controller's reference to the tensor (its deleter
            // runs if it was the last).
            self.state = State::Private(words);
        }
        match &mut self.state {
            State::Private(words) => private_bytes(words, self.len),
            State::Foreign(_) => unreachable!("privatised above"),
        }
    }
}

/// The first `len` bytes of `words` (`len <= 16 * words.len()`).
fn private_bytes(words: &mut [u128], len: usize) -> &mut [MaybeUninit<u8>] {
    // SAFETY: initialised words are valid bytes, and valid as
    // MaybeUninit<u8>; `len` bytes lie within the words.
    unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), len) }
}

impl<M: ManagedAbi> AllocationController for TensorAllocation<M> {
    fn alloc_align(&self) -> usize {
        self.align
    }

    fn property(&self) -> AllocationProperty {
        AllocationProperty::Other
    }

    unsafe fn memory_mut(
        &mut self,
        policy: AccessPolicy,
    ) -> Result<&mut [MaybeUninit<u8>], AccessError> {
        let len = self.len;
        let in_place = match &mut self.state {
            State::Private(_) => true,
            State::Foreign(foreign) => Arc::get_mut(foreign).is_some_and(|f| f.writable),
        };
        if !in_place {
            if !policy.copy_allowed() {
                return Err(AccessError::WouldCopy);
            }
            return Ok(self.privatise());
        }
        match &mut self.state {
            State::Private(words) => Ok(private_bytes(words, len)),
            State::Foreign(foreign) => {
                // SAFETY: the producer marked the `len` bytes writable,
                // this controller holds the only reference to the tensor
                // (no duplicate shares it: `in_place`), and `&mut self`
                // makes this the only borrow.
                let bytes =
                    unsafe { core::slice::from_raw_parts_mut(foreign.data.as_ptr().cast(), len) };
                Ok(bytes)
            }
        }
    }

    fn memory(&self, _policy: AccessPolicy) -> Result<&[MaybeUninit<u8>], AccessError> {
        Ok(match &self.state {
            // SAFETY: `len` initialised bytes kept alive by the tensor the
            // Arc holds, which lives as long as `&self`; no `&mut` to them
            // exists while `&self` is borrowed.
            State::Foreign(foreign) => unsafe {
                core::slice::from_raw_parts(foreign.data.as_ptr().cast(), self.len)
            },
            // SAFETY: as in `private_bytes`, shared.
            State::Private(words) => unsafe {
                core::slice::from_raw_parts(words.as_ptr().cast(), self.len)
            },
        })
    }

    fn capacity(&self) -> usize {
        self.len
    }

    /// Clones share the tensor (burn clones `Bytes` when it clones a
    /// borrowed ndarray tensor); a write through either then copies.
    fn duplicate(&self) -> Option<Box<dyn AllocationController>> {
        let state = match &self.state {
            State::Foreign(foreign) => State::Foreign(Arc::clone(foreign)),
            State::Private(words) => State::Private(words.clone()),
        };
        Some(Box::new(TensorAllocation {
            state,
            len: self.len,
            align: self.align,
        }))
    }
}
