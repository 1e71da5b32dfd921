//! What each subcommand runs. The tables at the top are the knobs: packages, features, targets,
//! flags. Each subcommand is a [`Plan`] of named steps, so adding a step is one line.

use std::cell::OnceCell;
use std::path::Path;

use crate::anchors;
use crate::cmd::{Cmd, Error, Result};
use crate::gpu;
use crate::python::Venv;
use crate::steps::{Outcome, Plan, banner};
use crate::tools;
use crate::workspace::Workspace;
use crate::{publish, wheel};

/// Per-package feature selection for `cargo clippy` and `cargo test` on the workspace.
///
/// Packages not listed get `--all-features`. List a package when one of its features needs
/// something a CI machine lacks (a system library, headers), with the features to test instead
/// (an empty list means its default features). Listed packages are then excluded from the
/// `--workspace --all-features` run and run on their own with `-p <package> --features ...`.
///
/// Keep every feature of [`GPU_TEST_PACKAGES`] enabled here (a unit test checks it): `cargo xtask
/// test` covers the GPU suite by running the whole workspace with the simulator.
pub const FEATURE_OVERRIDES: &[(&str, &[&str])] = &[
    // `hip-sys` links Debian's libamdhip64 and needs its headers: tested in its own step
    // ([`HIP_SYS_RUN`]) after xtask installs them.
    ("dlpack-rocm", &["gpu"]),
];

/// Packages checked and tested a second time with these features, beside the `--all-features`
/// run: a configuration users get that `--all-features` hides. `dlpack-py`'s feature `abi3`
/// (the wheel's stable ABI) switches pyo3 to the limited API; a crate
/// linking dlpack-py gets the full API by default.
pub const EXTRA_SELECTIONS: &[(&str, &[&str])] =
    &[("dlpack-py", &["module", "ndarray", "cuda", "rocm"])];

/// The `hip-sys` build of `dlpack-rocm`: the package, its features, the Debian package that
/// provides HIP's headers and library, and the `HIP_PATH` hip-sys's build script needs.
const HIP_SYS_RUN: (&str, &str, &str, &str) =
    ("dlpack-rocm", "gpu,hip-sys", "libamdhip64-dev", "/usr");

/// The GPU test suite: each package with the features that turn its GPU tests on. `cargo xtask
/// test-gpu` runs it against the real driver, or against the simulator with `--sim`.
pub const GPU_TEST_PACKAGES: &[(&str, &[&str])] = &[
    ("gpu-sim", &[]),
    ("gpu-sim-inspect", &[]),
    ("dlpack-device", &[]),
    ("dlpack-cuda", &["gpu"]),
    ("dlpack-rocm", &["gpu"]),
    // Later: the Python GPU tests.
];

/// The pytest selection (`-k`) of the Python GPU tests.
const PYTHON_GPU_TESTS: &str = "test_gpu";

/// The `no_std` package and the target it must build for (a Cortex-M4F: no OS, no allocator).
const NO_STD_PACKAGE: &str = "dlpack-core";
const NO_STD_TARGET: &str = "thumbv7em-none-eabihf";

/// The feature sets `dlpack-core` must build with on [`NO_STD_TARGET`] (on top of
/// `--no-default-features`).
const NO_STD_FEATURE_SETS: &[Option<&str>] = &[None, Some("alloc"), Some("alloc,half,num-complex")];

/// The flags miri runs with (the user's own `MIRIFLAGS`, if any, are appended).
const MIRIFLAGS: &str = "-Zmiri-strict-provenance";

/// What `cargo miri test` runs, one invocation per entry.
const MIRI_TEST_RUNS: &[&[&str]] = &[
    &["-p", "dlpack-core", "--all-features"],
    &["-p", "dlpack-ndarray"],
    &["-p", "dlpack-image"],
    &["-p", "dlpack-safetensors"],
    // The header format only: segments are mmap, which miri does not run.
    &["-p", "dlpack-shm", "--lib", "--test", "format"],
    &["-p", "dlpack-arrow"],
];

/// The rustup components miri needs on the nightly.
const MIRI_COMPONENTS: &[&str] = &["miri", "rust-src"];

