//! Making `cargo test` find the simulator, and one simulator user at a time.
//!
//! The real loaders find the simulator by *name* (`dlopen("libcuda.so")`), so its folder must be
//! on `LD_LIBRARY_PATH` — and glibc reads `LD_LIBRARY_PATH` only when a process starts. Hence:
//!
//! 1. If the simulator is already loadable by name (the orchestrator, `cargo xtask test`, set
//!    `LD_LIBRARY_PATH`), [`setup`] returns [`Setup::Ready`]: a guard that serialises the tests
//!    of this process (the simulator's state is global) and resets the simulator.
//! 2. Otherwise it finds `libgpu_sim.so` (in `GPUSIM_LIB_DIR`, or in the cargo target folder the
//!    test binary lives in: `target/<profile>/deps/<test>` → `target/<profile>/libgpu_sim.so`),
//!    makes `target/<profile>/gpusim-lib/` with symlinks `libcuda.so`, `libcuda.so.1`,
//!    `libamdhip64.so`, `libamdhip64.so.5` and `libamdhip64.so.6` to it, and runs *this test
//!    alone* in a child process (`<test-binary> <name> --exact --test-threads=1 --nocapture`)
//!    with `LD_LIBRARY_PATH` and `GPUSIM_LIB_DIR` pointing there. The child's output is echoed
//!    and its failure fails the test; the parent gets [`Setup::Delegated`] and returns.
//!
//! The cdylib is not a dependency of the tests (cargo cannot depend on a cdylib), so
//! `cargo build -p gpu-sim` must have run first; the error says so when the file is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::{Sim, lib_dir_hint};

/// Names the symlink folder provides.
pub const SONAMES: [&str; 5] = [
    "libcuda.so",
    "libcuda.so.1",
    "libamdhip64.so",
    "libamdhip64.so.5",
    "libamdhip64.so.6",
];

/// Set in the child process so that it never re-executes itself again.
const CHILD_ENV: &str = "GPUSIM_HARNESS_CHILD";

static SIM: OnceLock<Sim> = OnceLock::new();
static SERIAL: Mutex<()> = Mutex::new(());

/// The outcome of [`setup`].
#[derive(Debug)]
pub enum Setup {
    /// The simulator is loaded in this process; the guard serialises simulator tests and the
    /// simulator was reset.
    Ready(SimGuard),
    /// The test ran (and passed) in a child process; the caller should return.
    Delegated,
}

/// Exclusive use of the loaded simulator by one test.
#[derive(Debug)]
pub struct SimGuard {
    sim: &'static Sim,
    _serial: MutexGuard<'static, ()>,
}

impl std::ops::Deref for SimGuard {
    type Target = Sim;
    fn deref(&self) -> &Sim {
        self.sim
    }
}

/// Prepares the simulator for the test named `test_name` (its full libtest name, e.g.
/// `scenario_a` or `module::scenario_a`); see the module docs.
///
/// # Panics
/// If the simulator cannot be found or the delegated run fails.
pub fn setup(test_name: &str) -> Setup {
    if let Some(sim) = loaded() {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        sim.reset();
        return Setup::Ready(SimGuard {
            sim,
            _serial: serial,
        });
    }
    if std::env::var_os(CHILD_ENV).is_some() {
        match Sim::load_by_name() {
            Ok(_) => unreachable!("loaded() would have succeeded"),
            Err(e) => panic!("{e}"),
        }
    }
    let dir = match prepare_lib_dir() {
        Ok(dir) => dir,
        Err(e) => panic!("gpu-sim: {e}"),
    };
    run_in_child(test_name, &dir);
    Setup::Delegated
}

/// The libtest name of test `name` defined in module `module_path` (`module_path!()`, whose
/// first segment is the test crate): what [`setup`] needs to re-run the test alone.
pub fn test_name(module_path: &str, name: &str) -> String {
    match module_path.split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_string(),
    }
}

