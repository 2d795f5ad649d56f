//! `--metrics-addr`: a following monitor serves Prometheus metrics for Grafana, with one label
//! set per series and entity series bounded by `--top-entities`.

use crate::*;

#[test]
fn metrics_follow_the_series_with_a_bounded_set_of_entities() {
    let dir = tmp("monitor-metrics");
    let dir = dir.as_ref();
    let file = dir.join("news.jsonl");
    std::fs::write(&file, items(0, 60)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = spawn_monitor(
        dir,
        &[
            "--source",
            file.to_str().unwrap(),
            "--follow",
            "--poll",
            "0.05",
            "--top-entities",
            "1",
            "--metrics-addr",
            &addr,
        ],
    );
    let db = dir.join("monitor.db");
    wait_for_items(&db, 60);
    // The batch's windows close just after it is stored.
    let scrape = || {
        ureq::get(&format!("http://{addr}/metrics"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut text = scrape();
    while !text.contains("positio_monitor_volume{series=\"all\"} 10") {
        assert!(std::time::Instant::now() < deadline, "{text}");
        std::thread::sleep(std::time::Duration::from_millis(50));
        text = scrape();
    }
    let summary = stop(child, "-INT");
    assert_eq!(counts(&summary), (60, 60, 0));
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line_start))
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(value("positio_monitor_items_read_total "), 60.0);
    assert_eq!(value("positio_monitor_items_stored_total "), 60.0);
    // Items one a minute from 00:00: the window of 00:40 is the last closed one while following.
    assert_eq!(value("positio_monitor_volume{series=\"all\"} "), 10.0);
    let share = value("positio_monitor_negative_share{series=\"all\"} ");
    assert!((0.0..=1.0).contains(&share));
    // Several entities were found; one has a series.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let entities: i64 = conn
        .query_row("SELECT count(*) FROM volumes", [], |r| r.get(0))
        .unwrap();
    assert!(entities >= 2, "the fixture NER found {entities} entities");
    let exported = text
        .lines()
        .filter(|l| l.starts_with("positio_monitor_volume{series=\"entity:"))
        .count();
    assert_eq!(exported, 1, "{text}");
}
