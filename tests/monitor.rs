//! `positio monitor run` end to end with the tiny fixture models (sentiment, topics, entities):
//! a replayed stream is stored once, a malformed line is counted with its line and skipped,
//! new lines are picked up from the stored offset, and a monitor killed mid-stream (SIGKILL)
//! and restarted ends with the same windows as one that ran through.

mod common;
use common::*;

use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const SENTIMENT: &str = "sentiment=tests/fixtures/hf_tiny_classify/single";
const TOPICS: &str = "topics=tests/fixtures/hf_tiny_classify/multi";
const ENTITIES: &str = "entities=tests/fixtures/hf_tiny_ner";

/// `count` items from id `first`, one a minute from 1987-03-02T00:00:00Z.
fn items(first: usize, count: usize) -> String {
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
fn time_of(t: i64) -> String {
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

fn monitor(dir: &Path, sources: &[&Path], extra: &[&str]) -> (bool, Value, String) {
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

fn counts(summary: &Value) -> (u64, u64, u64) {
    (
        summary["read"].as_u64().unwrap(),
        summary["stored"].as_u64().unwrap(),
        summary["malformed"].as_u64().unwrap(),
    )
}

/// Items the store at `db` holds (0 while it does not exist yet or is being created).
fn stored_items(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .ok()
        .and_then(|c| {
            c.query_row("SELECT count(*) FROM items", [], |r| r.get(0))
                .ok()
        })
        .unwrap_or(0)
}

/// (series, start, count) of every window, and the stored ids.
fn windows(db: &Path) -> (Vec<(String, i64, i64)>, Vec<String>) {
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

#[test]
fn a_replayed_stream_is_stored_once_and_bad_lines_are_skipped() {
    let dir = tmp("monitor-replay");
    let dir = dir.as_ref();
    let file = dir.join("news.jsonl");
    let mut text = items(0, 60);
    // Line 37 is broken; the rest go on.
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(36, "{\"id\": \"bad\", \"time\": \"soon\", \"text\": \"x\"}");
    text = lines.join("\n") + "\n";
    std::fs::write(&file, &text).unwrap();
    let (ok, summary, err) = monitor(dir, &[&file], &["--batch-size", "8"]);
    assert!(ok, "{err}");
    assert_eq!(counts(&summary), (60, 60, 1), "{summary}");
    assert!(
        err.contains("news.jsonl:37") && err.contains("RFC 3339"),
        "{err}"
    );
    let (w, ids) = windows(&dir.join("monitor.db"));
    assert_eq!(w.iter().map(|x| x.2).sum::<i64>(), 60);
    assert_eq!(w.len(), 6, "{w:?}");
    assert_eq!(ids.len(), 60);
    // Again: nothing new past the stored offset.
    let (ok, summary, err) = monitor(dir, &[&file], &[]);
    assert!(ok, "{err}");
    assert_eq!(counts(&summary), (0, 0, 0));
    // The same items under another file name are read, and not stored again.
    let copy = dir.join("copy.jsonl");
    std::fs::write(&copy, items(0, 60)).unwrap();
    let (ok, summary, _) = monitor(dir, &[&file, &copy], &[]);
    assert!(ok);
    assert_eq!(counts(&summary), (60, 0, 0));
    // Lines appended to the first file are taken from where it stopped.
    std::fs::write(&file, text + &items(60, 10)).unwrap();
    let (ok, summary, _) = monitor(dir, &[&file], &[]);
    assert!(ok);
    assert_eq!(counts(&summary), (10, 10, 0));
    let (w, ids) = windows(&dir.join("monitor.db"));
    assert_eq!(w.iter().map(|x| x.2).sum::<i64>(), 70);
    assert_eq!(ids.len(), 70);
    // Models and flags that cannot work are refused before anything is read.
    let (ok, _, err) = monitor(
        dir,
        &[&file],
        &["--model", "sentiment=tests/fixtures/hf_tiny_classify/multi"],
    );
    assert!(!ok && err.contains("Sentiment is given twice"), "{err}");
    let (ok, _, err) = monitor(dir, &[&file], &["--window", "10 minutes"]);
    assert!(!ok && err.contains("--window"), "{err}");
    let (ok, _, err) = monitor(dir, &[&file], &["--window", "1h"]);
    assert!(!ok && err.contains("windows of 600 s, not 3600 s"), "{err}");
}

#[test]
fn a_killed_monitor_resumes_with_nothing_lost_or_counted_twice() {
    let dir = tmp("monitor-kill");
    let dir = dir.as_ref();
    let file = dir.join("news.jsonl");
    std::fs::write(&file, items(0, 400)).unwrap();
    // The reference: one run through, in its own directory.
    let whole = dir.join("whole");
    std::fs::create_dir(&whole).unwrap();
    let (ok, summary, err) = monitor(&whole, &[&file], &["--batch-size", "4"]);
    assert!(ok, "{err}");
    assert_eq!(counts(&summary).1, 400);
    // Killed once some batches are in, then run again.
    let db = dir.join("monitor.db");
    let mut child = positio_command()
        .args([
            "monitor",
            "run",
            "--model",
            SENTIMENT,
            "--model",
            TOPICS,
            "--model",
            ENTITIES,
            "--store",
            db.to_str().unwrap(),
            "--alerts",
            dir.join("alerts.jsonl").to_str().unwrap(),
            "--clock",
            "event",
            "--window",
            "10m",
            "--batch-size",
            "4",
            "--source",
            file.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if stored_items(&db) >= 40 {
            break;
        }
        assert!(Instant::now() < deadline, "the monitor stored nothing");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the monitor ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (before, _) = windows(&db);
    let stored_before: i64 = before.iter().map(|x| x.2).sum();
    assert!(stored_before < 400, "killed too late to test anything");
    let (ok, summary, err) = monitor(dir, &[&file], &["--batch-size", "4"]);
    assert!(ok, "{err}");
    assert_eq!(counts(&summary).1 as i64, 400 - stored_before, "{summary}");
    assert_eq!(windows(&db), windows(&whole.join("monitor.db")));
}

/// `--follow`: lines appended to a file and files added to the directory are read as they come,
/// and Ctrl-C (SIGINT) ends the run cleanly with its summary.
#[test]
fn following_a_directory_reads_new_lines_and_files_until_interrupted() {
    let dir = tmp("monitor-follow");
    let dir = dir.as_ref();
    let news = dir.join("news");
    std::fs::create_dir(&news).unwrap();
    std::fs::write(news.join("a.jsonl"), items(0, 10)).unwrap();
    let db = dir.join("monitor.db");
    let stored = || stored_items(&db);
    let child = positio_command()
        .args([
            "monitor",
            "run",
            "--model",
            SENTIMENT,
            "--store",
            db.to_str().unwrap(),
            "--alerts",
            dir.join("alerts.jsonl").to_str().unwrap(),
            "--clock",
            "event",
            "--source",
            news.to_str().unwrap(),
            "--follow",
            "--poll",
            "0.05",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let wait_for = |n: i64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while stored() < n {
            assert!(Instant::now() < deadline, "stored {} of {n}", stored());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(10);
    // A new file, and lines appended to the first (the last one without its newline yet).
    std::fs::write(news.join("b.jsonl"), items(10, 10)).unwrap();
    let mut more = items(20, 5);
    more.pop();
    let a = news.join("a.jsonl");
    std::fs::write(&a, items(0, 10) + &more).unwrap();
    wait_for(24);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stored(), 24, "a line without its newline was read");
    std::fs::write(&a, items(0, 10) + &more + "\n").unwrap();
    wait_for(25);
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(counts(&summary), (25, 25, 0), "{summary}");
}
