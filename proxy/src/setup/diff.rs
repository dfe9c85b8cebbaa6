//! Unified diffs of small text files, for `setup --dry-run`: the operator
//! sees exactly which lines would change before anything is written.

use std::fmt::Write;

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// The unified diff from `old` to `new`, labelled with `path`; empty when
/// they are equal. A missing file diffs as `/dev/null`.
pub fn unified(path: &str, old: Option<&str>, new: Option<&str>) -> String {
    let a: Vec<&str> = old.map(|t| t.lines().collect()).unwrap_or_default();
    let b: Vec<&str> = new.map(|t| t.lines().collect()).unwrap_or_default();
    if old == new {
        return String::new();
    }
    let ops = edit_script(&a, &b);
    let mut out = String::new();
    let from = if old.is_some() { path } else { "/dev/null" };
    let to = if new.is_some() { path } else { "/dev/null" };
    let _ = writeln!(out, "--- {from}\n+++ {to}");
    for hunk in hunks(&ops) {
        let (mut a_start, mut a_len, mut b_start, mut b_len) = (0, 0, 0, 0);
        for (i, op) in ops[hunk.clone()].iter().enumerate() {
            if i == 0 {
                a_start = op.a;
                b_start = op.b;
            }
            match op.kind {
                Kind::Same => {
                    a_len += 1;
                    b_len += 1;
                }
                Kind::Removed => a_len += 1,
                Kind::Added => b_len += 1,
            }
        }
        let start = |s: usize, len: usize| if len == 0 { s } else { s + 1 };
        let _ = writeln!(
            out,
            "@@ -{},{a_len} +{},{b_len} @@",
            start(a_start, a_len),
            start(b_start, b_len)
        );
        for op in &ops[hunk] {
            let (sign, line) = match op.kind {
                Kind::Same => (' ', a[op.a]),
                Kind::Removed => ('-', a[op.a]),
                Kind::Added => ('+', b[op.b]),
            };
            let _ = writeln!(out, "{sign}{line}");
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Same,
    Removed,
    Added,
}

/// One line of the edit script, with the positions in both files it
/// stands at.
#[derive(Debug, Clone, Copy)]
struct Op {
    kind: Kind,
    a: usize,
    b: usize,
}

/// The shortest edit script by longest common subsequence; configuration
/// files are small enough for the quadratic table.
fn edit_script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(a.len() + b.len());
    while i < a.len() || j < b.len() {
        let op = |kind| Op { kind, a: i, b: j };
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push(op(Kind::Same));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(op(Kind::Removed));
            i += 1;
        } else {
            ops.push(op(Kind::Added));
            j += 1;
        }
    }
    ops
}

/// Ranges of the script to print: each change with its context, changes
/// closer than twice the context joined into one hunk.
fn hunks(ops: &[Op]) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if op.kind == Kind::Same {
            continue;
        }
        let start = i.saturating_sub(CONTEXT);
        let end = (i + 1 + CONTEXT).min(ops.len());
        match out.last_mut() {
            Some(last) if start <= last.end => last.end = end,
            _ => out.push(start..end),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified("f", Some("a\n"), Some("a\n")), "");
        assert_eq!(unified("f", None, None), "");
    }

    #[test]
    fn a_new_file_is_all_additions() {
        let d = unified("/etc/x", None, Some("a\nb\n"));
        assert_eq!(d, "--- /dev/null\n+++ /etc/x\n@@ -0,0 +1,2 @@\n+a\n+b\n");
    }

    #[test]
    fn a_change_keeps_three_lines_of_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
        let d = unified("f", Some(old), Some(new));
        assert_eq!(
            d,
            "--- f\n+++ f\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"
        );
    }

    #[test]
    fn a_removed_file_is_all_removals() {
        let d = unified("f", Some("a\n"), None);
        assert_eq!(d, "--- f\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-a\n");
    }
}
