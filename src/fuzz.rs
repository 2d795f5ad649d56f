//! Fuzz targets: every reader and parser of input positio does not control, fed arbitrary
//! bytes. A target returns normally whatever the bytes (an error is the right answer to bad
//! input); a panic, an abort, a hang, or a server error (5xx) for a client's request is a
//! finding.
//!
//! Two drivers share these targets. `tests/fuzz.rs` runs each on a bounded number of inputs
//! mutated from its seeds ([`mutate`], a fixed random seed) inside `cargo test`, with no
//! instrumented build; `fuzz/` builds them with libFuzzer's coverage instrumentation for the
//! long runs (`fuzz/run.sh`). Files are fed through the readers' own entry points, which take
//! paths, after writing the bytes to a scratch folder: what is fuzzed is exactly what the
//! commands run.

use crate::data::{beir, conll, labelled, mind, pairs, tokenizer::Tokenizer, trec};
use crate::model::config::ModelConfig;
use crate::rng::Rng;
use crate::train::config::{load_over, RunSettings};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The targets, by name.
pub const TARGETS: [&str; 19] = [
    "conll",
    "labelled-tsv",
    "labelled-csv",
    "labelled-jsonl",
    "config-json",
    "tokenizer-json",
    "safetensors",
    "mind-news",
    "mind-behaviors",
    "beir-corpus",
    "beir-queries",
    "beir-qrels",
    "trec-run",
    "pairs",
    "answers",
    "monitor-items",
    "toml-classify",
    "toml-pretrain",
    "http",
];

/// The routes the `http` target sends to; an input's first byte picks one (modulo).
const ROUTES: [&str; 8] = [
    "/embed",
    "/predict",
    "/ner",
    "/tokenize",
    "/rerank",
    "/v1/embeddings",
    "/search",
    "/recommend",
];

/// The targets' shared state: a scratch folder, the fixtures the seeds and the `http` target's
/// models come from, and (built on first use) the in-process server.
pub struct Harness {
    scratch: PathBuf,
    fixtures: PathBuf,
    http: OnceLock<std::result::Result<Http, String>>,
}

/// The server's router with small models, and a runtime to send it requests on.
struct Http {
    router: axum::Router,
    runtime: tokio::runtime::Runtime,
}

impl Harness {
    /// A harness whose seeds and models come from `fixtures` (the repository's
    /// `tests/fixtures`), writing its inputs under a fresh folder of the system's temporary
    /// directory (removed when dropped).
    pub fn new(fixtures: &Path) -> Result<Harness> {
        static HARNESSES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let scratch = std::env::temp_dir().join(format!(
            "positio-fuzz-{}-{}",
            std::process::id(),
            HARNESSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, "create", e))?;
        Ok(Harness {
            scratch,
            fixtures: fixtures.to_path_buf(),
            http: OnceLock::new(),
        })
    }

