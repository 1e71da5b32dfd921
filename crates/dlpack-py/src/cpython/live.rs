//! The count of managed tensors this crate created and that are not yet
//! released (`dlpack.live_tensors()`), for leak tests.
//!
//! Every export block this crate builds carries a [`LiveToken`] inside its
//! owner: creating the token increments the counter, dropping it (in the
//! tensor's deleter, on whatever thread) decrements it.

use std::sync::atomic::{AtomicIsize, Ordering};

static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Managed tensors created by this crate and not yet released.
///
/// ```
/// let n = dlpack_py::live_tensors();
/// assert!(n >= 0);
/// ```
pub fn live_tensors() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// One live managed tensor; lives inside the tensor's owner.
#[derive(Debug)]
pub struct LiveToken(());

impl LiveToken {
    /// Counts one more live tensor.
    pub fn new() -> Self {
        LIVE.fetch_add(1, Ordering::Relaxed);
        LiveToken(())
    }
}

impl Default for LiveToken {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for LiveToken {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}
