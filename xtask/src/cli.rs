//! The command line of `cargo xtask`: subcommands and their flags, parsed by hand (std only).

use crate::cmd::{Error, Result};
use crate::instructions;
use crate::tasks::{DEFAULT_FUZZ_SECONDS, TestOptions};

/// The help text of `cargo xtask --help`.
pub const USAGE: &str = "\
cargo xtask: build orchestration of the DLPack workspace

xtask is the only place in the project that runs other programs to build or test;
CI (.ci/run) runs `cargo xtask test`.

Usage: cargo xtask <COMMAND> [OPTIONS]

Commands:
  demo                          Run the demos (the `demo` examples of dlpack-ndarray,
                                dlpack-image, dlpack-safetensors, dlpack-candle, dlpack-arrow
                                and dlpack-burn, dlpack-cuda's `gpu_demo` on the simulator)
  test [--quick] [--skip-miri]  Run every check CI runs, in order, stopping at the first failure:
                                  fmt              cargo fmt --all -- --check
                                  tidy             cargo xtask tidy (reads the sources, no build)
                                  python env       .venv with the pinned test packages
                                  clippy           workspace (all targets, -D warnings), the no_std
                                                   core for thumbv7em-none-eabihf
                                  rustdoc          docs of every crate, warnings denied
                                  test             build the GPU simulator, then cargo test (all
                                                   targets, then doc tests) with it loaded
                                  hip-sys          dlpack-rocm linked through hip-sys
                                  python           the release wheel, installed; the Python suite
                                  witness suites   NumPy's and pyarrow's DLPack tests, as shipped
                                                   and routed through asdlpack
                                  pydlpack suite   pydlpack's own tests over our namespace
                                  python versions  the wheel on CPython 3.9, 3.10, 3.12, 3.13
                                  windows          clippy for x86_64-pc-windows-gnu (abi3)
                                  crates           metadata and cargo package of published crates
                                  python fuzz      a short run of every Python fuzz target
                                  no_std           build dlpack-core for thumbv7em-none-eabihf
                                  miri             cargo +nightly miri test (skipped loudly
                                                   without nightly)
  tidy                          Check repository rules from the sources, without a build:
                                dlpack-py's modules import only their own or lower layers and
                                form no circle; no dlpack-py file over 600 lines (files of other
                                crates over it are listed)
  test-gpu [--sim]              Run the GPU test suite against the real driver (the tests that
                                need only a driver; ROCm skipped loudly without a HIP device; one
                                summary line per group), or with --sim the whole suite against
                                the GPU simulator
  bench [-- <ARGS>...]          Run the criterion benchmarks of dlpack-benches; ARGS go to criterion
                                (e.g. cargo xtask bench -- --warm-up-time 0.5 --measurement-time 1)
  bench --instructions [--save <FILE>] [--compare <FILE>]
                                Count the instructions per call of the Python exchange paths
                                (callgrind; builds and installs the release wheel first); --save
                                writes the table as JSON, --compare prints it beside an earlier
                                one and fails when a path grew by more than 2 %
                                (e.g. --compare benches/instructions-baseline.json)
  bench --transports [-- <ARGS>...]
                                Move 1 KiB to 1 GiB tensors to another process and read them
                                there (pickling, pickle 5 out of band, MPI, Ray; builds and
                                installs the release wheel first); ARGS go to
                                benches/python/transports.py (e.g. -- --sizes 1KiB,1MiB)
  bench --safetensors           Time loading a 1 GiB .safetensors file into torch through
                                dlpack.load_safetensors and through the safetensors package
                                (builds and installs the release wheel first; warm page cache)
  fuzz [--seconds <N>]          Run each cargo-fuzz target of fuzz/ for N seconds (default 60) on
                                nightly; installs cargo-fuzz if needed
  fuzz --python [--seconds <N>] Build the module with overflow checks and run each hypothesis
                                target of fuzz/python/ (every Python-facing parser) for N seconds,
                                on the simulator; reports executions and findings per target
  help                          Print this help

Options of test:
  --quick       Skip no_std and miri (local iteration only; CI runs everything)
  --skip-miri   Skip miri only

Tests that load the GPU simulator get (once the gpu-sim package exists):
  LD_LIBRARY_PATH=<target>/gpu-sim/lib:<your LD_LIBRARY_PATH>
  GPUSIM_LIB_DIR=<target>/gpu-sim/lib
where <target>/gpu-sim/lib holds one copy of libgpu_sim.so linked as libcuda.so, libcuda.so.1,
libamdhip64.so, libamdhip64.so.5 and libamdhip64.so.6.
";

/// A parsed `cargo xtask` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Print [`USAGE`].
    Help,
    /// `demo`
    Demo,
    /// `test [--quick] [--skip-miri]`
    Test(TestOptions),
    /// `test-gpu [--sim]`
    TestGpu { sim: bool },
    /// `tidy`
    Tidy,
    /// `bench [-- <criterion args>]`
    Bench { criterion_args: Vec<String> },
    /// `bench --instructions [--save <file>] [--compare <file>]`
    BenchInstructions(instructions::Options),
    /// `bench --transports [-- <script args>]`
    BenchTransports { script_args: Vec<String> },
    /// `bench --safetensors`
    BenchSafetensors,
    /// `fuzz [--python] [--seconds N]`
    Fuzz { seconds: u64, python: bool },
}

