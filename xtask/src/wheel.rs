//! The release wheel: built once, the way it is published, and tested the way users get it.
//!
//! [`build`] runs `maturin build` with zig as the linker for glibc 2.17 ([`COMPATIBILITY`]): one
//! `cp39-abi3` wheel that pip installs on every Linux with glibc >= 2.17 (Debian 11, RHEL 8, ...),
//! built the same on any host and offline (zig comes from PyPI's `ziglang`, in the test
//! requirements). auditwheel confirms the platform tag. The dev venv installs this wheel (so the
//! full framework matrix runs on it), and [`test_versions`] installs it into a clean venv per
//! supported CPython found under pyenv, checks its metadata ([`wheel_check.py`]) and runs the
//! shipped suite, then prints a version × passed/skipped/failed table.
//!
//! [`wheel_check.py`]: ../wheel_check.py

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cmd::{Cmd, Error, Result};
use crate::gpu;
use crate::python::Venv;
use crate::steps::{Outcome, banner};
use crate::workspace::Workspace;

/// The distribution name on PyPI (`dlpack` is an unrelated project's); it imports as `dlpack`.
pub const DISTRIBUTION: &str = "dlpack-rs";
/// What the wheel's metadata must say.
const LICENSE_EXPRESSION: &str = "MIT OR Apache-2.0";
const REQUIRES_PYTHON: &str = ">=3.9";

/// The CPython versions the wheel supports (each must have a classifier). Each is tested: the dev
/// venv's (see [`DEV_VERSION`]) with the full framework matrix, the others in a clean venv.
pub const PYTHON_VERSIONS: &[&str] = &["3.9", "3.10", "3.11", "3.12", "3.13"];
/// The minor version of the dev venv (`.venv`), which the "python" step tests.
const DEV_VERSION: &str = "3.11";

/// What a clean venv gets besides the wheel: the versions pip picks for that interpreter.
const CLEAN_REQUIREMENTS: &[&str] = &["numpy", "pytest"];

/// Exchanges per leak scenario in a clean venv (`DLPACK_LEAK_N`; the suite's default of 10^6
/// runs in the dev venv): a leak of 6 bytes or more per exchange still exceeds the suite's 1 MiB
/// bound, at a fifth of the time.
const CLEAN_LEAK_N: &str = "200000";

/// maturin's `--compatibility` for the release wheel, and the tag auditwheel must report.
const COMPATIBILITY: &str = "manylinux2014";
const PLATFORM_TAG: &str = "manylinux_2_17_x86_64";

/// The crate of the extension module.
pub(crate) const MODULE_MANIFEST: &str = "crates/dlpack-py/Cargo.toml";

/// Folders under the target directory: the wheel, the clean venvs, pytest's JUnit reports.
const WHEEL_DIR: &str = "wheels/release";
const VENVS_DIR: &str = "python-versions";
const REPORTS_DIR: &str = "python-versions/reports";

/// The metadata checker run in each clean venv.
const WHEEL_CHECK: &str = include_str!("wheel_check.py");

/// The Windows build of the wheel's configuration: the target checked, the wheel's features (as in
/// pyproject.toml's `[tool.maturin] features`; a unit test holds them equal), and its own target
/// folder (a cross build's pyo3 configuration must not invalidate the host's).
const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";
const WHEEL_FEATURES: &[&str] = &[
    "module",
    "cuda",
    "rocm",
    "abi3",
    "safetensors",
    "shm",
    "arrow",
];
const WINDOWS_TARGET_DIR: &str = "windows-check";

