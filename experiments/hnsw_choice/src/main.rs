//! Side-by-side measurement of two Rust HNSW crates, `hnsw_rs` (pure Rust) and `usearch`
//! (C++ core behind cxx), on the same vectors with the same parameters: M = 16
//! (usearch `connectivity`), efConstruction = 128, inner product on unit vectors, f32 storage,
//! parallel insertion through rayon, keys = row numbers. Search is single-threaded, top-10,
//! at ef = 64 and 128, after one untimed warm-up pass; reported are the build time, the growth
//! of peak RSS (VmHWM, reset before the build) and of RSS over the build, p50 / p95 ms per
//! query and recall@10 against exact truth. The default feature `simd` turns on hnsw_rs's
//! `simdeez_f` distances; `--no-default-features` measures its scalar default.
//!
//! Inputs are little-endian row-major files: VECTORS (n × DIM f32), QUERIES (q × DIM f32),
//! TRUTH (q × k i32, exact nearest row numbers by inner product, k ≥ 10), as written by
//! `experiments/index_1m.py`.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/hnsw_choice_target cargo build --release
//! # both crates, each in its own child process, then one Markdown table:
//! /work/hnsw_choice_target/release/hnsw_choice VECTORS QUERIES TRUTH DIM
//! # one crate only (prints one JSON line):
//! /work/hnsw_choice_target/release/hnsw_choice VECTORS QUERIES TRUTH DIM usearch|hnsw_rs
//! ```

use std::process::Command;
use std::time::Instant;

use rayon::prelude::*;
use serde_json::{json, Value};

const M: usize = 16;
const EF_CONSTRUCTION: usize = 128;
const K: usize = 10;
const EFS: [usize; 2] = [64, 128];

fn read_f32(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn read_i32(path: &str) -> Vec<i32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    bytes.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// A `kB` field of /proc/self/status, in bytes.
fn proc_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0), so that the peak measured over a build
/// excludes the transient copy made while reading the input files.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".into(), |(_, v)| v.trim().to_string())
}

/// Warm-up pass, then one timed pass; p50 / p95 ms and recall@K.
fn timed_searches(queries: &[&[f32]], truth: &[&[i32]], search: impl Fn(&[f32]) -> Vec<u64>) -> Value {
    for q in queries {
        std::hint::black_box(search(q));
    }
    let mut millis = Vec::with_capacity(queries.len());
    let mut found = 0usize;
    for (q, exact) in queries.iter().zip(truth) {
        let t = Instant::now();
        let keys = search(q);
        millis.push(t.elapsed().as_secs_f64() * 1e3);
        found += keys.iter().take(K).filter(|&&key| exact[..K].contains(&(key as i32))).count();
    }
    millis.sort_by(f64::total_cmp);
    let at = |p: f64| millis[((millis.len() - 1) as f64 * p).round() as usize];
    json!({"p50_ms": at(0.5), "p95_ms": at(0.95), "recall": found as f64 / (queries.len() * K) as f64})
}

fn run_usearch(rows: &[&[f32]], queries: &[&[f32]], truth: &[&[i32]], dim: usize) -> Value {
    use usearch::{Index, IndexOptions, MetricKind, ScalarKind};
    reset_peak_rss();
    let (hwm_before, rss_before) = (proc_status("VmHWM:"), proc_status("VmRSS:"));
    let t = Instant::now();
    let options = IndexOptions {
        dimensions: dim,
        metric: MetricKind::IP,
        quantization: ScalarKind::F32,
        connectivity: M,
        expansion_add: EF_CONSTRUCTION,
        expansion_search: EFS[0],
        multi: false,
    };
    let index = Index::new(&options).expect("usearch index");
    index.reserve_capacity_and_threads(rows.len(), rayon::current_num_threads()).expect("reserve");
    rows.par_iter().enumerate().for_each(|(i, v)| index.add(i as u64, v).expect("add"));
    let build = t.elapsed().as_secs_f64();
    let memory = (proc_status("VmHWM:") - hwm_before, proc_status("VmRSS:") - rss_before);
    let search: Vec<Value> = EFS
        .iter()
        .map(|&ef| {
            index.change_expansion_search(ef);
            let mut r = timed_searches(queries, truth, |q| index.search(q, K).expect("search").keys);
            r["ef"] = ef.into();
            r
        })
        .collect();
    json!({"library": format!("usearch {}", usearch::version()), "simd": index.hardware_acceleration(),
           "build_seconds": build, "peak_growth_bytes": memory.0, "rss_growth_bytes": memory.1,
           "search": search})
}

