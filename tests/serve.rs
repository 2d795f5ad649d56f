//! `positio serve` as a client sees it: the real binary on a loopback port, driven over HTTP.
//! Answers are compared with the command line's on the same inputs (embeddings, classification)
//! and with `transformers`' pipeline (NER, fixture from scripts/reference/ner_pipeline.py);
//! limits and malformed requests get their status codes; concurrent mixed clients, SIGTERM
//! during load, and `/metrics` counts; the `openai` client against `/v1/embeddings`.

mod common;

use common::server::Server;
use common::{max_abs_diff, minilm_dir, positio, tmp};
use positio::hf::FromCheckpoint;
use positio::tools::http::{Connection, Reply};
use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const NER: &str = "tests/fixtures/hf_tiny_ner";
const SINGLE: &str = "tests/fixtures/hf_tiny_classify/single";
const MULTI: &str = "tests/fixtures/hf_tiny_classify/multi";

fn minilm() -> String {
    format!("minilm={}", minilm_dir().display())
}

fn all_models() -> Vec<String> {
    vec![
        minilm(),
        format!("ner={NER}"),
        format!("single={SINGLE}"),
        format!("multi={MULTI}"),
    ]
}

fn start_all(extra: &[&str]) -> Server {
    let models = all_models();
    let mut args: Vec<&str> = Vec::new();
    for m in &models {
        args.extend(["--model", m.as_str()]);
    }
    args.extend(extra);
    Server::start(&args)
}

/// `positio embed` of `texts` (then `extra` flags): one vector per text.
fn cli_embeddings(texts: &[&str], extra: &[&str]) -> Vec<Vec<f64>> {
    let mut args = vec!["embed".to_string(), minilm_dir().display().to_string()];
    for t in texts {
        args.extend(["--text".to_string(), t.to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let (ok, out, err) = positio(&args);
    assert!(ok, "{err}");
    out.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            floats(&v["embedding"])
        })
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(worst <= tol, "{what}: differs by {worst}");
}

/// The scores of a single `/predict` answer, in its order.
fn scores_of(reply: &Reply) -> Vec<f64> {
    let answer = reply.json();
    answer
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["score"].as_f64().unwrap())
        .collect()
}

const TEXTS: [&str; 3] = [
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn",
    "The European Commission said on Thursday it disagreed with German advice to consumers.",
];

