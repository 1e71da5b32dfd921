//! # dlpack-shm
//!
//! DLPack tensors in POSIX shared memory: a process publishes a tensor under
//! a name (or allocates one there and fills it in place), hands a small
//! [`Handle`] to another process, which [`open`]s it as a zero-copy
//! [`ManagedTensorVersioned`] — readable by any DLPack consumer, in Rust or,
//! through `dlpack.shared_memory`, in Python.
//!
//! - The format ([`format`](mod@format)): one fixed little-endian header (magic,
//!   version, dtype, shape, strides, payload offset and length, read-only
//!   flag, creator pid, nonce), then the payload, 64-byte aligned. Readers
//!   validate every field against the segment size with checked arithmetic:
//!   a truncated, foreign or inconsistent segment is an [`Error`] naming the
//!   value and the rule, never a crash.
//! - Lifetimes: a mapping lives as long as the [`Segment`] or any tensor
//!   exported or opened from it, whatever happens to the name. The name
//!   lives until [`Segment::unlink`] / [`unlink`] (or the drop of a
//!   segment made with [`Options::unlink_on_drop`]); the creator may exit
//!   while readers map it, and readers may exit first. Generated names
//!   are `dlpack-<creator pid>-<hex>`, so [`cleanup_stale`] removes the
//!   names of creators that died, even by `SIGKILL`.
//! - Read-only segments are mapped `PROT_READ` by readers and exported with
//!   DLPack's `READ_ONLY` flag.
//!
//! ```
//! use dlpack_core::export::Export;
//! use dlpack_shm::{Handle, Options, Segment, open};
//!
//! // Producer process: publish (one copy into the segment).
//! let t = Export::new(vec![1u8, 2, 3]).versioned()?;
//! let seg = Segment::publish(&t.view(), &Options { read_only: true, ..Options::default() })?;
//! let text = seg.handle().to_string(); // send this to the other process
//!
//! // Consumer process: open (zero-copy, read-only).
//! let opened = open(&Handle::parse(&text)?)?;
//! assert_eq!(opened.view().as_slice::<u8>()?, &[1, 2, 3]);
//! assert!(opened.flags().is_read_only());
//! seg.unlink()?; // `opened` stays valid
//! assert_eq!(opened.view().as_slice::<u8>()?, &[1, 2, 3]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Levels, as in cudarc: [`format`](mod@format) is pure (bytes in, checked header out;
//! tested under miri), `sys` holds every system call and `unsafe` block,
//! `segment` the owning safe types.
//!
//! **Architecture invariant:** no Python; a segment is trusted only after
//! [`format::Header::parse`] has checked it against its size; the header is
//! parsed from a private copy, never from memory another process may write.

#![cfg(unix)]

extern crate alloc;

mod error;
pub mod format;
mod names;
mod segment;
mod sys;

pub use dlpack_core::managed::ManagedTensorVersioned;
pub use error::Error;
pub use format::{Handle, Header};
pub use names::{NAME_PREFIX, cleanup_stale, names_of};
pub use segment::{Options, Segment, inspect, open, open_by_name, unlink};