/// Builds the release wheel into `<target>/wheels/release` (emptied first, so it holds only this
/// wheel), checks its tag with auditwheel, and returns its path. Runs in `venv`, whose maturin,
/// zig and auditwheel it uses; cargo's cache makes a rebuild without changes a matter of seconds.
pub fn build(ws: &Workspace, venv: &Venv) -> Result<PathBuf> {
    let out = ws.target_dir().join(WHEEL_DIR);
    if out.is_dir() {
        std::fs::remove_dir_all(&out)
            .map_err(|err| Error::new(format!("cannot empty {}: {err}", out.display())))?;
    }
    venv.apply(Cmd::new(venv_bin(venv, "maturin")))
        .args(["build", "--profile", "wheel", "--zig", "--compatibility"])
        .arg(COMPATIBILITY)
        .arg("--manifest-path")
        .arg(ws.root().join(MODULE_MANIFEST))
        .arg("--out")
        .arg(&out)
        .env("CARGO_TARGET_DIR", ws.target_dir())
        .current_dir(ws.root())
        .run()?;
    let wheel = built(ws)?;
    let audit = venv
        .apply(Cmd::new(venv_bin(venv, "auditwheel")))
        .arg("show")
        .arg(&wheel)
        .read()?;
    if !audit.contains(&format!("\"{PLATFORM_TAG}\"")) {
        return Err(Error::new(format!(
            "auditwheel does not find {} consistent with {PLATFORM_TAG}:\n{audit}",
            wheel.display()
        )));
    }
    eprintln!(
        "wheel: {} is consistent with {PLATFORM_TAG}",
        file_name(&wheel)
    );
    Ok(wheel)
}

/// `cargo clippy` of the extension for Windows with the wheel's features and warnings denied:
/// its limited-API level is the target's (3.11 there, see dlpack-py's `abi3`). Nothing is
/// linked, so neither a Windows interpreter nor an import library is needed: pyo3 configures
/// an `abi3` cross build from the feature alone.
pub fn check_windows(ws: &Workspace, venv: Option<&Venv>) -> Result {
    crate::tools::ensure_target(WINDOWS_TARGET)?;
    let cargo = match venv {
        Some(venv) => venv.apply(ws.cargo()),
        None => ws.cargo(),
    };
    cargo
        .args(["clippy", "-p", "dlpack-py", "--target", WINDOWS_TARGET])
        .args(["--no-default-features", "--features"])
        .arg(WHEEL_FEATURES.join(","))
        .args(["--", "-D", "warnings"])
        .env("CARGO_TARGET_DIR", ws.target_dir().join(WINDOWS_TARGET_DIR))
        .run()
}

/// The wheel [`build`] made last.
fn built(ws: &Workspace) -> Result<PathBuf> {
    only_wheel(&ws.target_dir().join(WHEEL_DIR))
}

/// The one wheel in `dir` (an error when there are none or several).
pub(crate) fn only_wheel(dir: &Path) -> Result<PathBuf> {
    let entries = std::fs::read_dir(dir)
        .map_err(|err| Error::new(format!("cannot read {}: {err}", dir.display())))?;
    let wheels: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .collect();
    match wheels.as_slice() {
        [wheel] => Ok(wheel.clone()),
        _ => Err(Error::new(format!(
            "expected one wheel in {}, found {wheels:?}",
            dir.display()
        ))),
    }
}

/// Builds the release wheel and installs it into `venv` (replacing any installed `dlpack`).
pub fn install(ws: &Workspace, venv: &Venv) -> Result {
    let wheel = build(ws, venv)?;
    // An editable install from before the distribution was renamed (`maturin develop` of the
    // distribution `dlpack`) would stay behind the new one on `sys.path`: remove it.
    if pip(&venv.python()).args(["show", "dlpack"]).probe() {
        pip(&venv.python())
            .args(["uninstall", "--yes", "dlpack"])
            .run()?;
    }
    pip_install_wheel(venv.python(), &wheel)
}

/// `--junitxml=<file>`: where the dev venv's run of the suite writes its counts, for the table.
pub fn dev_report_arg(ws: &Workspace) -> String {
    format!("--junitxml={}", report_path(ws, DEV_VERSION).display())
}

fn report_path(ws: &Workspace, version: &str) -> PathBuf {
    ws.target_dir()
        .join(REPORTS_DIR)
        .join(format!("{version}.xml"))
}

