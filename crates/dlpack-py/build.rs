//! Lets `cargo test` binaries (embedded Python) find the libpython that pyo3
//! was configured for (emits nothing for the extension module itself), and
//! sets pyo3's configuration cfgs (`Py_LIMITED_API`, `Py_3_11`, ...) for
//! this crate, as pyo3 sees them (see `src/pybuffer.rs`).
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
    pyo3_build_config::add_libpython_rpath_link_args();
}
