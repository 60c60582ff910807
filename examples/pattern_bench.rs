//! Cost and grouping accuracy of logmon's template extractor (`logmon::pattern`).
//!
//!   cargo run --release --example pattern_bench -- [--loghub DIR] [--corpus DIR] [--misses N] [--db URL]
//!
//! For each data set, one line: lines, true groups -> predicted groups, ns/line, and grouping
//! accuracy (Zhu et al. 2019: a line is right when its predicted group holds exactly the lines
//! of its true group), stateless and after the optional merge step (`pattern::merge_similar`).
//!   (a) the labelled corpus committed under tests/corpus/ (per file, then all of it);
//!   (b) with `--loghub DIR`: every `*_2k.log_structured*.csv` under DIR (LogHub's 2k labelled
//!       samples: `Content` is the message, `EventId` the true group), one configuration for all;
//!   (c) one simulated hour of logmon's own generator (20 logs/s, four services), labelled by
//!       the message kind that produced each line.
//! ns/line is the ingest path's work per row: `Extractor::extract` (template + id, with its
//! exact id memo), best of several passes; "template only" and "md5 id" split it.
//! `--misses N` prints up to N wrongly grouped true groups per data set, to see why.
//! `--db URL` (a database `logmon migrate` prepared) adds the SQL twin's cost per row:
//! `log_template(m)` and `log_pattern_id(m)` over the corpus and the generator's lines, timed in
//! PostgreSQL against a plain scan of the same rows.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use logmon::generator::traffic::{Traffic, profiles};
use logmon::pattern::{self, Extractor, grouping_accuracy};

/// Distinct values one word position needs before the merge step merges it.
const MERGE_MIN_VALUES: usize = 5;

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
    println!(
        "{:<26} {:>6} {:>6}    {:>6}  {:>8} {:>9} {:>6}  {:>9} {:>7}",
        "data set", "lines", "groups", "found", "ns/line", "template", "md5 id", "accuracy", "merged"
    );

    println!("== (a) labelled corpus: {} ==", corpus_dir.display());
    let corpus = pattern::corpus::load_dir(&corpus_dir).expect("corpus");
    let mut files: BTreeMap<String, DataSet> = BTreeMap::new();
    for l in &corpus {
        let file = l.origin.split(':').next().unwrap_or_default().to_string();
        let d = files.entry(file.clone()).or_insert(DataSet { name: file, truth: vec![], messages: vec![] });
        d.truth.push(l.truth.clone());
        d.messages.push(l.message.clone());
    }
    for d in files.values() {
        report(d, misses);
    }
    report(
        &DataSet {
            name: "corpus, all files".into(),
            truth: corpus.iter().map(|l| l.truth.clone()).collect(),
            messages: corpus.iter().map(|l| l.message.clone()).collect(),
        },
        0,
    );

    if let Some(dir) = arg(&args, "--loghub") {
        println!("== (b) LogHub 2k samples: {dir} (untuned: one configuration for all) ==");
        let sets = loghub(Path::new(&dir));
        assert!(!sets.is_empty(), "no *_2k.log_structured*.csv under {dir}");
        let (mut sum, mut sum_merged) = (0.0, 0.0);
        for d in &sets {
            let (a, m) = report(d, misses);
            sum += a;
            sum_merged += m;
        }
        let n = sets.len() as f64;
        println!("{:<26} {:>63.3} {:>7.3}", format!("average of {} data sets", sets.len()), sum / n, sum_merged / n);
    } else {
        println!("== (b) LogHub: not measured (give --loghub DIR) ==");
    }

    println!("== (c) logmon's generator: one simulated hour ==");
    let services = ["auth-service", "feed-service", "db-service", "billing"].map(String::from);
    let mut traffic = Traffic::new(42, profiles(&services));
    let (mut truth, mut messages) = (vec![], vec![]);
    for _ in 0..20 * 3600 {
        if let Some(g) = traffic.next_generated(&[]) {
            truth.push(g.template_key.to_string());
            messages.push(g.message);
        }
    }
    let generated = DataSet { name: "generator, 1 hour".into(), truth, messages };
    report(&generated, misses);

    if let Some(db) = arg(&args, "--db") {
        println!("== SQL twin in PostgreSQL: us/row (each the best of 3 scans) ==");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let corpus_lines: Vec<String> = corpus.iter().map(|l| l.message.clone()).collect();
        rt.block_on(sql_costs(&db, &[("corpus", &corpus_lines), ("generator", &generated.messages[..20_000])]));
    }
}

