//! Patterns: the collector's template extractor (`logmon::pattern`, Rust) and SQL's
//! `log_template()` / `log_pattern_id()` give every line the same template and the same id, so a
//! row written with plain SQL gets the pattern the collector would give it. Proven on the labelled
//! corpus and on thousands of generated and mutated lines (odd Unicode, empty, very long, only
//! digits, unbalanced quotes and brackets).
use logmon::pattern;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio_postgres::Client;

use crate::helpers::*;

fn corpus_lines() -> Vec<String> {
    let corpus = pattern::corpus::load_dir(&repo().join("tests/corpus")).expect("tests/corpus");
    assert!(corpus.len() > 500, "the corpus lost lines: {}", corpus.len());
    corpus.into_iter().map(|l| l.message).collect()
}

/// Pieces that exercise every rule and its edges: quotes, brackets, keys, units, dates, and
/// characters whose case or class differs between Unicode and ASCII (Kelvin sign, dotted I,
/// no-break space, zero-width space).
const PIECES: &[&str] = &[
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\u{b}",
    "\u{c}",
    "\"",
    "'",
    "`",
    "\\",
    "\\\"",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "<",
    ">",
    "=",
    ":",
    ",",
    ";",
    ".",
    "!",
    "?",
    "@",
    "/",
    "-",
    "_",
    "#",
    "*",
    "0",
    "7",
    "42",
    "3.14",
    "0x1f",
    "é",
    "É",
    "ß",
    "日本",
    "🙂",
    "\u{a0}",
    "\u{200b}",
    "\u{212a}",
    "İ",
    "ı",
    "ǅ",
    "user",
    "User",
    "for",
    "from",
    "FROM",
    "msg=",
    "message=",
    "event=",
    "GET ",
    "POST",
    "KB",
    "ms",
    "s",
    "Nov",
    "Tue",
    "may",
    "::",
    "()",
    "[]",
    "x.y",
    "host.example.com",
    "A.b",
    "key=",
    "Label:",
    "UID:",
    "'s",
    "host",
    "job",
    "true",
    "null",
    "NULL",
    "none",
    "failed",
    "root(uid=0)",
    "f('x')",
    "a=b",
    "=",
    "==",
    "\"a b\"",
    "'a b'",
    "\"GET /x HTTP/1.1\"",
    "a@b",
    "@x",
    "C:\\tmp",
    "http://x/y?z=1",
    "[::]:80",
    "<*>",
    "%s",
    "$1",
];

fn random_line(rng: &mut StdRng) -> String {
    let n = rng.random_range(0..30);
    (0..n).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect()
}

/// A corpus line changed the way real lines differ from each other and from well-formed text.
fn mutate(rng: &mut StdRng, line: &str, other: &str) -> String {
    let mut chars: Vec<char> = line.chars().collect();
    match rng.random_range(0..6) {
        0 => {
            for _ in 0..rng.random_range(1..5) {
                let at = rng.random_range(0..=chars.len());
                let piece = PIECES[rng.random_range(0..PIECES.len())];
                chars.splice(at..at, piece.chars());
            }
        }
        1 if !chars.is_empty() => {
            let a = rng.random_range(0..chars.len());
            let b = rng.random_range(a..=chars.len().min(a + 12));
            chars.drain(a..b);
        }
        2 => chars.truncate(rng.random_range(0..=chars.len())),
        3 => chars.extend(format!(" {other}").chars()),
        4 => chars = chars.into_iter().map(|c| if rng.random_bool(0.3) { flip_case(c) } else { c }).collect(),
        _ => {
            let words: Vec<&str> = line.split(' ').collect();
            let mut out: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            let i = rng.random_range(0..out.len());
            out[i] = PIECES[rng.random_range(0..PIECES.len())].to_string();
            return out.join(if rng.random_bool(0.5) { " " } else { "\t " });
        }
    }
    chars.into_iter().collect()
}

fn flip_case(c: char) -> char {
    if c.is_lowercase() { c.to_uppercase().next().unwrap_or(c) } else { c.to_lowercase().next().unwrap_or(c) }
}

