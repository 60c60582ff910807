//! The template rules, one kind of variable part at a time, and the lines that must stay apart.
use super::*;

fn t(message: &str) -> String {
    template(message)
}

/// Every message gives `expected`.
fn all_give(expected: &str, messages: &[&str]) {
    for m in messages {
        assert_eq!(t(m), expected, "template of {m:?}");
    }
}

#[test]
fn numbers_hex_and_ids_are_variable() {
    all_give("retry <*> of <*>", &["retry 1 of 5", "retry 12 of 50"]);
    all_give("freed <*> at <*>", &["freed 0x7f3a2c000010 at 0xffffffff", "freed -1 at 3.14"]);
    all_give(
        "block <*> replicated",
        &["block blk_1073741901_1077 replicated", "block blk_-6952295868487656571 replicated"],
    );
    all_give(
        "request <*> done",
        &["request req-8f3a2c1d done", "request 5f0c1a2b3d4e5f60 done", "request deadbeef done"],
    );
    assert_eq!(t("request faded"), "request faded", "a short word of hex letters is a word");
    all_give("container <*> exited", &["container container_1700000000000_0042_01_000003 exited"]);
}

#[test]
fn uuids_are_variable() {
    // The `]` the word does not open belongs to the value, as in `LOCAL(0)`.
    all_give(
        "[instance: <*> Terminating instance",
        &[
            "[instance: 96abccce-8d1f-4e07-b6d1-4b2ab87e23b4] Terminating instance",
            "[instance: b9000564-fe1a-409b-b8cc-1e88b294cd1d] Terminating instance",
        ],
    );
}

#[test]
fn ip_addresses_and_ports_are_variable() {
    all_give(
        "connect to <*> failed",
        &[
            "connect to 10.0.0.1 failed",
            "connect to 10.0.0.1:5432 failed",
            "connect to [::1]:8080 failed",
            "connect to fe80::1 failed",
        ],
    );
    // `::`, the one address without a digit.
    all_give(
        "Server listening on <*> port <*>.",
        &["Server listening on 0.0.0.0 port 22.", "Server listening on :: port 22."],
    );
}

#[test]
fn email_addresses_are_variable() {
    all_give(
        "password reset requested for <*>",
        &["password reset requested for alice@example.com", "password reset requested for j.doe+shop@mail.example.org"],
    );
}

#[test]
fn paths_and_urls_are_variable() {
    all_give(
        "config reloaded from <*>",
        &[
            "config reloaded from /etc/app/config.yaml",
            "config reloaded from C:\\app\\settings.toml",
            "config reloaded from ./local.yaml",
        ],
    );
    all_give(
        "fetching <*> failed",
        &[
            "fetching https://api.example.com/v1/items?page=2 failed",
            "fetching s3://bucket/key/0001 failed",
            "fetching /feed/alice?page=next failed",
        ],
    );
}

#[test]
fn quoted_values_are_variable_however_many_words_they_hold() {
    all_give(
        "cannot open '<*>': permission denied",
        &["cannot open 'config.yaml': permission denied", "cannot open 'My Documents/notes 2.txt': permission denied"],
    );
    all_give(
        "role \"<*>\" does not exist",
        &["role \"admin\" does not exist", "role \"report writer\" does not exist"],
    );
    // Escaped quotes stay inside the value; an apostrophe inside a word opens nothing.
    all_give("err=<*> retrying", &["err=\"dial \\\"db\\\": refused\" retrying", "err=\"timeout\" retrying"]);
    assert_eq!(t("can't connect to db"), "can't connect to db");
}

#[test]
fn a_quoted_http_request_line_keeps_its_method() {
    all_give(
        "<*> \"GET <*>\" <*>",
        &["10.0.0.1 \"GET /api/items/42 HTTP/1.1\" 200", "10.0.0.2 \"GET /docs HTTP/2.0\" 304 0"],
    );
    assert_eq!(t("10.0.0.1 \"POST /api/orders HTTP/1.1\" 201"), "<*> \"POST <*>\" <*>");
}

#[test]
fn durations_and_sizes_are_variable_with_their_units() {
    all_give(
        "request took <*>",
        &["request took 12ms", "request took 1.5 s", "request took 2m3.441s", "request took 310 us"],
    );
    all_give("uploaded <*> in <*>", &["uploaded 18.4 KB in 90 ms", "uploaded 1GB in 3s", "uploaded 512 B in 1 sec"]);
}

#[test]
fn timestamps_and_dates_are_one_variable() {
    all_give(
        "run finished at <*>",
        &[
            "run finished at 2026-11-24T10:00:00Z",
            "run finished at 2017-05-16 05:00:00",
            "run finished at Tue Nov 24 10:21:05 2026",
            "run finished at 24/Nov/2026:10:15:32 +0000",
            "run finished at Sunday",
        ],
    );
    // A month name is a date only when capitalised: `may` is a verb.
    assert_eq!(t("you may retry"), "you may retry");
}

#[test]
fn key_value_values_are_variable_and_keys_stay() {
    all_give(
        "state changed: old=<*> new=<*>",
        &["state changed: old=RUNNING new=FAILED", "state changed: old= new=\"a b\""],
    );
    all_give(
        "authentication failure; logname=<*> uid=<*> rhost=<*> user=<*>",
        &[
            "authentication failure; logname= uid=0 rhost=10.0.0.1 user=root",
            "authentication failure; logname= uid=0 rhost=a.example.com user=bob",
        ],
    );
    assert_eq!(
        t("pam_unix(sshd:session): opened for user bob(uid=1002)"),
        "pam_unix(sshd:session): opened for user <*>(uid=<*>)"
    );
}

