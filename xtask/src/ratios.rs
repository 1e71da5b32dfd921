//! The side-by-side table against dlpark (`benches/benches/vs_dlpark.rs`): for every
//! operation both crates offer, our time over dlpark's from the criterion run just made, and
//! our instructions over dlpark's counted by callgrind on `benches/examples/ops.rs`
//! (steady where the clock drifts). Printed by `cargo xtask bench`; BENCHMARKS.md keeps it.

use std::path::Path;

use crate::cmd::{Cmd, Error, Result};
use crate::steps::Outcome;
use crate::workspace::Workspace;

/// The bench crate, its side-by-side benchmark and the instruction-count example.
const PACKAGE: &str = "dlpack-benches";
const GROUP_PREFIX: &str = "vs_dlpark";
const OPS_EXAMPLE: &str = "ops";
/// The two sides, as the benchmark and the example name them.
const SIDES: [&str; 2] = ["ours", "dlpark"];

/// One row of the table.
#[derive(Debug)]
struct Row {
    operation: String,
    /// Criterion medians in ns (ours, dlpark), when the run left them.
    times: Option<(f64, f64)>,
    /// Instructions per operation (ours, dlpark), when valgrind ran.
    instructions: Option<(u64, u64)>,
}

/// Builds the example, counts instructions, reads the criterion medians and prints the table.
/// Without valgrind, the instruction columns are skipped loudly.
pub fn print_table(ws: &Workspace) -> Result<Outcome> {
    ws.cargo()
        .args(["build", "--profile", "bench", "-p", PACKAGE, "--example"])
        .arg(OPS_EXAMPLE)
        .run()?;
    // The bench profile's artifacts live under `release/`.
    let example = ws
        .target_dir()
        .join("release")
        .join("examples")
        .join(OPS_EXAMPLE);
    let listing = Cmd::new(&example).arg("--list").read()?;
    let mut lines = listing.lines();
    let rounds: u64 = lines
        .next()
        .and_then(|line| line.trim().parse().ok())
        .ok_or_else(|| {
            Error::new(format!(
                "`{} --list` did not print its rounds",
                example.display()
            ))
        })?;
    let valgrind = Cmd::new("valgrind").arg("--version").probe();
    let mut rows = Vec::new();
    for operation in lines.map(str::trim).filter(|line| !line.is_empty()) {
        let times = criterion_medians(ws.target_dir(), operation);
        let instructions = if valgrind {
            let ours = count_instructions(&example, operation, SIDES[0])? / rounds;
            let theirs = count_instructions(&example, operation, SIDES[1])? / rounds;
            Some((ours, theirs))
        } else {
            None
        };
        rows.push(Row {
            operation: operation.to_owned(),
            times,
            instructions,
        });
    }
    println!("\n{}", render(&rows));
    if valgrind {
        Ok(Outcome::Passed)
    } else {
        Ok(Outcome::skipped_loudly(
            "valgrind is not installed: the instruction columns are empty (apt-get install valgrind)",
        ))
    }
}

/// Instructions `ops <operation> <side>` spends in its timed function.
fn count_instructions(example: &Path, operation: &str, side: &str) -> Result<u64> {
    let output = Cmd::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--toggle-collect=ops::timed*",
        ])
        .arg(example)
        .args([operation, side])
        .read_stderr()?;
    output
        .lines()
        .find_map(|line| line.split("Collected :").nth(1))
        .and_then(|count| count.trim().parse().ok())
        .ok_or_else(|| {
            Error::new(format!(
                "callgrind printed no count for {operation} ({side})"
            ))
        })
}

/// The criterion medians (ns) of both sides of `operation`, if both exist.
fn criterion_medians(target: &Path, operation: &str) -> Option<(f64, f64)> {
    let group = target
        .join("criterion")
        .join(format!("{GROUP_PREFIX}_{operation}"));
    let median = |side: &str| {
        let json = std::fs::read_to_string(group.join(side).join("new/estimates.json")).ok()?;
        median_point_estimate(&json)
    };
    Some((median(SIDES[0])?, median(SIDES[1])?))
}

/// `median.point_estimate` of a criterion `estimates.json` (std only: a scan, not a parser).
fn median_point_estimate(json: &str) -> Option<f64> {
    let median = &json[json.find("\"median\"")?..];
    let value = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "| operation | ours / dlpark (time, criterion median) | ours / dlpark (instructions) |\n\
         |---|---:|---:|\n",
    );
    for row in rows {
        let time = match row.times {
            Some((ours, theirs)) => format!("{:.2} ({ours:.1} / {theirs:.1} ns)", ours / theirs),
            None => "—".to_owned(),
        };
        let instructions = match row.instructions {
            Some((ours, theirs)) => {
                format!("{:.2} ({ours} / {theirs})", ours as f64 / theirs as f64)
            }
            None => "—".to_owned(),
        };
        out.push_str(&format!(
            "| {} | {time} | {instructions} |\n",
            row.operation
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_median_not_the_mean() {
        let json = r#"{"mean":{"point_estimate":43.1,"standard_error":2.9},"median":{"confidence_interval":{"lower_bound":37.1},"point_estimate":39.5,"standard_error":1.8}}"#;
        assert_eq!(median_point_estimate(json), Some(39.5));
        assert_eq!(
            median_point_estimate(r#"{"mean":{"point_estimate":1}}"#),
            None
        );
    }

    #[test]
    fn renders_ratios() {
        let table = render(&[Row {
            operation: "x".into(),
            times: Some((20.0, 40.0)),
            instructions: Some((300, 600)),
        }]);
        assert!(
            table.contains("| x | 0.50 (20.0 / 40.0 ns) | 0.50 (300 / 600) |"),
            "{table}"
        );
    }
}