/// The criterion benchmarks.
const BENCH_PACKAGE: &str = "dlpack-benches";

/// The cargo-fuzz targets of the `fuzz/` project, and how long each runs by default.
pub const FUZZ_TARGETS: &[&str] = &["validate_tensor", "export_tensor"];
pub const DEFAULT_FUZZ_SECONDS: u64 = 60;

/// The Python fuzz harness (hypothesis; one target per Python-facing parser of the module).
const PYTHON_FUZZ: &str = "fuzz/python/run.py";
/// Seconds per target of its short run in `cargo xtask test` (ten targets: under two minutes).
const PYTHON_FUZZ_TEST_SECONDS: u64 = 8;
/// The cargo profile `cargo xtask fuzz --python` builds the module with: release code with
/// overflow checks and debug assertions, so that unchecked arithmetic on foreign values panics
/// (a finding) instead of wrapping.
const PYTHON_FUZZ_PROFILE: &str = "fuzz-python";

/// A demo: an example of a package, run by `cargo xtask demo`.
#[derive(Debug)]
struct Demo {
    name: &'static str,
    package: &'static str,
    example: &'static str,
    /// Run with the GPU simulator on the loader path (no machine of the project has a GPU).
    on_simulator: bool,
}

/// The demos, in the order `cargo xtask demo` runs them.
const DEMOS: &[Demo] = &[
    Demo {
        name: "ndarray demo",
        package: "dlpack-ndarray",
        example: "demo",
        on_simulator: false,
    },
    Demo {
        name: "image demo",
        package: "dlpack-image",
        example: "demo",
        on_simulator: false,
    },
    Demo {
        name: "safetensors demo",
        package: "dlpack-safetensors",
        example: "demo",
        on_simulator: false,
    },
    Demo {
        name: "candle demo",
        package: "dlpack-candle",
        example: "demo",
        on_simulator: false,
    },
    Demo {
        name: "arrow demo",
        package: "dlpack-arrow",
        example: "demo",
        on_simulator: false,
    },
    Demo {
        name: "burn demo",
        package: "dlpack-burn",
        example: "demo",
        on_simulator: false,
    },
    Demo {
        name: "cuda demo",
        package: "dlpack-cuda",
        example: "gpu_demo",
        on_simulator: true,
    },
];

/// Options of `cargo xtask test`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TestOptions {
    /// Skip miri and the `no_std` builds (local iteration only).
    pub quick: bool,
    /// Skip miri only.
    pub skip_miri: bool,
}

/// `cargo xtask demo`: runs each of [`DEMOS`] in order.
pub fn demo(ws: &Workspace) -> Result {
    DEMOS
        .iter()
        .fold(Plan::new("xtask demo"), |plan, demo| {
            plan.step(demo.name, || run_demo(ws, demo))
        })
        .run()
}

/// `cargo run --release -p <package> --example <example>`, with the simulator loaded if the demo
/// needs a GPU.
fn run_demo(ws: &Workspace, demo: &Demo) -> Result {
    let simulator = if demo.on_simulator {
        let folder = gpu::build_simulator(ws)?;
        if folder.is_none() {
            return Err(Error::new(format!(
                "demo `{}` needs the GPU simulator, and `gpu-sim` does not exist yet",
                demo.name
            )));
        }
        folder
    } else {
        None
    };
    let cargo = ws.cargo().args([
        "run",
        "--release",
        "-p",
        demo.package,
        "--example",
        demo.example,
    ]);
    gpu::with_simulator(cargo, simulator.as_deref()).run()
}

/// The Rust process of the Python shared-memory tests (`dlpack-shm`'s example `shm_peer`), and
/// the variable that tells them where it is.
const SHM_PEER_VAR: &str = "DLPACK_SHM_PEER";

/// Builds `shm_peer` (debug: it only copies and prints) and returns its path.
fn shm_peer(ws: &Workspace) -> Result<std::path::PathBuf> {
    ws.cargo()
        .args(["build", "-q", "-p", "dlpack-shm", "--example", "shm_peer"])
        .run()?;
    Ok(ws.target_dir().join("debug/examples/shm_peer"))
}