/// Installs the wheel of the last [`build`] into a clean venv for each of [`PYTHON_VERSIONS`]
/// found under pyenv (but the dev venv's), checks its metadata there and runs the shipped suite,
/// then prints the table (with the dev venv's row from its report). Fails if any run failed; a
/// missing interpreter is a loud skip.
pub fn test_versions(ws: &Workspace, simulator: Option<&Path>) -> Result<Outcome> {
    let wheel = built(ws)?;
    let interpreters = find_interpreters();
    let mut rows = Vec::new();
    let mut missing: Vec<(String, Vec<&str>)> = Vec::new();
    let mut failed = Vec::new();
    for (version, found) in interpreters {
        if version == DEV_VERSION {
            let counts = read_report(&report_path(ws, DEV_VERSION));
            rows.push(Row {
                python: format!("{DEV_VERSION} (.venv, all frameworks)"),
                numpy: numpy_version(&ws.root().join(".venv/bin/python")),
                result: counts.map_err(|err| format!("no report of the python step: {err}")),
            });
            continue;
        }
        let python = match found {
            Ok(python) => python,
            Err(reason) => {
                match missing.iter_mut().find(|(known, _)| *known == reason) {
                    Some((_, versions)) => versions.push(version),
                    None => missing.push((reason.clone(), vec![version])),
                }
                rows.push(Row::missing(version, reason));
                continue;
            }
        };
        let row = test_one(ws, &wheel, &python, simulator).unwrap_or_else(|err| Row {
            python: python_label(&python),
            numpy: None,
            result: Err(err.to_string()),
        });
        if row.failed() {
            failed.push(row.python.clone());
        }
        rows.push(row);
    }
    eprintln!("\n{}", table(&rows));
    if !failed.is_empty() {
        return Err(Error::new(format!(
            "the shipped suite failed on CPython {}",
            failed.join(", ")
        )));
    }
    if !missing.is_empty() {
        let missing: Vec<String> = missing
            .iter()
            .map(|(reason, versions)| format!("CPython {}: {reason}", versions.join(", ")))
            .collect();
        let reason = format!(
            "the wheel was NOT tested on {} (`pyenv install 3.N` adds one)",
            missing.join("; ")
        );
        banner(&reason);
        return Ok(Outcome::skipped_loudly(reason));
    }
    Ok(Outcome::Passed)
}

/// One clean venv: created (or reused while its requirements are the same), the wheel
/// reinstalled, its metadata checked, the suite run.
fn test_one(ws: &Workspace, wheel: &Path, python: &Path, simulator: Option<&Path>) -> Result<Row> {
    let label = python_label(python);
    let dir = ws.target_dir().join(VENVS_DIR).join(&label);
    let venv_python = dir.join("bin/python");
    let stamp = dir.join(".requirements-installed");
    let wanted = format!("{}\n{}", python.display(), CLEAN_REQUIREMENTS.join("\n"));
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|err| Error::new(format!("cannot remove {}: {err}", dir.display())))?;
        }
        Cmd::new(python).args(["-m", "venv"]).arg(&dir).run()?;
        pip(&venv_python)
            .arg("install")
            .args(CLEAN_REQUIREMENTS)
            .run()?;
        std::fs::write(&stamp, &wanted)
            .map_err(|err| Error::new(format!("cannot write {}: {err}", stamp.display())))?;
    }
    pip_install_wheel(&venv_python, wheel)?;
    let check = dir.join("wheel_check.py");
    std::fs::write(&check, WHEEL_CHECK)
        .map_err(|err| Error::new(format!("cannot write {}: {err}", check.display())))?;
    Cmd::new(&venv_python)
        .arg(&check)
        .args([
            DISTRIBUTION,
            LICENSE_EXPRESSION,
            REQUIRES_PYTHON,
            &PYTHON_VERSIONS.join(","),
        ])
        .current_dir(&dir)
        .run()?;
    let report = report_path(ws, &label);
    let _ = std::fs::remove_file(&report);
    let script = format!(
        "import sys, dlpack.tests; sys.exit(dlpack.tests.run('-q', '-ra', {:?}))",
        format!("--junitxml={}", report.display())
    );
    let pytest = Cmd::new(&venv_python)
        .args(["-c", &script])
        .env("DLPACK_LEAK_N", CLEAN_LEAK_N)
        .current_dir(&dir);
    let ran = gpu::with_simulator(pytest, simulator).run();
    let result = match read_report(&report) {
        Ok(counts) if ran.is_ok() => Ok(counts),
        Ok(counts) => Err(format!(
            "{} failed, {} errors",
            counts.failed, counts.errors
        )),
        Err(err) => Err(ran.err().map_or(err, |ran| ran.to_string())),
    };
    Ok(Row {
        python: label,
        numpy: numpy_version(&venv_python),
        result,
    })
}

