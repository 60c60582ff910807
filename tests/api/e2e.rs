//! End to end with the real binaries: generator -> collector -> PostgreSQL <- detector -> webhook.
use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::receiver::Receiver;

#[tokio::test]
async fn a_generated_error_burst_opens_exactly_one_incident_which_resolves_after_it_and_on_call_is_told() {
    let db = fresh_db().await;
    let c = db.client().await;
    // Short windows, so the whole lifecycle fits in seconds.
    c.batch_execute(
        "UPDATE detection_rules SET lookback = '10 seconds', threshold = 100, resolve_after = '2 seconds'
          WHERE name = 'ERROR_SPIKE'",
    )
    .await
    .unwrap();
    let app = spawn_collector(&db.url, &[]).await;
    let hook = Receiver::start(|_, _| (200, None)).await;
    let _detector =
        spawn(&["detector", "--database-url", &db.url, "--interval", "0.5", "--webhook-url", &hook.url("/oncall")]);
    let mut generator = spawn(&[
        "generator",
        "--url",
        &app.base,
        "--rate",
        "300",
        "--batch",
        "30",
        "--seed",
        "7",
        "--duration",
        "35s",
        "--report-every",
        "1",
        "--scenario",
        "error-burst:feed-service:at=3s:for=4s",
    ]);

    // opens during the burst ...
    let deadline = Instant::now() + Duration::from_secs(30);
    let opened_after = loop {
        let row = c
            .query_opt(
                "SELECT extract(epoch FROM i.created_at - (SELECT min(ts) FROM logs))::float8
                   FROM incidents i WHERE service = 'feed-service' AND incident_type = 'ERROR_SPIKE'",
                &[],
            )
            .await
            .unwrap();
        if let Some(r) = row {
            break r.get::<_, f64>(0);
        }
        assert!(Instant::now() < deadline, "no ERROR_SPIKE for feed-service within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!((3.0..9.0).contains(&opened_after), "opened {opened_after:.1}s after the first log; the burst ran 3-7 s");

    // ... and resolves once the burst has left the window
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let status: String = c
            .query_one(
                "SELECT status FROM incidents WHERE service = 'feed-service' AND incident_type = 'ERROR_SPIKE'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if status == "resolved" {
            break;
        }
        assert!(Instant::now() < deadline, "the incident did not resolve after the burst");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all: Vec<(String, String)> = c
        .query("SELECT service, incident_type FROM incidents ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        all,
        vec![("feed-service".to_string(), "ERROR_SPIKE".to_string())],
        "exactly one incident, none for other services"
    );

    // on-call heard about it: firing, then resolved, for feed-service only
    hook.wait_until("the resolved notification arrives", |r| r.received("/oncall").len() >= 2).await;
    let told: Vec<(String, String)> = hook
        .received("/oncall")
        .iter()
        .map(|x| {
            let a = &x.body["alerts"][0];
            (a["labels"]["service"].as_str().unwrap().to_string(), a["status"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(told, [("feed-service".into(), "firing".into()), ("feed-service".into(), "resolved".into())]);

    let status = generator.wait().await.unwrap();
    assert!(status.success(), "the generator lost or had refused no batch");
    let stored: i64 = c.query_one("SELECT count(*) FROM logs", &[]).await.unwrap().get(0);
    assert!(stored > 5000, "{stored} rows stored");
}
