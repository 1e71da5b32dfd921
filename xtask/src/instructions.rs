//! `cargo xtask bench --instructions`: the Python exchange paths of
//! `crates/dlpack-py/bench/bench_exchange.py` counted in instructions (callgrind), which hold
//! where this host's clock drifts by 2×.
//!
//! The release wheel is built and installed as `cargo xtask test` does; then
//! `benches/python/instructions.py` runs under `valgrind --tool=callgrind --collect-atstart=no`.
//! Each path's statement runs [`ROUNDS`] times in a loop called through a small C function
//! (`benches/python/toggle.c`, compiled here) that switches collection on around the loop only
//! and dumps a profile named after the path. Per path: (its dump − the empty statement's dump)
//! / rounds, the instructions one call adds. `PYTHONHASHSEED=0` and the garbage collector off
//! during a loop keep two runs of one build within a few instructions per call.
//!
//! Every run writes its table to `<target>/bench-instructions/last.json`; `--save <file>` writes
//! it there too (the baseline kept in `benches/instructions-baseline.json`), and `--compare
//! <file>` prints before, now and the change per path, and fails when a path grew by more than
//! [`BOUND_PERCENT`].

use std::cell::OnceCell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cmd::{Cmd, Error, Result};
use crate::python::Venv;
use crate::steps::{Outcome, Plan};
use crate::workspace::Workspace;

/// The script that runs the paths, and the C source of its collection switch.
const SCRIPT: &str = "benches/python/instructions.py";
const HELPER_SOURCE: &str = "benches/python/toggle.c";
/// Folder under the target directory: the helper library, callgrind's dumps, `last.json`.
const OUT_DIR: &str = "bench-instructions";
/// Calls per path in the measured loop.
const ROUNDS: u64 = 2000;
/// The dump of the loop's floor, subtracted from every other one (named by the script).
const EMPTY: &str = "(empty statement)";
/// How much a path may grow over `--compare`'s file, in percent.
pub const BOUND_PERCENT: f64 = 2.0;

/// What `bench --instructions` was asked for besides the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Also write the table to this file.
    pub save: Option<PathBuf>,
    /// Compare with the table in this file (of an earlier `--save`).
    pub compare: Option<PathBuf>,
}

/// One measured table: where it was measured, and the instructions per call of each path.
#[derive(Debug, Clone, PartialEq)]
struct Table {
    commit: String,
    rounds: u64,
    paths: Vec<(String, f64)>,
}

/// Installs valgrind if needed, builds and installs the wheel, counts, prints and compares.
pub fn run(ws: &Workspace, options: &Options) -> Result {
    let venv: OnceCell<Venv> = OnceCell::new();
    let venv_ref = || {
        venv.get()
            .ok_or_else(|| Error::new("the python env step did not run"))
    };
    Plan::new("xtask bench --instructions")
        .step("valgrind", ensure_valgrind)
        .step("python env", || {
            let _ = venv.set(Venv::ensure(ws)?);
            Ok(())
        })
        .step("wheel", || venv_ref()?.build_module(ws))
        .step("instructions", || -> Result<Outcome> {
            let table = measure(ws, venv_ref()?)?;
            println!("\n{}", render(&table));
            let text = to_json(&table);
            let dir = ws.target_dir().join(OUT_DIR);
            write(&dir.join("last.json"), &text)?;
            if let Some(path) = &options.save {
                write(path, &text)?;
            }
            if let Some(path) = &options.compare {
                let before = read_table(path)?;
                let (report, over) = compare(&before, &table);
                println!("\n{report}");
                if !over.is_empty() {
                    return Err(Error::new(format!(
                        "{} path(s) over +{BOUND_PERCENT} % of {}: {}",
                        over.len(),
                        path.display(),
                        over.join(", ")
                    )));
                }
            }
            Ok(Outcome::Passed)
        })
        .run()
}

/// Debian's valgrind (which also ships `valgrind/callgrind.h`), installed when missing.
fn ensure_valgrind() -> Result {
    let header = Path::new("/usr/include/valgrind/callgrind.h");
    if Cmd::new("valgrind").arg("--version").probe() && header.is_file() {
        return Ok(());
    }
    eprintln!("valgrind or its callgrind.h is missing: installing Debian's valgrind");
    crate::tools::apt_install("valgrind")
}

