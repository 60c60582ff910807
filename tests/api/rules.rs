//! Rules over HTTP and from the command line: listed with their overrides and what they opened,
//! changed only with the admin token and only as the table allows, every change audited whoever
//! makes it (API or psql), and replayed before anyone changes them.
use serde_json::{Value, json};

use crate::helpers::*;

const ADMIN: &str = "s3cret";

fn admin(r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    r.header("authorization", format!("Bearer {ADMIN}"))
}

async fn send(r: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn rules_are_listed_with_their_overrides_and_the_incidents_each_opened() {
    let db = fresh_db().await;
    let c = db.client().await;
    c.batch_execute(
        "INSERT INTO detection_rules (name, kind, incident_type, service, lookback, threshold, severity)
         VALUES ('ERROR_SPIKE', 'error_count', 'ERROR_SPIKE', 'payments', '5 minutes', 50, 'HIGH');
         INSERT INTO logs (ts, service, level) SELECT now() - interval '1 second', 'payments', 'ERROR' FROM generate_series(1, 60);
         SELECT * FROM detect_incidents();",
    )
    .await
    .unwrap();
    let app = spawn_collector(&db.url, &[]).await;
    let (s, rules) = send(http().get(app.url("/rules"))).await;
    assert_eq!(s, 200);
    let rules = rules.as_array().unwrap();
    let default = rules.iter().find(|r| r["name"] == "ERROR_SPIKE" && r["service"].is_null()).unwrap();
    let own = rules.iter().find(|r| r["name"] == "ERROR_SPIKE" && r["service"] == "payments").unwrap();
    assert_eq!(default["overridden_for"], json!(["payments"]));
    assert_eq!(own["overrides"], default["id"]);
    assert_eq!(
        (own["threshold"].as_f64(), own["lookback"].as_f64()),
        (Some(50.0), Some(300.0)),
        "intervals in seconds"
    );
    assert_eq!(own["opened_7d"], 1, "60 errors: payments' own rule opened it");
    assert_eq!(default["opened_7d"], 0);
}

#[tokio::test]
async fn rules_change_only_with_the_admin_token_and_as_the_table_allows() {
    let db = fresh_db().await;
    let count = "SELECT count(*) FROM detection_rules";
    let defaults: i64 = db.client().await.query_one(count, &[]).await.unwrap().get(0);
    let app = spawn_collector(&db.url, &["--admin-token", ADMIN]).await;
    let rule = json!({"name": "ERROR_SPIKE", "kind": "error_count", "incident_type": "ERROR_SPIKE",
                      "service": "payments", "lookback": 300, "threshold": 50, "severity": "HIGH"});
    let (s, _) = send(http().post(app.url("/rules")).json(&rule)).await;
    assert_eq!(s, 401);
    let (s, created) = send(admin(http().post(app.url("/rules"))).json(&rule)).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!((created["resolve_after"].as_f64(), created["enabled"].as_bool()), (Some(60.0), Some(true)), "defaults");
    let (s, e) = send(admin(http().post(app.url("/rules"))).json(&rule)).await;
    assert_eq!(s, 409, "one rule per name and service: {e}");

    let id = created["id"].as_i64().unwrap();
    let refused = [
        (json!({"threshold": -1}), "threshold"),
        (json!({"threshold": 1.7976931348623157e308}), "threshold"), // a double, but no JSON reader's number
        (json!({"kind": "no_data"}), "threshold"),                   // a no_data threshold is a share, at most 1
        (json!({"lookback": "5 minutes"}), "lookback"),              // seconds over HTTP
        (json!({"lookback": 3}), "lookback"),
        (json!({"severity": "URGENT"}), "severity"),
        (json!({"name": "error spike"}), "name"),
        (json!({"treshold": 5}), "treshold"),
        (json!({"service": ""}), "service"),
    ];
    for (change, field) in refused {
        let (s, e) = send(admin(http().patch(app.url(&format!("/rules/{id}")))).json(&change)).await;
        assert_eq!(s, 400, "{change}: {e}");
        assert_eq!(e["details"][0]["field"], field, "{change}: {e}");
    }
    let (s, changed) =
        send(admin(http().patch(app.url(&format!("/rules/{id}")))).json(&json!({"threshold": 80, "by": "alice"})))
            .await;
    assert_eq!((s, changed["threshold"].as_f64(), changed["lookback"].as_f64()), (200, Some(80.0), Some(300.0)));
    let (s, _) = send(admin(http().patch(app.url("/rules/999"))).json(&json!({"threshold": 1}))).await;
    assert_eq!(s, 404);
    let (s, _) = send(http().delete(app.url(&format!("/rules/{id}")))).await;
    assert_eq!(s, 401);
    let (s, gone) = send(admin(http().delete(app.url(&format!("/rules/{id}")))).json(&json!({"by": "bob"}))).await;
    assert_eq!((s, gone["id"].as_i64()), (200, Some(id)));
    let (s, _) = send(admin(http().delete(app.url(&format!("/rules/{id}"))))).await;
    assert_eq!(s, 404);
    // and the next tick reads the table: nothing is cached in the collector
    let n: i64 = db.client().await.query_one(count, &[]).await.unwrap().get(0);
    assert_eq!(n, defaults);
}

#[tokio::test]
async fn every_change_is_audited_whether_made_over_http_or_from_psql() {
    let db = fresh_db().await;
    let c = db.client().await;
    let app = spawn_collector(&db.url, &[]).await;
    let (_, created) = send(http().post(app.url("/rules")).json(&json!({
        "name": "SLOW_CHECKOUT", "kind": "latency_p95", "incident_type": "LATENCY_SPIKE", "service": "checkout",
        "lookback": 120, "threshold": 1500, "severity": "MED", "by": "alice"})))
    .await;
    let id = created["id"].as_i64().unwrap();
    send(http().patch(app.url(&format!("/rules/{id}"))).json(&json!({"threshold": 2000, "by": "bob"}))).await;
    // a DBA, straight in psql, and in a transaction after an API function (which must not lend its actor)
    c.execute("UPDATE detection_rules SET severity = 'HIGH' WHERE id = $1", &[&id]).await.unwrap();
    c.batch_execute(&format!(
        "BEGIN; SELECT update_rule({id}, '{{\"min_events\": 5}}', 'carol'); UPDATE detection_rules SET enabled = false WHERE id = {id}; COMMIT;"
    ))
    .await
    .unwrap();
    c.execute("UPDATE detection_rules SET severity = severity WHERE id = $1", &[&id]).await.unwrap(); // no change
    send(http().delete(app.url(&format!("/rules/{id}"))).json(&json!({"by": "dave"}))).await;

    let (s, history) = send(http().get(app.url(&format!("/rules/{id}/history")))).await;
    assert_eq!(s, 200);
    let seen: Vec<(String, String, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|h| {
            let (a, b) = (h["old"].clone(), h["new"].clone());
            let diff: Vec<String> = ["threshold", "severity", "min_events", "enabled"]
                .iter()
                .filter(|k| a.get(k) != b.get(k))
                .map(|k| format!("{k}={}", b.get(k).map(Value::to_string).unwrap_or_default()))
                .collect();
            (h["action"].as_str().unwrap().to_string(), format!("{}/{}", h["actor"], h["source"]), diff.join(","))
        })
        .collect();
    let row = |a: &str, who: &str, d: &str| (a.to_string(), who.to_string(), d.to_string());
    assert_eq!(
        seen,
        [
            row("created", "\"alice\"/\"api\"", "threshold=1500,severity=\"MED\",min_events=0,enabled=true"),
            row("updated", "\"bob\"/\"api\"", "threshold=2000"),
            row("updated", "\"postgres\"/\"sql\"", "severity=\"HIGH\""),
            row("updated", "\"carol\"/\"api\"", "min_events=5"),
            row("updated", "\"postgres\"/\"sql\"", "enabled=false"),
            row("deleted", "\"dave\"/\"api\"", "threshold=,severity=,min_events=,enabled="),
        ]
    );
    // the history of a deleted rule stays; a rule that never was has none
    let (s, _) = send(http().get(app.url("/rules/999/history"))).await;
    assert_eq!(s, 404);
    let (s, one) = send(http().get(app.url(&format!("/rules/{id}/history?limit=1")))).await;
    assert_eq!((s, one.as_array().unwrap().len()), (200, 1));
}

#[tokio::test]
async fn a_backtest_over_http_replays_the_rules_and_names_what_it_refuses() {
    let db = fresh_db().await;
    let c = db.client().await;
    // a minute of 5 errors/s for checkout twenty minutes ago, in steady traffic (the error-rate rule
    // would see that burst too: off, so that only the count rule speaks)
    c.batch_execute(
        "UPDATE detection_rules SET enabled = false WHERE name = 'ERROR_RATE';
         INSERT INTO logs (ts, service, level)
         SELECT now() - interval '40 minutes' + g * interval '100 ms', 'checkout',
                CASE WHEN g BETWEEN 12000 AND 12599 AND g % 2 = 0 THEN 'ERROR' ELSE 'INFO' END
         FROM generate_series(0, 23999) g",
    )
    .await
    .unwrap();
    let app = spawn_collector(&db.url, &[]).await;
    let (s, r) = send(http().post(app.url("/rules/backtest")).json(&json!({"since": "30m", "step": 60}))).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!((r["period"]["step"].clone(), r["period"]["resolution"].clone()), (json!(60.0), json!(60.0)));
    assert_eq!(r["count"], 0, "300 errors are no ERROR_SPIKE at 500: {r}");

    let (_, rules) = send(http().get(app.url("/rules"))).await;
    let lower: Vec<Value> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| {
            let mut rule = rule.clone();
            for k in ["overrides", "overridden_for", "opened_7d"] {
                rule.as_object_mut().unwrap().remove(k);
            }
            if rule["name"] == "ERROR_SPIKE" {
                rule["threshold"] = json!(200);
            }
            rule
        })
        .collect();
    let (s, r) =
        send(http().post(app.url("/rules/backtest")).json(&json!({"since": "30m", "step": 60, "rules": lower}))).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["count"], 1, "{r}");
    assert_eq!(r["by_rule"], json!([{"rule_id": 1, "rule_name": "ERROR_SPIKE", "incidents": 1}]));
    let i = &r["incidents"][0];
    assert_eq!(
        (i["service"].as_str(), i["peak"].as_f64(), i["threshold"].as_f64()),
        (Some("checkout"), Some(300.0), Some(200.0)),
        "{i}"
    );
    assert!(i["observed"].as_f64().unwrap() >= 200.0, "it opened at the first step at or over 200 errors: {i}");
    assert!(i["resolved_at"].is_string(), "{i}");

    let refused = [
        (json!({}), "since"),
        (json!({"since": "yesterday"}), "since"),
        (json!({"since": "30m", "until": "2h"}), "since"),
        (json!({"since": "30m", "step": 0}), "step"),
        (json!({"since": "30m", "sinse": "1h"}), "sinse"),
        (json!({"since": "30m", "rules": [{"name": "X"}]}), "rules[0].kind"),
        (json!({"since": "30m", "rules": [lower[0], lower[0]]}), "rules[1]"),
        (
            json!({"since": "30m", "step": 60, "rules": [{"name": "X", "kind": "no_data", "incident_type": "X",
                 "lookback": 10, "threshold": 0.5, "severity": "LOW"}]}),
            "step",
        ),
    ];
    for (body, field) in refused {
        let (s, e) = send(http().post(app.url("/rules/backtest")).json(&body)).await;
        assert_eq!(s, 400, "{body}: {e}");
        assert_eq!(e["details"][0]["field"], field, "{body}: {e}");
    }
}

