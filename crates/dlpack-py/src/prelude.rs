//! The names a `#[pyfunction]` that exchanges tensors needs, and pyo3's
//! prelude: `use dlpack_py::prelude::*;`.
//!
//! ```
//! use dlpack_py::prelude::*;
//!
//! /// Python → Rust → Python: the number of elements, and a tensor back.
//! #[pyfunction]
//! fn roundtrip(py: Python<'_>, t: PyTensor) -> Result<(u64, Bound<'_, Tensor>), dlpack_py::Error> {
//!     let n = t.view().num_elements();
//!     Ok((n, Bound::new(py, Tensor::new(t.into_tensor()))?))
//! }
//! # Python::attach(|py| {
//! #     let f = wrap_pyfunction!(roundtrip, py).unwrap();
//! #     let a = py.import("numpy").unwrap().call_method1("arange", (5,)).unwrap();
//! #     let (n, _t): (u64, Bound<'_, PyAny>) = f.call1((a,)).unwrap().extract().unwrap();
//! #     assert_eq!(n, 5);
//! # });
//! ```

pub use pyo3::prelude::*;

pub use crate::{DLPackObject, ExtractOptions, PyTensor, Tensor, extract, with_borrowed};