#[test]
fn logfmt_and_klog_messages_keep_their_text() {
    all_give(
        "level=<*> msg=\"user <*> logged in\" ip=<*>",
        &["level=info msg=\"user 42 logged in\" ip=10.0.0.1", "level=debug msg=\"user 7 logged in\" ip=10.0.0.2"],
    );
    assert_ne!(t("level=info msg=\"request handled\" status=200"), t("level=info msg=\"request failed\" status=500"));
    assert_eq!(
        t("\"Probe failed\" probeType=\"Readiness\" pod=\"shop/orders-1\""),
        "\"Probe failed\" probeType=<*> pod=<*>"
    );
}

#[test]
fn names_after_key_words_are_variable() {
    all_give(
        "user <*> logged in from <*>",
        &["user alice logged in from 10.0.0.1", "user bob.smith logged in from 10.0.0.2"],
    );
    // (`ssh2` holds a digit, so it joins the port: a run of variables is one.)
    all_give("Failed password for <*> from <*> port <*>", &["Failed password for root from 10.0.0.1 port 22 ssh2"]);
    all_give(
        "Failed password for invalid user <*> from <*> port <*>",
        &[
            "Failed password for invalid user oracle from 10.0.0.1 port 22 ssh2",
            "Failed password for invalid user user from 10.0.0.1 port 22 ssh2",
        ],
    );
    all_give("job <*> started", &["job nightly-export started", "job reindex started"]);
    all_give("consumed from topic <*>", &["consumed from topic orders", "consumed from topic payments"]);
}

#[test]
fn host_and_file_names_are_variable_but_code_names_stay() {
    all_give(
        "resolved <*>",
        &["resolved proxy.cse.example.edu", "resolved chrome.exe", "resolved app.tasks.send_email"],
    );
    assert_eq!(t("caught java.lang.NullPointerException"), "caught java.lang.NullPointerException");
}

#[test]
fn code_labels_keep_their_name() {
    all_give("onExtend:<*> <*>", &["onExtend:1514038530000 14 0 4", "onExtend:1514038530000 0 0 4"]);
    assert_eq!(t("UID:1000 started"), "UID:<*> started");
}

#[test]
fn empty_values_are_values() {
    all_give(
        "connection from <*> (<*>) at <*>",
        &["connection from 1.2.3.4 () at 10:00", "connection from 1.2.3.4 (host.example.com) at 10:00"],
    );
}

#[test]
fn whitespace_is_normalised_and_a_run_of_variables_is_one() {
    all_give("x <*> y", &["x 1 y", "  x\t1 2\n3   y  ", "x 1 2 3 4 5 y"]);
    assert_eq!(t(""), "");
    assert_eq!(t(" \t\n "), "");
    assert_eq!(t("1234567890"), "<*>");
}

#[test]
fn lines_that_differ_in_a_constant_word_stay_apart() {
    for (a, b) in [
        ("Connection refused", "Connection reset by peer"),
        ("job nightly-export started", "job nightly-export failed"),
        ("user alice logged in", "user alice logged out"),
        ("user alice not found", "user alice created"),
        ("payment pay_1 declined: insufficient funds", "payment pay_1 declined: card expired"),
        ("caught java.lang.NullPointerException", "caught java.io.IOException"),
        ("disk usage on /data at 91%", "disk quota on /data at 91%"),
        ("10.0.0.1 \"GET /x HTTP/1.1\" 200", "10.0.0.1 \"DELETE /x HTTP/1.1\" 200"),
        ("checkpoint starting: time", "checkpoint starting: wal"),
        ("Out of memory: Killed process 12 (java)", "Out of memory: Killed process 12 (python)"),
    ] {
        assert_ne!(t(a), t(b), "{a:?} and {b:?} must not share a template");
    }
}

#[test]
fn a_huge_message_is_judged_on_its_first_characters() {
    let head = "é".repeat(MAX_CHARS - 1);
    let a = format!("{head}x and then 1");
    let b = format!("{head}x but then 2");
    assert_eq!(t(&a), t(&b));
    assert_eq!(t(&a), format!("{head}x"));
}

#[test]
fn the_id_is_the_md5_prefix_of_the_template() {
    // md5("") = d41d8cd98f00b204e9800998ecf8427e
    assert_eq!(pattern_id(""), i64::from_be_bytes([0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04]));
    let p = extract("user 42 logged in");
    assert_eq!((p.id, p.template.as_str()), (pattern_id("user <*> logged in"), "user <*> logged in"));
}

#[test]
fn the_labelled_corpus_is_grouped_with_at_least_the_documented_accuracy() {
    let corpus = corpus::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")).unwrap();
    assert!(corpus.len() >= 500, "{} lines", corpus.len());
    let truth: Vec<&str> = corpus.iter().map(|l| l.truth.as_str()).collect();
    let predicted: Vec<String> = corpus.iter().map(|l| template(&l.message)).collect();
    let accuracy = grouping_accuracy(&truth, &predicted);
    // Measured 0.82 (examples/pattern_bench.rs prints it per file); the rest are free-text
    // variables no stateless rule can see (systemd unit descriptions, cron commands, ...).
    assert!(accuracy >= 0.80, "grouping accuracy {accuracy:.3} on the corpus");
}