#[tokio::test]
async fn logmon_rules_backtest_prints_what_a_change_would_have_opened_before_and_after() {
    let db = fresh_db().await;
    let c = db.client().await;
    c.batch_execute(
        "UPDATE detection_rules SET enabled = false WHERE name = 'ERROR_RATE';
         INSERT INTO logs (ts, service, level)
         SELECT now() - interval '40 minutes' + g * interval '100 ms', svc,
                CASE WHEN svc = 'checkout' AND g BETWEEN 12000 AND 12599 AND g % 2 = 0 THEN 'ERROR' ELSE 'INFO' END
         FROM generate_series(0, 23999) g, unnest(ARRAY['checkout', 'search']) svc",
    )
    .await
    .unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["rules", "backtest", "--database-url", &db.url, "--since", "30m", "--step", "1m"])
        .args(["--set", "ERROR_SPIKE.threshold=200", "--set", "NO_DATA@search.enabled=false"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("steps of 1 min, 2 services"), "{stdout}");
    assert!(stdout.contains("changes: ERROR_SPIKE.threshold=200, NO_DATA@search.enabled=false"), "{stdout}");
    let count_line = stdout.lines().find(|l| l.trim_start().starts_with("ERROR_SPIKE")).unwrap();
    assert_eq!(count_line.split_whitespace().collect::<Vec<_>>(), ["ERROR_SPIKE", "0", "1", "+1"], "{stdout}");
    assert!(stdout.contains("1 incident(s) only with the changes:"), "{stdout}");
    let new = stdout.lines().find(|l| l.contains("checkout") && l.contains("ERROR_SPIKE")).unwrap();
    assert!(new.split_whitespace().any(|w| w == "300"), "observed 300 errors: {new}");
    assert!(stdout.contains("0 incident(s) only without them:"), "{stdout}");

    // a change naming no rule is refused, naming it
    let out = tokio::process::Command::new(BIN)
        .args(["rules", "backtest", "--database-url", &db.url, "--since", "30m", "--set", "ERROR_SPIKES.threshold=1"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no rule named ERROR_SPIKES"));

    // and the rules are listed
    let out =
        tokio::process::Command::new(BIN).args(["rules", "list", "--database-url", &db.url]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rules: i64 = c.query_one("SELECT count(*) FROM detection_rules", &[]).await.unwrap().get(0);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(stdout.lines().count() as i64, 1 + rules, "a header and a line per rule: {stdout}");
    assert!(stdout.contains("LATENCY_SPIKE") && stdout.contains("NEW_ERROR_PATTERN"), "{stdout}");
}
