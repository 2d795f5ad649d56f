//! The HTTP side of the server: the router, its limits, request metrics, and the helpers every
//! route shares (admission, model choice, input checks, tokenization, inference).
//!
//! Compatible with Hugging Face text-embeddings-inference (TEI) so that its clients work
//! unchanged (`/embed`, `/predict`, `/tokenize`, `/health`, `/info`, `/metrics`), with OpenAI's
//! embeddings API (`/v1/embeddings`, `/v1/models`), and with `transformers`' token
//! classification pipeline (`/ner`, `aggregation_strategy="simple"`), which TEI does not offer.
//! Laid out as TEI's `router/src/http`:
//!
//! - `types`: request and response schemas.
//! - `error`: the error answer, `{"error", "error_type"}` with the status a client can act
//!   on, one kind per status.
//! - `routes`: the TEI handlers.
//! - `openai`: the OpenAI schemas and handlers.
//! - `ner`: `/ner` and the pipeline's entity grouping.
//! - `apps`: the application routes `/rerank` (TEI's), `/search` and `/answer`.
//! - `recommend`: `/recommend`, a user's ranking by the served recommender.
//!
//! A new route gets its handler in one of these and its line in `router` and `ROUTES`.

pub(crate) mod apps;
mod error;
mod ner;
mod openai;
mod recommend;
mod routes;
mod types;

use super::batcher::{BatchLimits, Queue};
use super::metrics::Metrics;
use super::models::{Head, ModelInfo, Output};
use crate::data::tokenizer::Tokenizer;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use error::{ApiError, ErrorKind};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Request limits (the `serve` options of the same names).
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Inputs per request.
    pub max_client_batch_size: usize,
    /// Requests being answered at once; more get 429.
    pub max_concurrent_requests: usize,
    /// Request body size in bytes; more gets 413.
    pub payload_limit: usize,
    /// Longest time to answer one request; then 504.
    pub request_timeout: Duration,
    /// Longest time for a request's headers (and an idle keep-alive connection's next request)
    /// to arrive, then the connection is closed; and for its body, then 408. A slow or stalled
    /// client cannot hold a connection or a task for longer.
    pub read_timeout: Duration,
}

/// `serve`'s defaults.
impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_client_batch_size: 32,
            max_concurrent_requests: 512,
            payload_limit: 2_000_000,
            request_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// Who may call the server (the `serve` options of the same names).
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// With a key, every route but `/health` (and `/metrics` when public) needs
    /// `Authorization: Bearer KEY`; else 401.
    pub api_key: Option<String>,
    /// `/metrics` without the key (a Prometheus scraper inside the trusted network).
    pub metrics_public: bool,
}

impl Access {
    /// 401 unless the route is open or the request carries the key. The key is compared in
    /// time independent of where it differs, so response times do not reveal it.
    fn check(&self, path: &str, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
        let Some(key) = &self.api_key else {
            return Ok(());
        };
        if path == "/health" || (path == "/metrics" && self.metrics_public) {
            return Ok(());
        }
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match given {
            Some(token) if same_secret(token.as_bytes(), key.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::new(ErrorKind::Unauthorized, "wrong API key")),
            None => Err(ApiError::new(
                ErrorKind::Unauthorized,
                "this server needs an API key: send the header Authorization: Bearer KEY",
            )),
        }
    }
}

/// Equality of two secrets that looks at every byte whatever the first difference.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// A model as the routes see it.
pub(crate) struct Served {
    pub(crate) info: ModelInfo,
    pub(crate) tokenizer: Arc<Tokenizer>,
    pub(crate) queue: Queue,
    /// A token classifier's `words` decoding.
    pub(crate) words: Option<crate::tasks::ner::model::WordDecoding>,
}

/// Everything the handlers share.
pub(crate) struct App {
    pub(crate) models: Vec<Served>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: RequestLimits,
    /// The batch bounds, for `/info`.
    pub(crate) batching: BatchLimits,
    /// The index, answer library and reranker of the application routes.
    pub(crate) apps: apps::Applications,
    access: Access,
    admission: Arc<Semaphore>,
}

