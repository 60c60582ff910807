//! The labelled corpus format of `tests/corpus/*.txt`: a `## template` line names the true
//! template of the message lines that follow it; `# ` lines are comments; blank lines are
//! ignored. Messages are kept exactly as written (no trimming), except the line end.
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    /// The true template, as a person wrote it: the group label.
    pub truth: String,
    pub message: String,
    /// `file:line`, to say where a failing line comes from.
    pub origin: String,
}

pub fn parse(name: &str, text: &str) -> Result<Vec<Labelled>, String> {
    let mut truth: Option<&str> = None;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if let Some(t) = line.strip_prefix("## ") {
            truth = Some(t.trim());
        } else if line.starts_with("# ") || line == "#" || line.trim().is_empty() {
        } else {
            let truth = truth.ok_or_else(|| format!("{name}:{}: a message before any `## template` line", n + 1))?;
            out.push(Labelled {
                truth: truth.to_string(),
                message: line.to_string(),
                origin: format!("{name}:{}", n + 1),
            });
        }
    }
    Ok(out)
}

/// Every `*.txt` file of `dir`, in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<Labelled>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        all.extend(parse(&f.file_name().unwrap_or_default().to_string_lossy(), &text)?);
    }
    Ok(all)
}
