//! Cost and grouping accuracy of logmon's template extractor (`logmon::pattern`).
//!
//!   cargo run --release --example pattern_bench -- [--loghub DIR] [--corpus DIR] [--misses N]
//!
//! Prints ns/line and grouping accuracy (Zhu et al. 2019) for
//!   (a) the labelled corpus committed under tests/corpus/,
//!   (b) the LogHub 2k samples in DIR, if given: every `*_2k.log_structured*.csv` under it (the
//!       `Content` column is the message, `EventId` the true group), with one configuration for
//!       all data sets,
//!   (c) the lines of logmon's own generator (one simulated hour, labelled by the template that
//!       produced each line).
//! `--misses N` prints up to N wrongly grouped true groups per data set, to see why.
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use logmon::pattern::{self, grouping_accuracy};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .map(|i| args.get(i + 1).cloned().unwrap_or_else(|| panic!("{name} needs a value")))
}

struct DataSet {
    name: String,
    truth: Vec<String>,
    messages: Vec<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let misses: usize = arg(&args, "--misses").map(|n| n.parse().expect("--misses N")).unwrap_or(0);
    let corpus_dir = arg(&args, "--corpus")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"));

    println!("== (a) labelled corpus: {} ==", corpus_dir.display());
    let corpus = pattern::corpus::load_dir(&corpus_dir).expect("corpus");
    let by_file = split_by_origin(&corpus);
    for d in &by_file {
        report(d, misses);
    }
    let all = DataSet {
        name: "corpus (all files)".into(),
        truth: corpus.iter().map(|l| l.truth.clone()).collect(),
        messages: corpus.iter().map(|l| l.message.clone()).collect(),
    };
    report(&all, 0);

    if let Some(dir) = arg(&args, "--loghub") {
        println!("\n== (b) LogHub 2k samples: {dir} (untuned: one configuration for all) ==");
        let sets = loghub(Path::new(&dir));
        assert!(!sets.is_empty(), "no *_2k.log_structured*.csv under {dir}");
        let mut sum = 0.0;
        for d in &sets {
            sum += report(d, misses);
        }
        println!(
            "{:<28} {:>6} lines            accuracy {:.3} (average of {} data sets)",
            "LogHub average",
            "",
            sum / sets.len() as f64,
            sets.len()
        );
    }
}

fn split_by_origin(corpus: &[pattern::corpus::Labelled]) -> Vec<DataSet> {
    let mut files: BTreeMap<String, DataSet> = BTreeMap::new();
    for l in corpus {
        let file = l.origin.split(':').next().unwrap_or_default().to_string();
        let d = files.entry(file.clone()).or_insert(DataSet { name: file, truth: vec![], messages: vec![] });
        d.truth.push(l.truth.clone());
        d.messages.push(l.message.clone());
    }
    files.into_values().collect()
}

/// Prints one data set's line: lines, true groups, predicted groups, ns/line, accuracy.
fn report(d: &DataSet, misses: usize) -> f64 {
    let mut buf = String::new();
    let predicted: Vec<i64> = d
        .messages
        .iter()
        .map(|m| {
            pattern::template_into(m, &mut buf);
            pattern::pattern_id(&buf)
        })
        .collect();
    let ns = ns_per_line(&d.messages);
    let acc = grouping_accuracy(&d.truth, &predicted);
    let groups = |v: &[String]| v.iter().collect::<std::collections::HashSet<_>>().len();
    let pgroups = predicted.iter().collect::<std::collections::HashSet<_>>().len();
    println!(
        "{:<28} {:>6} lines {:>4} groups -> {:>4}  {:>5.0} ns/line  accuracy {:.3}",
        d.name,
        d.messages.len(),
        groups(&d.truth),
        pgroups,
        ns,
        acc
    );
    if misses > 0 {
        print_misses(d, &predicted, misses);
    }
    acc
}

/// Best of several passes of template + id over every line (the ingest path's work per row).
fn ns_per_line(messages: &[String]) -> f64 {
    let mut buf = String::new();
    let mut best = f64::MAX;
    let passes = (200_000 / messages.len().max(1)).clamp(3, 50);
    for _ in 0..passes {
        let t = Instant::now();
        for m in messages {
            pattern::template_into(black_box(m), &mut buf);
            black_box(pattern::pattern_id(&buf));
        }
        best = best.min(t.elapsed().as_nanos() as f64 / messages.len() as f64);
    }
    best
}

/// The true groups that were split or merged, with their lines' templates.
fn print_misses(d: &DataSet, predicted: &[i64], max: usize) {
    let mut by_truth: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_pred: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, t) in d.truth.iter().enumerate() {
        by_truth.entry(t).or_default().push(i);
        by_pred.entry(predicted[i]).or_default().push(i);
    }
    let mut wrong: Vec<(&str, &Vec<usize>)> = by_truth
        .iter()
        .filter(|(_, lines)| {
            let p = predicted[lines[0]];
            !(lines.iter().all(|&i| predicted[i] == p) && by_pred[&p].len() == lines.len())
        })
        .map(|(t, l)| (*t, l))
        .collect();
    wrong.sort_by_key(|(_, l)| std::cmp::Reverse(l.len()));
    for (truth, lines) in wrong.into_iter().take(max) {
        println!("   x {} lines of true group {truth:?}", lines.len());
        let mut seen: HashMap<i64, usize> = HashMap::new();
        for &i in lines {
            *seen.entry(predicted[i]).or_default() += 1;
        }
        for (p, n) in seen.iter().take(4) {
            let i = lines.iter().find(|&&i| predicted[i] == *p).unwrap();
            let others = by_pred[p].iter().filter(|&&j| d.truth[j] != *truth).count();
            println!(
                "       {n:>4} as {:?}{}",
                pattern::template(&d.messages[*i]),
                if others > 0 { format!(" (+{others} lines of other groups)") } else { String::new() }
            );
        }
    }
}

/// Every `*_2k.log_structured*.csv` under `dir` (searched two levels deep), one data set each.
fn loghub(dir: &Path) -> Vec<DataSet> {
    let mut files = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())).flatten() {
            let p = e.path();
            let name = p.file_name().unwrap_or_default().to_string_lossy().to_string();
            if p.is_dir() && depth < 2 {
                stack.push((p, depth + 1));
            } else if name.contains("_2k.log_structured") && name.ends_with(".csv") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
            let mut rows = csv_rows(&text).into_iter();
            let header = rows.next().expect("a header row");
            let col = |n: &str| {
                header.iter().position(|h| h == n).unwrap_or_else(|| panic!("{}: no {n} column", f.display()))
            };
            let (content, event) = (col("Content"), col("EventId"));
            let (mut truth, mut messages) = (vec![], vec![]);
            for r in rows.filter(|r| r.len() > content.max(event)) {
                truth.push(r[event].clone());
                messages.push(r[content].clone());
            }
            let name = f.file_name().unwrap().to_string_lossy().split("_2k").next().unwrap().to_string();
            DataSet { name: format!("LogHub {name}"), truth, messages }
        })
        .collect()
}

/// RFC 4180 rows: quoted fields may hold commas, newlines and doubled quotes.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = vec![];
    let mut row = vec![];
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}
