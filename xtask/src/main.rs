//! `cargo xtask`: the build orchestrator of the workspace (`cargo xtask --help`).
//!
//! # The invariant
//!
//! **xtask is the only place in the project that runs other programs to build or test.** CI's
//! `.ci/run` only prints tool versions and calls `cargo xtask test`; there are no shell scripts,
//! Makefiles or build steps hidden in READMEs. A new check (a Python venv, a GPU demo, another
//! target) is a new step in [`tasks`], so that a developer's `cargo xtask test` and CI run exactly
//! the same thing, and the order, environment and flags are written down in one place.
//!
//! # Layout
//!
//! - [`cli`]: the command line.
//! - [`tasks`]: what each subcommand runs, and the tables (packages, features, flags) to tune it.
//! - [`tidy`]: repository rules read from the sources (dlpack-py's layers, file sizes).
//! - [`steps`]: named steps with durations, stopping at the first failure, and the summary line.
//! - [`cmd`]: running one program (printed, stdio inherited, errors naming the command).
//! - [`workspace`]: the workspace root, target dir and packages (`cargo metadata`).
//! - [`tools`]: rustup toolchains, targets and components, and cargo subcommands.
//! - [`gpu`]: the GPU simulator folder that tests put on `LD_LIBRARY_PATH`.
//! - [`hardware`]: `cargo xtask test-gpu` on the real driver, one summary line per group.
//! - [`peer_suites`]: peer test suites (pydlpack's) copied at test time and run against ours.
//! - [`wheel`]: the release wheel (manylinux, audited), tested on every supported CPython.
//! - [`publish`]: the crates for crates.io and the `cargo package` check.
//! - [`anchors`]: the peer modules (nanobind, dlpark) the Python benchmark times beside ours.
//! - [`witness`]: peers' own DLPack test files, run as they are and routed through `asdlpack`.
//! - [`ratios`]: the side-by-side table against dlpark (criterion medians, instructions).
//! - [`instructions`]: the Python exchange paths in instructions (callgrind), before/after.
//!
//! xtask uses the workspace's own target directory (or `CARGO_TARGET_DIR` if the caller set one)
//! and the toolchain that runs it (`$CARGO`); only the nightly steps (miri, fuzz) switch toolchain.

mod anchors;
mod cli;
mod cmd;
mod gpu;
mod hardware;
mod instructions;
mod peer_suites;
mod publish;
mod python;
mod ratios;
mod steps;
mod tasks;
mod tidy;
mod tools;
mod wheel;
mod witness;
mod workspace;

use std::process::ExitCode;

use cli::Command;
use workspace::Workspace;

fn main() -> ExitCode {
    let command = match Command::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    if command == Command::Help {
        print!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    match Workspace::locate().and_then(|ws| run(&ws, command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nerror: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(ws: &Workspace, command: Command) -> cmd::Result {
    match command {
        Command::Help => Ok(()),
        Command::Demo => tasks::demo(ws),
        Command::Test(options) => tasks::test(ws, options),
        Command::TestGpu { sim } => tasks::test_gpu(ws, sim),
        Command::Tidy => tidy::run(ws),
        Command::Bench { criterion_args } => tasks::bench(ws, &criterion_args),
        Command::BenchInstructions(options) => instructions::run(ws, &options),
        Command::BenchTransports { script_args } => tasks::bench_transports(ws, &script_args),
        Command::BenchSafetensors => tasks::bench_safetensors(ws),
        Command::Fuzz {
            seconds,
            python: false,
        } => tasks::fuzz(ws, seconds),
        Command::Fuzz {
            seconds,
            python: true,
        } => tasks::fuzz_python(ws, seconds),
    }
}
