//! Peer test suites as witnesses: a framework's own DLPack tests, shipped in its wheel, copied
//! at test time from the installed package (never vendored) into a temporary folder and run
//! with pytest twice: as they are, and routed, with every `<consumer>.from_dlpack(x, ...)` call
//! of the file rewritten to `<consumer>.from_dlpack(dlpack.asdlpack(x), ...)`, so that each
//! case exchanges through our producer. What the suite expects (values, flags, exception types)
//! stays the peer's.
//!
//! The routing is textual and checked: every call is rewritten to go through one helper
//! appended to the copy ([`ROUTING_HELPER`]); a `from_dlpack` the rewrite does not recognise
//! stops the step, so no case silently goes unrouted. A routed case that cannot pass for a
//! reason of the standard's (not a defect of ours) is listed in [`Witness::routed_xfail`] with
//! that reason, and marked as a strict `xfail`, so it fails loudly once it passes.

use std::path::{Path, PathBuf};

use crate::cmd::{Cmd, Error, Result};
use crate::python::Venv;

/// A peer's own DLPack test file, shipped in its wheel.
#[derive(Debug)]
pub struct Witness {
    /// The peer's import name (the package that ships the file).
    pub package: &'static str,
    /// The test file, relative to the package's folder.
    pub file: &'static str,
    /// Routed cases that cannot pass for a reason of the standard's: the test function, the
    /// exception the routed case raises instead, and why.
    pub routed_xfail: &'static [ExpectedFailure],
}

/// A routed case that fails for a reason of the standard's.
#[derive(Debug)]
pub struct ExpectedFailure {
    /// The test function's name (`def <test>(`).
    pub test: &'static str,
    /// The exception the routed case raises (a Python expression, e.g. `TypeError`).
    pub raises: &'static str,
    /// Why, precisely.
    pub reason: &'static str,
}

/// The witnesses of `cargo xtask test`. PyTorch, JAX, TensorFlow and Paddle ship no DLPack
/// tests in their wheels (checked on the pinned versions of requirements-test.txt).
pub const WITNESSES: &[Witness] = &[
    Witness {
        package: "numpy",
        file: "_core/tests/test_dlpack.py",
        routed_xfail: &[],
    },
    Witness {
        package: "pyarrow",
        file: "tests/test_dlpack.py",
        routed_xfail: &[ExpectedFailure {
            test: "test_from_dlpack_no_dlpack_method",
            raises: "TypeError",
            reason: "routed, asdlpack(object()) refuses the object before pyarrow sees it: an \
                     object with no __dlpack__, buffer or array interface is a TypeError (the \
                     DLPack standard's exception for a wrong type), not pyarrow's AttributeError",
        }],
    },
];

/// The method every routed call goes through.
const CALL: &str = ".from_dlpack(";

/// The name of the routing helper in the copied file.
const HELPER: &str = "_dlpack_witness_routed";

/// Appended to the routed copy: `HELPER(f)(x, ...)` is `f(dlpack.asdlpack(x), ...)`.
const ROUTING_HELPER: &str = r#"

# ---- added by `cargo xtask test` (xtask/src/witness.rs): every `<consumer>.from_dlpack(x, ...)`
# ---- above is `_dlpack_witness_routed(<consumer>.from_dlpack)(x, ...)`, which calls
# ---- `<consumer>.from_dlpack(dlpack.asdlpack(x), ...)`.
import dlpack as _dlpack_witness


def _dlpack_witness_routed(from_dlpack):
    def routed(x, /, *args, **kwargs):
        return from_dlpack(_dlpack_witness.asdlpack(x), *args, **kwargs)

    return routed
"#;