/// Times log_template() and log_pattern_id() over `sets` (each repeated to >= 20k rows) in a
/// temporary table; prints us/row above a plain scan of the same rows.
async fn sql_costs(url: &str, sets: &[(&str, &[String])]) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect --db");
    tokio::spawn(conn);
    for (name, lines) in sets {
        let rows: Vec<&String> = lines.iter().cycle().take(lines.len().max(20_000)).collect();
        client
            .batch_execute("DROP TABLE IF EXISTS pattern_bench; CREATE TEMP TABLE pattern_bench (m text)")
            .await
            .unwrap();
        for chunk in rows.chunks(5000) {
            client.execute("INSERT INTO pattern_bench SELECT unnest($1::text[])", &[&chunk]).await.unwrap();
        }
        let n = rows.len() as f64;
        let time = |q: &'static str| {
            let client = &client;
            async move {
                let mut best = f64::MAX;
                for _ in 0..3 {
                    let t = Instant::now();
                    client.query_one(q, &[]).await.unwrap();
                    best = best.min(t.elapsed().as_secs_f64());
                }
                best * 1e6 / n
            }
        };
        let scan = time("SELECT count(length(m)) FROM pattern_bench").await;
        let template = time("SELECT count(log_template(m)) FROM pattern_bench").await;
        let id = time("SELECT count(log_pattern_id(m)) FROM pattern_bench").await;
        let md5 = time("SELECT count(pattern_id(m)) FROM pattern_bench").await;
        println!(
            "{name:<26} {:>6} rows: log_template {:.1} us/row, log_pattern_id {:.1} us/row, pattern_id alone {:.2} us/row",
            rows.len(),
            template - scan,
            id - scan,
            md5 - scan
        );
    }
}

/// Prints one data set's line; returns (accuracy, accuracy after the merge step).
fn report(d: &DataSet, misses: usize) -> (f64, f64) {
    let mut x = Extractor::new();
    let templates: Vec<String> = d.messages.iter().map(|m| x.extract(m).1.to_string()).collect();
    let acc = grouping_accuracy(&d.truth, &templates);
    let distinct: HashSet<&str> = templates.iter().map(String::as_str).collect();
    let merged_into = pattern::merge_similar(distinct.iter().copied(), MERGE_MIN_VALUES);
    let merged: Vec<&str> =
        templates.iter().map(|t| merged_into.get(t.as_str()).map_or(t.as_str(), String::as_str)).collect();
    let acc_merged = grouping_accuracy(&d.truth, &merged);
    let true_groups = d.truth.iter().collect::<HashSet<_>>().len();
    let (total, template_only, id_only) = costs(&d.messages, &templates);
    println!(
        "{:<26} {:>6} {:>6} -> {:>6}  {:>8.0} {:>9.0} {:>6.0}  {:>9.3} {:>7.3}",
        d.name,
        d.messages.len(),
        true_groups,
        distinct.len(),
        total,
        template_only,
        id_only,
        acc,
        acc_merged
    );
    if misses > 0 {
        print_misses(d, &templates, misses);
    }
    (acc, acc_merged)
}

/// ns/line: the extractor (template + memoised id), the template alone, and an md5 id alone.
fn costs(messages: &[String], templates: &[String]) -> (f64, f64, f64) {
    let passes = (300_000 / messages.len().max(1)).clamp(3, 50);
    let best = |f: &mut dyn FnMut()| {
        (0..passes)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_nanos() as f64 / messages.len().max(1) as f64
            })
            .fold(f64::MAX, f64::min)
    };
    let mut x = Extractor::new();
    let total = best(&mut || {
        for m in messages {
            black_box(x.extract(black_box(m)));
        }
    });
    let mut buf = String::new();
    let template_only = best(&mut || {
        for m in messages {
            pattern::template_into(black_box(m), &mut buf);
            black_box(&buf);
        }
    });
    let id_only = best(&mut || {
        for t in templates {
            black_box(pattern::pattern_id(black_box(t)));
        }
    });
    (total, template_only, id_only)
}

/// The true groups that were split or merged, with the templates their lines got.
fn print_misses(d: &DataSet, templates: &[String], max: usize) {
    let mut by_truth: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_template: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, t) in d.truth.iter().enumerate() {
        by_truth.entry(t).or_default().push(i);
        by_template.entry(&templates[i]).or_default().push(i);
    }
    let mut wrong: Vec<(&str, &Vec<usize>)> = by_truth
        .iter()
        .filter(|(_, lines)| {
            let t = &templates[lines[0]];
            !(lines.iter().all(|&i| &templates[i] == t) && by_template[t.as_str()].len() == lines.len())
        })
        .map(|(t, l)| (*t, l))
        .collect();
    wrong.sort_by_key(|(t, l)| (std::cmp::Reverse(l.len()), *t));
    for (truth, lines) in wrong.into_iter().take(max) {
        println!("   x {} lines of true group {truth:?}", lines.len());
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for &i in lines {
            *seen.entry(&templates[i]).or_default() += 1;
        }
        for (t, n) in seen.iter().take(4) {
            let others = by_template[t].iter().filter(|&&j| d.truth[j] != *truth).count();
            let others = if others > 0 { format!(" (+{others} lines of other groups)") } else { String::new() };
            println!("       {n:>4} as {t:?}{others}");
        }
    }
}

/// Every `*_2k.log_structured*.csv` under `dir` (two levels deep), one data set each.
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