/// Compiles the helper, runs the script under callgrind and reads its dumps.
fn measure(ws: &Workspace, venv: &Venv) -> Result<Table> {
    let dir = ws.target_dir().join(OUT_DIR);
    std::fs::create_dir_all(&dir)
        .map_err(|err| Error::new(format!("cannot create {}: {err}", dir.display())))?;
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("callgrind.out")
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let helper = dir.join("libdlpack_bench_toggle.so");
    Cmd::new("cc")
        .args(["-O2", "-shared", "-fPIC", "-o"])
        .arg(&helper)
        .arg(ws.root().join(HELPER_SOURCE))
        .run()?;
    let out = dir.join("callgrind.out");
    venv.apply(Cmd::new("valgrind"))
        .args(["-q", "--tool=callgrind", "--collect-atstart=no"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(venv.python())
        .arg(ws.root().join(SCRIPT))
        .arg("--helper")
        .arg(&helper)
        .args(["--rounds", &ROUNDS.to_string()])
        .env("PYTHONHASHSEED", "0")
        .current_dir(ws.root())
        .run()?;
    // callgrind numbers the dumps of a run from 1: `callgrind.out.1`, `callgrind.out.2`, ...
    let mut dumps = Vec::new();
    for part in 1.. {
        let path = dir.join(format!("callgrind.out.{part}"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            break;
        };
        dumps.push(
            parse_dump(&text)
                .ok_or_else(|| Error::new(format!("cannot read {}", path.display())))?,
        );
    }
    Ok(Table {
        commit: commit(ws),
        rounds: ROUNDS,
        paths: per_call(&dumps, ROUNDS)?,
    })
}

/// The path named in a dump's trigger and the instructions it collected.
fn parse_dump(text: &str) -> Option<(String, u64)> {
    let name = text
        .lines()
        .find_map(|line| line.strip_prefix("desc: Trigger: Client Request: "))?;
    let total = text
        .lines()
        .find_map(|line| line.strip_prefix("totals: "))?
        .trim()
        .parse()
        .ok()?;
    Some((name.trim().to_owned(), total))
}

/// Each path's instructions per call: its dump less the empty statement's, over the rounds.
fn per_call(dumps: &[(String, u64)], rounds: u64) -> Result<Vec<(String, f64)>> {
    let floor = dumps
        .iter()
        .find(|(name, _)| name == EMPTY)
        .map(|(_, total)| *total)
        .ok_or_else(|| Error::new(format!("callgrind wrote no dump named {EMPTY:?}")))?;
    Ok(dumps
        .iter()
        .filter(|(name, _)| name != EMPTY)
        .map(|(name, total)| {
            let net = *total as f64 - floor as f64;
            (name.clone(), net / rounds as f64)
        })
        .collect())
}

/// `git describe --always --dirty` of the workspace, or `unknown`.
fn commit(ws: &Workspace) -> String {
    Cmd::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=7"])
        .current_dir(ws.root())
        .read()
        .map(|out| out.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn render(table: &Table) -> String {
    let mut out = format!(
        "Instructions per call (callgrind, {} rounds, less the empty loop; {}):\n\n\
         | path | instructions per call |\n|---|---:|\n",
        table.rounds, table.commit
    );
    for (name, value) in &table.paths {
        let _ = writeln!(out, "| {name} | {value:.1} |");
    }
    out
}

/// The before/after table, and the paths over the bound (or missing now).
fn compare(before: &Table, now: &Table) -> (String, Vec<String>) {
    let mut over = Vec::new();
    let mut out = format!(
        "| path | before ({}) | now ({}) | change |\n|---|---:|---:|---:|\n",
        before.commit, now.commit
    );
    for (name, old) in &before.paths {
        match now.paths.iter().find(|(n, _)| n == name) {
            Some((_, new)) => {
                let change = (new / old - 1.0) * 100.0;
                let mark = if change > BOUND_PERCENT {
                    over.push(format!("{name} ({change:+.2} %)"));
                    format!(" (over +{BOUND_PERCENT} %)")
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "| {name} | {old:.1} | {new:.1} | {change:+.2} %{mark} |"
                );
            }
            None => {
                over.push(format!("{name} (not measured now)"));
                let _ = writeln!(out, "| {name} | {old:.1} | — | missing |");
            }
        }
    }
    for (name, new) in &now.paths {
        if !before.paths.iter().any(|(n, _)| n == name) {
            let _ = writeln!(out, "| {name} | — | {new:.1} | new |");
        }
    }
    (out, over)
}

/// The table as JSON: one path a line, so that [`from_json`] (std only) reads it back.
fn to_json(table: &Table) -> String {
    let mut out = format!(
        "{{\n  \"commit\": \"{}\",\n  \"rounds\": {},\n  \"instructions_per_call\": {{\n",
        table.commit, table.rounds
    );
    for (i, (name, value)) in table.paths.iter().enumerate() {
        let comma = if i + 1 < table.paths.len() { "," } else { "" };
        let _ = writeln!(out, "    \"{name}\": {value:.1}{comma}");
    }
    out.push_str("  }\n}\n");
    out
}

/// Reads what [`to_json`] wrote (path names hold no quotes or backslashes).
fn from_json(text: &str) -> Option<Table> {
    let field = |key: &str| {
        text.lines().find_map(|line| {
            let rest = line.trim().strip_prefix(&format!("\"{key}\": "))?;
            Some(rest.trim_end_matches(',').trim_matches('"').to_owned())
        })
    };
    let mut lines = text
        .lines()
        .skip_while(|line| !line.contains("\"instructions_per_call\""))
        .skip(1);
    let mut paths = Vec::new();
    for line in lines.by_ref() {
        let line = line.trim().trim_end_matches(',');
        if line.starts_with('}') {
            break;
        }
        let (name, value) = line.strip_prefix('"')?.rsplit_once("\": ")?;
        paths.push((name.to_owned(), value.parse().ok()?));
    }
    Some(Table {
        commit: field("commit")?,
        rounds: field("rounds")?.parse().ok()?,
        paths,
    })
}

fn read_table(path: &Path) -> Result<Table> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| Error::new(format!("cannot read {}: {err}", path.display())))?;
    from_json(&text).ok_or_else(|| {
        Error::new(format!(
            "{} is not a table of `cargo xtask bench --instructions --save`",
            path.display()
        ))
    })
}

fn write(path: &Path, text: &str) -> Result {
    std::fs::write(path, text)
        .map_err(|err| Error::new(format!("cannot write {}: {err}", path.display())))?;
    eprintln!("instructions: wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(commit: &str, paths: &[(&str, f64)]) -> Table {
        Table {
            commit: commit.into(),
            rounds: 2000,
            paths: paths.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect(),
        }
    }

    #[test]
    fn reads_a_dump_of_callgrind() {
        let dump = "# callgrind format\nversion: 1\npart: 3\n\ndesc: Trigger: Client Request: \
                    take(numpy 1 GiB)\n\npositions: line\nevents: Ir\nsummary: 3331451\n\n\
                    fn=(1) x\n1 5\n\ntotals: 3331451\n";
        assert_eq!(
            parse_dump(dump),
            Some(("take(numpy 1 GiB)".to_owned(), 3_331_451))
        );
        assert_eq!(
            parse_dump("desc: Trigger: Program termination\ntotals: 0\n"),
            None
        );
    }

    #[test]
    fn subtracts_the_empty_loop() {
        let dumps = [
            (EMPTY.to_owned(), 400_000),
            ("take(numpy)".to_owned(), 3_400_000),
        ];
        assert_eq!(
            per_call(&dumps, 2000).unwrap(),
            vec![("take(numpy)".to_owned(), 1500.0)]
        );
        assert!(per_call(&dumps[1..], 2000).is_err());
    }

    #[test]
    fn json_round_trips() {
        let t = table(
            "4db5df3",
            &[
                ("np.from_dlpack(asdlpack(numpy))", 4395.3),
                ("take(jax)", 24908.0),
            ],
        );
        assert_eq!(from_json(&to_json(&t)), Some(t));
    }

    #[test]
    fn compare_fails_a_path_over_the_bound_or_missing() {
        let before = table("a", &[("x", 1000.0), ("y", 1000.0), ("z", 50.0)]);
        let now = table("b", &[("x", 1019.0), ("y", 1021.0), ("w", 7.0)]);
        let (report, over) = compare(&before, &now);
        assert_eq!(
            over,
            vec!["y (+2.10 %)".to_owned(), "z (not measured now)".to_owned()]
        );
        assert!(
            report.contains("| x | 1000.0 | 1019.0 | +1.90 % |"),
            "{report}"
        );
        assert!(report.contains("| w | — | 7.0 | new |"), "{report}");
    }
}
