//! Back-pressure and bounded memory: the monitor reads standard input only as fast as its
//! models annotate, so a producer that writes faster is held up by the pipe instead of items
//! being dropped; and its peak memory does not grow with the length of the stream (ten times
//! the items, about the same resident set).

use crate::*;
use std::io::Write;
use std::process::Stdio;

/// Streams `count` items into `monitor run --source -` from another thread as fast as the
/// pipe takes them; returns the summary and the monitor's peak resident set (KiB).
// The child is reaped by wait4, which clippy does not see.
#[allow(clippy::zombie_processes)]
fn stream_through_stdin(dir: &std::path::Path, count: usize) -> (serde_json::Value, i64) {
    let mut child = positio_command()
        .args([
            "monitor",
            "run",
            "--model",
            "sentiment=tests/fixtures/hf_tiny_classify/single",
        ])
        .args(["--clock", "event", "--window", "10m", "--source", "-"])
        .arg("--store")
        .arg(dir.join("monitor.db"))
        .arg("--alerts")
        .arg(dir.join("alerts.jsonl"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for first in (0..count).step_by(100) {
            stdin
                .write_all(items(first, 100.min(count - first)).as_bytes())
                .unwrap();
        }
    });
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.take().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
    writer.join().unwrap();
    // wait4 gives this child's own peak resident set.
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    (serde_json::from_str(out.trim()).unwrap(), usage.ru_maxrss)
}

#[test]
fn a_fast_producer_is_held_back_and_memory_stays_flat() {
    let short = tmp("monitor-pressure-short");
    let long = tmp("monitor-pressure-long");
    let (summary, short_rss) = stream_through_stdin(short.as_ref(), 1_000);
    assert_eq!(counts(&summary), (1_000, 1_000, 0), "{summary}");
    let (summary, long_rss) = stream_through_stdin(long.as_ref(), 10_000);
    assert_eq!(counts(&summary), (10_000, 10_000, 0), "{summary}");
    assert_eq!(stored_items(&long.as_ref().join("monitor.db")), 10_000);
    eprintln!("peak resident set: {short_rss} KiB for 1,000 items, {long_rss} KiB for 10,000");
    assert!(
        (long_rss as f64) < 1.25 * short_rss as f64,
        "peak resident set {long_rss} KiB for 10,000 items, {short_rss} KiB for 1,000"
    );
}