/// `cargo xtask test`: every check CI runs, in order.
pub fn test(ws: &Workspace, options: TestOptions) -> Result {
    if is_ci() && (options.quick || options.skip_miri) {
        banner(
            "CI is set, but checks are being skipped (--quick/--skip-miri).\n\
             CI must run the full `cargo xtask test`.",
        );
    }
    let quick = options.quick.then_some("--quick");
    let skip_miri = quick.or(options.skip_miri.then_some("--skip-miri"));
    // The venv made by the "python env" step; every later cargo command runs inside it, so that
    // pyo3's build configuration stays the same from step to step.
    let venv: OnceCell<Venv> = OnceCell::new();
    let simulator: OnceCell<Option<std::path::PathBuf>> = OnceCell::new();
    Plan::new("xtask test")
        .step("fmt", || {
            ws.cargo().args(["fmt", "--all", "--", "--check"]).run()
        })
        .step("tidy", || crate::tidy::run(ws))
        .step("python env", || {
            let _ = venv.set(Venv::ensure(ws)?);
            Ok(())
        })
        .step("clippy", || clippy(ws, venv.get()))
        .step("rustdoc", || rustdoc(ws, venv.get()))
        .step("test", || {
            let _ = simulator.set(gpu::build_simulator(ws)?);
            test_workspace(ws, venv.get(), simulator.get().and_then(|s| s.as_deref()))
        })
        .step("hip-sys", || {
            test_hip_sys(ws, simulator.get().and_then(|s| s.as_deref()))
        })
        .step("python", || {
            let venv = venv
                .get()
                .ok_or_else(|| Error::new("the python env step did not run"))?;
            venv.build_module(ws)?;
            let pytest = venv.pytest(ws, &["-q", "-ra", &wheel::dev_report_arg(ws)]);
            let pytest = pytest.env(SHM_PEER_VAR, shm_peer(ws)?);
            gpu::with_simulator(pytest, simulator.get().and_then(|s| s.as_deref())).run()
        })
        .step("witness suites", || {
            let venv = venv
                .get()
                .ok_or_else(|| Error::new("the python env step did not run"))?;
            crate::witness::run(venv)
        })
        .step("pydlpack suite", || {
            let venv = venv
                .get()
                .ok_or_else(|| Error::new("the python env step did not run"))?;
            crate::peer_suites::pydlpack(ws, venv)
        })
        .step("python versions", || {
            wheel::test_versions(ws, simulator.get().and_then(|s| s.as_deref()))
        })
        .step("windows", || wheel::check_windows(ws, venv.get()))
        .step("crates", || publish::check(ws, cargo_in(ws, venv.get())))
        .step("python fuzz", || {
            let venv = venv
                .get()
                .ok_or_else(|| Error::new("the python env step did not run"))?;
            let run = python_fuzz(ws, venv, PYTHON_FUZZ_TEST_SECONDS);
            gpu::with_simulator(run, simulator.get().and_then(|s| s.as_deref())).run()
        })
        .step_unless(quick, "no_std", || build_no_std(ws))
        .step_unless(skip_miri, "miri", || miri(ws))
        .run()
}

/// `cargo` with the Python environment applied, when there is one.
fn cargo_in(ws: &Workspace, venv: Option<&Venv>) -> Cmd {
    match venv {
        Some(venv) => venv.apply(ws.cargo()),
        None => ws.cargo(),
    }
}

/// Clippy on the whole workspace (all targets, features per [`FEATURE_OVERRIDES`]), on the
/// `hip-sys` build, then on the `no_std` core for the embedded target.
fn clippy(ws: &Workspace, venv: Option<&Venv>) -> Result {
    for selection in workspace_selections(ws) {
        cargo_in(ws, venv)
            .arg("clippy")
            .args(&selection)
            .args(["--all-targets", "--", "-D", "warnings"])
            .run()?;
    }
    let (package, features, _, hip_path) = HIP_SYS_RUN;
    if ws.has_package(package) {
        ensure_hip_headers()?;
        ws.cargo()
            .args([
                "clippy",
                "-p",
                package,
                "--features",
                features,
                "--all-targets",
            ])
            .args(["--", "-D", "warnings"])
            .env("HIP_PATH", hip_path)
            .run()?;
    }
    tools::ensure_target(NO_STD_TARGET)?;
    ws.cargo()
        .args(["clippy", "-p", NO_STD_PACKAGE, "--target", NO_STD_TARGET])
        .args(["--no-default-features", "--", "-D", "warnings"])
        .run()
}

