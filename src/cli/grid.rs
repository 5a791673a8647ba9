//! List-valued flags of `sweep`: `--lr 0.01,0.05 --batch-size 64,128` runs
//! one configuration per combination. The command line is expanded before
//! parsing: each combination is an ordinary command line with one value per
//! flag, parsed (and so validated) like any other.

use std::ffi::OsString;
use std::sync::OnceLock;

/// Flags that are lists by themselves (or paths), never expanded.
const NATIVE: &[&str] = &["hidden", "kernel", "seeds", "mirror", "out", "data-dir", "preset"];
/// The most combinations a sweep may expand to.
pub const MAX_COMBINATIONS: usize = 1000;

/// One combination: the flags it sets and the command line that sets them.
#[derive(Clone, Debug, PartialEq)]
pub struct Combination {
    /// `(flag, value)` in command-line order, e.g. `("lr", "0.05")`.
    pub values: Vec<(String, String)>,
    pub argv: Vec<OsString>,
}

impl Combination {
    /// `lr=0.05 batch-size=128`, for labels.
    pub fn label(&self) -> String {
        let parts: Vec<String> = self.values.iter().map(|(f, v)| format!("{f}={v}")).collect();
        parts.join(" ")
    }

    /// `lr0.05-batch-size128`, for folder names.
    pub fn folder(&self) -> String {
        let parts: Vec<String> = self.values.iter().map(|(f, v)| format!("{f}{v}")).collect();
        parts.join("-")
    }
}

static COMBINATIONS: OnceLock<Vec<Combination>> = OnceLock::new();

/// The combinations of this process's sweep (empty when no flag is a list).
pub fn combinations() -> &'static [Combination] {
    COMBINATIONS.get().map_or(&[], Vec::as_slice)
}

/// Expands the list-valued flags of a `sweep` command line. Returns the
/// first combination's command line (to parse and dispatch) and records all
/// of them for [`combinations`]. Other command lines are returned as they are.
pub fn expand(argv: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let all = split(&argv)?;
    let first = all.first().map(|c| c.argv.clone()).unwrap_or(argv);
    let _ = COMBINATIONS.set(all);
    Ok(first)
}

/// Every combination of the list-valued flags of `argv` (none when it is
/// not a sweep or no flag is a list).
pub fn split(argv: &[OsString]) -> Result<Vec<Combination>, String> {
    if argv.get(1).and_then(|a| a.to_str()) != Some("sweep") {
        return Ok(Vec::new());
    }
    // (index of the value token, flag name, prefix kept before the value, values)
    let mut lists: Vec<(usize, String, String, Vec<String>)> = Vec::new();
    let mut i = 2;
    while i < argv.len() {
        let Some(token) = argv[i].to_str() else {
            i += 1;
            continue;
        };
        if let Some(flag) = token.strip_prefix("--") {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (flag.to_string(), None),
            };
            let (at, prefix, value) = match inline {
                Some(v) => (i, format!("--{name}="), Some(v)),
                None => match argv.get(i + 1).and_then(|a| a.to_str()) {
                    Some(v) if !v.starts_with("--") => (i + 1, String::new(), Some(v.to_string())),
                    _ => (i, String::new(), None),
                },
            };
            if let Some(v) = value.filter(|v| v.contains(',') && !NATIVE.contains(&name.as_str())) {
                let values: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
                if values.iter().any(String::is_empty) {
                    return Err(format!("--{name} {v}: an empty value in the list"));
                }
                lists.push((at, name, prefix, values));
            }
            i = at + 1;
        } else {
            i += 1;
        }
    }
    if lists.is_empty() {
        return Ok(Vec::new());
    }
    let count = lists
        .iter()
        .try_fold(1usize, |n, l| n.checked_mul(l.3.len()))
        .filter(|&n| n <= MAX_COMBINATIONS)
        .ok_or_else(|| {
            let sizes: Vec<String> = lists
                .iter()
                .map(|l| format!("--{} ({})", l.1, l.3.len()))
                .collect();
            format!(
                "the lists {} make more than {MAX_COMBINATIONS} combinations; sweep fewer values at once",
                sizes.join(" × ")
            )
        })?;
    let mut out = Vec::with_capacity(count);
    for k in 0..count {
        // Mixed radix, the last list fastest.
        let mut rest = k;
        let mut pick = vec![0; lists.len()];
        for (j, l) in lists.iter().enumerate().rev() {
            pick[j] = rest % l.3.len();
            rest /= l.3.len();
        }
        let mut a = argv.to_vec();
        let mut values = Vec::new();
        for (l, &p) in lists.iter().zip(&pick) {
            a[l.0] = OsString::from(format!("{}{}", l.2, l.3[p]));
            values.push((l.1.clone(), l.3[p].clone()));
        }
        out.push(Combination { values, argv: a });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn lists_expand_to_every_combination_in_order() {
        let c = split(&args(
            "scratchnet sweep mlp --hidden 32,64 --lr 0.01,0.05 --pool --batch-size=64,128 --seeds 0,1",
        ))
        .unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].label(), "lr=0.01 batch-size=64");
        assert_eq!(c[1].label(), "lr=0.01 batch-size=128");
        assert_eq!(c[3].folder(), "lr0.05-batch-size128");
        assert_eq!(
            c[2].argv,
            args("scratchnet sweep mlp --hidden 32,64 --lr 0.05 --pool --batch-size=64 --seeds 0,1")
        );
        // No list, or not a sweep: nothing to expand.
        assert!(
            split(&args("scratchnet sweep mlp --hidden 32,64 --lr 0.01"))
                .unwrap()
                .is_empty()
        );
        assert!(
            split(&args("scratchnet train mlp --lr 0.01,0.05"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn empty_values_and_huge_grids_are_refused() {
        let e = split(&args("scratchnet sweep mlp --lr 0.01,")).unwrap_err();
        assert!(e.contains("--lr") && e.contains("empty"), "{e}");
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let line = format!(
            "scratchnet sweep mlp --epochs {0} --batch-size {0}",
            many.join(",")
        );
        let e = split(&args(&line)).unwrap_err();
        assert!(e.contains("more than 1000 combinations"), "{e}");
    }
}