#[test]
fn routes_answer_as_the_command_line_and_the_pipeline() {
    let server = start_all(&[]);

    // /embed: as `positio embed` (normalised), and the raw mean when asked.
    let expected = cli_embeddings(&TEXTS, &[]);
    let r = server.post("/embed", &json!({ "inputs": TEXTS }));
    assert_eq!(r.status, 200, "{}", r.text());
    let got = r.json();
    for (g, e) in got.as_array().unwrap().iter().zip(&expected) {
        assert_close(&floats(g), e, 1e-5, "/embed vs positio embed");
    }
    let r = server.post("/embed", &json!({ "inputs": TEXTS[0], "normalize": false }));
    let raw = floats(&r.json()[0]);
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!(
        (norm - 1.0).abs() > 1e-3,
        "normalize: false left it unit-norm"
    );
    let unit: Vec<f64> = raw.iter().map(|x| x / norm).collect();
    assert_close(&unit, &expected[0], 1e-5, "raw mean, normalised");

    // /predict: a text, a pair, a batch; as `positio predict classify`.
    let (ok, out, err) = positio(&[
        "predict",
        "classify",
        "--model",
        SINGLE,
        "--text",
        TEXTS[0],
        "--text",
        TEXTS[1],
        "--text-pair",
        TEXTS[2],
        "--text-pair",
        TEXTS[0],
    ]);
    assert!(ok, "{err}");
    let cli: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let r = server.post(
        "/predict",
        &json!({ "inputs": [[TEXTS[0], TEXTS[2]], [TEXTS[1], TEXTS[0]]], "model": "single" }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    for (g, c) in r.json().as_array().unwrap().iter().zip(&cli) {
        assert_eq!(g[0]["label"], c["label"]);
        for (gs, cs) in g
            .as_array()
            .unwrap()
            .iter()
            .zip(c["scores"].as_array().unwrap())
        {
            assert_eq!(gs["label"], cs["label"], "labels sorted by score");
            let (a, b) = (gs["score"].as_f64().unwrap(), cs["score"].as_f64().unwrap());
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
    // A single text answers one list (TEI), not a list of lists; raw scores are logits.
    let one = server.post(
        "/predict",
        &json!({ "inputs": TEXTS[1], "model": "single" }),
    );
    let scores = scores_of(&one);
    assert!(
        (scores.iter().sum::<f64>() - 1.0).abs() < 1e-5,
        "softmax sums to 1"
    );
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "best first");
    let raw = server.post(
        "/predict",
        &json!({ "inputs": TEXTS[1], "model": "single", "raw_scores": true }),
    );
    let logits = scores_of(&raw);
    let z: f64 = logits.iter().map(|l| (l - logits[0]).exp()).sum();
    assert!(
        (1.0 / z - scores[0]).abs() < 1e-5,
        "softmax of the raw scores"
    );

    // A multi-label model: a sigmoid per label, as the command line.
    let (ok, out, err) = positio(&["predict", "classify", "--model", MULTI, "--text", TEXTS[2]]);
    assert!(ok, "{err}");
    let cli: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let r = server.post("/predict", &json!({ "inputs": TEXTS[2], "model": "multi" }));
    for (g, c) in r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .zip(cli["scores"].as_array().unwrap())
    {
        assert_eq!(g["label"], c["label"]);
        assert!((g["score"].as_f64().unwrap() - c["score"].as_f64().unwrap()).abs() < 1e-5);
        // The model's decision thresholds pick the same labels as the command line.
        let picked = cli["labels"].as_array().unwrap().contains(&g["label"]);
        assert_eq!(g["predicted"].as_bool(), Some(picked), "{g}");
    }

    // /ner: the transformers pipeline's entities, words and character offsets.
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/serve/ner_pipeline.json").unwrap(),
    )
    .unwrap();
    let r = server.post("/ner", &json!({ "inputs": reference["texts"] }));
    assert_eq!(r.status, 200, "{}", r.text());
    let got = r.json();
    let mut compared = 0;
    for (g, e) in got
        .as_array()
        .unwrap()
        .iter()
        .zip(reference["entities"].as_array().unwrap())
    {
        let (g, e) = (g.as_array().unwrap(), e.as_array().unwrap());
        assert_eq!(g.len(), e.len(), "entity count: {g:?} vs {e:?}");
        for (a, b) in g.iter().zip(e) {
            for key in ["entity_group", "word", "start", "end"] {
                assert_eq!(a[key], b[key], "{key}: {a} vs {b}");
            }
            assert!((a["score"].as_f64().unwrap() - b["score"].as_f64().unwrap()).abs() < 1e-4);
            compared += 1;
        }
    }
    assert!(compared >= 20, "the fixture has entities to compare");
    // A single text answers its own list (scores may differ in the last bits: a batch of one
    // runs other matrix-product paths than a batch of five).
    let single = server
        .post("/ner", &json!({ "inputs": reference["texts"][0] }))
        .json();
    let (single, batched) = (single.as_array().unwrap(), got[0].as_array().unwrap());
    assert_eq!(single.len(), batched.len());
    for (a, b) in single.iter().zip(batched) {
        assert_eq!(
            (&a["word"], &a["start"], &a["end"]),
            (&b["word"], &b["start"], &b["end"])
        );
        assert!((a["score"].as_f64().unwrap() - b["score"].as_f64().unwrap()).abs() < 1e-5);
    }

    // /tokenize: ids as the tokenizer's, offsets into the text.
    let r = server.post(
        "/tokenize",
        &json!({ "inputs": "Peter Blackburn", "model": "minilm" }),
    );
    let tokens = r.json()[0].as_array().unwrap().clone();
    assert_eq!(tokens[0]["text"], "[CLS]");
    assert_eq!(tokens[0]["special"], true);
    assert_eq!(tokens[1]["text"], "Peter");
    assert_eq!(
        (tokens[1]["start"].as_u64(), tokens[1]["stop"].as_u64()),
        (Some(0), Some(5))
    );
    let r = server.post(
        "/tokenize",
        &json!({ "inputs": "Peter", "add_special_tokens": false, "model": "minilm" }),
    );
    assert_eq!(r.json()[0].as_array().unwrap().len(), 1);

    // /info, /health, /v1/models.
    let info = server.get("/info").json();
    let models = info["models"].as_array().unwrap();
    assert_eq!(models.len(), 4);
    assert_eq!(models[0]["head"], "embedding");
    assert_eq!(
        models[0]["max_input_length"], 256,
        "sentence-transformers' max_seq_length"
    );
    assert_eq!(models[0]["position_encoding"], "absolute");
    assert_eq!(models[1]["head"], "token_classification");
    assert_eq!(models[1]["labels"][1], "B-LOC");
    assert_eq!(models[3]["multi_label"], true);
    assert_eq!(server.get("/health").status, 200);
    let listed = server.get("/v1/models").json();
    assert_eq!(listed["data"][2]["id"], "single");

    // Shut down cleanly.
    assert!(server.terminate().success());
}

#[test]
fn bad_requests_get_clear_errors_and_limits_hold() {
    let server = start_all(&["--payload-limit", "200000", "--max-client-batch-size", "4"]);
    let check = |r: Reply, status: u16, kind: &str| {
        assert_eq!(r.status, status, "{}", r.text());
        let v = r.json();
        assert_eq!(v["error_type"], kind, "{v}");
        assert!(!v["error"].as_str().unwrap().is_empty());
        v["error"].as_str().unwrap().to_string()
    };
    let raw = |path: &str, body: &[u8]| server.connect().request("POST", path, body).unwrap();

    check(raw("/embed", b"{\"inputs\": "), 422, "validation");
    check(
        raw("/embed", b"{\"inputs\": \"\xff\xfe caf\xe9\"}"),
        422,
        "validation",
    );
    check(
        server.post("/embed", &json!({ "inputs": [] })),
        400,
        "empty",
    );
    // An empty text is valid: the model reads [CLS] [SEP].
    let r = server.post("/embed", &json!({ "inputs": "" }));
    assert_eq!(r.status, 200, "{}", r.text());
    let e = check(
        server.post("/embed", &json!({ "inputs": "x", "normalise": true })),
        422,
        "validation",
    );
    assert!(e.contains("normalise"), "{e}");
    check(
        server.post("/embed", &json!({ "inputs": 5 })),
        422,
        "validation",
    );
    check(
        server.post("/embed", &json!({ "inputs": vec!["a"; 5] })),
        422,
        "validation",
    );
    check(
        raw("/embed", &vec![b' '; 200_001]),
        413,
        "payload_too_large",
    );
    check(
        server.post("/embed", &json!({ "inputs": "x", "model": "nope" })),
        404,
        "not_found",
    );
    check(
        server.post("/embed", &json!({ "inputs": "x", "model": "ner" })),
        422,
        "validation",
    );
    check(server.post("/nothing", &json!({})), 404, "not_found");
    check(server.get("/embed"), 405, "method_not_allowed");

    // Over the model's limit: 422 naming both numbers without truncate, cut with it.
    let long = "word ".repeat(20_000); // 100,000 characters
    let e = check(
        server.post("/embed", &json!({ "inputs": long, "truncate": false })),
        422,
        "validation",
    );
    assert!(e.contains("20002 tokens") && e.contains("256"), "{e}");
    let r = server.post("/embed", &json!({ "inputs": long }));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = server.post("/ner", &json!({ "inputs": long, "truncate": false }));
    assert_eq!(r.status, 422);
    let r = server.post("/ner", &json!({ "inputs": long }));
    assert_eq!(r.status, 200, "{}", r.text());

    // OpenAI's format: an unknown model is 404, token ids are refused, dimensions checked.
    let r = server.post("/v1/embeddings", &json!({ "input": "x", "model": "nope" }));
    check(r, 404, "not_found");
    let r = server.post(
        "/v1/embeddings",
        &json!({ "input": [[1, 2]], "model": "minilm" }),
    );
    check(r, 422, "validation");
    let r = server.post(
        "/v1/embeddings",
        &json!({ "input": "x", "model": "minilm", "dimensions": 12 }),
    );
    check(r, 422, "validation");
    assert_eq!(server.get("/health").status, 200, "still healthy");
}

#[test]
fn unreadable_models_and_impossible_limits_are_refused_at_startup() {
    let dir = tmp("serve-bad");
    let (ok, _, err) = positio(&["serve", "--model", dir.join("missing").to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("missing") && err.contains("not a model directory"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    std::fs::write(dir.join("config.json"), "{ not json").unwrap();
    let (ok, _, err) = positio(&["serve", "--model", dir.to_str().unwrap()]);
    assert!(!ok && err.contains("config.json"), "{err}");
    let m = minilm();
    let (ok, _, err) = positio(&["serve", "--model", &m, "--model", &m]);
    assert!(!ok && err.contains("two models are named"), "{err}");
    let (ok, _, err) = positio(&["serve", "--model", &m, "--max-batch-tokens", "100"]);
    assert!(!ok && err.contains("--max-batch-tokens"), "{err}");
}

/// Sixteen clients at once, each sending a fixed mix of valid and invalid requests: every
/// answer is the right one (embeddings as the command line's), every status as expected, and
/// `/metrics` counts exactly what was sent.
#[test]
fn concurrent_mixed_clients_get_their_own_answers_and_metrics_count_them() {
    let server = start_all(&["--max-client-batch-size", "8"]);
    let expected = cli_embeddings(&TEXTS, &[]);
    let sent: Mutex<std::collections::BTreeMap<(String, u16), usize>> = Default::default();
    std::thread::scope(|scope| {
        for client in 0..16 {
            let (server, expected, sent) = (&server, &expected, &sent);
            scope.spawn(move || {
                let mut c = server.connect();
                for k in 0..12 {
                    let i = (client + k) % TEXTS.len();
                    let (path, body, status): (&str, Vec<u8>, u16) = match (client + k) % 6 {
                        0 | 1 => (
                            "/embed",
                            json!({ "inputs": [TEXTS[i], TEXTS[(i + 1) % 3]] })
                                .to_string()
                                .into_bytes(),
                            200,
                        ),
                        2 => ("/embed", b"{\"inputs\": [".to_vec(), 422),
                        3 => (
                            "/embed",
                            json!({ "inputs": [] }).to_string().into_bytes(),
                            400,
                        ),
                        4 => (
                            "/predict",
                            json!({ "inputs": TEXTS[i], "model": "single" })
                                .to_string()
                                .into_bytes(),
                            200,
                        ),
                        _ => (
                            "/ner",
                            json!({ "inputs": [TEXTS[i]] }).to_string().into_bytes(),
                            200,
                        ),
                    };
                    let r = c.request("POST", path, &body).unwrap();
                    assert_eq!(r.status, status, "{path}: {}", r.text());
                    if status == 200 && path == "/embed" {
                        let got = r.json();
                        assert_close(&floats(&got[0]), &expected[i], 1e-5, "first input");
                        assert_close(
                            &floats(&got[1]),
                            &expected[(i + 1) % 3],
                            1e-5,
                            "second input",
                        );
                    }
                    *sent
                        .lock()
                        .unwrap()
                        .entry((path.to_string(), status))
                        .or_default() += 1;
                }
            });
        }
    });
    let metrics = server.get("/metrics").text();
    for ((path, status), n) in sent.into_inner().unwrap() {
        let line = format!("positio_requests_total{{route=\"{path}\",status=\"{status}\"}} {n}");
        assert!(metrics.contains(&line), "missing {line:?} in\n{metrics}");
    }
    for name in [
        "positio_request_duration_seconds_bucket",
        "positio_queue_duration_seconds_bucket",
        "positio_inference_duration_seconds_bucket",
        "positio_batch_size_bucket",
        "positio_batch_tokens_bucket",
        "positio_queue_depth{model=\"minilm\"} 0",
    ] {
        assert!(metrics.contains(name), "missing {name}");
    }
    // Requests shared batches: fewer batches than embedded inputs.
    let count = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let batches = count("positio_batch_size_count{model=\"minilm\"}");
    let inputs = count("positio_batch_size_sum{model=\"minilm\"}");
    assert!(
        inputs > batches,
        "{inputs} inputs in {batches} batches: nothing was batched"
    );
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let m = minilm();
    let server = Server::start(&["--model", &m, "--max-batch-tokens", "512"]);
    let started = AtomicUsize::new(0);
    let long = TEXTS[2].repeat(8);
    let pid = server.child.id();
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|_| {
                let (server, started, long) = (&server, &started, &long);
                scope.spawn(move || {
                    let mut c = server.connect();
                    let body = json!({ "inputs": vec![long.as_str(); 8] }).to_string();
                    started.fetch_add(1, Ordering::SeqCst);
                    c.request("POST", "/embed", body.as_bytes()).unwrap().status
                })
            })
            .collect();
        while started.load(Ordering::SeqCst) < 12 {
            std::thread::yield_now();
        }
        // Let the requests arrive (12 × 8 long inputs take far longer than this to answer).
        std::thread::sleep(Duration::from_millis(150));
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success());
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        answers,
        vec![200; 12],
        "every in-flight request was answered"
    );
    let mut server = server;
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("shutting down"), "{log}");
    assert!(
        Connection::open(&server.host, Duration::from_secs(1)).is_err(),
        "still listening"
    );
}

/// A request of 32 long inputs (16 batches at this token budget) does not hold up a short
/// request sent just after it: batches alternate between the two.
#[test]
fn a_big_request_does_not_starve_a_small_one() {
    let m = minilm();
    let server = Server::start(&["--model", &m, "--max-batch-tokens", "512"]);
    let long = TEXTS[2].repeat(10); // cut at 256 tokens: two per batch
    let (big_done, small_done) = std::thread::scope(|scope| {
        let big = scope.spawn(|| {
            let r = server.post("/embed", &json!({ "inputs": vec![long.as_str(); 32] }));
            assert_eq!(r.status, 200, "{}", r.text());
            Instant::now()
        });
        std::thread::sleep(Duration::from_millis(100));
        let r = server.post("/embed", &json!({ "inputs": "Peter Blackburn" }));
        assert_eq!(r.status, 200, "{}", r.text());
        let small_done = Instant::now();
        (big.join().unwrap(), small_done)
    });
    assert!(
        small_done < big_done,
        "the short request waited for all of the big one"
    );
}

#[test]
fn overload_gets_429_and_slow_answers_504() {
    let m = minilm();
    let server = Server::start(&["--model", &m, "--max-concurrent-requests", "2"]);
    let long = TEXTS[2].repeat(6);
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let (server, long) = (&server, &long);
                scope.spawn(move || {
                    server.post("/embed", &json!({ "inputs": vec![long.as_str(); 16] }))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|s| [200, 429].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    // A refusal says when to come back.
    for r in replies.iter().filter(|r| r.status == 429) {
        assert_eq!(r.header("retry-after"), Some("1"), "{:?}", r.headers);
    }
    drop(server);

    let server = Server::start(&["--model", &m, "--request-timeout", "0.001"]);
    let r = server.post("/embed", &json!({ "inputs": vec![long.as_str(); 16] }));
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json()["error_type"], "timeout");
    assert_eq!(server.get("/health").status, 200);
}

/// `--api-key` (here from the environment): every route but /health needs the key, /metrics
/// too unless --metrics-public; 401 says how to authenticate. A client that stalls in its
/// headers, leaves a keep-alive connection idle, or stalls in its body loses the connection
/// (408 for the body) after --read-timeout, while others are served.
#[test]
fn api_keys_guard_routes_and_slow_clients_are_cut_off() {
    let m = minilm();
    let start = |extra: &[&str]| {
        let mut args = vec!["--model", m.as_str(), "--read-timeout", "1"];
        args.extend(extra);
        Server::start_with_env(&args, &[("POSITIO_API_KEY", "k3y")])
    };
    let server = start(&[]);
    let embed = json!({ "inputs": "hello" }).to_string();
    let send = |key: Option<&str>, method: &str, path: &str, body: &str| {
        server
            .connect()
            .with_api_key(key)
            .request(method, path, body.as_bytes())
            .unwrap()
    };
    assert_eq!(send(None, "GET", "/health", "").status, 200);
    for (key, method, path, body) in [
        (None, "POST", "/embed", embed.as_str()),
        (Some("k3"), "POST", "/embed", embed.as_str()),
        (Some("wrong"), "POST", "/embed", embed.as_str()),
        (None, "GET", "/metrics", ""),
        (None, "GET", "/info", ""),
        (None, "POST", "/nothing", "{}"),
    ] {
        let r = send(key, method, path, body);
        assert_eq!(r.status, 401, "{path} with {key:?}: {}", r.text());
        assert_eq!(r.json()["error_type"], "unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let r = send(Some("k3y"), "POST", "/embed", &embed);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(Some("k3y"), "GET", "/metrics", "");
    assert_eq!(r.status, 200);
    // Refusals are counted, under their route.
    assert!(
        r.text()
            .contains("positio_requests_total{route=\"/embed\",status=\"401\"} 3"),
        "{}",
        r.text()
    );

    // Slow clients: each stalls, is cut off after about a second, and a normal request still
    // gets its answer meanwhile.
    let closed_within = |mut c: Connection, limit: Duration| {
        let t = Instant::now();
        let mut one = [0u8; 1];
        let stream = c.stream();
        stream.set_read_timeout(Some(limit)).unwrap();
        let n = std::io::Read::read(stream, &mut one);
        assert!(matches!(n, Ok(0)) || n.is_err(), "{n:?}");
        assert!(t.elapsed() < limit, "still open after {:?}", t.elapsed());
    };
    let mut headers_stall = server.connect();
    headers_stall
        .send_only(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-")
        .unwrap();
    let mut idle = server.connect().with_api_key(Some("k3y"));
    assert_eq!(idle.request("GET", "/health", b"").unwrap().status, 200);
    let mut body_stall = server.connect();
    body_stall
        .send_only(b"POST /embed HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nContent-Length: 100\r\n\r\n{\"inputs\"")
        .unwrap();
    assert_eq!(send(Some("k3y"), "POST", "/embed", &embed).status, 200);
    let r = body_stall.read_reply().unwrap();
    assert_eq!(r.status, 408, "{}", r.text());
    assert_eq!(r.json()["error_type"], "request_timeout");
    closed_within(headers_stall, Duration::from_secs(10));
    closed_within(idle, Duration::from_secs(10));
    drop(server);

    let server = start(&["--metrics-public"]);
    let r = server.connect().request("GET", "/metrics", b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = server.connect().request("GET", "/info", b"").unwrap();
    assert_eq!(r.status, 401);
}

/// The official `openai` Python client against `/v1/embeddings` (scripts/reference/openai_client.py),
/// on a server with an API key: the client's key is accepted, another one gets its
/// AuthenticationError.
#[test]
fn the_openai_client_gets_the_command_lines_embeddings() {
    let server = start_all(&["--api-key", "sk-positio-test"]);
    let dir = tmp("serve-openai");
    let expected = dir.join("expected.json");
    let embeddings = cli_embeddings(&TEXTS, &[]);
    std::fs::write(
        &expected,
        json!({ "texts": TEXTS, "embeddings": embeddings }).to_string(),
    )
    .unwrap();
    let out = std::process::Command::new("python3")
        .arg("scripts/reference/openai_client.py")
        .arg(format!("http://{}", server.host))
        .arg("minilm")
        .arg(&expected)
        .arg("sk-positio-test")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "openai client: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `serve --precision int8` answers what `embed --precision int8` computes (activations are
/// quantized per row, so a text's numbers do not depend on the batch it joins), within cosine
/// 0.99 of fp32 and not equal to it.
#[test]
fn the_int8_server_answers_as_the_int8_command_line() {
    let server = Server::start(&["--model", &minilm(), "--precision", "int8"]);
    let (fp32, int8) = (
        cli_embeddings(&TEXTS, &[]),
        cli_embeddings(&TEXTS, &["--precision", "int8"]),
    );
    // One request of all texts, and each text alone: other batches, the same numbers.
    let all = server.post("/embed", &json!({ "inputs": TEXTS }));
    assert_eq!(all.status, 200, "{}", all.text());
    for (i, (got, want)) in all.json().as_array().unwrap().iter().zip(&int8).enumerate() {
        assert_close(&floats(got), want, 1e-5, "/embed int8 vs embed int8");
        let one = server.post("/embed", &json!({ "inputs": TEXTS[i] }));
        assert_close(&floats(&one.json()[0]), want, 1e-5, "alone vs batched");
        let cosine: f64 = want.iter().zip(&fp32[i]).map(|(a, b)| a * b).sum();
        assert!(cosine >= 0.99, "text {i}: cosine to fp32 {cosine}");
        assert!(
            max_abs_diff(want, &fp32[i]) > 1e-4,
            "int8 gave fp32's numbers"
        );
    }
}

/// NER has one decoding: each of transformers' strategies gives the pipeline code's entities on
/// the same probabilities (scripts/reference/ner_aggregate.py); `predict ner` and `/ner` answer
/// the same entities for every strategy, `words` included, and share the default; `predict
/// ner` with `words` finds the entities of `eval ner`'s predicted tags.
#[test]
fn predict_eval_and_the_server_share_one_ner_decoding() {
    use positio::tasks::ner::decode::{entities, Aggregation};
    use positio::tasks::ner::{split_words, NerModel};
    let mut texts: Vec<String> = serde_json::from_str::<Value>(
        &std::fs::read_to_string("tests/fixtures/serve/ner_pipeline.json").unwrap(),
    )
    .unwrap()["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    texts.push("Unbelievably, Grünwald's Nordbank underwrote Xqzvwplk-Holdings in 1996.".into());
    let strategies = [
        Aggregation::None,
        Aggregation::Simple,
        Aggregation::First,
        Aggregation::Average,
        Aggregation::Max,
    ];
    let name = |s: Aggregation| {
        serde_json::to_value(s)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    };
    let same = |a: &Value, b: &Value, tol: f64| {
        for key in ["entity", "entity_group", "index", "word", "start", "end"] {
            assert_eq!(a.get(key), b.get(key), "{key}: {a} vs {b}");
        }
        let (x, y) = (a["score"].as_f64().unwrap(), b["score"].as_f64().unwrap());
        assert!((x - y).abs() < tol, "score: {a} vs {b}");
    };

    // The decoding against transformers' own code, on positio's probabilities.
    let model = NerModel::load(std::path::Path::new(NER), None, &common::cpu()).unwrap();
    let encodings: Vec<_> = texts
        .iter()
        .map(|t| {
            model
                .tokenizer
                .encode_full(t, None, model.input_limit())
                .unwrap()
                .encoding
        })
        .collect();
    let probs: Vec<Vec<Vec<f32>>> = encodings
        .iter()
        .map(|e| {
            model
                .piece_probabilities(&[e.get_ids().to_vec()])
                .unwrap()
                .remove(0)
        })
        .collect();
    let mut python = std::process::Command::new("python3")
        .arg("scripts/reference/ner_aggregate.py")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = json!({ "model": NER, "texts": texts, "probs": probs }).to_string();
    std::io::Write::write_all(&mut python.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(out.status.success(), "the reference script failed");
    let reference: Value = serde_json::from_slice(&out.stdout).unwrap();
    for s in strategies {
        let mut compared = 0;
        for (i, text) in texts.iter().enumerate() {
            let got = entities(
                &model.tokenizer,
                &encodings[i],
                &probs[i],
                &model.labels,
                text,
                s,
            )
            .unwrap();
            let expected = reference[name(s)][i].as_array().unwrap();
            assert_eq!(got.len(), expected.len(), "{s:?} on {text:?}");
            for (g, e) in got.iter().zip(expected) {
                same(&serde_json::to_value(g).unwrap(), e, 1e-5);
                compared += 1;
            }
        }
        assert!(compared >= 10, "{s:?}: the fixture has entities to compare");
    }

    // A CRF model for the `words` strategy's constrained Viterbi decoding (two steps: the
    // emissions still find many entities, the IOB2 constraints shape them).
    let dir = tmp("ner-one-path");
    let crf = dir.join("crf");
    let (ok, _, stderr) = positio(&[
        "finetune",
        "ner",
        "--model",
        NER,
        "--train",
        "tests/fixtures/conll/train.iob1",
        "--dev",
        "tests/fixtures/conll/dev.iob1",
        "--out",
        crf.to_str().unwrap(),
        "--crf",
        "--steps",
        "2",
        "--batch-size",
        "8",
    ]);
    assert!(ok, "{stderr}");
    let crf = crf.to_str().unwrap();

    // The command line and the server: the same entities for every strategy and by default.
    let server = Server::start(&[
        "--model",
        &format!("ner={NER}"),
        "--model",
        &format!("crf={crf}"),
    ]);
    for (model_name, model_dir) in [("ner", NER), ("crf", crf)] {
        // The command line and the server: the same entities for every strategy and by default.
        for s in strategies
            .map(Some)
            .into_iter()
            .chain([Some(Aggregation::Words), None])
        {
            let mut args = vec![
                "predict".to_string(),
                "ner".into(),
                "--model".into(),
                model_dir.into(),
            ];
            let mut request = json!({ "inputs": texts, "model": model_name });
            if let Some(s) = s {
                args.extend(["--aggregation-strategy".into(), name(s)]);
                request["aggregation_strategy"] = name(s).into();
            }
            for t in &texts {
                args.extend(["--text".into(), t.clone()]);
            }
            let (ok, stdout, stderr) = positio(&args);
            assert!(ok, "{stderr}");
            let mut cli = vec![Vec::new(); texts.len()];
            for line in stdout.lines() {
                let mut v: Value = serde_json::from_str(line).unwrap();
                let i = v["line"].as_u64().unwrap() as usize - 1;
                v.as_object_mut().unwrap().remove("line");
                cli[i].push(v);
            }
            let r = server.post("/ner", &request);
            assert_eq!(r.status, 200, "{}", r.text());
            let served = r.json();
            for (c, sv) in cli.iter().zip(served.as_array().unwrap()) {
                let sv = sv.as_array().unwrap();
                assert_eq!(c.len(), sv.len(), "{s:?}: {c:?} vs {sv:?}");
                for (a, b) in c.iter().zip(sv) {
                    same(a, b, 1e-4);
                }
            }
        }
    }

    // `words`: the entities of the tags `eval ner` predicts for the same words.
    for (model_name, model_dir) in [("ner", NER), ("crf", crf)] {
        let tagged = dir.join(format!("{model_name}.txt"));
        let (ok, _, stderr) = positio(&[
            "eval",
            "ner",
            "--model",
            model_dir,
            "--data",
            "tests/fixtures/conll/dev.iob1",
            "--output",
            tagged.to_str().unwrap(),
        ]);
        assert!(ok, "{stderr}");
        let mut sentences: Vec<(Vec<String>, Vec<String>)> = vec![(Vec::new(), Vec::new())];
        for line in std::fs::read_to_string(&tagged).unwrap().lines() {
            let cols: Vec<&str> = line.split(' ').collect();
            if cols.len() < 3 {
                sentences.push((Vec::new(), Vec::new()));
            } else {
                let last = sentences.last_mut().unwrap();
                last.0.push(cols[0].to_string());
                last.1.push(cols[cols.len() - 1].to_string());
            }
        }
        // Sentences whose words are those that raw-text splitting finds again.
        let usable: Vec<(String, Vec<String>)> = sentences
            .into_iter()
            .filter(|(w, _)| !w.is_empty())
            .map(|(w, t)| (w.join(" "), w, t))
            .filter(|(text, w, _)| split_words(text).iter().map(|x| &x.text).eq(w.iter()))
            .map(|(text, _, t)| (text, t))
            .collect();
        assert!(usable.len() >= 20, "{} usable sentences", usable.len());
        let mut args = vec![
            "predict",
            "ner",
            "--model",
            model_dir,
            "--aggregation-strategy",
            "words",
        ];
        for (text, _) in &usable {
            args.extend(["--text", text.as_str()]);
        }
        let (ok, stdout, stderr) = positio(&args);
        assert!(ok, "{stderr}");
        let mut predicted = vec![Vec::new(); usable.len()];
        for line in stdout.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let i = v["line"].as_u64().unwrap() as usize - 1;
            predicted[i].push((
                v["entity_group"].as_str().unwrap().to_string(),
                v["word"].as_str().unwrap().to_string(),
            ));
        }
        let mut found = 0;
        for ((text, tags), got) in usable.iter().zip(&predicted) {
            let words: Vec<&str> = text.split(' ').collect();
            let expected: Vec<(String, String)> =
                positio::tasks::ner::seqeval::entities(std::slice::from_ref(tags))
                    .into_iter()
                    .map(|(_, kind, a, b)| (kind, words[a..=b].join(" ")))
                    .collect();
            assert_eq!(got, &expected, "{text}");
            found += got.len();
        }
        assert!(
            found >= 10,
            "{model_name}: the fixture has entities to compare ({found})"
        );
    }
}

/// `positio search` of one query: (id, score) of each hit.
fn cli_search(index: &std::path::Path, query: &str, extra: &[&str]) -> Vec<(String, f64)> {
    let mut args = vec!["search", index.to_str().unwrap(), "--query", query];
    args.extend(extra);
    let (ok, out, err) = positio(&args);
    assert!(ok, "{err}");
    let line: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    hits_of(&line["hits"])
}

fn hits_of(hits: &Value) -> Vec<(String, f64)> {
    hits.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_string(),
                h["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn assert_same_hits(a: &[(String, f64)], b: &[(String, f64)], what: &str) {
    let ids = |h: &[(String, f64)]| h.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>();
    assert_eq!(ids(a), ids(b), "{what}");
    let scores = |h: &[(String, f64)]| h.iter().map(|(_, s)| *s).collect::<Vec<_>>();
    assert_close(&scores(a), &scores(b), 1e-5, what);
}

/// `positio answer` of `texts` with extra flags: one JSON object per text.
const LIBRARY: &str = "tests/fixtures/answers/library.jsonl";

fn cli_answers(library: &str, texts: &[&str], extra: &[&str]) -> Vec<Value> {
    let m = minilm_dir();
    let mut args = vec![
        "answer",
        "--library",
        library,
        "--model",
        m.to_str().unwrap(),
    ];
    args.extend(extra);
    for t in texts {
        args.extend(["--text", t]);
    }
    let (ok, out, err) = positio(&args);
    assert!(ok, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn rerank_search_and_answer_routes_answer_as_the_command_line() {
    let dir = tmp("serve-apps");
    let idx = dir.as_ref().join("idx");
    let cal = dir.as_ref().join("calibration.json");
    let m = minilm_dir();
    let m = m.to_str().unwrap();
    let minilm_spec = minilm();
    let (ok, _, err) = positio(&[
        "index",
        "build",
        "--model",
        m,
        "--corpus",
        "tests/fixtures/retrieval/beir/corpus.jsonl",
        "--out",
        idx.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = positio(&[
        "calibrate",
        "--library",
        "tests/fixtures/answers/library.jsonl",
        "--model",
        m,
        "--dev",
        "tests/fixtures/answers/dev.jsonl",
        "--target-precision",
        "0.9",
        "--out",
        cal.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let questions = [
        "What is the capital of Australia?",
        "I forgot my password",
        "parcel delivery time",
    ];

    // Without a reranker: search in every mode, and calibrated answers.
    let server = Server::start(&[
        "--model",
        &minilm(),
        "--index",
        idx.to_str().unwrap(),
        "--answers",
        "tests/fixtures/answers/library.jsonl",
        "--calibration",
        cal.to_str().unwrap(),
    ]);
    let query = "Why did crude oil prices go up?";
    for mode in ["dense", "bm25", "hybrid"] {
        let reply = server.post(
            "/search",
            &json!({"query": query, "top_k": 5, "mode": mode}),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        let served = hits_of(&reply.json());
        assert_eq!(served.len(), 5);
        assert_eq!(reply.json()[0]["rank"], 1);
        assert!(reply.json()[0]["text"].as_str().is_some());
        let cli = cli_search(&idx, query, &["--top", "5", "--mode", mode]);
        assert_same_hits(&served, &cli, mode);
    }
    let reply = server.post("/answer", &json!({"inputs": questions}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let cli = cli_answers(
        LIBRARY,
        &questions,
        &["--calibration", cal.to_str().unwrap()],
    );
    for (s, c) in reply.json().as_array().unwrap().iter().zip(&cli) {
        assert_eq!(s["template"], c["template"]);
        assert_eq!(s["no_match"], c["no_match"]);
        assert_close(
            &[s["confidence"].as_f64().unwrap()],
            &[c["confidence"].as_f64().unwrap()],
            1e-5,
            "confidence",
        );
    }
    assert_eq!(reply.json()[0]["no_match"], true);
    let one = server.post("/answer", &json!({"inputs": "I forgot my password"}));
    assert_eq!(
        one.json()["template"],
        "password",
        "a single input gets a single answer"
    );
    for (path, body, status) in [
        ("/search", json!({"query": query, "top_k": 0}), 422),
        ("/search", json!({"query": ""}), 400),
        ("/search", json!({"query": query, "rerank": true}), 422),
        ("/search", json!({"query": query, "mode": "fuzzy"}), 422),
        ("/rerank", json!({"query": query, "texts": ["a"]}), 422),
        ("/answer", json!({"inputs": []}), 400),
    ] {
        let reply = server.post(path, &body);
        assert_eq!(reply.status, status, "{path} {body}: {}", reply.text());
    }
    drop(server);

    // With the reranker: TEI's /rerank as CrossEncoder scores, and reranked search and answers.
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/rerank_tiny/reference.json").unwrap(),
    )
    .unwrap();
    let server = Server::start(&[
        "--model",
        &minilm(),
        "--reranker",
        "tests/fixtures/rerank_tiny",
        "--index",
        idx.to_str().unwrap(),
        "--answers",
        "tests/fixtures/answers/library.jsonl",
    ]);
    let texts = &reference["passages"];
    let reply = server.post(
        "/rerank",
        &json!({"query": reference["query"], "texts": texts, "return_text": true}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let ranked = reply.json();
    let ranked = ranked.as_array().unwrap();
    assert_eq!(ranked.len(), texts.as_array().unwrap().len());
    let mut last = f64::INFINITY;
    for r in ranked {
        let i = r["index"].as_u64().unwrap() as usize;
        let score = r["score"].as_f64().unwrap();
        assert!(score <= last, "best first");
        last = score;
        assert!(
            (score - reference["scores"][i].as_f64().unwrap()).abs() < 1e-4,
            "{r}"
        );
        assert_eq!(r["text"], texts[i]);
    }
    let reply = server.post("/search", &json!({"query": query, "top_k": 5}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let cli = cli_search(
        &idx,
        query,
        &["--top", "5", "--rerank", "tests/fixtures/rerank_tiny"],
    );
    assert_same_hits(&hits_of(&reply.json()), &cli, "reranked search");
    let reply = server.post("/answer", &json!({"inputs": questions}));
    let cli = cli_answers(
        LIBRARY,
        &questions,
        &["--rerank", "tests/fixtures/rerank_tiny"],
    );
    for (s, c) in reply.json().as_array().unwrap().iter().zip(&cli) {
        assert_eq!(s["template"], c["template"]);
        assert_close(
            &[s["confidence"].as_f64().unwrap()],
            &[c["confidence"].as_f64().unwrap()],
            1e-5,
            "reranked confidence",
        );
    }
    drop(server);

    // With a router: each question's intent, template and confidence as `answer --router`.
    let library = "tests/fixtures/answers/library_intents.jsonl";
    let routing = ["--router", SINGLE, "--route-min", "0"];
    let mut args = vec!["--model", &minilm_spec, "--answers", library];
    args.extend(routing);
    let server = Server::start(&args);
    let reply = server.post("/answer", &json!({"inputs": questions}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let cli = cli_answers(library, &questions, &routing);
    for (s, c) in reply.json().as_array().unwrap().iter().zip(&cli) {
        assert_eq!(s["template"], c["template"]);
        assert_eq!(s["no_match"], c["no_match"]);
        assert_eq!(s["intent"]["label"], c["intent"]["label"], "{s} {c}");
        assert_close(
            &[
                s["confidence"].as_f64().unwrap(),
                s["intent"]["probability"].as_f64().unwrap(),
            ],
            &[
                c["confidence"].as_f64().unwrap(),
                c["intent"]["probability"].as_f64().unwrap(),
            ],
            1e-5,
            "routed answer",
        );
    }
    drop(server);

    // An index served without its model is refused at startup.
    let (ok, _, err) = positio(&[
        "serve",
        "--port",
        "0",
        "--model",
        "tests/fixtures/st_tiny",
        "--index",
        idx.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("serve that model too"), "{err}");
}

/// `/search` over an index in PostgreSQL (`serve --index NAME --store URL`, the database that
/// scripts/test.sh starts) answers as `positio search --store` does.
#[test]
fn search_serves_an_index_in_postgres() {
    let url = std::env::var("POSITIO_TEST_PG").expect(
        "POSITIO_TEST_PG names no database: run scripts/test.sh, which starts PostgreSQL with pgvector",
    );
    let m = minilm_dir();
    let name = format!(
        "s{}_{}",
        std::process::id(),
        std::time::UNIX_EPOCH.elapsed().unwrap().as_millis()
    );
    let (ok, _, err) = positio(&[
        "index",
        "build",
        "--model",
        m.to_str().unwrap(),
        "--corpus",
        "tests/fixtures/retrieval/beir/corpus.jsonl",
        "--out",
        &name,
        "--store",
        &url,
    ]);
    assert!(ok, "{err}");
    let server = Server::start(&["--model", &minilm(), "--index", &name, "--store", &url]);
    let query = "Why did crude oil prices go up?";
    for mode in ["dense", "bm25", "hybrid"] {
        let reply = server.post(
            "/search",
            &json!({"query": query, "top_k": 5, "mode": mode}),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        let cli = cli_search(
            std::path::Path::new(&name),
            query,
            &["--top", "5", "--mode", mode, "--store", &url],
        );
        assert_same_hits(&hits_of(&reply.json()), &cli, mode);
    }
    assert_eq!(server.terminate().code(), Some(0));
}

#[test]
fn recommend_route_answers_as_the_command_line() {
    let dir = tmp("serve-recommend");
    let run = dir.as_ref().join("run");
    common::train_tiny_recommender(&run, &["--steps", "6"]);
    let news = common::mind_fixture("dev").join("news.tsv");
    let (run_s, news_s) = (run.to_str().unwrap(), news.to_str().unwrap());
    let cli = |extra: &[&str]| -> Vec<Value> {
        let mut args = vec!["recommend", "--model", run_s, "--news", news_s];
        args.extend(extra);
        let (ok, out, err) = positio(&args);
        assert!(ok, "{out}\n{err}");
        out.lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let server = Server::start(&["--recommender", run_s, "--news", news_s]);
    let same = |served: &Reply, expected: &[Value]| {
        assert_eq!(served.status, 200, "{}", served.text());
        let served = served.json();
        let served = served.as_array().unwrap();
        assert_eq!(served.len(), expected.len());
        for (a, b) in served.iter().zip(expected) {
            assert_eq!(a["id"], b["id"]);
            assert_eq!(a["rank"], b["rank"]);
            let (x, y) = (a["score"].as_f64().unwrap(), b["score"].as_f64().unwrap());
            assert!((x - y).abs() < 1e-5, "{a} vs {b}");
        }
    };
    let reply = server.post(
        "/recommend",
        &json!({"history": ["D5", "D6"], "candidates": ["D7", "D1", "D13", "D18"]}),
    );
    same(
        &reply,
        &cli(&["--history", "D5 D6", "--candidates", "D7 D1 D13 D18"]),
    );
    let reply = server.post("/recommend", &json!({"history": [], "top": 5}));
    same(&reply, &cli(&["--top", "5"]));

    let check = |r: Reply, status: u16, says: &str| {
        assert_eq!(r.status, status, "{}", r.text());
        assert!(
            r.json()["error"].as_str().unwrap().contains(says),
            "{}",
            r.text()
        );
    };
    check(
        server.post("/recommend", &json!({"history": ["Q1"]})),
        422,
        "history: news id \"Q1\" is not in the news file",
    );
    check(
        server.post("/recommend", &json!({"candidates": []})),
        400,
        "candidates is empty",
    );
    check(
        server.post("/recommend", &json!({"top": 0})),
        422,
        "top must be at least 1",
    );
    check(
        server.post("/recommend", &json!({"user": "U1"})),
        422,
        "unknown field",
    );
    check(
        server.post("/embed", &json!({"inputs": "a"})),
        422,
        "no model served here answers /embed",
    );
    assert_eq!(server.get("/health").status, 200);
    assert_eq!(server.get("/info").status, 200);
}