/// Builds the documentation of every package with warnings denied (broken or private links,
/// missing docs where a crate asks for them).
fn rustdoc(ws: &Workspace, venv: Option<&Venv>) -> Result {
    for selection in workspace_selections(ws) {
        cargo_in(ws, venv)
            .args(["doc", "--no-deps"])
            .args(&selection)
            .env("RUSTDOCFLAGS", "-D warnings")
            .run()?;
    }
    Ok(())
}

/// Runs every test of the workspace (all targets, then doc tests) with the simulator on the
/// loader path and the Python environment applied. Because this covers the whole workspace with
/// the GPU packages' features on, it includes the suite of `cargo xtask test-gpu --sim`.
fn test_workspace(ws: &Workspace, venv: Option<&Venv>, simulator: Option<&Path>) -> Result {
    let selections = workspace_selections(ws);
    for targets in ["--all-targets", "--doc"] {
        for selection in &selections {
            let cargo = cargo_in(ws, venv).arg("test").args(selection).arg(targets);
            gpu::with_simulator(cargo, simulator).run()?;
        }
    }
    Ok(())
}

/// Installs Debian's HIP headers and library if they are missing (hip-sys's build script needs
/// the headers; its binaries link the library, which the simulator stands in for at run time).
fn ensure_hip_headers() -> Result {
    let (_, _, deb, hip_path) = HIP_SYS_RUN;
    if Path::new(hip_path)
        .join("include/hip/hip_runtime_api.h")
        .is_file()
    {
        return Ok(());
    }
    eprintln!("HIP headers missing: installing Debian's {deb}");
    crate::tools::apt_install(deb)
}

/// The `hip-sys` build of `dlpack-rocm`, tested against the simulator (which comes first on the
/// loader path, before Debian's libamdhip64).
fn test_hip_sys(ws: &Workspace, simulator: Option<&Path>) -> Result<Outcome> {
    let (package, features, _, hip_path) = HIP_SYS_RUN;
    if !ws.has_package(package) {
        return Ok(Outcome::skipped(format!(
            "package `{package}` is not in the workspace yet"
        )));
    }
    ensure_hip_headers()?;
    let cargo = ws
        .cargo()
        .args(["test", "-p", package, "--features", features])
        .env("HIP_PATH", hip_path);
    gpu::with_simulator(cargo, simulator).run()?;
    Ok(Outcome::Passed)
}

/// Builds `dlpack-core` for the embedded target with each of [`NO_STD_FEATURE_SETS`].
fn build_no_std(ws: &Workspace) -> Result {
    tools::ensure_target(NO_STD_TARGET)?;
    for features in NO_STD_FEATURE_SETS {
        let cargo = ws
            .cargo()
            .args(["build", "-p", NO_STD_PACKAGE, "--target", NO_STD_TARGET])
            .arg("--no-default-features");
        match features {
            Some(features) => cargo.args(["--features", features]).run()?,
            None => cargo.run()?,
        }
    }
    Ok(())
}

/// Runs [`MIRI_TEST_RUNS`] under miri on the installed nightly, adding the components it needs.
/// Without a nightly it skips, loudly.
fn miri(ws: &Workspace) -> Result<Outcome> {
    let Some(nightly) = tools::nightly_toolchain()? else {
        let reason = "no nightly toolchain on this machine";
        banner(&format!(
            "MIRI SKIPPED: {reason}\n\
             (`rustup toolchain list` has no line starting with `nightly`).\n\
             The unsafe code was NOT checked for undefined behaviour.\n\
             Install one with: rustup toolchain install nightly --component miri,rust-src"
        ));
        return Ok(Outcome::skipped_loudly(reason));
    };
    tools::ensure_components(&nightly, MIRI_COMPONENTS)?;
    ws.cargo_on(&nightly).args(["miri", "setup"]).run()?;
    let miriflags = miriflags();
    for run in MIRI_TEST_RUNS {
        ws.cargo_on(&nightly)
            .args(["miri", "test"])
            .args(*run)
            .env("MIRIFLAGS", &miriflags)
            .run()?;
    }
    Ok(Outcome::Passed)
}

