//! `positio load`: a closed-loop HTTP load generator for the server benchmarks and the soak
//! test. N clients, each on its own keep-alive connection, send requests one after another
//! (client i starts at request i and steps by N, so all clients share the mix) for a bounded
//! duration or request count; it reports throughput, latency percentiles and errors, overall
//! and per time window (is p99 stable over half an hour?).
//!
//! A request is valid (it must get a 2xx) or deliberately bad (malformed, oversized: it must
//! get a 4xx, or the connection closed, and never cost a valid request its answer).

use super::http::Connection;
use crate::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One request of the mix.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    /// False for a request made to be refused.
    pub valid: bool,
}

impl Request {
    /// A valid `POST path` of a JSON body.
    pub fn post(path: &str, body: Vec<u8>) -> Self {
        Request {
            method: "POST".into(),
            path: path.into(),
            body,
            valid: true,
        }
    }

    /// Inputs in the body: the length of its "inputs" / "input" list, else 1.
    fn inputs(&self) -> usize {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        match v.get("inputs").or_else(|| v.get("input")) {
            Some(serde_json::Value::Array(a)) if a.iter().all(|x| x.is_string()) => a.len(),
            _ => 1,
        }
    }
}

/// A mix file's line: `{"method", "path", "body": JSON | "raw": text sent as it is, "valid"}`
/// (`method` defaults to POST, `valid` to true).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MixLine {
    #[serde(default = "post")]
    method: String,
    path: String,
    body: Option<serde_json::Value>,
    raw: Option<String>,
    #[serde(default = "yes")]
    valid: bool,
}

fn post() -> String {
    "POST".into()
}

fn yes() -> bool {
    true
}

/// The requests of a mix file (JSON Lines, see [`MixLine`]); errors name the line.
pub fn read_mix(path: &Path) -> Result<Vec<Request>> {
    let text = crate::data::text::read_text(path, crate::data::text::TextEncoding::Utf8)?;
    let mut requests = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let m: MixLine = serde_json::from_str(line)
            .map_err(|e| Error::line(path, i + 1, format!("not a mix request: {e}")))?;
        let body = match (m.body, m.raw) {
            (Some(_), Some(_)) => {
                return Err(Error::line(
                    path,
                    i + 1,
                    "give \"body\" or \"raw\", not both",
                ))
            }
            (Some(v), None) => v.to_string().into_bytes(),
            (None, Some(raw)) => raw.into_bytes(),
            (None, None) => Vec::new(),
        };
        if !m.path.starts_with('/') {
            return Err(Error::line(path, i + 1, "\"path\" must start with /"));
        }
        requests.push(Request {
            method: m.method,
            path: m.path,
            body,
            valid: m.valid,
        });
    }
    if requests.is_empty() {
        return Err(Error::file(path, "no requests (one JSON object per line)"));
    }
    Ok(requests)
}

pub struct LoadOptions {
    /// `host:port`.
    pub host: String,
    /// Sent in turn.
    pub requests: Vec<Request>,
    pub clients: usize,
    pub duration: Duration,
    /// Stop after this many requests in all (also bounded by `duration`).
    pub max_requests: Option<usize>,
    /// Sent as `Authorization: Bearer`.
    pub api_key: Option<String>,
    /// Length of the report's time windows; a progress line on stderr after each.
    pub window: Option<Duration>,
}

/// Latencies and counts of a set of answers.
#[derive(Debug, Serialize)]
pub struct Window {
    /// Seconds from the start to the window's start.
    pub start_s: f64,
    pub requests: usize,
    /// Valid requests answered 2xx.
    pub ok: usize,
    /// Valid requests answered otherwise, or whose connection failed (status 0).
    pub errors: usize,
    /// Bad requests refused with a 4xx or a closed connection, as they should be.
    pub refused: usize,
    /// Bad requests answered 2xx or 5xx.
    pub misanswered: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub clients: usize,
    pub seconds: f64,
    #[serde(flatten)]
    pub all: Window,
    pub statuses: BTreeMap<u16, usize>,
    /// Inputs in the successful requests.
    pub sequences: usize,
    pub sequences_per_s: f64,
    pub requests_per_s: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
}

