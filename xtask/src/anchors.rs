//! The peer anchors of the Python benchmark: two tiny extension modules, each with a no-op and a
//! function taking a tensor, whose import overheads bound ours in the same run.
//!
//! - `nanobind_anchor` (C++, `nb::ndarray<>`), from `crates/dlpack-py/bench/anchors/nanobind`:
//!   CMake + Ninja + nanobind from PyPI (`requirements-bench.txt`), a C++ compiler from Debian.
//! - `dlpark_anchor` (Rust, the dlpark crate), from `crates/dlpack-py/bench/anchors/dlpark`:
//!   maturin, with the crates from crates.io.
//!
//! Both are built out of tree under `<target>/bench-anchors/` and land in its `python/` folder,
//! which the benchmark script gets as `--anchors-dir`. An anchor that does not build (no compiler,
//! no network) is a loud skip, not a failure: the script then uses its fixed anchor numbers.

use std::path::{Path, PathBuf};

use crate::cmd::{Cmd, Error, Result};
use crate::python::Venv;
use crate::steps::{Outcome, banner};
use crate::workspace::Workspace;

/// The anchors' sources, relative to the workspace root.
const SOURCES: &str = "crates/dlpack-py/bench/anchors";

/// The benchmark's Python requirements (the test set plus nanobind, cmake and ninja), and the test
/// set it includes (both go into the stamp, so a change to either reinstalls).
const BENCH_REQUIREMENTS: &str = "crates/dlpack-py/requirements-bench.txt";
const TEST_REQUIREMENTS: &str = "crates/dlpack-py/requirements-test.txt";

/// The stamp file (in the venv) holding the bench requirements last installed.
const BENCH_STAMP: &str = ".bench-requirements-installed";

/// The Debian package of the C++ compiler, installed when `c++` is missing.
const CXX_DEB: &str = "g++";

/// Where the anchors are built, relative to the target dir; the importable modules are in its
/// [`MODULES`] folder.
const BUILD_DIR: &str = "bench-anchors";
const MODULES: &str = "python";

/// The anchors: the name of the `xtask bench` step, and the module it builds.
pub const NANOBIND: (&str, &str) = ("anchor: nanobind", "nanobind_anchor");
pub const DLPARK: (&str, &str) = ("anchor: dlpark", "dlpark_anchor");

/// The folder of the built anchor modules, given to the benchmark script as `--anchors-dir`.
pub fn modules_dir(ws: &Workspace) -> PathBuf {
    ws.target_dir().join(BUILD_DIR).join(MODULES)
}

/// Builds the nanobind anchor; a loud skip if it cannot be built.
pub fn nanobind(ws: &Workspace, venv: &Venv) -> Result<Outcome> {
    build_or_skip(ws, NANOBIND, || build_nanobind(ws, venv))
}

/// Builds the dlpark anchor; a loud skip if it cannot be built.
pub fn dlpark(ws: &Workspace, venv: &Venv) -> Result<Outcome> {
    build_or_skip(ws, DLPARK, || build_dlpark(ws, venv))
}

/// Removes the anchor's module from the modules folder (so that a failed build leaves no stale
/// module behind), runs `build`, and turns its failure into a loud skip.
fn build_or_skip(
    ws: &Workspace,
    (step, module): (&str, &str),
    build: impl FnOnce() -> Result,
) -> Result<Outcome> {
    let modules = modules_dir(ws);
    remove_module(&modules, module)?;
    match build() {
        Ok(()) => {
            eprintln!("{module}: built into {}", modules.display());
            Ok(Outcome::Passed)
        }
        Err(err) => {
            let reason =
                format!("{module} did not build; the benchmark falls back to its fixed anchor");
            banner(&format!("{}: {reason}\n{err}", step.to_uppercase()));
            Ok(Outcome::skipped_loudly(reason))
        }
    }
}

/// `cmake` + `ninja` on `anchors/nanobind` with the venv's interpreter; the module is written
/// straight into the modules folder.
fn build_nanobind(ws: &Workspace, venv: &Venv) -> Result {
    install_bench_requirements(ws, venv)?;
    ensure_cxx_compiler()?;
    let build = ws.target_dir().join(BUILD_DIR).join("nanobind");
    let cmake = bin_dir(venv).join("cmake");
    venv.apply(Cmd::new(&cmake))
        .arg("-S")
        .arg(ws.root().join(SOURCES).join("nanobind"))
        .arg("-B")
        .arg(&build)
        .args(["-G", "Ninja"])
        .arg(define("Python_EXECUTABLE", &venv.python()))
        .arg(define("CMAKE_LIBRARY_OUTPUT_DIRECTORY", &modules_dir(ws)))
        .run()?;
    venv.apply(Cmd::new(&cmake))
        .arg("--build")
        .arg(&build)
        .run()
}

