//! `cargo xtask tidy`: repository rules checked by reading the sources, without a build (as
//! rust-analyzer's tidy does), so that they hold without anyone remembering them.
//!
//! - **dlpack-py's layers.** Every top-level module of `crates/dlpack-py/src` belongs to one layer
//!   of [`LAYERS`]; a module may name (`crate::...`, in code: comments, strings and `#[cfg(test)]`
//!   modules are not read) modules of its own layer or of a lower one, and the modules form no
//!   circle. A failure names the file, the line and the path that breaks the rule.
//! - **File size.** No `.rs` file of dlpack-py has more than [`MAX_LINES`] lines; the files of the
//!   other crates over it are listed (not a failure).
//!
//! Known exceptions are in [`ALLOWED_EDGES`] and [`ALLOWED_LONG`], each with its reason; an
//! exception that no longer applies fails too, so that it is removed.

use std::path::{Path, PathBuf};

mod source;

use crate::cmd::{Error, Result};
use crate::workspace::Workspace;

/// The crate whose layers are checked.
const PY_SRC: &str = "crates/dlpack-py/src";

/// The most lines a source file of dlpack-py may have.
pub const MAX_LINES: usize = 600;

/// dlpack-py's layers, lowest first, and the top-level modules in each. The crate root (`lib.rs`)
/// and `prelude` are above all of them.
pub const LAYERS: &[(&str, &[&str])] = &[
    ("errors", &["error"]),
    ("cpython", &["cpython"]),
    ("values", &["values"]),
    ("device seam", &["sync"]),
    ("device registry", &["gpu"]),
    ("import / export", &["export", "import"]),
    ("classes", &["classes"]),
    ("test helpers", &["testing"]),
    ("module", &["module"]),
    ("root", &["lib", "prelude"]),
];

/// Uses of a higher layer that are known and on their way out: (from, to, why). None today.
pub const ALLOWED_EDGES: &[(&str, &str, &str)] = &[];

/// dlpack-py files allowed over [`MAX_LINES`] for now: (path under the crate's `src`, why). None
/// today.
pub const ALLOWED_LONG: &[(&str, &str)] = &[];