    /// The seed inputs of `target`: files from the fixtures (the `http` target: a route byte,
    /// then a valid body of that route).
    pub fn seeds(&self, target: &str) -> Result<Vec<Vec<u8>>> {
        let files: &[&str] = match target {
            "conll" => &["conll/dev.iob1"],
            "labelled-tsv" => &["classify/train.tsv", "classify/dev.tsv"],
            "labelled-csv" => &["classify/pairs.csv"],
            "labelled-jsonl" => &["classify/topics.jsonl"],
            "config-json" => &["hf_tiny_ner/config.json", "st_tiny/config.json"],
            "tokenizer-json" => &["hf_tiny_ner/tokenizer.json"],
            "safetensors" => &[
                "hf_tiny_ner/reference.safetensors",
                "hf_tiny_ner/model.safetensors",
            ],
            "mind-news" => &["mind/dev/news.tsv"],
            "mind-behaviors" => &["mind/dev/behaviors.tsv"],
            "beir-corpus" => &["retrieval/beir/corpus.jsonl"],
            "beir-queries" => &["retrieval/beir/queries.jsonl"],
            "beir-qrels" => &["retrieval/beir/qrels/test.tsv"],
            "trec-run" => &["retrieval/run.trec"],
            "answers" => &["answers/library.jsonl"],
            "toml-classify" => &["legacy/classify_run/run.toml"],
            "toml-pretrain" => &["legacy/pretrain_run/run.toml"],
            "pairs" | "monitor-items" | "http" => &[],
            _ => return Err(unknown(target)),
        };
        let mut seeds = files
            .iter()
            .map(|f| {
                let path = self.fixtures.join(f);
                std::fs::read(&path).map_err(|e| Error::io(&path, "read", e))
            })
            .collect::<Result<Vec<_>>>()?;
        let texts: &[&str] = match target {
            "pairs" => &[
                "{\"anchor\": \"a question\", \"positive\": \"its answer\", \"negative\": [\"another\"]}\n{\"anchor\": \"q\", \"positive\": \"p\", \"negative\": \"n\"}\n",
            ],
            "monitor-items" => &[
                "{\"id\": \"n1\", \"time\": \"1987-03-02T05:00:00Z\", \"text\": \"OPEC cut output.\", \"title\": \"Oil\", \"source\": \"reuters\"}\n{\"id\": \"n2\", \"time\": \"1987-03-02T06:00:00+01:00\", \"text\": \"\"}\n",
            ],
            "http" => &[
                "\u{0}{\"inputs\": [\"Peter Blackburn\", \"\"], \"normalize\": false, \"truncate\": true}",
                "\u{1}{\"inputs\": [[\"a\", \"b\"], \"c\"], \"raw_scores\": true}",
                "\u{2}{\"inputs\": \"EU rejects German call\", \"aggregation_strategy\": \"words\"}",
                "\u{3}{\"inputs\": [\"x y\"], \"add_special_tokens\": true}",
                "\u{4}{\"query\": \"oil\", \"texts\": [\"crude\", \"wheat\"], \"return_text\": true, \"model\": \"rerank\"}",
                "\u{5}{\"input\": [\"a\"], \"model\": \"embed\", \"encoding_format\": \"base64\"}",
                "\u{6}{\"query\": \"oil\", \"top_k\": 3}",
                "\u{7}{\"history\": [\"D1\"], \"top\": 2}",
            ],
            _ => &[],
        };
        seeds.extend(texts.iter().map(|t| t.as_bytes().to_vec()));
        Ok(seeds)
    }

    /// Feeds `data` to `target`. Errors are only the harness's own (an unknown target, a
    /// scratch file that cannot be written, the `http` target's models missing); a problem
    /// found is a panic.
    pub fn run(&self, target: &str, data: &[u8]) -> Result<()> {
        let file = |name: &str| -> Result<PathBuf> {
            let path = self.scratch.join(name);
            std::fs::write(&path, data).map_err(|e| Error::io(&path, "write", e))?;
            Ok(path)
        };
        // What the readers answer is not the point: only that they answer.
        match target {
            "conll" => {
                let path = file("input.conll")?;
                let _ = conll::read(&path, None);
                let _ = conll::read_iob2(&path, Some(1), None);
            }
            "labelled-tsv" | "labelled-csv" | "labelled-jsonl" => {
                let ext = &target["labelled-".len()..];
                let path = file(&format!("input.{ext}"))?;
                let _ = labelled::read(&path, &labelled::ReadOptions::default());
            }
            "config-json" => {
                let _ = ModelConfig::load(&file("config.json")?);
            }
            "tokenizer-json" => {
                if let Ok(t) = Tokenizer::load(&file("tokenizer.json")?) {
                    for (text, pair) in [("Hello, world!", None), ("北京 café\u{0}", Some("x"))]
                    {
                        let _ = t.encode_full(text, pair, 16);
                    }
                }
            }
            "safetensors" => {
                let _ = crate::hf::weights::Weights::load(&file("model.safetensors")?);
            }
            "mind-news" => {
                let _ = mind::read_news(&file("news.tsv")?);
            }
            "mind-behaviors" => {
                let news = mind::read_news(&self.fixtures.join("mind/dev/news.tsv"))?;
                let _ = mind::read_behaviors(&file("behaviors.tsv")?, &news);
            }
            "beir-corpus" => {
                let _ = beir::read_corpus(&file("corpus.jsonl")?);
            }
            "beir-queries" => {
                let _ = beir::read_queries(&file("queries.jsonl")?);
            }
            "beir-qrels" => {
                let _ = beir::read_qrels(&file("test.tsv")?);
            }
            "trec-run" => {
                let _ = trec::Run::read(&file("run.trec")?);
            }
            "pairs" => {
                let _ = pairs::read(&file("pairs.jsonl")?);
            }
            "answers" => {
                let _ = crate::tasks::answer::read_library(&file("library.jsonl")?);
            }
            "monitor-items" => {
                if let Ok(text) = std::str::from_utf8(data) {
                    for (i, line) in text.lines().enumerate() {
                        let _ = crate::monitor::item::Item::parse(Path::new("items"), i + 1, line);
                    }
                }
            }
            "toml-classify" => {
                let recipe = crate::tasks::classify::ClassifySettings::recipe();
                let _ = load_over(&file("run.toml")?, &recipe);
            }
            "toml-pretrain" => {
                let recipe = crate::tasks::pretrain::PretrainConfig::recipe();
                let _ = load_over(&file("run.toml")?, &recipe);
            }
            "http" => self.request(data)?,
            _ => return Err(unknown(target)),
        }
        Ok(())
    }