impl App {
    pub(crate) fn new(
        models: Vec<Served>,
        metrics: Arc<Metrics>,
        limits: RequestLimits,
        batching: BatchLimits,
        access: Access,
    ) -> Self {
        App {
            admission: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            access,
            models,
            metrics,
            limits,
            batching,
            apps: apps::Applications::default(),
        }
    }
}

/// The router of every route, with access control, the body's size and time limits, the
/// request timeout, request logs and metrics (all in [`observe`]).
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/embed", post(routes::embed))
        .route("/predict", post(routes::predict))
        .route("/ner", post(ner::ner))
        .route("/tokenize", post(routes::tokenize))
        .route("/rerank", post(apps::rerank))
        .route("/search", post(apps::search))
        .route("/answer", post(apps::answer))
        .route("/recommend", post(recommend::recommend))
        .route("/v1/embeddings", post(openai::openai_embeddings))
        .route("/v1/models", get(openai::openai_models))
        .route("/health", get(routes::health))
        .route("/info", get(routes::info))
        .route("/metrics", get(routes::metrics))
        .fallback(|| async { ApiError::new(ErrorKind::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorKind::MethodNotAllowed,
                "wrong method for this route (inference routes take POST, the others GET)",
            )
        })
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe))
        // `observe` reads the body within --payload-limit; handlers get it whole.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(app)
}

/// The routes, as `/metrics` labels them (anything else is "other").
const ROUTES: [&str; 13] = [
    "/embed",
    "/predict",
    "/ner",
    "/tokenize",
    "/rerank",
    "/search",
    "/answer",
    "/recommend",
    "/v1/embeddings",
    "/v1/models",
    "/health",
    "/info",
    "/metrics",
];

/// The `/metrics` label of a request path.
fn route_label(path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|r| **r == path)
        .copied()
        .unwrap_or("other")
}

/// Checks access, reads the body, times out, logs and counts every request.
async fn observe(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let route = route_label(&path);
    let admitted = match app.access.check(&path, request.headers()) {
        Ok(()) => read_body(request, &app.limits).await,
        Err(e) => Err(e),
    };
    let response = match admitted {
        Err(e) => e.into_response(),
        Ok(request) => {
            match tokio::time::timeout(app.limits.request_timeout, next.run(request)).await {
                Ok(r) => r,
                Err(_) => ApiError::new(
                    ErrorKind::Timeout,
                    format!(
                        "no answer within the request timeout of {} s",
                        app.limits.request_timeout.as_secs_f64()
                    ),
                )
                .into_response(),
            }
        }
    };
    let status = response.status();
    let elapsed = start.elapsed();
    app.metrics
        .requests
        .with_label_values(&[route, status.as_str()])
        .inc();
    app.metrics
        .request_seconds
        .with_label_values(&[route])
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        %method,
        path,
        status = status.as_u16(),
        ms = format!("{:.2}", elapsed.as_secs_f64() * 1e3),
        "request"
    );
    response
}

/// The request with its body read whole: 413 over `--payload-limit` (at once when
/// `Content-Length` says so), 408 when it has not arrived within `--read-timeout`, 400 when the
/// connection fails mid-body.
async fn read_body(request: Request, limits: &RequestLimits) -> Result<Request, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorKind::TooLarge,
            format!(
                "request body is larger than the server's --payload-limit of {} bytes",
                limits.payload_limit
            ),
        )
    };
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.payload_limit as u64) {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(body, limits.payload_limit);
    let collected = tokio::time::timeout(limits.read_timeout, limited.collect())
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorKind::SlowBody,
                format!(
                    "the request body did not arrive within the read timeout of {} s",
                    limits.read_timeout.as_secs_f64()
                ),
            )
        })?
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::new(
                    ErrorKind::Unreadable,
                    format!("cannot read the request body: {e}"),
                )
            }
        })?;
    Ok(Request::from_parts(
        parts,
        axum::body::Body::from(collected.to_bytes()),
    ))
}

/// The request body as `T`: 422 for anything that is not valid JSON of the route's schema
/// (unknown fields included, so that a typo is not ignored).
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::validation(format!("invalid request body: {e}")))
}

