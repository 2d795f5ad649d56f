//! `positio monitor run` end to end with the tiny fixture models (sentiment, topics, entities),
//! one module per kind of source: JSON Lines files ([`files`]), RSS / Atom feeds served on
//! 127.0.0.1 ([`feed`]) and NATS JetStream on a real `nats-server` ([`nats`]), and the
//! Prometheus metrics ([`metrics`]), back-pressure and bounded memory ([`pressure`]). This
//! file holds
//! what they share: the stream they read, the command, and readers of the store.

#[path = "../common/mod.rs"]
mod common;
mod feed;
mod files;
mod metrics;
mod nats;
mod pressure;

use common::*;
use serde_json::Value;
use std::path::Path;

const SENTIMENT: &str = "sentiment=tests/fixtures/hf_tiny_classify/single";
const TOPICS: &str = "topics=tests/fixtures/hf_tiny_classify/multi";
const ENTITIES: &str = "entities=tests/fixtures/hf_tiny_ner";

/// `count` items from id `first`, one a minute from 1987-03-02T00:00:00Z.
pub(crate) fn items(first: usize, count: usize) -> String {
    let texts = [
        "OPEC agreed to cut crude oil output in Vienna.",
        "Wheat exports to the Soviet Union rose sharply.",
        "The company reported a quarterly loss and cut its dividend.",
        "Gold prices fell as the dollar gained.",
    ];
    (first..first + count)
        .map(|i| {
            let minute = 541_641_600 + 60 * i as i64;
            let time = time_of(minute);
            serde_json::json!({"id": format!("n{i}"), "time": time, "text": texts[i % texts.len()],
                "title": if i % 3 == 0 { Some("Markets") } else { None }})
            .to_string()
                + "\n"
        })
        .collect()
}

/// RFC 3339 of Unix seconds (UTC), without a date library: days from the civil calendar.
pub(crate) fn time_of(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

pub(crate) fn monitor(dir: &Path, sources: &[&Path], extra: &[&str]) -> (bool, Value, String) {
    let db = dir.join("monitor.db");
    let alerts = dir.join("alerts.jsonl");
    let mut args: Vec<String> = vec![
        "monitor".into(),
        "run".into(),
        "--model".into(),
        SENTIMENT.into(),
        "--model".into(),
        TOPICS.into(),
        "--model".into(),
        ENTITIES.into(),
        "--store".into(),
        db.display().to_string(),
        "--alerts".into(),
        alerts.display().to_string(),
        "--clock".into(),
        "event".into(),
        "--window".into(),
        "10m".into(),
    ];
    for s in sources {
        args.extend(["--source".into(), s.display().to_string()]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let (ok, out, err) = positio(&args);
    let summary = serde_json::from_str(out.trim()).unwrap_or(Value::Null);
    (ok, summary, err)
}

pub(crate) fn counts(summary: &Value) -> (u64, u64, u64) {
    (
        summary["read"].as_u64().unwrap(),
        summary["stored"].as_u64().unwrap(),
        summary["malformed"].as_u64().unwrap(),
    )
}

/// Items the store at `db` holds (0 while it does not exist yet or is being created).
pub(crate) fn stored_items(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .ok()
        .and_then(|c| {
            c.query_row("SELECT count(*) FROM items", [], |r| r.get(0))
                .ok()
        })
        .unwrap_or(0)
}

/// (series, start, count) of every window, and the stored ids.
pub(crate) fn windows(db: &Path) -> (Vec<(String, i64, i64)>, Vec<String>) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut q = conn
        .prepare("SELECT series, start, count FROM windows WHERE series = 'all' ORDER BY start")
        .unwrap();
    let w = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut q = conn.prepare("SELECT id FROM items ORDER BY id").unwrap();
    let ids = q
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (w, ids)
}

/// Starts `positio monitor run` with the three models, the event clock and 10-minute windows,
/// its store and alerts in `dir`, and `extra` arguments (sources among them); output piped.
pub(crate) fn spawn_monitor(dir: &Path, extra: &[&str]) -> std::process::Child {
    positio_command()
        .args(["monitor", "run", "--model", SENTIMENT, "--model", TOPICS])
        .args(["--model", ENTITIES, "--clock", "event", "--window", "10m"])
        .arg("--store")
        .arg(dir.join("monitor.db"))
        .arg("--alerts")
        .arg(dir.join("alerts.jsonl"))
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (up to a minute) until the store at `db` holds `n` items.
pub(crate) fn wait_for_items(db: &Path, n: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while stored_items(db) < n {
        assert!(
            std::time::Instant::now() < deadline,
            "stored {} of {n}",
            stored_items(db)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Sends `signal` (e.g. "-TERM") to `child`, waits, and returns its summary; it must exit 0.
pub(crate) fn stop(child: std::process::Child, signal: &str) -> Value {
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