fn run_hnsw_rs(rows: &[&[f32]], queries: &[&[f32]], truth: &[&[i32]]) -> Value {
    use hnsw_rs::prelude::{DistDot, Hnsw};
    reset_peak_rss();
    let (hwm_before, rss_before) = (proc_status("VmHWM:"), proc_status("VmRSS:"));
    let t = Instant::now();
    let index: Hnsw<f32, DistDot> = Hnsw::new(M, rows.len(), 16, EF_CONSTRUCTION, DistDot);
    let data: Vec<(&[f32], usize)> = rows.iter().enumerate().map(|(i, v)| (*v, i)).collect();
    index.parallel_insert_slice(&data);
    let build = t.elapsed().as_secs_f64();
    let memory = (proc_status("VmHWM:") - hwm_before, proc_status("VmRSS:") - rss_before);
    let search: Vec<Value> = EFS
        .iter()
        .map(|&ef| {
            let mut r = timed_searches(queries, truth, |q| {
                index.search(q, K, ef).iter().map(|n| n.d_id as u64).collect()
            });
            r["ef"] = ef.into();
            r
        })
        .collect();
    let simd = if cfg!(feature = "simd") { "simdeez (runtime AVX2/SSE2)" } else { "scalar" };
    json!({"library": "hnsw_rs 0.3.5", "simd": simd, "build_seconds": build,
           "peak_growth_bytes": memory.0, "rss_growth_bytes": memory.1, "search": search})
}

fn print_table(results: &[Value]) {
    println!("| crate | build s | peak RSS growth MiB | RSS after build MiB | ef | p50 ms | p95 ms | recall@10 |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in results {
        for s in r["search"].as_array().unwrap() {
            println!(
                "| {} | {:.1} | {:.0} | {:.0} | {} | {:.3} | {:.3} | {:.4} |",
                r["library"].as_str().unwrap(),
                r["build_seconds"].as_f64().unwrap(),
                r["peak_growth_bytes"].as_f64().unwrap() / 1048576.0,
                r["rss_growth_bytes"].as_f64().unwrap() / 1048576.0,
                s["ef"],
                s["p50_ms"].as_f64().unwrap(),
                s["p95_ms"].as_f64().unwrap(),
                s["recall"].as_f64().unwrap(),
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: {} VECTORS QUERIES TRUTH DIM [usearch|hnsw_rs]", args[0]);
        std::process::exit(2);
    }
    let dim: usize = args[4].parse().expect("DIM");
    let Some(which) = args.get(5) else {
        // Both crates, each in a fresh process so that their memory numbers are separate.
        println!("CPU: {}, {} threads", cpu_model(), rayon::current_num_threads());
        let exe = std::env::current_exe().expect("current_exe");
        let results: Vec<Value> = ["usearch", "hnsw_rs"]
            .iter()
            .map(|name| {
                let out = Command::new(&exe).args(&args[1..5]).arg(name).output().expect("child");
                assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
                let line = String::from_utf8(out.stdout).unwrap();
                println!("{}", line.trim());
                serde_json::from_str(line.trim()).expect("child JSON")
            })
            .collect();
        println!();
        print_table(&results);
        return;
    };
    let vectors = read_f32(&args[1]);
    let queries = read_f32(&args[2]);
    let truth = read_i32(&args[3]);
    let rows: Vec<&[f32]> = vectors.chunks_exact(dim).collect();
    let queries: Vec<&[f32]> = queries.chunks_exact(dim).collect();
    let k_truth = truth.len() / queries.len();
    assert!(k_truth >= K, "truth has {k_truth} neighbours per query, need {K}");
    let truth: Vec<&[i32]> = truth.chunks_exact(k_truth).collect();
    let result = match which.as_str() {
        "usearch" => run_usearch(&rows, &queries, &truth, dim),
        "hnsw_rs" => run_hnsw_rs(&rows, &queries, &truth),
        other => panic!("unknown crate {other}: usearch or hnsw_rs"),
    };
    println!("{result}");
}
