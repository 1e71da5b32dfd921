//! Layer 3, `export` (beside `import`): DLPack capsules and the tensors
//! this crate hands out.
//!
//! - [`capsule`]: creation (static names, a plain `extern "C"` destructor
//!   that frees only unconsumed capsules), consumption (the name decides the
//!   struct; rename exactly once; a second consumption raises `ValueError`),
//!   inspection.
//! - [`shared`]: a tensor shared by a Python object and its `__dlpack__`
//!   export: the core plans and carries the plan out
//!   (`dlpack_core::export::fulfil`) over the tensor as a `PlanSource`
//!   (share, or copy to the host), one allocation per exported tensor.
//! - [`host`]: owned tensors over host memory a Python object keeps alive.
//! - `arrow` (feature `arrow`): `__arrow_c_array__`, a host tensor as an
//!   Arrow array (Arrow PyCapsule interface), no copy.
//! - [`pickle`]: `__reduce_ex__` of a host tensor (its byte span as a
//!   `pickle.PickleBuffer` with protocol 5, copied in band below it).
//!
//! Architecture invariant: never imports `import` (imports use capsules and
//! host tensors, not the other way round); protocol decisions are the
//! core's.

#[cfg(feature = "arrow")]
pub(crate) mod arrow;
pub(crate) mod capsule;
pub(crate) mod host;
pub(crate) mod pickle;
pub(crate) mod shared;
