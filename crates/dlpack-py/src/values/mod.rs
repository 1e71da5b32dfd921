//! Layer 2, `values`: Python values decoded into DLPack's and back, each
//! with the error that names the value and the rule.
//!
//! - [`args`]: the keywords of `__dlpack__` (`stream`, `max_version`,
//!   `dl_device`, `copy`) as passed, decoded into the core's request.
//! - [`device`]: `(DLDeviceType(t), id)` tuples.
//! - [`interface`]: NumPy typestr and PEP 3118 format strings ⇄ DLPack
//!   dtypes.
//!
//! Architecture invariant: no import, no export, no class: values in,
//! values out.

pub(crate) mod args;
pub(crate) mod device;
pub(crate) mod interface;