/// [`MIRIFLAGS`], followed by the user's `MIRIFLAGS` if set (to try e.g. `-Zmiri-tree-borrows`).
fn miriflags() -> String {
    match std::env::var("MIRIFLAGS") {
        Ok(extra) if !extra.trim().is_empty() => format!("{MIRIFLAGS} {}", extra.trim()),
        _ => MIRIFLAGS.to_owned(),
    }
}

/// `cargo xtask test-gpu [--sim]`: the GPU suite against the simulator, or against the real
/// driver ([`crate::hardware`]: one command, one summary line per group).
pub fn test_gpu(ws: &Workspace, sim: bool) -> Result {
    if !sim {
        return crate::hardware::run(ws);
    }
    Plan::new("xtask test-gpu")
        .step("gpu suite (simulator)", || run_gpu_suite(ws, true))
        .run()
}

fn run_gpu_suite(ws: &Workspace, sim: bool) -> Result<Outcome> {
    let packages = ws.existing_packages(GPU_TEST_PACKAGES.iter().map(|(name, _)| *name));
    if packages.is_empty() {
        return Ok(Outcome::skipped(
            "no GPU test package is in the workspace yet",
        ));
    }
    let simulator = if sim {
        match gpu::build_simulator(ws)? {
            Some(folder) => Some(folder),
            None => {
                return Err(Error::new(
                    "--sim needs the `gpu-sim` package, which does not exist yet",
                ));
            }
        }
    } else {
        None
    };
    let features: Vec<String> = GPU_TEST_PACKAGES
        .iter()
        .filter(|(name, _)| packages.contains(name))
        .flat_map(|(name, features)| {
            features
                .iter()
                .map(move |feature| format!("{name}/{feature}"))
        })
        .collect();
    let mut cargo = ws.cargo().arg("test");
    for package in &packages {
        cargo = cargo.args(["-p", package]);
    }
    if !features.is_empty() {
        cargo = cargo.args(["--features", &features.join(",")]);
    }
    gpu::with_simulator(cargo, simulator.as_deref()).run()?;
    // The same contract from Python, through the module.
    let venv = Venv::ensure(ws)?;
    venv.build_module(ws)?;
    let pytest = venv.pytest(ws, &["-q", "-ra", "-k", PYTHON_GPU_TESTS]);
    gpu::with_simulator(pytest, simulator.as_deref()).run()?;
    Ok(Outcome::Passed)
}

/// glibc's heap settings for the criterion run: never trim the heap and grow it in 64 MiB steps.
/// The benches free a batch of outputs or inputs at a time; with glibc's defaults whether that
/// batch shrinks the heap (a `brk` per few frees, on both sides of a comparison) depends on what
/// ran before, so a group filtered alone measured the allocator instead of the crates.
const BENCH_GLIBC_TUNABLES: &str =
    "glibc.malloc.trim_threshold=4294967295:glibc.malloc.top_pad=67108864";

/// The Python benchmark: side-by-side timings against numpy, pydlpack and the import anchors.
const PYTHON_BENCH: &str = "crates/dlpack-py/bench/bench_exchange.py";