/// `maturin build --release` of `anchors/dlpark` (its own target dir), then the wheel's package
/// unpacked into the modules folder.
fn build_dlpark(ws: &Workspace, venv: &Venv) -> Result {
    let build = ws.target_dir().join(BUILD_DIR).join("dlpark");
    let wheels = build.join("wheels");
    remove_dir(&wheels)?;
    venv.apply(Cmd::new(bin_dir(venv).join("maturin")))
        .args(["build", "--release", "--manifest-path"])
        .arg(ws.root().join(SOURCES).join("dlpark").join("Cargo.toml"))
        .arg("--out")
        .arg(&wheels)
        .env("CARGO_TARGET_DIR", &build)
        .current_dir(ws.root())
        .run()?;
    let wheel = crate::wheel::only_wheel(&wheels)?;
    let unpacked = build.join("unpacked");
    remove_dir(&unpacked)?;
    venv.apply(Cmd::new(venv.python()))
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&unpacked)
        .run()?;
    let modules = modules_dir(ws);
    create_dir(&modules)?;
    let (_, module) = DLPARK;
    let (from, to) = (unpacked.join(module), modules.join(module));
    std::fs::rename(&from, &to).map_err(|err| {
        Error::new(format!(
            "cannot move {} to {}: {err}",
            from.display(),
            to.display()
        ))
    })
}

/// Installs [`BENCH_REQUIREMENTS`] into the venv when they changed since the last install.
fn install_bench_requirements(ws: &Workspace, venv: &Venv) -> Result {
    let mut wanted = String::new();
    for file in [BENCH_REQUIREMENTS, TEST_REQUIREMENTS] {
        let path = ws.root().join(file);
        wanted += &std::fs::read_to_string(&path)
            .map_err(|err| Error::new(format!("cannot read {}: {err}", path.display())))?;
    }
    let stamp = bin_dir(venv)
        .parent()
        .map_or_else(|| PathBuf::from(BENCH_STAMP), |dir| dir.join(BENCH_STAMP));
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        eprintln!("python: {BENCH_REQUIREMENTS} is installed");
        return Ok(());
    }
    Cmd::new(venv.python())
        .args(["-m", "pip", "--disable-pip-version-check", "install", "-r"])
        .arg(ws.root().join(BENCH_REQUIREMENTS))
        .env("PIP_PROGRESS_BAR", "off")
        .run()?;
    std::fs::write(&stamp, wanted)
        .map_err(|err| Error::new(format!("cannot write {}: {err}", stamp.display())))
}

/// Installs Debian's C++ compiler if `c++` is not runnable.
fn ensure_cxx_compiler() -> Result {
    if Cmd::new("c++").arg("--version").probe() {
        return Ok(());
    }
    eprintln!("no C++ compiler (`c++`): installing Debian's {CXX_DEB}");
    crate::tools::apt_install(CXX_DEB)
}

/// The venv's `bin` folder (its interpreter's folder).
fn bin_dir(venv: &Venv) -> PathBuf {
    let python = venv.python();
    python
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// A CMake cache definition `-D<name>=<path>`.
fn define(name: &str, path: &Path) -> String {
    format!("-D{name}={}", path.display())
}

/// Removes `module` (a package folder, or extension files `<module>.*.so`) from `dir`.
fn remove_module(dir: &Path, module: &str) -> Result {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(()); // no folder yet
    };
    for entry in entries.filter_map(std::result::Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == module {
            remove_dir(&entry.path())?;
        } else if name.starts_with(&format!("{module}.")) && name.ends_with(".so") {
            std::fs::remove_file(entry.path()).map_err(|err| {
                Error::new(format!("cannot remove {}: {err}", entry.path().display()))
            })?;
        }
    }
    Ok(())
}

fn remove_dir(dir: &Path) -> Result {
    match std::fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(Error::new(format!(
            "cannot remove {}: {err}",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

fn create_dir(dir: &Path) -> Result {
    std::fs::create_dir_all(dir)
        .map_err(|err| Error::new(format!("cannot create {}: {err}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_the_named_module() {
        let dir = std::env::temp_dir().join(format!("xtask-anchors-{}", std::process::id()));
        create_dir(&dir.join("dlpark_anchor")).unwrap();
        for file in [
            "nanobind_anchor.cpython-311-x86_64-linux-gnu.so",
            "nanobind_anchor_fast.cpython-311-x86_64-linux-gnu.so",
            "other.so",
        ] {
            std::fs::write(dir.join(file), b"").unwrap();
        }
        remove_module(&dir, "nanobind_anchor").unwrap();
        remove_module(&dir, "dlpark_anchor").unwrap();
        let mut left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "nanobind_anchor_fast.cpython-311-x86_64-linux-gnu.so",
                "other.so"
            ]
        );
        remove_dir(&dir).unwrap();
        remove_module(&dir, "dlpark_anchor").unwrap(); // no folder: nothing to do
    }
}