/// Runs every witness as is and routed; fails at the first run that does not pass.
pub fn run(venv: &Venv) -> Result {
    let dir = std::env::temp_dir().join(format!("dlpack-witness-{}", std::process::id()));
    for witness in WITNESSES {
        run_one(venv, witness, &dir.join(witness.package))?;
    }
    // Only when everything passed: a failure leaves the copies for a look.
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn run_one(venv: &Venv, witness: &Witness, dir: &Path) -> Result {
    let source = locate(venv, witness)?;
    let text = std::fs::read_to_string(&source)
        .map_err(|err| Error::new(format!("cannot read {}: {err}", source.display())))?;
    let routed = route(&text, witness)?;
    let name = source
        .file_name()
        .ok_or_else(|| Error::new(format!("{} has no file name", source.display())))?;
    for (kind, contents) in [("as-is", text.as_str()), ("routed", routed.as_str())] {
        let folder = dir.join(kind);
        std::fs::create_dir_all(&folder)
            .map_err(|err| Error::new(format!("cannot create {}: {err}", folder.display())))?;
        let file = folder.join(name);
        std::fs::write(&file, contents)
            .map_err(|err| Error::new(format!("cannot write {}: {err}", file.display())))?;
        eprintln!(
            "witness: {} {} ({kind}), from {}",
            witness.package,
            witness.file,
            source.display()
        );
        venv.apply(Cmd::new(venv.python()))
            .args(["-m", "pytest", "-q", "-rfEsxX", "-p", "no:cacheprovider"])
            .arg("--rootdir")
            .arg(&folder)
            .arg(&file)
            .current_dir(&folder)
            .run()?;
    }
    Ok(())
}

/// The test file inside the installed package.
fn locate(venv: &Venv, witness: &Witness) -> Result<PathBuf> {
    let script = format!(
        "import importlib.util, pathlib\n\
         spec = importlib.util.find_spec({package:?})\n\
         print(pathlib.Path(spec.origin).parent if spec and spec.origin else '')",
        package = witness.package
    );
    let folder = venv
        .apply(Cmd::new(venv.python()))
        .args(["-c", &script])
        .read()?;
    let folder = folder.trim();
    if folder.is_empty() {
        return Err(Error::new(format!(
            "the witness package `{}` is not installed in the venv (requirements-test.txt)",
            witness.package
        )));
    }
    let file = Path::new(folder).join(witness.file);
    if !file.is_file() {
        return Err(Error::new(format!(
            "`{}` no longer ships {} ({} does not exist): update WITNESSES in xtask/src/witness.rs",
            witness.package,
            witness.file,
            file.display()
        )));
    }
    Ok(file)
}

/// The routed copy of a test file: every `<consumer>.from_dlpack(` call rewritten, the
/// expected failures marked, the helper appended.
fn route(text: &str, witness: &Witness) -> Result<String> {
    let mut out = String::with_capacity(text.len() + ROUTING_HELPER.len());
    let mut routed = 0;
    let mut marked = vec![false; witness.routed_xfail.len()];
    // Inside a triple-quoted string (a docstring) at the start of the line.
    let mut in_string = false;
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let code = line.trim_start();
        if let Some((i, failure)) = witness
            .routed_xfail
            .iter()
            .enumerate()
            .find(|(_, f)| code.starts_with(&format!("def {}(", f.test)))
        {
            let indent = &line[..line.len() - code.len()];
            out.push_str(&format!(
                "{indent}@pytest.mark.xfail(strict=True, raises={}, reason={:?})\n",
                failure.raises, failure.reason
            ));
            marked[i] = true;
        }
        // Comments and docstrings are text: they may name `np.from_dlpack` without calling it.
        let quotes = line.matches(r#"""""#).count() + line.matches("'''").count();
        let text_line = in_string || quotes > 0 || code.starts_with('#');
        in_string ^= quotes % 2 == 1;
        if text_line {
            out.push_str(line);
            continue;
        }
        let (line, n) = route_line(line).map_err(|what| {
            Error::new(format!(
                "{} line {}: {what}; the routing in xtask/src/witness.rs must learn it:\n{}",
                witness.file,
                number + 1,
                line.trim_end()
            ))
        })?;
        routed += n;
        out.push_str(&line);
    }
    if routed == 0 {
        return Err(Error::new(format!(
            "{} has no `{CALL}` call to route",
            witness.file
        )));
    }
    if let Some(i) = marked.iter().position(|m| !m) {
        return Err(Error::new(format!(
            "{} has no test `{}` to mark as an expected failure: update WITNESSES",
            witness.file, witness.routed_xfail[i].test
        )));
    }
    out.push_str(ROUTING_HELPER);
    eprintln!(
        "witness: {} routes {routed} from_dlpack calls",
        witness.file
    );
    Ok(out)
}

/// Rewrites each `<dotted name>.from_dlpack(` of a line of code; other mentions of
/// `from_dlpack` are fine only as part of a longer name (`test_from_dlpack_refcount`).
fn route_line(line: &str) -> Result<(String, usize), String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    let mut routed = 0;
    while let Some(at) = rest.find("from_dlpack") {
        let (before, after) = rest.split_at(at);
        let after_name = &after["from_dlpack".len()..];
        let joined_before = before.chars().next_back().is_some_and(is_name);
        let joined_after = after_name.chars().next().is_some_and(is_name);
        if joined_before || joined_after {
            out.push_str(before);
            out.push_str("from_dlpack");
            rest = after_name;
            continue;
        }
        if !(before.ends_with('.') && after_name.starts_with('(')) {
            return Err("a `from_dlpack` that is not a `<consumer>.from_dlpack(` call".into());
        }
        // The consumer: the dotted name before `.from_dlpack`.
        let start = before[..before.len() - 1]
            .rfind(|c: char| !(is_name(c) || c == '.'))
            .map_or(0, |i| i + 1);
        let consumer = &before[start..before.len() - 1];
        if consumer.is_empty() || consumer.starts_with(|c: char| c.is_ascii_digit()) {
            return Err("a `.from_dlpack(` call on something other than a dotted name".into());
        }
        out.push_str(&before[..start]);
        out.push_str(&format!("{HELPER}({consumer}.from_dlpack)("));
        rest = &after_name[1..];
        routed += 1;
    }
    out.push_str(rest);
    Ok((out, routed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_routed_and_names_left_alone() {
        let cases = [
            (
                "    y = np.from_dlpack(x)\n",
                "    y = _dlpack_witness_routed(np.from_dlpack)(x)\n",
                1,
            ),
            (
                "t = pa.Tensor.from_dlpack(a, copy=True); np.from_dlpack(b)",
                "t = _dlpack_witness_routed(pa.Tensor.from_dlpack)(a, copy=True); \
                 _dlpack_witness_routed(np.from_dlpack)(b)",
                2,
            ),
            (
                "    def test_from_dlpack_refcount(self, arr):\n",
                "    def test_from_dlpack_refcount(self, arr):\n",
                0,
            ),
        ];
        for (line, want, n) in cases {
            assert_eq!(route_line(line), Ok((want.to_owned(), n)), "{line}");
        }
        for line in [
            "f = np.from_dlpack",
            "from_dlpack(x)",
            "g(x).from_dlpack(y)",
        ] {
            assert!(route_line(line).is_err(), "{line}");
        }
    }

    #[test]
    fn expected_failures_are_marked_and_stale_ones_refused() {
        const W: Witness = Witness {
            package: "p",
            file: "t.py",
            routed_xfail: &[ExpectedFailure {
                test: "test_b",
                raises: "TypeError",
                reason: "why",
            }],
        };
        let text = "import pytest\n# np.from_dlpack in a comment\ndef test_a():\n    \
                    \"\"\"Docs of\n    ``np.from_dlpack``.\"\"\"\n    np.from_dlpack(1)\n\n\n\
                    def test_b():\n    np.from_dlpack(2)\n";
        let routed = route(text, &W).unwrap();
        assert!(routed.contains(
            "@pytest.mark.xfail(strict=True, raises=TypeError, reason=\"why\")\ndef test_b():\n"
        ));
        assert!(routed.contains("# np.from_dlpack in a comment\n"));
        assert!(routed.contains("    ``np.from_dlpack``.\"\"\"\n"));
        assert_eq!(
            routed
                .matches("_dlpack_witness_routed(np.from_dlpack)(")
                .count(),
            2
        );
        assert!(routed.ends_with(ROUTING_HELPER));
        let stale = text.replace("test_b", "test_c");
        assert!(route(&stale, &W).is_err());
        assert!(route("def test_a():\n    pass\n", &WITNESSES[0]).is_err());
    }
}