/// `cargo xtask bench [-- <criterion args>]`: the criterion benchmarks, then the peer anchors
/// (nanobind, dlpark; see [`anchors`]) and the Python benchmark, which times ours and the anchors
/// in one process. An anchor that does not build is a loud skip: the script falls back to its
/// fixed anchor numbers.
pub fn bench(ws: &Workspace, criterion_args: &[String]) -> Result {
    /// The venv of the "python env" step.
    fn bench_venv(venv: &OnceCell<Venv>) -> Result<&Venv> {
        venv.get()
            .ok_or_else(|| Error::new("the python env step did not run"))
    }
    let venv: OnceCell<Venv> = OnceCell::new();
    Plan::new("xtask bench")
        .step("criterion", || -> Result<Outcome> {
            if !ws.has_package(BENCH_PACKAGE) {
                return Ok(Outcome::skipped(format!(
                    "package `{BENCH_PACKAGE}` is not in the workspace yet"
                )));
            }
            let mut cargo = ws
                .cargo()
                .args(["bench", "-p", BENCH_PACKAGE])
                .env("GLIBC_TUNABLES", BENCH_GLIBC_TUNABLES);
            if !criterion_args.is_empty() {
                cargo = cargo.arg("--").args(criterion_args);
            }
            cargo.run()?;
            Ok(Outcome::Passed)
        })
        .step("vs dlpark", || crate::ratios::print_table(ws))
        .step("python env", || {
            let _ = venv.set(Venv::ensure(ws)?);
            Ok(())
        })
        .step(anchors::NANOBIND.0, || {
            anchors::nanobind(ws, bench_venv(&venv)?)
        })
        .step(anchors::DLPARK.0, || {
            anchors::dlpark(ws, bench_venv(&venv)?)
        })
        .step("python", || {
            let venv = bench_venv(&venv)?;
            venv.build_module(ws)?;
            venv.script(ws, PYTHON_BENCH)
                .arg("--anchors-dir")
                .arg(anchors::modules_dir(ws))
                .run()
        })
        .run()
}

/// The cross-process benchmark: a tensor moved to another process by each transport.
const TRANSPORTS_BENCH: &str = "benches/python/transports.py";

/// `cargo xtask bench --transports [-- <script args>]`: the release wheel installed into the
/// venv, then [`TRANSPORTS_BENCH`] (which starts its own receivers, `mpiexec` and Ray).
pub fn bench_transports(ws: &Workspace, script_args: &[String]) -> Result {
    bench_script(ws, "transports", TRANSPORTS_BENCH, script_args)
}

/// The benchmark of `cargo xtask bench --safetensors`.
const SAFETENSORS_BENCH: &str = "benches/python/safetensors_load.py";

/// `cargo xtask bench --safetensors`: loading a 1 GiB `.safetensors` file into torch through
/// `dlpack.load_safetensors` and through the `safetensors` package, with the release wheel.
pub fn bench_safetensors(ws: &Workspace) -> Result {
    bench_script(ws, "safetensors", SAFETENSORS_BENCH, &[])
}

/// `cargo xtask bench --<name>`: the release wheel installed into the venv, then the Python
/// benchmark `script` with `script_args`.
fn bench_script(
    ws: &Workspace,
    name: &'static str,
    script: &str,
    script_args: &[String],
) -> Result {
    let venv: OnceCell<Venv> = OnceCell::new();
    Plan::new(format!("xtask bench --{name}"))
        .step("python env", || {
            let _ = venv.set(Venv::ensure(ws)?);
            Ok(())
        })
        .step(name, || {
            let venv = venv
                .get()
                .ok_or_else(|| Error::new("the python env step did not run"))?;
            venv.build_module(ws)?;
            venv.script(ws, script).args(script_args).run()
        })
        .run()
}

/// `cargo xtask fuzz [--seconds N]`: each of [`FUZZ_TARGETS`] for `seconds`, on the nightly.
pub fn fuzz(ws: &Workspace, seconds: u64) -> Result {
    let fuzz_dir = ws.root().join("fuzz");
    let manifest = fuzz_dir.join("Cargo.toml");
    if !manifest.is_file() {
        let reason = format!("{} does not exist yet", manifest.display());
        return Plan::new("xtask fuzz").skip("fuzz", reason).run();
    }
    // cargo-fuzz needs a nightly for its sanitizer flags; find it before installing anything.
    let nightly = tools::nightly_toolchain()?.ok_or_else(|| {
        Error::new(
            "cargo fuzz needs a nightly toolchain and `rustup toolchain list` has none; \
             install one with `rustup toolchain install nightly`",
        )
    })?;
    let mut plan = Plan::new("xtask fuzz").step("cargo-fuzz", || {
        tools::ensure_cargo_subcommand(ws, "fuzz", "cargo-fuzz")
    });
    for target in FUZZ_TARGETS {
        plan = plan.step(target, || {
            fuzz_target(ws, &nightly, &fuzz_dir, target, seconds)
        });
    }
    plan.run()
}

