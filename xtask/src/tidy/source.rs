//! Reading Rust text without a parser: the `crate::` paths of the code, with comments, string and
//! char literals and `#[cfg(test)]` items left out.

/// Every `crate::<module>` (and `$crate::`) path in the code of `text` (comments, string and char
/// literals and `#[cfg(test)]` modules left out), as (line, first segment, path as written); a
/// group `crate::{a::X, b}` gives one entry per member.
pub(super) fn crate_paths(text: &str) -> Vec<(usize, String, String)> {
    let code = without_tests(&code_only(text));
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = code[at..].find("crate::").map(|i| i + at) {
        at = i + "crate::".len();
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let line = code[..i].matches('\n').count() + 1;
        if bytes.get(at) == Some(&b'{') {
            let end = matching_brace(&code, at).unwrap_or(code.len());
            for member in split_top(&code[at + 1..end]) {
                let member = member.trim();
                let seg = first_segment(member);
                if !seg.is_empty() && seg != "self" {
                    out.push((line, seg.to_owned(), format!("crate::{}", compact(member))));
                }
            }
            at = end;
        } else {
            let seg = first_segment(&code[at..]);
            if !seg.is_empty() {
                let mut path_end = code[at..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .map_or(code.len(), |e| at + e);
                if code[..path_end].ends_with("::") && bytes.get(path_end) == Some(&b'{') {
                    path_end = matching_brace(&code, path_end).map_or(code.len(), |e| e + 1);
                }
                let written = compact(&code[at..path_end]);
                out.push((line, seg.to_owned(), format!("crate::{written}")));
            }
        }
    }
    out
}

fn first_segment(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

fn compact(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The index of the `}` matching the `{` at `open`.
fn matching_brace(code: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in code[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `a, b::{c, d}, e` split at the commas outside braces.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// `text` with comments and the contents of string and char literals blanked (newlines kept, so
/// that line numbers stay).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            out.push(c);
            for _ in i + 1..=j {
                out.push(' ');
            }
            i = j + 1;
            while i < chars.len() {
                if chars[i] == '"' && (0..hashes).all(|k| chars.get(i + 1 + k) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'), or a lifetime ('a), which stays.
            let end = if next == Some('\\') {
                (i + 3..chars.len()).find(|&j| chars[j] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(e) => {
                    for _ in i..=e {
                        out.push(' ');
                    }
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// `code` (comments and literals blanked) with the bodies of `#[cfg(test)]` items blanked.
fn without_tests(code: &str) -> String {
    let mut out = code.to_owned();
    let mut at = 0;
    while let Some(i) = out[at..].find("#[cfg(test)]").map(|i| i + at) {
        at = i + 1;
        let Some(open) = out[i..].find('{').map(|o| o + i) else {
            break;
        };
        // Only an item whose header (up to its `{`) has no `;`: a `mod` or `fn` body.
        if out[i..open].contains(';') {
            continue;
        }
        let end = matching_brace(&out, open).unwrap_or(out.len() - 1);
        let blanked: String = out[i..=end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(i..=end, &blanked);
        at = end;
    }
    out
}