/// `pip install --no-deps --force-reinstall <wheel>`: the wheel replaces any `dlpack` installed
/// before (a source build or an older wheel), and pip checks the tag against the interpreter.
fn pip_install_wheel(python: impl AsRef<Path>, wheel: &Path) -> Result {
    pip(python.as_ref())
        .args(["install", "--no-deps", "--force-reinstall"])
        .arg(wheel)
        .run()
}

fn pip(python: &Path) -> Cmd {
    Cmd::new(python)
        .args(["-m", "pip", "--disable-pip-version-check"])
        .env("PIP_PROGRESS_BAR", "off")
}

fn venv_bin(venv: &Venv, program: &str) -> PathBuf {
    let python = venv.python();
    python.parent().unwrap_or(Path::new(".")).join(program)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// The interpreter for each of [`PYTHON_VERSIONS`]: the newest `<root>/versions/3.N.*` of
/// `pyenv root` (or why there is none).
fn find_interpreters() -> Vec<(&'static str, Result<PathBuf, String>)> {
    let root = pyenv_root();
    let installed: Result<Vec<String>, String> = match &root {
        Ok(root) => std::fs::read_dir(root.join("versions"))
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok())
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .map_err(|err| format!("cannot list {}/versions: {err}", root.display())),
        Err(err) => Err(err.clone()),
    };
    PYTHON_VERSIONS
        .iter()
        .map(|&version| {
            let found = installed.clone().and_then(|names| {
                let newest = newest_patch(&names, version)
                    .ok_or_else(|| format!("not installed under pyenv ({version}.x)"))?;
                let root = root.as_ref().map_err(String::clone)?;
                let python = root.join("versions").join(newest).join("bin/python3");
                if python.is_file() {
                    Ok(python)
                } else {
                    Err(format!("{} does not exist", python.display()))
                }
            });
            (version, found)
        })
        .collect()
}

/// `pyenv root`, else `$PYENV_ROOT`, else `~/.pyenv` if it exists (pyenv installed but not on
/// `PATH`).
fn pyenv_root() -> Result<PathBuf, String> {
    if let Ok(out) = Cmd::new("pyenv").arg("root").read() {
        return Ok(PathBuf::from(out.trim()));
    }
    let fallback = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".pyenv")));
    match fallback {
        Some(root) if root.join("versions").is_dir() => Ok(root),
        _ => Err("no pyenv (`pyenv root` fails; no $PYENV_ROOT or ~/.pyenv)".to_owned()),
    }
}

/// The newest `<minor>.P` among pyenv's version names (`3.10.13`; `3.10.13t`, `3.10-dev` and
/// other builds are left out).
fn newest_patch<'n>(names: &'n [String], minor: &str) -> Option<&'n str> {
    names
        .iter()
        .filter_map(|name| {
            let patch = name.strip_prefix(minor)?.strip_prefix('.')?;
            patch
                .parse::<u32>()
                .ok()
                .map(|patch| (patch, name.as_str()))
        })
        .max()
        .map(|(_, name)| name)
}

/// `3.10.13`: the interpreter's folder name under pyenv's `versions`.
fn python_label(python: &Path) -> String {
    python
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| python.display().to_string(), file_name)
}

fn numpy_version(python: &Path) -> Option<String> {
    Cmd::new(python)
        .args(["-c", "import numpy; print(numpy.__version__)"])
        .read()
        .ok()
        .map(|out| out.trim().to_owned())
}

/// pytest's counts for one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    passed: u64,
    skipped: u64,
    failed: u64,
    errors: u64,
}

/// The counts of the first `<testsuite>` of a JUnit XML report written by pytest.
fn read_report(path: &Path) -> Result<Counts, String> {
    let xml = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    parse_report(&xml).ok_or_else(|| format!("no <testsuite> counts in {}", path.display()))
}