/// `cargo xtask fuzz --python [--seconds N]`: the module built with overflow checks, then each
/// target of the Python harness for `seconds`, on the simulator.
pub fn fuzz_python(ws: &Workspace, seconds: u64) -> Result {
    let venv: OnceCell<Venv> = OnceCell::new();
    let simulator: OnceCell<Option<std::path::PathBuf>> = OnceCell::new();
    Plan::new("xtask fuzz --python")
        .step("python env", || {
            let _ = venv.set(Venv::ensure(ws)?);
            Ok(())
        })
        .step("module", || {
            let _ = simulator.set(gpu::build_simulator(ws)?);
            venv.get()
                .ok_or_else(|| Error::new("the python env step did not run"))?
                .build_module_with(ws, PYTHON_FUZZ_PROFILE)
        })
        .step("fuzz", || {
            let venv = venv
                .get()
                .ok_or_else(|| Error::new("the python env step did not run"))?;
            let run = python_fuzz(ws, venv, seconds);
            gpu::with_simulator(run, simulator.get().and_then(|s| s.as_deref())).run()
        })
        .run()
}

/// The Python fuzz harness for `seconds` per target.
fn python_fuzz(ws: &Workspace, venv: &Venv, seconds: u64) -> Cmd {
    venv.script(ws, PYTHON_FUZZ)
        .args(["--seconds", &seconds.to_string()])
}

fn fuzz_target(
    ws: &Workspace,
    nightly: &str,
    fuzz_dir: &Path,
    target: &str,
    seconds: u64,
) -> Result {
    ws.cargo_on(nightly)
        .args(["fuzz", "run", target, "--"])
        .arg(format!("-max_total_time={seconds}"))
        .current_dir(fuzz_dir)
        .run()
}

/// The argument sets that select packages and features for a workspace-wide `cargo clippy` or
/// `cargo test`: one `--workspace --all-features` run (excluding [`FEATURE_OVERRIDES`]), then one
/// run per overridden package that exists.
fn workspace_selections(ws: &Workspace) -> Vec<Vec<String>> {
    let mut all = vec!["--workspace".to_owned()];
    for (package, _) in FEATURE_OVERRIDES {
        all.extend(["--exclude".to_owned(), (*package).to_owned()]);
    }
    all.push("--all-features".to_owned());
    let mut selections = vec![all];
    for (package, features) in FEATURE_OVERRIDES {
        if ws.has_package(package) {
            let mut selection = vec!["-p".to_owned(), (*package).to_owned()];
            if !features.is_empty() {
                selection.extend(["--features".to_owned(), features.join(",")]);
            }
            selections.push(selection);
        }
    }
    for (package, features) in EXTRA_SELECTIONS {
        if ws.has_package(package) {
            selections.push(vec![
                "-p".to_owned(),
                (*package).to_owned(),
                "--features".to_owned(),
                features.join(","),
            ]);
        }
    }
    selections
}

/// Whether we run in CI (`CI` set to anything but empty, `0` or `false`).
fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.trim(), "" | "0" | "false"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo xtask test` covers `test-gpu --sim` only if the workspace run enables every feature
    /// the GPU suite needs.
    #[test]
    fn workspace_tests_enable_every_gpu_feature() {
        for (package, gpu_features) in GPU_TEST_PACKAGES {
            let Some((_, features)) = FEATURE_OVERRIDES.iter().find(|(name, _)| name == package)
            else {
                continue; // tested with --all-features
            };
            for feature in *gpu_features {
                assert!(
                    features.contains(feature),
                    "FEATURE_OVERRIDES leaves out `{package}/{feature}`, which the GPU suite needs"
                );
            }
        }
    }

    #[test]
    fn miriflags_start_with_the_project_flags() {
        assert!(miriflags().starts_with(MIRIFLAGS));
    }
}