/// One answer: when it was asked (seconds from the start), how long it took, its status, and
/// its request's index in the mix.
struct Record {
    at: f64,
    ms: f64,
    status: u16,
    request: usize,
}

/// Runs the load; fails only if there is nothing to send.
pub fn run(options: &LoadOptions) -> Result<LoadReport> {
    if options.requests.is_empty() {
        return Err(Error::invalid("no requests to send"));
    }
    let clients = options.clients.max(1);
    let sent = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let records: Mutex<Vec<Record>> = Mutex::new(Vec::new());
    let start = Instant::now();
    let deadline = start + options.duration;
    std::thread::scope(|scope| {
        for client in 0..clients {
            let (sent, records, finished) = (&sent, &records, &finished);
            scope.spawn(move || {
                let mine = client_loop(options, client, clients, sent, start, deadline);
                records
                    .lock()
                    .expect("no panics hold the lock")
                    .extend(mine);
                finished.fetch_add(1, Ordering::Relaxed);
            });
        }
        if let Some(window) = options.window {
            let mut next = start + window;
            while finished.load(Ordering::Relaxed) < clients {
                std::thread::sleep(Duration::from_millis(200));
                if Instant::now() >= next {
                    eprintln!(
                        "load: {:.0} s, {} requests sent",
                        start.elapsed().as_secs_f64(),
                        sent.load(Ordering::Relaxed)
                            .min(options.max_requests.unwrap_or(usize::MAX))
                    );
                    next += window;
                }
            }
        }
    });
    let seconds = start.elapsed().as_secs_f64();
    let records = records.into_inner().expect("no panics hold the lock");
    let mut statuses = BTreeMap::new();
    for r in &records {
        *statuses.entry(r.status).or_insert(0) += 1;
    }
    let all = window_of(&records, &options.requests, 0.0);
    let inputs: Vec<usize> = options.requests.iter().map(Request::inputs).collect();
    let sequences = records
        .iter()
        .filter(|r| options.requests[r.request].valid && ok(r.status))
        .map(|r| inputs[r.request])
        .sum();
    let windows = match options.window {
        Some(w) => {
            let w = w.as_secs_f64();
            let mut by_window: BTreeMap<u64, Vec<Record>> = BTreeMap::new();
            for r in records {
                by_window.entry((r.at / w) as u64).or_default().push(r);
            }
            by_window
                .iter()
                .map(|(k, rs)| window_of(rs, &options.requests, *k as f64 * w))
                .collect()
        }
        None => Vec::new(),
    };
    Ok(LoadReport {
        clients,
        seconds,
        requests_per_s: all.ok as f64 / seconds,
        all,
        statuses,
        sequences,
        sequences_per_s: sequences as f64 / seconds,
        windows,
    })
}

