//! The OpenAPI document is the contract: a property-based tester (schemathesis) drives every
//! documented operation with generated valid and invalid requests, and the server must answer each
//! as the document says (no 5xx, documented status codes and shapes, valid data accepted, invalid
//! data refused, 405 with Allow for undeclared methods). Run in scripts/test.sh, so the document
//! and the server cannot drift apart.
use crate::helpers::*;

fn schemathesis() -> String {
    std::env::var("LOGMON_SCHEMATHESIS")
        .expect("LOGMON_SCHEMATHESIS is not set: run the tests with scripts/test.sh, which installs schemathesis")
}

#[tokio::test]
async fn every_documented_operation_answers_as_the_openapi_document_says() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let config = repo().join("tests/contract/schemathesis.toml");
    let out = tokio::process::Command::new(schemathesis())
        .arg("--config-file")
        .arg(&config)
        .args(["run", &app.url("/openapi.json"), "--max-examples", "25"])
        // one worker: Hypothesis's lambda-source cache is not thread-safe (a second worker made runs flaky)
        .args(["--generation-deterministic", "--no-color", "--workers", "1"])
        // Hypothesis's health checks time how fast data is generated: on a loaded CI machine that
        // measures the machine, not logmon
        .args(["--suppress-health-check", "all"])
        .current_dir(repo().join("target"))
        .output()
        .await
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found requests answered otherwise than the document says:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Tested: "), "{stdout}");
}
