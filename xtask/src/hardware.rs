//! `cargo xtask test-gpu` without `--sim`: the GPU suite against the real driver, as one command
//! a machine with only a driver, Python and this repository can run. The Rust groups are one
//! `cargo test` each of the tests that need nothing but a driver (`tests/driver_*.rs`:
//! exchanges whose results are read back through the driver); the Python group builds the
//! module (debug) into a small venv of its own (maturin, pytest, numpy at the pinned versions)
//! and runs `test_gpu_driver.py`. Every group runs even when an earlier one failed, and one
//! summary line per group closes the run. The tests that count driver calls and report races
//! need the simulator's inspection API: `cargo xtask test-gpu --sim` runs those.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cmd::{Cmd, Error, LIBRARY_PATH_VAR, Result};
use crate::workspace::Workspace;

/// Set for the CUDA group: a test that finds no driver fails instead of skipping.
const REQUIRE_DRIVER_VAR: &str = "DLPACK_REQUIRE_DRIVER";

/// What a driver-only test prints when it skips (see `tests/driver_*.rs`).
const SKIP_MARK: &str = "skipped: no ";

/// One group: a name, the package and test target, its features, the library it needs, and
/// whether a missing library fails the run (CUDA) or skips the group loudly (ROCm).
struct Group {
    name: &'static str,
    package: &'static str,
    test: &'static str,
    features: &'static str,
    libraries: &'static [&'static str],
    required: bool,
}

const GROUPS: &[Group] = &[
    Group {
        name: "cuda (dlpack-cuda, real driver)",
        package: "dlpack-cuda",
        test: "driver_cuda",
        features: "gpu",
        libraries: &["libcuda.so.1", "libcuda.so"],
        required: true,
    },
    Group {
        name: "rocm (dlpack-rocm, real HIP runtime)",
        package: "dlpack-rocm",
        test: "driver_rocm",
        features: "gpu",
        libraries: &["libamdhip64.so", "libamdhip64.so.6", "libamdhip64.so.5"],
        required: false,
    },
];

/// How a group ended.
enum Verdict {
    Passed {
        passed: u64,
    },
    Failed {
        passed: u64,
        failed: u64,
        why: String,
    },
    Skipped(String),
}

/// The Python group's name.
const PYTHON_GROUP: &str = "python (dlpack module, real driver)";

/// The Python packages the Python group installs, at the versions of the pinned test list.
const PYTHON_PACKAGES: &[&str] = &["maturin", "pytest", "numpy"];

/// The pinned test requirements (for the versions of [`PYTHON_PACKAGES`]).
const REQUIREMENTS: &str = "crates/dlpack-py/requirements-test.txt";

/// Runs every group and prints one line per group; fails when a group failed.
pub fn run(ws: &Workspace) -> Result {
    let mut lines = Vec::new();
    let (mut passed, mut failed) = (0, 0);
    let groups = GROUPS
        .iter()
        .map(|g| (g.name, Some(g)))
        .chain([(PYTHON_GROUP, None)]);
    for (name, group) in groups {
        eprintln!("\n==> {name}");
        let start = Instant::now();
        let verdict = match group {
            Some(group) => run_group(ws, group),
            None => run_python(ws),
        };
        let secs = start.elapsed().as_secs_f64();
        let line = match &verdict {
            Verdict::Passed { passed: n } => {
                passed += n;
                format!("passed   {n} passed, 0 failed ({secs:.1} s)")
            }
            Verdict::Failed {
                passed: p,
                failed: f,
                why,
            } => {
                passed += p;
                failed += f.max(&1);
                format!("FAILED   {p} passed, {f} failed ({secs:.1} s): {why}")
            }
            Verdict::Skipped(why) => format!("SKIPPED  {why}"),
        };
        lines.push(format!("  {name:<40} {line}"));
    }
    eprintln!("\nxtask test-gpu (real driver), one line per group:");
    for line in &lines {
        eprintln!("{line}");
    }
    eprintln!(
        "  (driver-call counts and race checks need the simulator: cargo xtask test-gpu --sim)"
    );
    println!("test-gpu: {passed} passed, {failed} failed");
    if failed == 0 {
        Ok(())
    } else {
        Err(Error::new("test-gpu: a group failed (see the lines above)"))
    }
}

