//! compose.yml and the Dockerfile: validated offline with docker-compose (no Docker engine here).
use std::process::Command;

use crate::helpers::*;

fn compose(file: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("docker-compose")
        .arg("-f")
        .arg(file)
        .args(args)
        .output()
        .expect("docker-compose is installed by scripts/test.sh (Debian package docker-compose)");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn compose_file_is_valid_and_wires_health_dependencies() {
    let file = repo().join("compose.yml");
    let (ok, out) = compose(&file, &["config", "-q"]);
    assert!(ok, "{out}");
    let (_, services) = compose(&file, &["config", "--services"]);
    let mut services: Vec<&str> = services.lines().collect();
    services.sort();
    assert_eq!(services, vec!["collector", "db", "detector", "generator", "migrate"]);
    let (_, full) = compose(&file, &["config"]);
    for needle in [
        "image: postgres:15",
        "POSTGRES_DB: logsdb",
        "POSTGRES_USER: app",
        "condition: service_healthy",
        "condition: service_completed_successfully",
        "restart: unless-stopped",
        "pgdata:",
    ] {
        assert!(full.contains(needle), "compose config lacks {needle:?}:\n{full}");
    }
    assert_eq!(full.matches("healthcheck:").count(), 2, "db and collector have healthchecks");

    // the validator really validates: a misspelt key is refused
    let bad = std::env::temp_dir().join(format!("compose-bad-{}.yml", std::process::id()));
    std::fs::write(&bad, std::fs::read_to_string(&file).unwrap().replace("healthcheck:", "healthchek:")).unwrap();
    let (ok, out) = compose(&bad, &["config", "-q"]);
    let _ = std::fs::remove_file(&bad);
    assert!(!ok, "a misspelt key must fail validation: {out}");
}

#[test]
fn dockerfile_is_multi_stage_and_copies_everything_the_build_embeds() {
    let df = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(df.contains(" AS build") && df.contains("COPY --from=build"), "multi-stage");
    for dir in ["src", "sql", "migrations", "build.rs", "Cargo.lock"] {
        assert!(df.contains(&format!("COPY {dir}")) || df.contains(&format!(" {dir} ")), "Dockerfile copies {dir}");
    }
}