/// Lines at the edges: empty, blank, digits only, and longer than the 4096 characters a template
/// reads, with a multi-byte character right at the cut.
fn edge_lines() -> Vec<String> {
    let long_word = "x".repeat(9000);
    vec![
        String::new(),
        " ".into(),
        " \t\n ".into(),
        "0".into(),
        "1234567890".into(),
        "123 456 789".into(),
        format!("{}é tail 42", "a".repeat(pattern::MAX_CHARS - 1)),
        format!("{}日本 42", "b ".repeat(pattern::MAX_CHARS / 2)),
        format!("user {long_word} 42"),
        "\"".repeat(5000),
        "'a ".repeat(3000),
        "a(".repeat(3000) + "=1",
        "msg=".repeat(2000) + "x",
        "x=\"".repeat(2000),
        "\\".repeat(4097),
        "for from for from for x from".into(),
        "user user user user bob".into(),
    ]
}

/// Asserts SQL gives each line the Rust template and id; reports every line that differs.
async fn assert_sql_equals_rust(c: &Client, lines: &[String]) {
    let mut differ = Vec::new();
    for chunk in lines.chunks(1000) {
        let rows = c
            .query(
                "SELECT log_template(m), log_pattern_id(m) FROM unnest($1::text[]) WITH ORDINALITY AS u(m, i) ORDER BY i",
                &[&chunk],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), chunk.len());
        for (line, row) in chunk.iter().zip(rows) {
            let p = pattern::extract(line);
            let (sql_template, sql_id): (String, i64) = (row.get(0), row.get(1));
            if sql_template != p.template || sql_id != p.id {
                differ.push(format!("{line:?}\n   rust {:?} {}\n   sql  {sql_template:?} {sql_id}", p.template, p.id));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} lines differ, e.g.:\n{}",
        differ.len(),
        lines.len(),
        differ[..differ.len().min(8)].join("\n")
    );
}

#[tokio::test]
async fn sql_gives_every_corpus_line_the_collectors_template_and_id() {
    let db = fresh_db().await;
    let c = db.client().await;
    assert_sql_equals_rust(&c, &corpus_lines()).await;
}

#[tokio::test]
async fn sql_and_rust_agree_on_thousands_of_mutated_random_and_edge_lines() {
    let db = fresh_db().await;
    let c = db.client().await;
    let corpus = corpus_lines();
    let mut rng = StdRng::seed_from_u64(14);
    let mut lines = edge_lines();
    for _ in 0..4000 {
        let (a, b) = (&corpus[rng.random_range(0..corpus.len())], &corpus[rng.random_range(0..corpus.len())]);
        lines.push(mutate(&mut rng, a, b));
    }
    for _ in 0..2000 {
        lines.push(random_line(&mut rng));
    }
    assert!(lines.iter().all(|l| !l.contains('\0')), "PostgreSQL text holds no NUL");
    assert_sql_equals_rust(&c, &lines).await;
}

#[tokio::test]
async fn sql_and_rust_use_the_same_word_lists() {
    let db = fresh_db().await;
    let c = db.client().await;
    for (name, words) in pattern::WORD_LISTS {
        let sql: Vec<String> = c.query_one("SELECT log_template_words($1)", &[name]).await.unwrap().get(0);
        let rust: Vec<String> = words.iter().map(|w| String::from_utf8(w.to_vec()).unwrap()).collect();
        assert_eq!(sql, rust, "word list {name}");
    }
}

#[tokio::test]
async fn pattern_id_is_the_md5_prefix_postgres_computes() {
    let db = fresh_db().await;
    let c = db.client().await;
    let templates: Vec<String> = ["", "<*>", "user <*> logged in", "日本語 <*> 🙂", "é\u{212a}"]
        .iter()
        .map(|s| s.to_string())
        .chain((0..200).map(|i| format!("template {i} <*> {}", "z".repeat(i))))
        .collect();
    let rows = c
        .query(
            "SELECT pattern_id(t), ('x' || left(md5(t), 16))::bit(64)::bigint
               FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i) ORDER BY i",
            &[&templates],
        )
        .await
        .unwrap();
    for (t, row) in templates.iter().zip(rows) {
        let (sql, md5_prefix): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(sql, pattern::pattern_id(t), "pattern_id({t:?})");
        assert_eq!(sql, md5_prefix, "pattern_id({t:?}) is the md5 prefix");
    }
    // Both signs occur: the id is the whole 64 bits, read as a signed integer.
    let ids: Vec<i64> = templates.iter().map(|t| pattern::pattern_id(t)).collect();
    assert!(ids.iter().any(|&i| i < 0) && ids.iter().any(|&i| i > 0));
}
