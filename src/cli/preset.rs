//! `--preset NAME` for `train` and `sweep`: a named list of flags, expanded in
//! place before parsing. Flags given after it override the preset's (the
//! command line lets the last occurrence of a flag win).

use std::ffi::OsString;

/// A preset: its name, the model subcommand it applies to, its flags, and what it measured.
pub struct Preset {
    pub name: &'static str,
    pub model: &'static str,
    pub flags: &'static [&'static str],
    pub note: &'static str,
}

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "report",
        model: "mlp",
        flags: &[],
        note: "the report's settings (the defaults)",
    },
    Preset {
        name: "report",
        model: "cnn",
        flags: &[],
        note: "the report's settings (the defaults)",
    },
    Preset {
        name: "best-mlp",
        model: "mlp",
        flags: &[
            "--hidden",
            "1024",
            "--activation",
            "relu",
            "--init",
            "he",
            "--optimizer",
            "adamw",
            "--lr",
            "0.001",
            "--weight-decay",
            "0.05",
            "--loss-reduction",
            "mean",
            "--schedule",
            "cosine",
            "--epochs",
            "30",
            "--normalize",
            "standard",
        ],
        note: "98.57 ± 0.06 % test accuracy over 3 seeds, about 50 s on 2 cores",
    },
    Preset {
        name: "best-cnn",
        model: "cnn",
        flags: &[
            "--kernel",
            "5",
            "--filters",
            "64",
            "--pool",
            "--pool-size",
            "3",
            "--conv-bias",
            "--dropout",
            "0.5",
            "--batch-size",
            "64",
            "--optimizer",
            "adamw",
            "--lr",
            "0.002",
            "--weight-decay",
            "0.05",
            "--schedule",
            "cosine",
            "--epochs",
            "20",
            "--normalize",
            "standard",
        ],
        note: "99.06 ± 0.02 % test accuracy over 3 seeds, under 2 minutes on 2 cores",
    },
    Preset {
        name: "fast-mlp",
        model: "mlp",
        flags: &[
            "--hidden",
            "512",
            "--activation",
            "relu",
            "--init",
            "he",
            "--optimizer",
            "adamw",
            "--lr",
            "0.001",
            "--weight-decay",
            "0.05",
            "--loss-reduction",
            "mean",
            "--schedule",
            "cosine",
            "--epochs",
            "14",
            "--shift",
            "1",
            "--normalize",
            "standard",
        ],
        note: "512 ReLU units, AdamW, cosine, random 1-pixel shifts, 14 epochs, for `scratchnet speedrun mlp`",
    },
    Preset {
        name: "fast-cnn",
        model: "cnn",
        flags: &[
            "--kernel",
            "5",
            "--filters",
            "32",
            "--pool",
            "--pool-size",
            "2",
            "--conv-bias",
            "--batch-size",
            "64",
            "--optimizer",
            "adamw",
            "--lr",
            "0.002",
            "--weight-decay",
            "0.05",
            "--schedule",
            "cosine",
            "--epochs",
            "12",
            "--shift",
            "1",
            "--normalize",
            "standard",
        ],
        note: "32 filters 5×5, 2×2 max-pool, AdamW, cosine, random 1-pixel shifts, 12 epochs, for `scratchnet speedrun cnn`",
    },
];

/// Replaces `--preset NAME` (or `--preset=NAME`) with the preset's flags.
/// The preset must match the model subcommand (`mlp` or `cnn`) before it.
pub fn expand(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let mut out = Vec::with_capacity(args.len());
    let mut model: Option<String> = None;
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy().into_owned();
        if model.is_none() && (text == "mlp" || text == "cnn") {
            model = Some(text.clone());
        }
        let name = if text == "--preset" {
            Some(
                iter.next()
                    .map(|v| v.to_string_lossy().into_owned())
                    .ok_or("--preset needs a name")?,
            )
        } else {
            text.strip_prefix("--preset=").map(str::to_string)
        };
        let Some(name) = name else {
            out.push(arg);
            continue;
        };
        let model = model
            .as_deref()
            .ok_or("--preset goes after `mlp` or `cnn` (e.g. `scratchnet train mlp --preset best-mlp`)")?;
        let preset = PRESETS
            .iter()
            .find(|p| p.name == name && p.model == model)
            .ok_or_else(|| {
                let names: Vec<String> = PRESETS
                    .iter()
                    .filter(|p| p.model == model)
                    .map(|p| format!("{} ({})", p.name, p.note))
                    .collect();
                format!(
                    "no preset `{name}` for {model}; presets for {model}: {}",
                    names.join(", ")
                )
            })?;
        out.extend(preset.flags.iter().map(OsString::from));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn expands_in_place_and_checks_the_model() {
        let out = expand(args(&[
            "scratchnet",
            "train",
            "cnn",
            "--preset",
            "best-cnn",
            "--epochs",
            "1",
        ]))
        .unwrap();
        let text: Vec<String> = out.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        assert_eq!(&text[..3], ["scratchnet", "train", "cnn"]);
        assert!(text.contains(&"--pool".to_string()));
        assert_eq!(text.last().unwrap(), "1");
        assert!(
            expand(args(&["scratchnet", "train", "mlp", "--preset=report"]))
                .unwrap()
                .len()
                == 3
        );
        let e = expand(args(&["scratchnet", "train", "mlp", "--preset", "best-cnn"])).unwrap_err();
        assert!(
            e.contains("no preset `best-cnn` for mlp") && e.contains("best-mlp"),
            "{e}"
        );
        assert!(expand(args(&["scratchnet", "train", "--preset", "best-mlp"])).is_err());
    }
}
