//! RSS and Atom feeds over HTTP, served on 127.0.0.1 by a small server in the test: entries are
//! stored once however often the feed is read, an entry without a time is counted as malformed,
//! HTML summaries are stored as plain text, a followed feed that changes (RSS to Atom, two new
//! entries) is picked up, an unchanged one is answered 304 thanks to the ETag, and SIGTERM
//! ends the run cleanly. A feed that is not a feed is a clear error naming its URL.

use crate::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// The feed served now: (ETag, content type, body).
type Served = Arc<Mutex<(String, &'static str, String)>>;

/// Serves `served` at every path; counts 200 and 304 answers.
fn serve(served: Served) -> (String, Arc<Mutex<(usize, usize)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/markets.xml", listener.local_addr().unwrap());
    let answers = Arc::new(Mutex::new((0, 0)));
    let counted = answers.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut if_none_match = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("if-none-match") {
                        if_none_match = Some(value.trim().to_string());
                    }
                }
            }
            let (etag, kind, body) = served.lock().unwrap().clone();
            let answer = if if_none_match.as_deref() == Some(etag.as_str()) {
                counted.lock().unwrap().1 += 1;
                format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n")
            } else {
                counted.lock().unwrap().0 += 1;
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nETag: {etag}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (url, answers)
}

const RSS: &str = r#"<?xml version="1.0"?>
<rss version="2.0"><channel><title>Markets wire</title><link>http://example.com/</link>
<description>test</description>
<item><guid>wire-1</guid><title>OPEC cuts output</title><pubDate>Mon, 02 Mar 1987 05:00:00 GMT</pubDate>
<description>&lt;p&gt;OPEC &lt;b&gt;agreed&lt;/b&gt; to cut crude oil output.&lt;/p&gt;</description></item>
<item><guid>wire-2</guid><title>Wheat exports</title><pubDate>Mon, 02 Mar 1987 05:07:00 GMT</pubDate>
<description>Wheat exports to the Soviet Union rose sharply.</description></item>
<item><guid>wire-3</guid><title>No date</title><description>This entry has no time.</description></item>
<item><guid>wire-4</guid><title>Dividend cut</title><pubDate>Mon, 02 Mar 1987 05:12:00 GMT</pubDate>
<description>The company reported a quarterly loss and cut its dividend.</description></item>
</channel></rss>"#;

/// The same wire as Atom, with two more entries.
fn atom() -> String {
    let entry = |id: &str, minute: u32, text: &str| {
        format!(
            "<entry><id>{id}</id><title>{text}</title><updated>1987-03-02T05:{minute:02}:00Z</updated>\
             <summary>{text}</summary></entry>"
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">
<title>Markets wire</title><id>urn:wire</id><updated>1987-03-02T06:00:00Z</updated>{}{}{}{}</feed>"#,
        entry("wire-1", 0, "OPEC agreed to cut crude oil output."),
        entry("wire-2", 7, "Wheat exports rose."),
        entry("wire-5", 20, "Gold prices fell as the dollar gained."),
        entry("wire-6", 31, "Shares of the bank fell after its loss."),
    )
}

#[test]
fn a_feed_is_stored_once_and_followed_as_it_changes() {
    let dir = tmp("monitor-feed");
    let dir = dir.as_ref();
    let served: Served = Arc::new(Mutex::new((
        "\"v1\"".into(),
        "application/rss+xml",
        RSS.into(),
    )));
    let (url, answers) = serve(served.clone());
    let (ok, summary, err) = monitor(dir, &[], &["--source", &url]);
    assert!(ok, "{err}");
    assert_eq!(counts(&summary), (3, 3, 1), "{summary}");
    assert!(
        err.contains(&url) && err.contains("no published or updated time"),
        "{err}"
    );
    let db = dir.join("monitor.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (text, source): (String, String) = conn
        .query_row(
            "SELECT text, source FROM items WHERE id = 'wire-1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(text, "OPEC agreed to cut crude oil output.");
    assert_eq!(source, "Markets wire");
    // Read again: nothing new.
    let (ok, summary, _) = monitor(dir, &[], &["--source", &url]);
    assert!(ok);
    assert_eq!(counts(&summary), (3, 0, 1));
    // Followed: the feed becomes Atom with two new entries; unchanged fetches get 304.
    let child = spawn_monitor(
        dir,
        &[
            "--source",
            &url,
            "--follow",
            "--poll",
            "0.05",
            "--feed-poll",
            "1s",
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert!(
        answers.lock().unwrap().1 >= 1,
        "no 304: {:?}",
        answers.lock().unwrap()
    );
    *served.lock().unwrap() = ("\"v2\"".into(), "application/atom+xml", atom());
    wait_for_items(&db, 5);
    let summary = stop(child, "-TERM");
    assert_eq!(summary["stored"], 2, "{summary}");
    // Not a feed: a clear error naming the URL.
    *served.lock().unwrap() = ("\"v3\"".into(), "text/html", "<html>hello</html>".into());
    let (ok, _, err) = monitor(dir, &[], &["--source", &url]);
    assert!(
        !ok && err.contains(&url) && err.contains("not an RSS or Atom feed"),
        "{err}"
    );
}