/// One client: requests in turn on one keep-alive connection, reopened when the server closed
/// it (after a refusal, or on failure).
fn client_loop(
    options: &LoadOptions,
    client: usize,
    clients: usize,
    sent: &AtomicUsize,
    start: Instant,
    deadline: Instant,
) -> Vec<Record> {
    let timeout = options.duration + Duration::from_secs(30);
    let mut connection: Option<Connection> = None;
    let mut mine = Vec::new();
    let mut k = client;
    while Instant::now() < deadline {
        let n = sent.fetch_add(1, Ordering::Relaxed);
        if options.max_requests.is_some_and(|max| n >= max) {
            break;
        }
        let i = k % options.requests.len();
        k += clients;
        let request = &options.requests[i];
        let t = Instant::now();
        if connection.is_none() {
            connection = Connection::open(&options.host, timeout)
                .ok()
                .map(|c| c.with_api_key(options.api_key.as_deref()));
        }
        let result = match connection.as_mut() {
            Some(c) => c.request(&request.method, &request.path, &request.body),
            None => Err(std::io::Error::other("cannot connect")),
        };
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let at = (t - start).as_secs_f64();
        match result {
            Ok(reply) => {
                if reply
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                {
                    connection = None;
                }
                mine.push(Record {
                    at,
                    ms,
                    status: reply.status,
                    request: i,
                });
            }
            Err(_) => {
                connection = None;
                mine.push(Record {
                    at,
                    ms,
                    status: 0,
                    request: i,
                });
                if request.valid {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
    mine
}

fn ok(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Counts and latency percentiles (of the valid requests answered 2xx) of `records`.
fn window_of(records: &[Record], requests: &[Request], start_s: f64) -> Window {
    let (mut good, mut errors, mut refused, mut misanswered) = (Vec::new(), 0, 0, 0);
    for r in records {
        match (requests[r.request].valid, r.status) {
            (true, s) if ok(s) => good.push(r.ms),
            (true, _) => errors += 1,
            (false, 0 | 400..=499) => refused += 1,
            (false, _) => misanswered += 1,
        }
    }
    good.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if good.is_empty() {
            f64::NAN
        } else {
            good[((good.len() - 1) as f64 * p).round() as usize]
        }
    };
    Window {
        start_s,
        requests: records.len(),
        ok: good.len(),
        errors,
        refused,
        misanswered,
        p50_ms: pct(0.5),
        p90_ms: pct(0.9),
        p99_ms: pct(0.99),
        max_ms: good.last().copied().unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_files_are_read_or_refused_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mix.jsonl");
        std::fs::write(
            &path,
            "{\"path\": \"/embed\", \"body\": {\"inputs\": [\"a\", \"b\"]}}\n\n\
             {\"method\": \"GET\", \"path\": \"/health\"}\n\
             {\"path\": \"/embed\", \"raw\": \"{\\\"inputs\\\": \", \"valid\": false}\n",
        )
        .unwrap();
        let mix = read_mix(&path).unwrap();
        assert_eq!(mix.len(), 3);
        assert_eq!((mix[0].method.as_str(), mix[0].inputs()), ("POST", 2));
        assert_eq!((mix[1].method.as_str(), mix[1].body.len()), ("GET", 0));
        assert_eq!(
            (mix[2].body.as_slice(), mix[2].valid),
            (&b"{\"inputs\": "[..], false)
        );
        for (text, problem) in [
            (
                "{\"path\": \"/a\", \"body\": 1, \"raw\": \"x\"}",
                "not both",
            ),
            ("{\"path\": \"a\"}", "must start with /"),
            ("{\"path\": \"/a\", \"valud\": true}", "unknown field"),
            ("", "no requests"),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = read_mix(&path).unwrap_err().to_string();
            assert!(e.contains(problem) && e.contains("mix.jsonl"), "{e}");
        }
    }

    #[test]
    fn windows_count_valid_and_bad_requests_apart() {
        let requests = vec![
            Request::post("/embed", b"{\"inputs\": \"x\"}".to_vec()),
            Request {
                valid: false,
                ..Request::post("/embed", b"{".to_vec())
            },
        ];
        let record = |ms, status, request| Record {
            at: 0.0,
            ms,
            status,
            request,
        };
        let records = [
            record(1.0, 200, 0),
            record(3.0, 200, 0),
            record(2.0, 500, 0),
            record(0.0, 0, 0),
            record(1.0, 422, 1),
            record(1.0, 0, 1),
            record(1.0, 200, 1),
            record(1.0, 503, 1),
        ];
        let w = window_of(&records, &requests, 0.0);
        assert_eq!((w.requests, w.ok, w.errors), (8, 2, 2));
        assert_eq!((w.refused, w.misanswered), (2, 2));
        assert_eq!((w.p50_ms, w.max_ms), (3.0, 3.0));
    }
}
