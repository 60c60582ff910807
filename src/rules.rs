//! `logmon rules list|backtest`: the detection rules from the terminal, and what they (or a change
//! to them) would have opened over past traffic, before anyone changes them. The replay is SQL's
//! backtest_rules() (the same code as POST /rules/backtest); this prints it.
use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use crate::api::rules::{Period, ReplayedIncident, backtest as replay};
use crate::cli::{BacktestArgs, parse_ago};
use crate::db;

pub async fn list(url: &str) -> crate::Result {
    let client = db::connect(url).await?;
    let rows = client
        .query(
            "SELECT (l.rule).id, (l.rule).name, (l.rule).kind, (l.rule).incident_type, coalesce((l.rule).service, '*'),
                    (l.rule).lookback::text, (l.rule).threshold, (l.rule).min_events, (l.rule).severity,
                    (l.rule).pending_for::text, (l.rule).resolve_after::text, (l.rule).enabled,
                    coalesce('overrides #' || l.overrides, CASE WHEN cardinality(l.overridden_for) > 0
                             THEN 'overridden for ' || array_to_string(l.overridden_for, ', ') END, ''),
                    l.opened_7d
             FROM list_rules() l",
            &[],
        )
        .await
        .map_err(|e| db::DbError::Postgres(e).to_string())?;
    let mut t = Table::new(&[
        "id",
        "name",
        "kind",
        "incident type",
        "service",
        "lookback",
        "threshold",
        "min events",
        "severity",
        "pending for",
        "resolve after",
        "enabled",
        "opened (7 d)",
        "",
    ]);
    for r in &rows {
        t.row(vec![
            r.get::<_, i64>(0).to_string(),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            number(r.get(6)),
            r.get::<_, i64>(7).to_string(),
            r.get(8),
            r.get(9),
            r.get(10),
            if r.get(11) { "yes" } else { "no" }.to_string(),
            r.get::<_, i64>(13).to_string(),
            r.get(12),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

fn instant(flag: &str, v: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Some(d) = parse_ago(v) {
        return Ok(now - d);
    }
    DateTime::parse_from_rfc3339(v.trim())
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| format!("--{flag} {v:?}: not a duration like 30m, 24h, 7d nor an RFC 3339 time"))
}

/// Applies `RULE[@SERVICE].field=value` to the rule set (the rows of detection_rules as JSON).
pub fn apply_change(rules: &mut Vec<Value>, change: &str) -> Result<(), String> {
    let bad = || format!("--set {change:?}: expected RULE.field=value or RULE@SERVICE.field=value");
    let (target, value) = change.split_once('=').ok_or_else(bad)?;
    let (rule, field) = target.rsplit_once('.').ok_or_else(bad)?;
    let (name, service) = match rule.split_once('@') {
        Some((n, s)) => (n, Some(s)),
        None => (rule, None),
    };
    if name.is_empty() || field.is_empty() || service == Some("") {
        return Err(bad());
    }
    if field == "id" {
        return Err(format!("--set {change:?}: a rule's id does not change"));
    }
    // 300 and true are JSON; 5m, CRITICAL or an interval like '5 minutes' are text
    let value: Value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
    let named = |r: &Value| r["name"] == name;
    if !rules.iter().any(named) {
        let names: Vec<&str> = rules.iter().filter_map(|r| r["name"].as_str()).collect();
        return Err(format!("--set {change:?}: no rule named {name} (rules: {})", names.join(", ")));
    }
    if let Some(svc) = service
        && !rules.iter().any(|r| named(r) && r["service"] == svc)
    {
        // a change for one service is an override made from the default row
        let mut own =
            rules.iter().find(|r| named(r) && r["service"].is_null()).cloned().ok_or_else(|| {
                format!("--set {change:?}: {name} has no default row to make an override for {svc} from")
            })?;
        own["service"] = Value::String(svc.to_string());
        own["id"] = Value::Null;
        rules.push(own);
    }
    for r in rules.iter_mut().filter(|r| named(r) && service.is_none_or(|s| r["service"] == s)) {
        r[field] = value.clone();
    }
    Ok(())
}

pub async fn backtest(args: &BacktestArgs) -> crate::Result {
    let mut client = db::connect(&args.db.database_url).await?;
    // one snapshot and one now() for both runs
    let tx = client
        .build_transaction()
        .read_only(true)
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await?;
    let pg = |e: tokio_postgres::Error| db::DbError::Postgres(e).to_string();
    let now: DateTime<Utc> = tx.query_one("SELECT now()", &[]).await.map_err(pg)?.get(0);
    let since = instant("since", &args.since, now)?;
    let until = args.until.as_deref().map(|u| instant("until", u, now)).transpose()?;
    let step = args.step.map(f64::from);

    let (period, before) = replay(&tx, since, until, step, None).await.map_err(pg)?;
    let services: i64 = tx
        .query_one(
            "SELECT count(*) FROM (SELECT service FROM log_rollup_minute WHERE bucket >= $1 AND bucket <= $2
                                   UNION SELECT service FROM log_rollup WHERE bucket >= $1 AND bucket <= $2) s",
            &[&period.first_step, &period.last_step],
        )
        .await
        .map_err(pg)?
        .get(0);
    println!("{}", heading(&period, services));
    if args.changes.is_empty() {
        println!();
        print!("{}", counts(&[&before]));
        println!();
        println!("{} incident(s):", before.len());
        print!("{}", incidents(&before));
        return Ok(());
    }

    let current: Value = tx
        .query_one("SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.id), '[]') FROM detection_rules r", &[])
        .await
        .map_err(pg)?
        .get(0);
    let mut candidate = current.as_array().cloned().unwrap_or_default();
    for c in &args.changes {
        apply_change(&mut candidate, c)?;
    }
    let candidate = Value::Array(candidate);
    let (_, after) = replay(&tx, since, until, step, Some(&candidate)).await.map_err(pg)?;
    tx.commit().await?;

    println!("changes: {}", args.changes.join(", "));
    println!();
    print!("{}", counts(&[&before, &after]));
    let (gone, new) = difference(&before, &after);
    println!();
    println!("{} incident(s) only with the changes:", new.len());
    print!("{}", incidents(new));
    println!("{} incident(s) only without them:", gone.len());
    print!("{}", incidents(gone));
    if args.all {
        println!("\nwithout the changes ({}):", before.len());
        print!("{}", incidents(&before));
        println!("with the changes ({}):", after.len());
        print!("{}", incidents(&after));
    }
    Ok(())
}

fn heading(p: &Period, services: i64) -> String {
    let steps = ((p.last_step - p.first_step).num_seconds() as f64 / p.step).round() as i64 + 1;
    format!(
        "replay of {} .. {} UTC: {steps} steps of {}, {services} services, read from the rollup at {} resolution",
        p.first_step.format("%Y-%m-%d %H:%M:%S"),
        p.last_step.format("%Y-%m-%d %H:%M:%S"),
        seconds(p.step),
        seconds(p.resolution)
    )
}

fn seconds(s: f64) -> String {
    let s = s.round() as i64;
    match s {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

/// Incidents per rule that opened them, for one run or two (with the difference).
fn counts(runs: &[&Vec<ReplayedIncident>]) -> String {
    let mut per: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        for inc in run.iter() {
            per.entry(inc.rule_name.as_str()).or_insert_with(|| vec![0; runs.len()])[i] += 1;
        }
    }
    let mut header = vec!["opened by"];
    header.extend(if runs.len() == 2 { vec!["now", "with the changes", "difference"] } else { vec!["incidents"] });
    let mut t = Table::new(&header);
    let mut total = vec![0; runs.len()];
    for (rule, n) in &per {
        let mut row = vec![rule.to_string()];
        row.extend(n.iter().map(i64::to_string));
        if runs.len() == 2 {
            row.push(signed(n[1] - n[0]));
        }
        for (t, v) in total.iter_mut().zip(n) {
            *t += v;
        }
        t.row(row);
    }
    let mut row = vec!["total".to_string()];
    row.extend(total.iter().map(i64::to_string));
    if runs.len() == 2 {
        row.push(signed(total[1] - total[0]));
    }
    t.row(row);
    t.render()
}

fn signed(d: i64) -> String {
    if d > 0 { format!("+{d}") } else { d.to_string() }
}

/// The incidents of one run with no counterpart in the other: same service and type, overlapping
/// in time (a changed threshold moves an incident's edges; it is still the same incident).
fn difference<'a>(
    before: &'a [ReplayedIncident],
    after: &'a [ReplayedIncident],
) -> (Vec<&'a ReplayedIncident>, Vec<&'a ReplayedIncident>) {
    let overlaps = |a: &ReplayedIncident, b: &ReplayedIncident| {
        let end = |i: &ReplayedIncident| i.resolved_at.unwrap_or(DateTime::<Utc>::MAX_UTC);
        a.service == b.service && a.incident_type == b.incident_type && a.opened_at <= end(b) && b.opened_at <= end(a)
    };
    let gone = before.iter().filter(|b| !after.iter().any(|a| overlaps(a, b))).collect();
    let new = after.iter().filter(|a| !before.iter().any(|b| overlaps(a, b))).collect();
    (gone, new)
}

fn incidents<'a>(list: impl IntoIterator<Item = &'a ReplayedIncident>) -> String {
    let mut t = Table::new(&[
        "opened (UTC)",
        "resolved (UTC)",
        "service",
        "type",
        "severity",
        "opened by",
        "observed",
        "peak",
        "threshold",
    ]);
    let at = |d: &DateTime<Utc>| d.to_rfc3339_opts(SecondsFormat::Secs, true).replace('T', " ").replace('Z', "");
    for i in list {
        t.row(vec![
            at(&i.opened_at),
            i.resolved_at.as_ref().map(at).unwrap_or_else(|| "(still open)".into()),
            i.service.clone(),
            i.incident_type.clone(),
            i.severity.clone(),
            i.rule_name.clone(),
            number(i.observed),
            number(i.peak),
            number(i.threshold),
        ]);
    }
    if t.rows.len() == 1 { String::new() } else { t.render() }
}

/// Left-aligned text columns, numbers right-aligned, two spaces apart, indented by two.
struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Table {
        Table { rows: vec![header.iter().map(|h| h.to_string()).collect()] }
    }

    fn row(&mut self, r: Vec<String>) {
        self.rows.push(r);
    }

    fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let width: Vec<usize> = (0..cols)
            .map(|c| self.rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
            .collect();
        let numeric = |c: usize| {
            self.rows[1..]
                .iter()
                .filter_map(|r| r.get(c))
                .all(|s| s.trim_start_matches(['+', '-']).parse::<f64>().is_ok())
                && self.rows.len() > 1
        };
        let mut out = String::new();
        for r in &self.rows {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .map(
                    |(c, s)| {
                        if numeric(c) { format!("{s:>w$}", w = width[c]) } else { format!("{s:<w$}", w = width[c]) }
                    },
                )
                .collect();
            out.push_str("  ");
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> Vec<Value> {
        vec![
            json!({"id": 1, "name": "ERROR_SPIKE", "service": null, "threshold": 500}),
            json!({"id": 2, "name": "ERROR_SPIKE", "service": "payments", "threshold": 50}),
            json!({"id": 3, "name": "NO_DATA", "service": null, "enabled": true}),
        ]
    }

    #[test]
    fn a_change_by_name_applies_to_every_row_of_that_name() {
        let mut r = rules();
        apply_change(&mut r, "ERROR_SPIKE.threshold=300").unwrap();
        assert_eq!(r[0]["threshold"], 300);
        assert_eq!(r[1]["threshold"], 300);
        apply_change(&mut r, "ERROR_SPIKE.lookback=10m").unwrap();
        assert_eq!(r[0]["lookback"], "10m", "text the database reads as an interval");
    }

    #[test]
    fn a_change_for_one_service_makes_an_override_from_the_default_row() {
        let mut r = rules();
        apply_change(&mut r, "NO_DATA@batch.enabled=false").unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[3], json!({"id": null, "name": "NO_DATA", "service": "batch", "enabled": false}));
        assert_eq!(r[2]["enabled"], true, "the default row is unchanged");
        apply_change(&mut r, "ERROR_SPIKE@payments.threshold=70").unwrap();
        assert_eq!((r[0]["threshold"].clone(), r[1]["threshold"].clone()), (json!(500), json!(70)));
    }

    #[test]
    fn a_change_that_names_nothing_is_refused() {
        let mut r = rules();
        assert!(apply_change(&mut r, "ERROR_SPIKE.threshold").is_err());
        assert!(apply_change(&mut r, "threshold=3").is_err());
        assert!(apply_change(&mut r, "NOPE.threshold=3").unwrap_err().contains("no rule named NOPE"));
        assert!(apply_change(&mut r, "ERROR_SPIKE.id=9").is_err());
    }

    fn inc(service: &str, opened: i64, resolved: Option<i64>) -> ReplayedIncident {
        let t = |s: i64| DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap();
        ReplayedIncident {
            service: service.into(),
            incident_type: "ERROR_SPIKE".into(),
            severity: "HIGH".into(),
            opened_at: t(opened),
            resolved_at: resolved.map(t),
            rule_id: Some(1),
            rule_name: "ERROR_SPIKE".into(),
            observed: 1.0,
            peak: 1.0,
            threshold: 1.0,
        }
    }

    #[test]
    fn an_incident_that_moved_is_the_same_incident_and_one_that_appeared_is_new() {
        let before = vec![inc("a", 100, Some(200)), inc("b", 100, Some(150))];
        let after = vec![inc("a", 90, Some(210)), inc("a", 500, None)];
        let (gone, new) = difference(&before, &after);
        assert_eq!(gone.iter().map(|i| i.service.as_str()).collect::<Vec<_>>(), ["b"]);
        assert_eq!(new.iter().map(|i| i.opened_at.timestamp() - 1_700_000_000).collect::<Vec<_>>(), [500]);
    }
}