/// `cargo xtask tidy`.
pub fn run(ws: &Workspace) -> Result {
    let root = ws.root();
    let src = root.join(PY_SRC);
    let files = read_tree(&src)?;
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, s)| (p.as_str(), s.as_str()))
        .collect();
    let mut problems = check_layers(&borrowed, ALLOWED_EDGES);
    problems.extend(check_sizes(&borrowed, ALLOWED_LONG));
    let mut long = Vec::new();
    for dir in ["crates", "xtask", "benches", "fuzz"] {
        collect_long(&root.join(dir), root, &mut long)?;
    }
    long.retain(|(path, _)| !path.starts_with(PY_SRC));
    if !long.is_empty() {
        println!("tidy: files over {MAX_LINES} lines outside dlpack-py (not a failure):");
        for (path, n) in &long {
            println!("  {path}: {n} lines");
        }
    }
    if problems.is_empty() {
        println!(
            "tidy: dlpack-py's {} files keep their layers, no circle, none over {MAX_LINES} lines \
             (allowed: {} edge(s), {} long file(s))",
            files.len(),
            ALLOWED_EDGES.len(),
            ALLOWED_LONG.len()
        );
        Ok(())
    } else {
        Err(Error::new(format!(
            "tidy found {} problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        )))
    }
}

/// Every `.rs` file under `src`, as (path relative to `src` with `/`, text), sorted.
fn read_tree(src: &Path) -> Result<Vec<(String, String)>> {
    let mut paths = Vec::new();
    rust_files(src, &mut paths)?;
    let mut out = Vec::new();
    for p in paths {
        let rel = p
            .strip_prefix(src)
            .map_err(|e| Error::new(e.to_string()))?
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&p)
            .map_err(|e| Error::new(format!("cannot read {}: {e}", p.display())))?;
        out.push((rel, text));
    }
    out.sort();
    Ok(out)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::new(format!("cannot list {}: {e}", dir.display())))?;
    for e in entries {
        let p = e.map_err(|e| Error::new(e.to_string()))?.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    Ok(())
}

/// The `.rs` files under `dir` with more than [`MAX_LINES`] lines, as (path under `root`, lines).
fn collect_long(dir: &Path, root: &Path, out: &mut Vec<(String, usize)>) -> Result {
    if !dir.is_dir() {
        return Ok(());
    }
    let mut paths = Vec::new();
    rust_files(dir, &mut paths)?;
    for p in paths {
        let n = std::fs::read_to_string(&p).map_or(0, |s| s.lines().count());
        if n > MAX_LINES {
            let rel = p.strip_prefix(root).unwrap_or(&p);
            out.push((rel.to_string_lossy().replace('\\', "/"), n));
        }
    }
    out.sort();
    Ok(())
}

/// The top-level module a file under `src` belongs to (`lib` for the crate root).
fn module_of(path: &str) -> &str {
    let first = path.split('/').next().unwrap_or(path);
    first.strip_suffix(".rs").unwrap_or(first)
}

/// The index in [`LAYERS`]-shaped `layers` of `module`.
fn layer_of(layers: &[(&str, &[&str])], module: &str) -> Option<usize> {
    layers.iter().position(|(_, ms)| ms.contains(&module))
}

/// One use of another top-level module: where, and the path as written.
#[derive(Debug, Clone)]
struct Use {
    from: String,
    to: String,
    file: String,
    line: usize,
    path: String,
}

/// The layer rules over a crate's `src` tree given as (path, text): uses of a higher layer,
/// modules without a layer, circles, and exceptions that no longer apply.
pub fn check_layers(files: &[(&str, &str)], allowed: &[(&str, &str, &str)]) -> Vec<String> {
    check_layers_with(files, LAYERS, allowed)
}

fn check_layers_with(
    files: &[(&str, &str)],
    layers: &[(&str, &[&str])],
    allowed: &[(&str, &str, &str)],
) -> Vec<String> {
    let mut problems = Vec::new();
    let top: Vec<&str> = {
        let mut t: Vec<&str> = files.iter().map(|(p, _)| module_of(p)).collect();
        t.dedup();
        t
    };
    for m in &top {
        if layer_of(layers, m).is_none() {
            problems.push(format!(
                "crates/dlpack-py/src: module `{m}` has no layer in xtask/src/tidy/mod.rs (LAYERS)"
            ));
        }
    }
    let mut uses = Vec::new();
    for (path, text) in files {
        let from = module_of(path);
        for (line, target, written) in source::crate_paths(text) {
            // `crate::Name` of a root item: the root's layer.
            let to = if top.contains(&target.as_str()) {
                target
            } else {
                "lib".to_owned()
            };
            if to != from {
                uses.push(Use {
                    from: from.to_owned(),
                    to,
                    file: (*path).to_owned(),
                    line,
                    path: written,
                });
            }
        }
    }
    let is_allowed = |u: &Use| allowed.iter().any(|(f, t, _)| *f == u.from && *t == u.to);
    for u in &uses {
        let (Some(a), Some(b)) = (layer_of(layers, &u.from), layer_of(layers, &u.to)) else {
            continue;
        };
        if b > a && !is_allowed(u) {
            problems.push(format!(
                "crates/dlpack-py/src/{}:{}: `{}`: `{}` ({}) uses `{}` ({}), a higher layer",
                u.file, u.line, u.path, u.from, layers[a].0, u.to, layers[b].0
            ));
        }
    }
    for (f, t, why) in allowed {
        if !uses.iter().any(|u| u.from == *f && u.to == *t) {
            problems.push(format!(
                "xtask/src/tidy/mod.rs: the allowed use `{f}` -> `{t}` ({why}) no longer exists: \
                 remove it from ALLOWED_EDGES"
            ));
        }
    }
    let graph: Vec<&Use> = uses.iter().filter(|u| !is_allowed(u)).collect();
    if let Some(circle) = find_circle(&top, &graph) {
        let steps: Vec<String> = circle
            .iter()
            .map(|u| {
                format!(
                    "`{}` -> `{}` (crates/dlpack-py/src/{}:{}: `{}`)",
                    u.from, u.to, u.file, u.line, u.path
                )
            })
            .collect();
        problems.push(format!("a circle of modules: {}", steps.join(", ")));
    }
    problems
}

/// A circle in the graph of uses between `nodes`, as the uses along it, if there is one.
fn find_circle<'u>(nodes: &[&str], uses: &[&'u Use]) -> Option<Vec<&'u Use>> {
    // Depth-first search with colours; the stack holds the uses that led here.
    fn visit<'u>(
        node: &str,
        uses: &[&'u Use],
        state: &mut Vec<(String, u8)>,
        stack: &mut Vec<&'u Use>,
    ) -> Option<Vec<&'u Use>> {
        let set = |state: &mut Vec<(String, u8)>, n: &str, c: u8| match state
            .iter_mut()
            .find(|(m, _)| m == n)
        {
            Some(s) => s.1 = c,
            None => state.push((n.to_owned(), c)),
        };
        set(state, node, 1);
        for u in uses.iter().filter(|u| u.from == node) {
            let colour = state.iter().find(|(m, _)| *m == u.to).map_or(0, |s| s.1);
            stack.push(u);
            if colour == 1 {
                let start = stack.iter().position(|s| s.from == u.to).unwrap_or(0);
                return Some(stack[start..].to_vec());
            }
            if colour == 0 {
                if let Some(c) = visit(&u.to, uses, state, stack) {
                    return Some(c);
                }
            }
            stack.pop();
        }
        set(state, node, 2);
        None
    }
    let mut state = Vec::new();
    for n in nodes {
        if state.iter().any(|(m, c): &(String, u8)| m == n && *c != 0) {
            continue;
        }
        let mut stack = Vec::new();
        if let Some(c) = visit(n, uses, &mut state, &mut stack) {
            return Some(c);
        }
    }
    None
}

/// The files of a crate's `src` tree over [`MAX_LINES`], and exceptions that no longer apply.
pub fn check_sizes(files: &[(&str, &str)], allowed: &[(&str, &str)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, text) in files {
        let n = text.lines().count();
        let exempt = allowed.iter().find(|(p, _)| p == path);
        match exempt {
            None if n > MAX_LINES => problems.push(format!(
                "crates/dlpack-py/src/{path}: {n} lines, over {MAX_LINES}: split it"
            )),
            Some((_, why)) if n <= MAX_LINES => problems.push(format!(
                "xtask/src/tidy/mod.rs: {path} ({why}) has {n} lines now: remove it from ALLOWED_LONG"
            )),
            _ => {}
        }
    }
    for (path, why) in allowed {
        if !files.iter().any(|(p, _)| p == path) {
            problems.push(format!(
                "xtask/src/tidy/mod.rs: {path} ({why}) does not exist: remove it from ALLOWED_LONG"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests;