impl App {
    /// Admits a request that runs a model, or answers 429 when `--max-concurrent-requests`
    /// are already being answered.
    fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.admission.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                ErrorKind::Overloaded,
                format!(
                    "the server is answering its limit of {} concurrent requests; retry later",
                    self.limits.max_concurrent_requests
                ),
            )
        })
    }

    /// The served models and their routes, for error messages.
    fn served(&self) -> String {
        self.models
            .iter()
            .map(|m| format!("{} ({})", m.info.name, m.info.head.route()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The model called `name`, or 404.
    fn named(&self, name: &str) -> Result<&Served, ApiError> {
        self.models
            .iter()
            .find(|m| m.info.name == name)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::NotFound,
                    format!(
                        "no model named {name:?} is served; served: {}",
                        self.served()
                    ),
                )
            })
    }

    /// The served model for a route: the one named, or the first with the route's head.
    fn pick(&self, head: Head, name: Option<&str>) -> Result<&Served, ApiError> {
        let found = match name {
            Some(n) => self.named(n)?,
            None => self
                .models
                .iter()
                .find(|m| m.info.head == head)
                .ok_or_else(|| {
                    ApiError::validation(format!(
                        "no model served here answers {}; served: {}",
                        head.route(),
                        self.served()
                    ))
                })?,
        };
        if found.info.head != head {
            return Err(ApiError::validation(format!(
                "model {:?} answers {}, not {}",
                found.info.name,
                found.info.head.route(),
                head.route()
            )));
        }
        Ok(found)
    }

    /// 400 for no input, 422 for more inputs than `--max-client-batch-size`. An empty text is
    /// valid (the model reads `[CLS] [SEP]`).
    fn check_count(&self, texts: &[&str]) -> Result<(), ApiError> {
        check_count(texts, self.limits.max_client_batch_size)
    }
}

/// [`App::check_count`] with the limit given.
fn check_count(texts: &[&str], max_client_batch_size: usize) -> Result<(), ApiError> {
    if texts.is_empty() {
        return Err(ApiError::new(ErrorKind::Empty, "inputs is empty"));
    }
    if texts.len() > max_client_batch_size {
        return Err(ApiError::validation(format!(
            "{} inputs in one request; this server takes at most {} (--max-client-batch-size)",
            texts.len(),
            max_client_batch_size
        )));
    }
    Ok(())
}

/// Tokenizes on the blocking pool (tokenizing a long text must not stall the async
/// runtime). With `truncate` false, an input over the model's limit is a 422 naming both. The
/// encodings carry ids, segment ids, offsets and which tokens are special.
async fn tokenize_all(
    model: &Served,
    inputs: Vec<(String, Option<String>)>,
    truncate: bool,
) -> Result<Vec<tokenizers::Encoding>, ApiError> {
    let tokenizer = model.tokenizer.clone();
    let limit = model.info.max_input_length;
    tokio::task::spawn_blocking(move || {
        inputs
            .iter()
            .enumerate()
            .map(|(i, (text, pair))| {
                let e = tokenizer
                    .encode_full(text, pair.as_deref(), limit)
                    .map_err(|e| ApiError::validation(format!("input {i}: {e}")))?;
                if !truncate && e.full_len > limit {
                    return Err(ApiError::validation(format!(
                        "input {i} has {} tokens, more than the model's limit of {limit}; send \"truncate\": true to cut it",
                        e.full_len
                    )));
                }
                Ok(e.encoding)
            })
            .collect()
    })
    .await
    .map_err(|e| ApiError::backend(format!("tokenization failed: {e}")))?
}

/// [`App::check_count`], then [`tokenize_all`] of single texts.
async fn tokenize_texts(
    app: &App,
    model: &Served,
    texts: &[String],
    truncate: bool,
) -> Result<Vec<tokenizers::Encoding>, ApiError> {
    app.check_count(&texts.iter().map(String::as_str).collect::<Vec<_>>())?;
    let inputs = texts.iter().map(|t| (t.clone(), None)).collect();
    tokenize_all(model, inputs, truncate).await
}