fn parse_report(xml: &str) -> Option<Counts> {
    let start = xml.find("<testsuite ")?;
    let tag = &xml[start..start + xml[start..].find('>')?];
    let attribute = |name: &str| -> Option<u64> {
        let key = format!(" {name}=\"");
        let at = tag.find(&key)? + key.len();
        tag[at..at + tag[at..].find('"')?].parse().ok()
    };
    let (tests, skipped) = (attribute("tests")?, attribute("skipped")?);
    let (failed, errors) = (attribute("failures")?, attribute("errors")?);
    Some(Counts {
        passed: tests.checked_sub(skipped + failed + errors)?,
        skipped,
        failed,
        errors,
    })
}

/// A line of the table.
#[derive(Debug)]
struct Row {
    python: String,
    numpy: Option<String>,
    result: Result<Counts, String>,
}

impl Row {
    fn missing(version: &str, reason: String) -> Self {
        Self {
            python: version.to_owned(),
            numpy: None,
            result: Err(format!("SKIPPED: {reason}")),
        }
    }

    fn failed(&self) -> bool {
        match &self.result {
            Ok(counts) => counts.failed + counts.errors > 0,
            Err(reason) => !reason.starts_with("SKIPPED"),
        }
    }
}

/// The version × passed/skipped/failed table.
fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<30} {:<8} {:>7} {:>8} {:>7}\n",
        "CPython", "numpy", "passed", "skipped", "failed"
    );
    for row in rows {
        let numpy = row.numpy.as_deref().unwrap_or("-");
        let _ = match &row.result {
            Ok(c) => writeln!(
                out,
                "{:<30} {numpy:<8} {:>7} {:>8} {:>7}",
                row.python,
                c.passed,
                c.skipped,
                c.failed + c.errors
            ),
            Err(reason) => writeln!(out, "{:<30} {numpy:<8} {reason}", row.python),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pytest_junit_counts() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="2" skipped="1343" tests="2146" time="10.8" timestamp="x" hostname="h"><testcase/></testsuite></testsuites>"#;
        assert_eq!(
            parse_report(xml),
            Some(Counts {
                passed: 800,
                skipped: 1343,
                failed: 2,
                errors: 1
            })
        );
        assert_eq!(parse_report("<testsuites></testsuites>"), None);
    }

    #[test]
    fn picks_the_newest_plain_patch_release() {
        let names: Vec<String> = [
            "3.10.2", "3.10.13", "3.10-dev", "3.10.14t", "3.1.9", "3.11.7",
        ]
        .map(String::from)
        .into();
        assert_eq!(newest_patch(&names, "3.10"), Some("3.10.13"));
        assert_eq!(newest_patch(&names, "3.1"), Some("3.1.9"));
        assert_eq!(newest_patch(&names, "3.9"), None);
    }

    #[test]
    fn windows_is_checked_with_the_wheels_features() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let pyproject = std::fs::read_to_string(root.join("crates/dlpack-py/pyproject.toml"))
            .expect("pyproject.toml");
        let line = pyproject
            .lines()
            .find(|line| line.starts_with("features = "))
            .expect("[tool.maturin] features");
        let quoted: Vec<String> = WHEEL_FEATURES.iter().map(|f| format!("{f:?}")).collect();
        assert_eq!(line, format!("features = [{}]", quoted.join(", ")));
    }

    #[test]
    fn the_dev_version_is_a_supported_one() {
        assert!(PYTHON_VERSIONS.contains(&DEV_VERSION));
    }

    #[test]
    fn a_failed_run_fails_the_table_and_a_missing_one_does_not() {
        let missing = Row::missing("3.9", "not installed under pyenv (3.9.x)".into());
        assert!(!missing.failed());
        let failed = Row {
            python: "3.10.13".into(),
            numpy: Some("2.2.6".into()),
            result: Ok(Counts {
                passed: 1,
                skipped: 0,
                failed: 1,
                errors: 0,
            }),
        };
        assert!(failed.failed());
        let table = table(&[missing, failed]);
        assert!(table.contains("3.10.13"), "{table}");
        assert!(table.contains("SKIPPED: not installed"), "{table}");
    }
}