impl Command {
    /// Parses the arguments after the program name.
    pub fn parse<I>(args: I) -> Result<Self>
    where
        I: IntoIterator<Item = String>,
    {
        let mut args = args.into_iter();
        let Some(subcommand) = args.next() else {
            return Ok(Self::Help);
        };
        let rest: Vec<String> = args.collect();
        if rest
            .iter()
            .take_while(|arg| *arg != "--")
            .any(|arg| is_help(arg))
        {
            return Ok(Self::Help);
        }
        match subcommand.as_str() {
            "help" | "-h" | "--help" => Ok(Self::Help),
            "demo" => {
                no_more(&subcommand, &rest)?;
                Ok(Self::Demo)
            }
            "test" => {
                let mut options = TestOptions::default();
                for arg in &rest {
                    match arg.as_str() {
                        "--quick" => options.quick = true,
                        "--skip-miri" => options.skip_miri = true,
                        other => return Err(unexpected(&subcommand, other)),
                    }
                }
                Ok(Self::Test(options))
            }
            "tidy" => {
                no_more(&subcommand, &rest)?;
                Ok(Self::Tidy)
            }
            "test-gpu" => {
                let mut sim = false;
                for arg in &rest {
                    match arg.as_str() {
                        "--sim" => sim = true,
                        other => return Err(unexpected(&subcommand, other)),
                    }
                }
                Ok(Self::TestGpu { sim })
            }
            "bench" => match rest.split_first() {
                None => Ok(Self::Bench {
                    criterion_args: Vec::new(),
                }),
                Some((separator, criterion_args)) if separator == "--" => Ok(Self::Bench {
                    criterion_args: criterion_args.to_vec(),
                }),
                Some((flag, more)) if flag == "--instructions" => {
                    let mut options = instructions::Options::default();
                    let mut more = more.iter();
                    while let Some(arg) = more.next() {
                        let slot = match arg.as_str() {
                            "--save" => &mut options.save,
                            "--compare" => &mut options.compare,
                            other => return Err(unexpected(&subcommand, other)),
                        };
                        let file = more.next().ok_or_else(|| {
                            Error::new(format!("`bench --instructions {arg}` needs a file"))
                        })?;
                        *slot = Some(file.into());
                    }
                    Ok(Self::BenchInstructions(options))
                }
                Some((flag, more)) if flag == "--transports" => match more.split_first() {
                    None => Ok(Self::BenchTransports {
                        script_args: Vec::new(),
                    }),
                    Some((separator, script_args)) if separator == "--" => {
                        Ok(Self::BenchTransports {
                            script_args: script_args.to_vec(),
                        })
                    }
                    Some((other, _)) => Err(unexpected(&subcommand, other)),
                },
                Some((flag, more)) if flag == "--safetensors" => match more.first() {
                    None => Ok(Self::BenchSafetensors),
                    Some(other) => Err(unexpected(&subcommand, other)),
                },
                Some((other, _)) => Err(unexpected(&subcommand, other)),
            },
            "fuzz" => {
                let mut seconds = DEFAULT_FUZZ_SECONDS;
                let mut python = false;
                let mut rest = rest.iter();
                while let Some(arg) = rest.next() {
                    if arg == "--python" {
                        python = true;
                        continue;
                    }
                    let value = match arg.strip_prefix("--seconds") {
                        Some("") => rest.next().map(String::as_str),
                        Some(inline) => match inline.strip_prefix('=') {
                            Some(value) => Some(value),
                            None => return Err(unexpected(&subcommand, arg)),
                        },
                        None => return Err(unexpected(&subcommand, arg)),
                    };
                    seconds = value
                        .and_then(|value| value.parse().ok())
                        .filter(|seconds| *seconds > 0)
                        .ok_or_else(|| {
                            Error::new("`fuzz --seconds` needs a positive whole number of seconds")
                        })?;
                }
                Ok(Self::Fuzz { seconds, python })
            }
            other => Err(Error::new(format!(
                "unknown command `{other}`; run `cargo xtask --help` for the list"
            ))),
        }
    }
}

