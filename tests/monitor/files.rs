//! JSON Lines sources: a replayed stream is stored once, a malformed line is counted with its
//! line and skipped, new lines are picked up from the stored position, a monitor killed
//! mid-stream (SIGKILL) and restarted ends with the same windows as one that ran through, and a
//! followed directory reads new lines and files until SIGINT.

use crate::common::*;
use crate::*;
use std::time::Duration;

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
    // No spike in these items, and the alerts file is there, empty.
    assert_eq!(
        std::fs::read_to_string(dir.join("alerts.jsonl")).unwrap(),
        ""
    );
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
    // The report draws the series of the store.
    let report = dir.join("report.html");
    let (ok, _, err) = positio(&[
        "monitor",
        "report",
        "--store",
        dir.join("monitor.db").to_str().unwrap(),
        "--out",
        report.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("<h2 id=\"all\">all</h2><p>70 items in 7 windows"),
        "{html}"
    );
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
    let (ok, _, err) = monitor(dir, &[&file], &["--negatives", "argmax"]);
    assert!(
        !ok && err.contains("counts negatives by expected, not argmax"),
        "{err}"
    );
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
    let mut child = spawn_monitor(
        dir,
        &["--batch-size", "4", "--source", file.to_str().unwrap()],
    );
    wait_for_items(&db, 40);
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
    let news_dir = news.to_str().unwrap();
    let child = spawn_monitor(dir, &["--source", news_dir, "--follow", "--poll", "0.05"]);
    wait_for_items(&db, 10);
    // A new file, and lines appended to the first (the last one without its newline yet).
    std::fs::write(news.join("b.jsonl"), items(10, 10)).unwrap();
    let mut more = items(20, 5);
    more.pop();
    let a = news.join("a.jsonl");
    std::fs::write(&a, items(0, 10) + &more).unwrap();
    wait_for_items(&db, 24);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stored_items(&db), 24, "a line without its newline was read");
    std::fs::write(&a, items(0, 10) + &more + "\n").unwrap();
    wait_for_items(&db, 25);
    let summary = stop(child, "-INT");
    assert_eq!(counts(&summary), (25, 25, 0), "{summary}");
}