fn run_group(ws: &Workspace, group: &Group) -> Verdict {
    if !ws.has_package(group.package) {
        return Verdict::Skipped(format!("package {} is not in the workspace", group.package));
    }
    let found = group.libraries.iter().find_map(|name| find_library(name));
    let Some(library) = found else {
        let why = format!(
            "no {} found (searched {LIBRARY_PATH_VAR}, `ldconfig -p` and the usual folders)",
            group.libraries[0]
        );
        return if group.required {
            Verdict::Failed {
                passed: 0,
                failed: 0,
                why,
            }
        } else {
            Verdict::Skipped(why)
        };
    };
    eprintln!("using {}", library.display());
    let mut cargo = ws.cargo().args([
        "test",
        "-p",
        group.package,
        "--features",
        group.features,
        "--test",
        group.test,
        "--",
        "--nocapture",
        "--test-threads=1",
    ]);
    if group.required {
        cargo = cargo.env(REQUIRE_DRIVER_VAR, "1");
    }
    let (ok, output) = match cargo.run_capturing() {
        Ok(result) => result,
        Err(e) => {
            return Verdict::Failed {
                passed: 0,
                failed: 0,
                why: e.to_string(),
            };
        }
    };
    let (passed, failed) = count_results(&output);
    if let Some(skip) = output.lines().find(|l| l.contains(SKIP_MARK)) {
        if !group.required && ok {
            return Verdict::Skipped(format!("{} ({})", skip.trim(), library.display()));
        }
    }
    if ok && failed == 0 && passed > 0 {
        Verdict::Passed { passed }
    } else {
        let why = if passed + failed == 0 {
            "no test ran (build failure?)".to_owned()
        } else {
            "see the test output above".to_owned()
        };
        Verdict::Failed {
            passed,
            failed,
            why,
        }
    }
}

/// The Python group: a venv in the target folder with the pinned maturin, pytest and numpy,
/// the module built into it (debug), and `test_gpu_driver.py` with the driver required.
fn run_python(ws: &Workspace) -> Verdict {
    let failed = |why: String| Verdict::Failed {
        passed: 0,
        failed: 0,
        why,
    };
    if find_library("libcuda.so.1").is_none() && find_library("libcuda.so").is_none() {
        return failed("no libcuda.so.1 found".to_owned());
    }
    let venv = ws.target_dir().join("test-gpu-venv");
    let python = venv.join("bin").join("python");
    let pins = match pinned(ws) {
        Ok(pins) => pins,
        Err(e) => return failed(e.to_string()),
    };
    let bin = venv.join("bin");
    let mut path = vec![bin.clone()];
    path.extend(
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths),
    );
    let in_venv = |cmd: Cmd| {
        cmd.env("VIRTUAL_ENV", &venv)
            .env("PATH", std::env::join_paths(&path).unwrap_or_default())
            .env("PYO3_PYTHON", &python)
    };
    let python3 = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let prepared = (if python.is_file() {
        Ok(())
    } else {
        Cmd::new(&python3).args(["-m", "venv"]).arg(&venv).run()
    })
    .and_then(|()| {
        in_venv(Cmd::new(&python))
            .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
            .args(&pins)
            .run()
    })
    .and_then(|()| {
        in_venv(Cmd::new(bin.join("maturin")))
            // The dev profile: the wheel's fat LTO would take most of the time budget.
            .args(["develop", "--profile", "dev", "--manifest-path"])
            .arg(ws.root().join("crates/dlpack-py/Cargo.toml"))
            .env("CARGO_TARGET_DIR", ws.target_dir())
            .current_dir(ws.root())
            .run()
    });
    if let Err(e) = prepared {
        return failed(e.to_string());
    }
    let script = "import sys, dlpack.tests; \
                  sys.exit(dlpack.tests.run('-q', '-rs', '-k', 'test_gpu_driver'))";
    let pytest = in_venv(Cmd::new(&python))
        .args(["-c", script])
        .env(REQUIRE_DRIVER_VAR, "1")
        .current_dir(ws.root());
    let (ok, output) = match pytest.run_capturing() {
        Ok(result) => result,
        Err(e) => return failed(e.to_string()),
    };
    let (passed, failed_count) = count_pytest(&output);
    if ok && failed_count == 0 && passed > 0 {
        Verdict::Passed { passed }
    } else {
        Verdict::Failed {
            passed,
            failed: failed_count,
            why: "see the pytest output above".to_owned(),
        }
    }
}