fn is_help(arg: &str) -> bool {
    matches!(arg, "-h" | "--help")
}

fn no_more(subcommand: &str, rest: &[String]) -> Result {
    match rest.first() {
        Some(arg) => Err(unexpected(subcommand, arg)),
        None => Ok(()),
    }
}

fn unexpected(subcommand: &str, arg: &str) -> Error {
    Error::new(format!(
        "unexpected argument `{arg}` for `cargo xtask {subcommand}`; run `cargo xtask --help`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command> {
        Command::parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn parses_every_subcommand() {
        assert_eq!(parse("").unwrap(), Command::Help);
        assert_eq!(parse("--help").unwrap(), Command::Help);
        assert_eq!(parse("test --help").unwrap(), Command::Help);
        assert_eq!(parse("demo").unwrap(), Command::Demo);
        assert_eq!(parse("tidy").unwrap(), Command::Tidy);
        assert_eq!(
            parse("test --quick").unwrap(),
            Command::Test(TestOptions {
                quick: true,
                skip_miri: false
            })
        );
        assert_eq!(
            parse("test --skip-miri").unwrap(),
            Command::Test(TestOptions {
                quick: false,
                skip_miri: true
            })
        );
        assert_eq!(
            parse("test-gpu --sim").unwrap(),
            Command::TestGpu { sim: true }
        );
        assert_eq!(parse("test-gpu").unwrap(), Command::TestGpu { sim: false });
        assert_eq!(
            parse("bench --transports -- --sizes 1KiB").unwrap(),
            Command::BenchTransports {
                script_args: vec!["--sizes".into(), "1KiB".into()]
            }
        );
        assert_eq!(
            parse("bench -- --warm-up-time 0.5 --help").unwrap(),
            Command::Bench {
                criterion_args: vec!["--warm-up-time".into(), "0.5".into(), "--help".into()]
            }
        );
        assert_eq!(
            parse("bench --instructions --compare a.json --save b.json").unwrap(),
            Command::BenchInstructions(instructions::Options {
                save: Some("b.json".into()),
                compare: Some("a.json".into()),
            })
        );
        assert_eq!(
            parse("bench --safetensors").unwrap(),
            Command::BenchSafetensors
        );
        let fuzz = |seconds, python| Command::Fuzz { seconds, python };
        assert_eq!(parse("fuzz").unwrap(), fuzz(60, false));
        assert_eq!(parse("fuzz --seconds 5").unwrap(), fuzz(5, false));
        assert_eq!(parse("fuzz --seconds=7").unwrap(), fuzz(7, false));
        assert_eq!(
            parse("fuzz --python --seconds 600").unwrap(),
            fuzz(600, true)
        );
        assert_eq!(parse("fuzz --seconds=9 --python").unwrap(), fuzz(9, true));
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        assert!(parse("deploy").is_err());
        assert!(parse("test --fast").is_err());
        assert!(parse("demo --sim").is_err());
        assert!(parse("bench --warm-up-time 0.5").is_err());
        assert!(parse("bench --instructions --save").is_err());
        assert!(parse("bench --instructions --quick").is_err());
        assert!(parse("bench --transports --sizes 1KiB").is_err());
        assert!(parse("bench --safetensors --quick").is_err());
        assert!(parse("fuzz --seconds").is_err());
        assert!(parse("fuzz --seconds 0").is_err());
        assert!(parse("fuzz --seconds abc").is_err());
        assert!(parse("fuzz --secondsx").is_err());
        assert!(parse("fuzz --pythonx").is_err());
    }
}
