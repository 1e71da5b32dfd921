//! The Python side of the tests: a virtual environment at `<root>/.venv` with the pinned test
//! packages, the release wheel of the `dlpack` module installed into it (see [`crate::wheel`]),
//! and pytest.
//!
//! Cargo commands that build `dlpack-py` run with the venv's `bin` first on `PATH` and
//! `PYO3_PYTHON` pointing at its interpreter, so pyo3 configures that interpreter and the
//! embedded-Python tests can import numpy. Every cargo command of a `test` run gets the same
//! environment, so pyo3's build script does not rerun between steps.

use std::path::PathBuf;

use crate::cmd::{Cmd, Error, Result};
use crate::workspace::Workspace;

/// The folder of the environment, relative to the workspace root.
const VENV_DIR: &str = ".venv";

/// The pinned packages of the Python test suite and benchmark.
const REQUIREMENTS: &str = "crates/dlpack-py/requirements-test.txt";

/// Packages installed into a folder of their own (`pip install --target`), because their import
/// name clashes with ours: pydlpack imports as `dlpack`. The tests load them from there.
const PEER_TARGETS: &[(&str, &str)] = &[("pydlpack==0.2.1", "peers/pydlpack")];

/// A virtual environment with the test requirements installed.
#[derive(Debug, Clone)]
pub struct Venv {
    dir: PathBuf,
}

impl Venv {
    /// Creates `<root>/.venv` if needed and installs the requirements when they changed since
    /// the last install (a stamp file holds the installed requirements).
    pub fn ensure(ws: &Workspace) -> Result<Self> {
        let venv = Venv {
            dir: ws.root().join(VENV_DIR),
        };
        if !venv.python().is_file() {
            Cmd::new(find_python()?)
                .args(["-m", "venv"])
                .arg(&venv.dir)
                .run()?;
        }
        let requirements_path = ws.root().join(REQUIREMENTS);
        let requirements = std::fs::read_to_string(&requirements_path).map_err(|err| {
            Error::new(format!(
                "cannot read {}: {err}",
                requirements_path.display()
            ))
        })?;
        let stamp_path = venv.dir.join(".requirements-installed");
        let wanted = format!("{requirements}\n{PEER_TARGETS:?}");
        if std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(wanted.as_str()) {
            eprintln!("python: {} is up to date", venv.dir.display());
            return Ok(venv);
        }
        venv.pip().args(["install", "--upgrade", "pip"]).run()?;
        venv.pip()
            .arg("install")
            .arg("-r")
            .arg(&requirements_path)
            .run()?;
        for (spec, folder) in PEER_TARGETS {
            venv.pip()
                .args(["install", "--no-deps", "--upgrade", "--target"])
                .arg(venv.dir.join(folder))
                .arg(spec)
                .run()?;
        }
        std::fs::write(&stamp_path, wanted)
            .map_err(|err| Error::new(format!("cannot write {}: {err}", stamp_path.display())))?;
        Ok(venv)
    }

    /// The environment's interpreter.
    pub fn python(&self) -> PathBuf {
        self.dir.join("bin").join("python")
    }

    fn pip(&self) -> Cmd {
        Cmd::new(self.python())
            .args(["-m", "pip", "--disable-pip-version-check"])
            .env("PIP_PROGRESS_BAR", "off")
    }

    /// Makes `cmd` see this environment: its `bin` first on `PATH`, `VIRTUAL_ENV`, and
    /// `PYO3_PYTHON` for pyo3's build configuration.
    pub fn apply(&self, cmd: Cmd) -> Cmd {
        let bin = self.dir.join("bin");
        let mut dirs = vec![bin];
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        let path = std::env::join_paths(dirs).unwrap_or_default();
        cmd.env("PATH", path)
            .env("VIRTUAL_ENV", &self.dir)
            .env("PYO3_PYTHON", self.python())
    }

    /// Builds the release wheel (see [`crate::wheel::build`]) and installs it into the
    /// environment, so the tests run on the wheel users get.
    pub fn build_module(&self, ws: &Workspace) -> Result {
        crate::wheel::install(ws, self)
    }

    /// Builds the extension with the cargo profile `profile` and installs it into the
    /// environment in place (`maturin develop`): the Python fuzzer's build, with overflow checks.
    pub fn build_module_with(&self, ws: &Workspace, profile: &str) -> Result {
        self.apply(Cmd::new(self.dir.join("bin").join("maturin")))
            .args(["develop", "--profile", profile, "--manifest-path"])
            .arg(ws.root().join(crate::wheel::MODULE_MANIFEST))
            .env("CARGO_TARGET_DIR", ws.target_dir())
            .current_dir(ws.root())
            .run()
    }

    /// Runs the test suite shipped in the installed package (`dlpack.tests.run()`), with extra
    /// pytest arguments.
    pub fn pytest(&self, ws: &Workspace, args: &[&str]) -> Cmd {
        let mut script = String::from("import sys, dlpack.tests; sys.exit(dlpack.tests.run(");
        for arg in args {
            script.push_str(&format!("{arg:?}, "));
        }
        script.push_str("))");
        self.apply(Cmd::new(self.python()))
            .args(["-c", &script])
            .current_dir(ws.root())
    }

    /// Runs a Python script of the repository with this interpreter.
    pub fn script(&self, ws: &Workspace, path: &str) -> Cmd {
        self.apply(Cmd::new(self.python()))
            .arg(ws.root().join(path))
            .current_dir(ws.root())
    }
}

/// The interpreter to create the environment with: `$PYTHON` if set, else `python3`.
fn find_python() -> Result<std::ffi::OsString> {
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    if Cmd::new(&python).arg("--version").probe() {
        Ok(python)
    } else {
        Err(Error::new(format!(
            "`{}` is not runnable; the Python tests need CPython >= 3.11 (set PYTHON to choose one)",
            python.to_string_lossy()
        )))
    }
}