/// `name==version` of each of [`PYTHON_PACKAGES`] from the pinned test requirements.
fn pinned(ws: &Workspace) -> Result<Vec<String>> {
    let path = ws.root().join(REQUIREMENTS);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::new(format!("cannot read {}: {e}", path.display())))?;
    PYTHON_PACKAGES
        .iter()
        .map(|name| {
            text.lines()
                .map(str::trim)
                .find(|l| l.split("==").next() == Some(*name))
                .map(|l| l.split_whitespace().next().unwrap_or(l).to_owned())
                .ok_or_else(|| Error::new(format!("{name} is not pinned in {}", path.display())))
        })
        .collect()
}

/// Sums pytest's closing line (`3 passed, 1 skipped in 0.5s`, `1 failed, 2 passed in ...`).
fn count_pytest(output: &str) -> (u64, u64) {
    let Some(line) = output
        .lines()
        .rev()
        .find(|l| l.contains(" passed") || l.contains(" failed") || l.contains(" error"))
    else {
        return (0, 0);
    };
    let count = |word: &str| -> u64 {
        line.split([',', '='])
            .filter_map(|part| {
                let mut words = part.split_whitespace();
                let n = words.next()?.parse::<u64>().ok()?;
                words.next()?.starts_with(word).then_some(n)
            })
            .sum()
    };
    (count("passed"), count("failed") + count("error"))
}

/// Sums libtest's `test result: ... N passed; M failed; ...` lines.
fn count_results(output: &str) -> (u64, u64) {
    let number_before = |line: &str, word: &str| -> u64 {
        line.split(';')
            .find_map(|part| {
                let part = part.trim();
                let (n, rest) = part.rsplit_once(' ')?;
                (rest == word).then(|| n.rsplit(' ').next()?.parse().ok())?
            })
            .unwrap_or(0)
    };
    output
        .lines()
        .filter(|l| l.starts_with("test result:"))
        .fold((0, 0), |(p, f), l| {
            (
                p + number_before(l, "passed"),
                f + number_before(l, "failed"),
            )
        })
}

/// Where the dynamic loader would find `name`: a folder of `LD_LIBRARY_PATH`, the loader
/// cache, or a usual driver folder.
fn find_library(name: &str) -> Option<PathBuf> {
    let in_dir = |dir: &Path| {
        let p = dir.join(name);
        p.exists().then_some(p)
    };
    if let Some(paths) = std::env::var_os(LIBRARY_PATH_VAR) {
        if let Some(p) = std::env::split_paths(&paths).find_map(|d| in_dir(&d)) {
            return Some(p);
        }
    }
    let cache = Cmd::new("ldconfig").arg("-p").read().unwrap_or_default();
    if let Some(path) = cache.lines().find_map(|line| {
        let (lib, path) = line.split_once("=>")?;
        (lib.split_whitespace().next()? == name).then(|| PathBuf::from(path.trim()))
    }) {
        return Some(path);
    }
    [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/lib/wsl/lib",
        "/opt/rocm/lib",
    ]
    .iter()
    .find_map(|d| in_dir(Path::new(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_libtest_result_lines() {
        let out = "running 2 tests\n\
                   test result: ok. 4 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n\
                   test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 3 filtered out\n";
        assert_eq!(count_results(out), (6, 1));
        assert_eq!(count_results("nothing"), (0, 0));
    }

    #[test]
    fn counts_the_pytest_closing_line() {
        assert_eq!(count_pytest("....\n5 passed in 0.55s\n"), (5, 0));
        assert_eq!(
            count_pytest("== 1 failed, 4 passed, 1 skipped in 2.1s =="),
            (4, 1)
        );
        assert_eq!(count_pytest("1 skipped in 0.01s"), (0, 0));
        assert_eq!(count_pytest("2 passed, 1 error in 1s"), (2, 1));
    }
}