/// Runs the tokenized inputs through the model's batching queue (a failure there is a 500).
async fn infer(model: &Served, inputs: &[tokenizers::Encoding]) -> Result<Vec<Output>, ApiError> {
    let jobs = inputs
        .iter()
        .map(|e| (e.get_ids().to_vec(), e.get_type_ids().to_vec()))
        .collect();
    Ok(model.queue.run(jobs).await?)
}

/// `v` scaled to unit length (a zero vector stays zero).
fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// The sentence vectors of an embedding model's outputs, unit-norm with `normalize`.
fn vectors(outputs: Vec<Output>, normalize: bool) -> Result<Vec<Vec<f32>>, ApiError> {
    outputs
        .into_iter()
        .map(|o| match o {
            Output::Vector(v) if normalize => Ok(normalized(v)),
            Output::Vector(v) => Ok(v),
            _ => Err(ApiError::backend("the model returned no sentence vector")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_label_known_routes_and_nothing_else() {
        assert_eq!(route_label("/embed"), "/embed");
        assert_eq!(route_label("/v1/models"), "/v1/models");
        assert_eq!(route_label("/embed/"), "other");
        assert_eq!(route_label("/nothing"), "other");
    }

    #[test]
    fn bodies_parse_or_get_their_kind() {
        let ok: Result<types::EmbedRequest, _> = parse(&Bytes::from_static(b"{\"inputs\": \"x\"}"));
        assert!(ok.is_ok());
        let bad: Result<types::EmbedRequest, _> = parse(&Bytes::from_static(b"{\"inputs\": "));
        assert_eq!(bad.err().unwrap().kind(), ErrorKind::Validation);
        let bad: Result<types::EmbedRequest, _> = parse(&Bytes::from_static(b"{\"x\": 1}"));
        assert_eq!(bad.err().unwrap().kind(), ErrorKind::Validation);
    }

    #[test]
    fn the_api_key_guards_every_route_but_health() {
        use axum::http::{header::AUTHORIZATION, HeaderMap, HeaderValue};
        let with = |value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, HeaderValue::from_static(value));
            h
        };
        let none = HeaderMap::new();
        let open = Access::default();
        assert!(open.check("/embed", &none).is_ok());
        let guarded = Access {
            api_key: Some("s3cret".into()),
            metrics_public: false,
        };
        assert!(guarded.check("/embed", &with("Bearer s3cret")).is_ok());
        assert!(guarded.check("/embed", &with("bearer  s3cret")).is_ok());
        assert!(guarded.check("/health", &none).is_ok());
        for (path, headers) in [
            ("/embed", &none),
            ("/embed", &with("Bearer s3cre")),
            ("/embed", &with("Bearer s3cret2")),
            ("/embed", &with("Basic s3cret")),
            ("/embed", &with("s3cret")),
            ("/metrics", &none),
            ("/nothing", &none),
        ] {
            let e = guarded.check(path, headers).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unauthorized, "{path}");
        }
        let public = Access {
            metrics_public: true,
            ..guarded
        };
        assert!(public.check("/metrics", &none).is_ok());
        assert!(public.check("/info", &none).is_err());
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd") && !same_secret(b"abc", b"ab"));
    }

    #[test]
    fn inputs_are_counted_and_empty_texts_taken() {
        assert!(check_count(&["a", "b"], 2).is_ok());
        assert_eq!(check_count(&[], 2).unwrap_err().kind(), ErrorKind::Empty);
        assert!(check_count(&["a", ""], 2).is_ok());
        let over = check_count(&["a", "b", "c"], 2).unwrap_err();
        assert_eq!(over.kind(), ErrorKind::Validation);
    }

    #[test]
    fn vectors_are_normalized_on_request() {
        let out = || vec![Output::Vector(vec![3.0, 4.0])];
        assert_eq!(vectors(out(), false).unwrap(), vec![vec![3.0, 4.0]]);
        assert_eq!(vectors(out(), true).unwrap(), vec![vec![0.6, 0.8]]);
        assert_eq!(normalized(vec![0.0, 0.0]), vec![0.0, 0.0]);
    }
}