    /// Sends `data[1..]` as the body of a POST to the route `data[0]` picks, through the
    /// server's router in this process; panics on a 5xx answer.
    fn request(&self, data: &[u8]) -> Result<()> {
        let http = self
            .http
            .get_or_init(|| self.start_http().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| Error::invalid(format!("the http target's server: {e}")))?;
        let Some((&route, body)) = data.split_first() else {
            return Ok(());
        };
        let path = ROUTES[route as usize % ROUTES.len()];
        let request = axum::http::Request::post(path)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_vec()))
            .map_err(|e| Error::invalid(e.to_string()))?;
        let status = http.runtime.block_on(async {
            use tower_service::Service;
            let mut router = http.router.clone();
            router.call(request).await.map(|r| r.status())
        });
        let status = match status {
            Ok(s) => s,
            Err(never) => match never {},
        };
        assert!(
            !status.is_server_error(),
            "{path} answered {status} to {:?}",
            String::from_utf8_lossy(body)
        );
        Ok(())
    }

    /// The router with the fixtures' small models: an embedding model, a sequence classifier,
    /// a token classifier and a reranker.
    fn start_http(&self) -> Result<Http> {
        let spec = |name: &str, dir: &str| crate::serve::ModelSpec {
            name: name.into(),
            dir: self.fixtures.join(dir),
        };
        let models = vec![
            spec("embed", "st_tiny"),
            spec("single", "hf_tiny_classify/single"),
            spec("ner", "hf_tiny_ner"),
            spec("rerank", "rerank_tiny"),
        ];
        let router = crate::serve::in_process(models, &crate::runtime::cpu())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::invalid(format!("cannot start an async runtime: {e}")))?;
        Ok(Http { router, runtime })
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

fn unknown(target: &str) -> Error {
    Error::invalid(format!(
        "no fuzz target {target:?}; the targets: {}",
        TARGETS.join(", ")
    ))
}

/// Byte strings that often break text parsers: separators of the formats, quotes and
/// brackets, numbers at the edges, escapes, multi-byte and invalid UTF-8.
const TOKENS: [&[u8]; 24] = [
    b"\t",
    b"\n",
    b"\r\n",
    b"\"",
    b",",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b"=",
    b"-1",
    b"0",
    b"18446744073709551616",
    b"1e309",
    b"NaN",
    b"null",
    b"\\u0000",
    b"\\ud800",
    "北京".as_bytes(),
    b"\xff\xfe",
    b"\xe2\x82",
    b"B-PER",
    b"-DOCSTART-",
];

/// A mutation of `input`: one to four random edits (flip a bit, set a byte, delete, duplicate
/// or move a range, insert a format token, splice in part of `other`, truncate).
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        let at = rng.below(len + 1);
        let span = |rng: &mut Rng| 1 + rng.below(16.min(len - at).max(1));
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = [0, 0xff, b' ', b'\n', b'\t', b'"', b'\\', 0x80][rng.below(8)];
            }
            2 if at < len => {
                let n = span(rng).min(len - at);
                out.drain(at..at + n);
            }
            3 if at < len => {
                let n = span(rng).min(len - at);
                let piece: Vec<u8> = out[at..at + n].to_vec();
                let most = if rng.below(8) == 0 { 64 } else { 3 };
                let times = 1 + rng.below(most);
                for _ in 0..times {
                    out.splice(at..at, piece.iter().copied());
                }
            }
            4 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let n = 1 + rng.below((other.len() - from).min(64));
                out.splice(at..at, other[from..from + n].iter().copied());
            }
            6 if at < len => out.truncate(at),
            _ => {
                let n = 1 + rng.below(4);
                for _ in 0..n {
                    out.insert(at.min(out.len()), rng.below(256) as u8);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_deterministic_and_change_the_input() {
        let input = b"EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n";
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..200)
                .map(|_| mutate(&mut rng, input, b"{\"other\": 1}"))
                .collect::<Vec<_>>()
        };
        let a = run(3);
        assert_eq!(a, run(3));
        assert_ne!(a, run(4));
        let changed = a.iter().filter(|m| m.as_slice() != input).count();
        assert!(changed > 180, "{changed} of 200 changed");
        assert!(mutate(&mut Rng::new(1), b"", b"").len() <= 64);
    }
}