/// Defines a `#[test]` that runs with the simulator loaded, reset and held by this test alone
/// (`$sim` is the [`SimGuard`]), re-running itself in a child process
/// when the simulator is not on `LD_LIBRARY_PATH` (see [`setup`]).
/// An `after_reset` block runs right after the reset, before the body: the place to forget
/// handles a test crate caches across tests (the reset destroyed them).
///
/// ```no_run
/// gpu_sim_inspect::sim_test!(
///     fn nothing_races(sim) {
///         assert!(sim.races().is_empty(), "{:?}", sim.races());
///     }
/// );
/// gpu_sim_inspect::sim_test!(
///     fn starts_without_allocations(sim) after_reset {
///         // e.g. a device crate's `forget_pooled_events()`
///     } {
///         assert_eq!(sim.live_allocations(), 0);
///     }
/// );
/// ```
#[macro_export]
macro_rules! sim_test {
    ($(#[$attr:meta])* fn $name:ident($sim:ident) $body:block) => {
        $crate::sim_test!($(#[$attr])* fn $name($sim) after_reset {} $body);
    };
    ($(#[$attr:meta])* fn $name:ident($sim:ident) after_reset $reset:block $body:block) => {
        $(#[$attr])*
        #[test]
        fn $name() {
            let name = $crate::harness::test_name(module_path!(), stringify!($name));
            let $sim = match $crate::harness::setup(&name) {
                $crate::harness::Setup::Ready(sim) => sim,
                $crate::harness::Setup::Delegated => return,
            };
            $reset
            $body
        }
    };
}

/// The simulator, if it is loadable by name in this process.
fn loaded() -> Option<&'static Sim> {
    if let Some(sim) = SIM.get() {
        return Some(sim);
    }
    let sim = Sim::load_by_name().ok()?;
    Some(SIM.get_or_init(|| sim))
}

/// `libgpu_sim.so` (or a folder already holding `libcuda.so`) to use.
pub fn find_cdylib() -> Result<PathBuf, String> {
    let mut looked = Vec::new();
    if let Some(dir) = lib_dir_hint() {
        for file in ["libgpu_sim.so", "libcuda.so"] {
            let p = dir.join(file);
            if p.exists() {
                return Ok(p);
            }
            looked.push(p);
        }
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/<profile>/deps/<binary> → target/<profile> (then deps itself, then target)
    let deps = exe.parent();
    let profile = deps.and_then(Path::parent);
    for dir in [profile, deps, profile.and_then(Path::parent)]
        .into_iter()
        .flatten()
    {
        let p = dir.join("libgpu_sim.so");
        if p.exists() {
            return Ok(p);
        }
        looked.push(p);
    }
    Err(format!(
        "libgpu_sim.so not found (looked at {}); run `cargo build -p gpu-sim` with the same \
         target dir and profile first (cargo xtask test does), or set GPUSIM_LIB_DIR",
        looked
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Makes (idempotently, safely under parallel tests) the folder of soname symlinks next to the
/// cdylib and returns it.
pub fn prepare_lib_dir() -> Result<PathBuf, String> {
    let cdylib = find_cdylib()?;
    if lib_dir_hint().is_none() {
        check_fresh(&cdylib)?;
    }
    let cdylib = cdylib
        .canonicalize()
        .map_err(|e| format!("{}: {e}", cdylib.display()))?;
    let parent = cdylib.parent().ok_or("cdylib has no parent folder")?;
    let dir = parent.join("gpusim-lib");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for name in SONAMES {
        let link = dir.join(name);
        if std::fs::read_link(&link).is_ok_and(|target| target == cdylib) {
            continue;
        }
        // Create under a unique name, then rename over: atomic even with parallel tests.
        let tmp = dir.join(format!(
            ".{name}.{}.{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&cdylib, &tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &link).map_err(|e| format!("{}: {e}", link.display()))?;
    }
    Ok(dir)
}

/// Fails if a source file of gpu-sim (in this workspace) is newer than the cdylib: a stale
/// simulator makes for baffling test results.
fn check_fresh(cdylib: &Path) -> Result<(), String> {
    let built = std::fs::metadata(cdylib)
        .and_then(|m| m.modified())
        .map_err(|e| format!("{}: {e}", cdylib.display()))?;
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gpu-sim/src");
    let Ok(entries) = std::fs::read_dir(&sources) else {
        return Ok(()); // not in the workspace layout: nothing to compare with
    };
    for entry in entries.flatten() {
        if entry.file_name() == "tests.rs" {
            continue; // unit tests only: not part of the cdylib
        }
        let newer = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t > built);
        if newer {
            return Err(format!(
                "{} is older than {}; run `cargo build -p gpu-sim` (same target dir and \
                 profile) before the tests",
                cdylib.display(),
                entry.path().display()
            ));
        }
    }
    Ok(())
}

fn run_in_child(test_name: &str, dir: &Path) {
    let exe = std::env::current_exe().expect("current_exe");
    let mut path = dir.display().to_string();
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH").filter(|v| !v.is_empty()) {
        path.push(':');
        path.push_str(&old.to_string_lossy());
    }
    let output = Command::new(&exe)
        .args([test_name, "--exact", "--test-threads=1", "--nocapture"])
        .env("LD_LIBRARY_PATH", &path)
        .env("GPUSIM_LIB_DIR", dir)
        .env(CHILD_ENV, "1")
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("--- {test_name} re-run with LD_LIBRARY_PATH={path} ---\n{stdout}{stderr}");
    assert!(
        output.status.success(),
        "{test_name} failed in the child process ({})",
        output.status
    );
    assert!(
        stdout.contains("1 passed"),
        "the child process did not run exactly one test named {test_name:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::test_name;

    #[test]
    fn test_names_drop_the_crate() {
        let cases = [
            ("scenarios", "a", "a"),
            ("scenarios::pools", "a", "pools::a"),
            ("gpu_cuda::x::y", "t", "x::y::t"),
        ];
        for (module, name, expected) in cases {
            assert_eq!(test_name(module, name), expected, "{module} {name}");
        }
    }
}
