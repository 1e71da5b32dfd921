//! Owners for tests: one that counts its releases, one whose memory is
//! never freed (so a test may write through the producer's pointer after
//! any import, copying or not, without touching freed memory).

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dlpack_core::Element;
use dlpack_core::export::{Memory, TensorOwner};
use dlpack_core::ffi::DLDevice;

/// A `Vec` that counts how often it was dropped (the deleter releasing it).
pub struct Counted<T> {
    data: Vec<T>,
    drops: Arc<AtomicUsize>,
}

impl<T> Counted<T> {
    /// The owner and its counter.
    pub fn new(data: Vec<T>) -> (Self, Arc<AtomicUsize>) {
        let drops = Arc::new(AtomicUsize::new(0));
        (
            Counted {
                data,
                drops: Arc::clone(&drops),
            },
            drops,
        )
    }
}

impl<T> Drop for Counted<T> {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: the Vec's buffer is stable under moves and freed on drop only.
unsafe impl<T: Element> TensorOwner for Counted<T> {
    fn memory(&mut self) -> Memory {
        Memory {
            ptr: self.data.as_mut_ptr().cast(),
            len: core::mem::size_of_val(self.data.as_slice()),
            device: DLDevice::cpu(),
            dtype: Some(T::DTYPE),
            read_only: false,
        }
    }
}

/// Memory that is never freed.
pub struct Leaked<T: 'static>(pub *mut T, pub usize);

impl<T: Element> Leaked<T> {
    pub fn new(data: Vec<T>) -> Self {
        let slice = Box::leak(data.into_boxed_slice());
        Leaked(slice.as_mut_ptr(), slice.len())
    }
}

// SAFETY: the pointer is Send for these plain elements.
unsafe impl<T: Element> Send for Leaked<T> {}

// SAFETY: leaked memory lives forever at its address.
unsafe impl<T: Element> TensorOwner for Leaked<T> {
    fn memory(&mut self) -> Memory {
        Memory {
            ptr: self.0.cast(),
            len: self.1 * size_of::<T>(),
            device: DLDevice::cpu(),
            dtype: Some(T::DTYPE),
            read_only: false,
        }
    }
}

/// Releases so far.
pub fn count(drops: &AtomicUsize) -> usize {
    drops.load(Ordering::SeqCst)
}
