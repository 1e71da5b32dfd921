//! Lets `cargo test` binaries (embedded Python) find the libpython that pyo3
//! was configured for; emits nothing for the extension module itself.
fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
}
