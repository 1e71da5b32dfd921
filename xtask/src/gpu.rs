//! The GPU simulator folder: `gpu-sim` built as a shared library, copied once into a folder and
//! linked there under the names the CUDA and HIP loaders look for, so that tests put it on
//! `LD_LIBRARY_PATH` and the real loaders (cudarc, `dlpack-rocm`) pick it up instead of a driver.

use std::path::{Path, PathBuf};

use crate::cmd::{Cmd, Error, Result};
use crate::workspace::Workspace;

/// The package of the simulator (a `cdylib`).
pub const SIM_PACKAGE: &str = "gpu-sim";

/// The library cargo builds for [`SIM_PACKAGE`] in the debug profile, relative to the target dir.
const SIM_LIBRARY: &str = "debug/libgpu_sim.so";

/// The simulator's folder, relative to the target dir.
const SIM_FOLDER: &str = "gpu-sim/lib";

/// The names the simulator is linked under: those cudarc and the HIP loaders open.
pub const SIM_LIBRARY_NAMES: &[&str] = &[
    "libcuda.so",
    "libcuda.so.1",
    "libamdhip64.so",
    "libamdhip64.so.5",
    "libamdhip64.so.6",
];

/// Tells tests (Rust and Python) where the simulator folder is.
pub const SIM_DIR_VAR: &str = "GPUSIM_LIB_DIR";

/// Builds `gpu-sim` and fills `<target>/gpu-sim/lib/` with it; returns that folder, or `None`
/// (with a note) if the package does not exist yet.
///
/// The library is *copied* once into the folder (so a later build that relinks
/// `target/debug/libgpu_sim.so` does not change the library under running tests; the copy is
/// written to a temporary file and renamed into place), and every loader name is a *symlink* to
/// that one copy: the dynamic loader treats names as one library only when they resolve to the
/// same file, and CUDA code, HIP code and the inspection wrapper must share one simulator.
pub fn build_simulator(ws: &Workspace) -> Result<Option<PathBuf>> {
    if !ws.has_package(SIM_PACKAGE) {
        eprintln!(
            "note: package `{SIM_PACKAGE}` is not in the workspace yet; running without the GPU \
             simulator ({SIM_DIR_VAR} and LD_LIBRARY_PATH are not set)"
        );
        return Ok(None);
    }
    ws.cargo().args(["build", "-p", SIM_PACKAGE]).run()?;

    let library = ws.target_dir().join(SIM_LIBRARY);
    if !library.is_file() {
        return Err(Error::new(format!(
            "`cargo build -p {SIM_PACKAGE}` did not produce {}; is its [lib] \
             `crate-type = [\"cdylib\"]` with the name `gpu_sim`?",
            library.display()
        )));
    }
    let folder = ws.target_dir().join(SIM_FOLDER);
    std::fs::create_dir_all(&folder)
        .map_err(|err| Error::new(format!("cannot create {}: {err}", folder.display())))?;
    let copy = folder.join("libgpu_sim.so");
    copy_replacing(&library, &copy)?;
    for name in SIM_LIBRARY_NAMES {
        link_replacing(Path::new("libgpu_sim.so"), &folder.join(name))?;
    }
    eprintln!(
        "GPU simulator folder: {} ({})",
        folder.display(),
        SIM_LIBRARY_NAMES.join(", ")
    );
    Ok(Some(folder))
}

/// Makes `cmd` load the simulator in `folder`: `LD_LIBRARY_PATH=<folder>:<user's value>` and
/// `GPUSIM_LIB_DIR=<folder>`. Without a folder, the command is unchanged.
pub fn with_simulator(cmd: Cmd, folder: Option<&Path>) -> Cmd {
    match folder {
        Some(folder) => cmd.prepend_library_path(folder).env(SIM_DIR_VAR, folder),
        None => cmd,
    }
}

/// Makes `link` a symlink to `target` (relative to the link's folder), replacing what was there.
fn link_replacing(target: &Path, link: &Path) -> Result {
    let mut temporary = link.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    std::os::unix::fs::symlink(target, &temporary)
        .and_then(|_| std::fs::rename(&temporary, link))
        .map_err(|err| {
            Error::new(format!(
                "cannot link {} to {}: {err}",
                link.display(),
                target.display()
            ))
        })
}

/// Copies `from` to `to` through a temporary file in `to`'s folder and an atomic rename.
fn copy_replacing(from: &Path, to: &Path) -> Result {
    let mut temporary = to.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::copy(from, &temporary)
        .and_then(|_| std::fs::rename(&temporary, to))
        .map_err(|err| {
            Error::new(format!(
                "cannot copy {} to {}: {err}",
                from.display(),
                to.display()
            ))
        })
}
