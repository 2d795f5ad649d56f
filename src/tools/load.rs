//! `positio load`: a closed-loop HTTP load generator for the server benchmarks. N clients,
//! each on its own keep-alive connection, send request bodies one after another (client i
//! starts at body i and steps by N, so all clients share the mix of lengths) for a bounded
//! duration or request count; it reports throughput, latency percentiles and errors.

use super::http::Connection;
use crate::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct LoadOptions {
    /// `host:port`.
    pub host: String,
    pub path: String,
    /// JSON request bodies, sent in turn.
    pub bodies: Vec<Vec<u8>>,
    pub clients: usize,
    pub duration: Duration,
    /// Stop after this many requests in all (also bounded by `duration`).
    pub max_requests: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub clients: usize,
    pub seconds: f64,
    pub requests: usize,
    /// Answers with status 2xx.
    pub ok: usize,
    /// Other statuses, and failed connections (status 0).
    pub errors: usize,
    pub statuses: BTreeMap<u16, usize>,
    /// Inputs in the successful requests.
    pub sequences: usize,
    pub sequences_per_s: f64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Inputs in a request body: the length of its "inputs" / "input" list, else 1.
fn inputs_in(body: &[u8]) -> usize {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    match v.get("inputs").or_else(|| v.get("input")) {
        Some(serde_json::Value::Array(a)) if a.iter().all(|x| x.is_string()) => a.len(),
        _ => 1,
    }
}

/// Runs the load; fails only if nothing could be sent at all.
pub fn run(options: &LoadOptions) -> Result<LoadReport> {
    if options.bodies.is_empty() {
        return Err(Error::invalid("no request bodies to send"));
    }
    let clients = options.clients.max(1);
    let counts: Vec<usize> = options.bodies.iter().map(|b| inputs_in(b)).collect();
    let sent = AtomicUsize::new(0);
    // (latency ms, status, inputs) per request.
    let records: Mutex<Vec<(f64, u16, usize)>> = Mutex::new(Vec::new());
    let start = Instant::now();
    let deadline = start + options.duration;
    std::thread::scope(|scope| {
        for client in 0..clients {
            let (sent, records, counts) = (&sent, &records, &counts);
            scope.spawn(move || {
                let timeout = options.duration + Duration::from_secs(30);
                let mut connection = None;
                let mut mine = Vec::new();
                let mut k = client;
                while Instant::now() < deadline {
                    if let Some(max) = options.max_requests {
                        if sent.fetch_add(1, Ordering::SeqCst) >= max {
                            break;
                        }
                    }
                    let i = k % options.bodies.len();
                    k += clients;
                    let t = Instant::now();
                    if connection.is_none() {
                        connection = Connection::open(&options.host, timeout).ok();
                    }
                    let result = match connection.as_mut() {
                        Some(c) => c.request("POST", &options.path, &options.bodies[i]),
                        None => Err(std::io::Error::other("cannot connect")),
                    };
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    match result {
                        Ok(reply) => mine.push((ms, reply.status, counts[i])),
                        Err(_) => {
                            connection = None;
                            mine.push((ms, 0, counts[i]));
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
                records
                    .lock()
                    .expect("no panics hold the lock")
                    .extend(mine);
            });
        }
    });
    let seconds = start.elapsed().as_secs_f64();
    let records = records.into_inner().expect("no panics hold the lock");
    let mut statuses = BTreeMap::new();
    for r in &records {
        *statuses.entry(r.1).or_insert(0) += 1;
    }
    let good: Vec<&(f64, u16, usize)> = records
        .iter()
        .filter(|r| (200..300).contains(&r.1))
        .collect();
    let mut latencies: Vec<f64> = good.iter().map(|r| r.0).collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if latencies.is_empty() {
            f64::NAN
        } else {
            latencies[((latencies.len() - 1) as f64 * p).round() as usize]
        }
    };
    let sequences = good.iter().map(|r| r.2).sum();
    Ok(LoadReport {
        clients,
        seconds,
        requests: records.len(),
        ok: good.len(),
        errors: records.len() - good.len(),
        statuses,
        sequences,
        sequences_per_s: sequences as f64 / seconds,
        requests_per_s: good.len() as f64 / seconds,
        p50_ms: pct(0.5),
        p90_ms: pct(0.9),
        p99_ms: pct(0.99),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
    })
}
