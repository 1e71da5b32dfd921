//! The rules of `cargo xtask tidy` on small in-memory trees (each must be able to fail), and on
//! the real one.

use super::*;

/// A small crate in the real layers: `values` below `import` below `classes`.
fn tree() -> Vec<(&'static str, String)> {
    vec![
        (
            "lib.rs",
            "mod classes;\nmod import;\npub use classes::T;\n".to_owned(),
        ),
        ("error.rs", "pub(crate) fn err() {}\n".to_owned()),
        (
            "values/mod.rs",
            "use crate::error::err;\n// crate::classes in a comment is no use\n".to_owned(),
        ),
        (
            "import/mod.rs",
            "use crate::{error::err, values::{self, x}};\nfn f() { let s = \"crate::classes\"; }\n"
                .to_owned(),
        ),
        (
            "classes/mod.rs",
            "use crate::import::f;\nfn g() { crate::values::x(); }\n".to_owned(),
        ),
    ]
}

fn check(files: &[(&'static str, String)]) -> Vec<String> {
    let borrowed: Vec<(&str, &str)> = files.iter().map(|(p, s)| (*p, s.as_str())).collect();
    check_layers(&borrowed, &[])
}

#[test]
fn a_tree_in_layer_order_passes() {
    assert_eq!(check(&tree()), Vec::<String>::new());
}

#[test]
fn a_use_of_a_higher_layer_fails_naming_the_use() {
    let mut files = tree();
    files[2]
        .1
        .push_str("fn h() {\n    crate::classes::g();\n}\n");
    let problems = check(&files);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("values/mod.rs:4: `crate::classes::g`")
            && problems[0].contains("`values` (values) uses `classes` (classes)"),
        "{problems:?}"
    );
    // values -> classes -> values is also a circle.
    assert!(
        problems[1].starts_with("a circle of modules"),
        "{problems:?}"
    );
}

#[test]
fn a_circle_within_one_layer_fails() {
    let mut files = tree();
    files.push(("export/mod.rs", "use crate::import::f;\n".to_owned()));
    files[3].1.push_str("use crate::export::{capsule::new};\n");
    let problems = check(&files);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    assert!(p.starts_with("a circle of modules"), "{p}");
    assert!(p.contains("`crate::export::{capsule::new}`"), "{p}");
    assert!(p.contains("export/mod.rs:1: `crate::import::f`"), "{p}");
}

#[test]
fn test_modules_strings_and_comments_are_not_uses() {
    let mut files = tree();
    files[1].1.push_str(
        "/* crate::classes */\n#[cfg(test)]\nmod tests {\n    use crate::classes::g;\n}\n\
         const C: char = '{';\nconst Q: char = '\\'';\n\
         fn r() -> &'static str { r#\"crate::module\"# }\n",
    );
    assert_eq!(check(&files), Vec::<String>::new());
}

#[test]
fn a_module_without_a_layer_fails() {
    let mut files = tree();
    files.push(("helpers.rs", String::new()));
    let problems = check(&files);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("module `helpers` has no layer"));
}

#[test]
fn allowed_edges_pass_and_stale_ones_fail() {
    let mut files = tree();
    files[2].1.push_str("fn h() { crate::classes::g(); }\n");
    let borrowed: Vec<(&str, &str)> = files.iter().map(|(p, s)| (*p, s.as_str())).collect();
    let allowed = [("values", "classes", "on its way out")];
    assert_eq!(check_layers(&borrowed, &allowed), Vec::<String>::new());
    let stale = [("values", "import", "gone")];
    let problems = check_layers(&borrowed[..2], &stale);
    assert!(
        problems.iter().any(|p| p.contains("no longer exists")),
        "{problems:?}"
    );
}

#[test]
fn a_long_file_fails_and_stale_exceptions_fail() {
    let long = "\n".repeat(MAX_LINES + 1);
    let files = [("big.rs", long.as_str()), ("small.rs", "fn f() {}\n")];
    let problems = check_sizes(&files, &[]);
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("big.rs: 601 lines"), "{problems:?}");
    assert_eq!(
        check_sizes(&files, &[("big.rs", "for now")]),
        Vec::<String>::new()
    );
    let problems = check_sizes(&files, &[("small.rs", "was big")]);
    assert!(
        problems[1].contains("remove it from ALLOWED_LONG"),
        "{problems:?}"
    );
}

/// The real tree, as `cargo xtask tidy` reads it, keeps the rules.
#[test]
fn dlpack_py_keeps_its_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(PY_SRC);
    let files = read_tree(&src).unwrap();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, s)| (p.as_str(), s.as_str()))
        .collect();
    assert!(borrowed.iter().any(|(p, _)| *p == "classes/object.rs"));
    assert_eq!(check_layers(&borrowed, ALLOWED_EDGES), Vec::<String>::new());
    assert_eq!(check_sizes(&borrowed, ALLOWED_LONG), Vec::<String>::new());
}
