//! The HTTP routes, their request / response schemas and error answers.
//!
//! Compatible with Hugging Face text-embeddings-inference (TEI) so that its clients work
//! unchanged (`/embed`, `/predict`, `/tokenize`, `/health`, `/info`, `/metrics`), with OpenAI's
//! embeddings API (`/v1/embeddings`, `/v1/models`), and with `transformers`' token
//! classification pipeline (`/ner`, `aggregation_strategy="simple"`), which TEI does not offer.
//! Every error is JSON `{"error", "error_type"}` with the status a client can act on.

use super::batcher::Queue;
use super::metrics::Metrics;
use super::models::{Head, ModelInfo, Output};
use crate::data::tokenizer::Tokenizer;
use crate::tasks::classify::activate;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
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
}

/// A model as the routes see it.
pub struct Served {
    pub info: ModelInfo,
    pub tokenizer: Arc<Tokenizer>,
    pub queue: Queue,
}

/// Everything the handlers share.
pub struct App {
    pub models: Vec<Served>,
    pub metrics: Arc<Metrics>,
    pub limits: RequestLimits,
    /// The batch bounds, for `/info`.
    pub batching: super::batcher::BatchLimits,
    admission: Arc<Semaphore>,
}

impl App {
    pub fn new(
        models: Vec<Served>,
        metrics: Arc<Metrics>,
        limits: RequestLimits,
        batching: super::batcher::BatchLimits,
    ) -> Self {
        App {
            admission: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            models,
            metrics,
            limits,
            batching,
        }
    }
}

/// The router of every route, with the body limit, the timeout, request logs and metrics.
pub fn router(app: Arc<App>) -> Router {
    let limit = app.limits.payload_limit;
    Router::new()
        .route("/embed", post(embed))
        .route("/predict", post(predict))
        .route("/ner", post(ner))
        .route("/tokenize", post(tokenize))
        .route("/v1/embeddings", post(openai_embeddings))
        .route("/v1/models", get(openai_models))
        .route("/health", get(health))
        .route("/info", get(info))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "wrong method for this route (inference routes take POST, the others GET)",
            )
        })
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe))
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .with_state(app)
}

const ROUTES: [&str; 9] = [
    "/embed",
    "/predict",
    "/ner",
    "/tokenize",
    "/v1/embeddings",
    "/v1/models",
    "/health",
    "/info",
    "/metrics",
];

/// Times out, logs and counts every request.
async fn observe(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let route = ROUTES
        .iter()
        .find(|r| **r == path)
        .copied()
        .unwrap_or("other");
    let response = match tokio::time::timeout(app.limits.request_timeout, next.run(request)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!(
                "no answer within the request timeout of {} s",
                app.limits.request_timeout.as_secs_f64()
            ),
        )
        .into_response(),
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

/// An error answer: `{"error": message, "error_type": kind}` with `status`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }
    fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", message)
    }
    fn backend(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "backend", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.message, "error_type": self.kind }));
        (self.status, body).into_response()
    }
}

type Answer<T> = Result<Json<T>, ApiError>;

/// The request body as `T`: 413 over the payload limit, 422 for anything that is not valid
/// JSON of the route's schema (unknown fields included, so that a typo is not ignored).
fn parse<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body is larger than the server's --payload-limit",
            )
        } else {
            ApiError::new(e.status(), "validation", e.body_text())
        }
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::validation(format!("invalid request body: {e}")))
}

/// A text or a list of texts.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Texts {
    One(String),
    Many(Vec<String>),
}

impl Texts {
    fn into_vec(self) -> (Vec<String>, bool) {
        match self {
            Texts::One(t) => (vec![t], true),
            Texts::Many(v) => (v, false),
        }
    }
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedRequest {
    inputs: Texts,
    #[serde(default = "default_true")]
    normalize: bool,
    #[serde(default = "default_true")]
    truncate: bool,
    /// Which served model (by name); the first embedding model when absent.
    model: Option<String>,
}

/// A text or a text pair.
#[derive(Deserialize)]
#[serde(untagged)]
enum Sequence {
    Single(String),
    Pair(String, String),
}

/// TEI's `/predict` input: a sequence (a text, or a pair `[a, b]`), or a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum PredictInputs {
    One(Sequence),
    Many(Vec<Sequence>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictRequest {
    inputs: PredictInputs,
    #[serde(default)]
    raw_scores: bool,
    #[serde(default = "default_true")]
    truncate: bool,
    model: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NerRequest {
    inputs: Texts,
    #[serde(default = "default_true")]
    truncate: bool,
    model: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenizeRequest {
    inputs: Texts,
    #[serde(default = "default_true")]
    add_special_tokens: bool,
    model: Option<String>,
}

/// OpenAI's embeddings request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenAiRequest {
    input: OpenAiInput,
    model: String,
    #[serde(default)]
    encoding_format: EncodingFormat,
    dimensions: Option<usize>,
    /// Accepted and ignored (OpenAI's end-user id for abuse monitoring).
    #[serde(default, rename = "user")]
    _user: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OpenAiInput {
    Texts(Texts),
    /// Token ids: accepted by OpenAI, refused here with a clear error (the ids would be of
    /// OpenAI's tokenizer, not this model's).
    Tokens(serde::de::IgnoredAny),
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum EncodingFormat {
    #[default]
    Float,
    Base64,
}

#[derive(Serialize)]
struct Scored {
    label: String,
    score: f32,
}

/// An entity as `transformers`' pipeline reports it.
#[derive(Debug, Serialize, PartialEq)]
pub struct Entity {
    pub entity_group: String,
    pub score: f32,
    pub word: String,
    pub start: usize,
    pub end: usize,
}

#[derive(Serialize)]
struct Token {
    id: u32,
    text: String,
    special: bool,
    start: usize,
    stop: usize,
}

/// A response that is one item for a single input, a list for a list (TEI's convention).
fn one_or_many<T: Serialize>(mut items: Vec<T>, single: bool) -> serde_json::Value {
    if single {
        serde_json::to_value(items.pop()).unwrap_or_default()
    } else {
        serde_json::to_value(items).unwrap_or_default()
    }
}

impl App {
    /// Admits a request that runs a model, or answers 429 when `--max-concurrent-requests`
    /// are already being answered.
    fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.admission.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "overloaded",
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
                    StatusCode::NOT_FOUND,
                    "not_found",
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

    /// 400 for no input or an empty text, 422 for more inputs than `--max-client-batch-size`.
    fn check_count(&self, texts: &[&str]) -> Result<(), ApiError> {
        if texts.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "empty",
                "inputs is empty",
            ));
        }
        if let Some(i) = texts.iter().position(|t| t.is_empty()) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "empty",
                format!("input {i} is an empty text"),
            ));
        }
        if texts.len() > self.limits.max_client_batch_size {
            return Err(ApiError::validation(format!(
                "{} inputs in one request; this server takes at most {} (--max-client-batch-size)",
                texts.len(),
                self.limits.max_client_batch_size
            )));
        }
        Ok(())
    }
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

/// Runs the tokenized inputs through the model's batching queue.
async fn infer(model: &Served, inputs: &[tokenizers::Encoding]) -> Result<Vec<Output>, ApiError> {
    let jobs = inputs
        .iter()
        .map(|e| (e.get_ids().to_vec(), e.get_type_ids().to_vec()))
        .collect();
    model.queue.run(jobs).await.map_err(ApiError::backend)
}

fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

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

/// `POST /embed`: `[[f32]]`, one vector per input.
async fn embed(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Answer<Vec<Vec<f32>>> {
    let _permit = app.admit()?;
    let request: EmbedRequest = parse(body)?;
    let model = app.pick(Head::Embedding, request.model.as_deref())?;
    let (texts, _) = request.inputs.into_vec();
    let tokens = tokenize_texts(&app, model, &texts, request.truncate).await?;
    Ok(Json(vectors(
        infer(model, &tokens).await?,
        request.normalize,
    )?))
}

/// `POST /predict`: every label with its score, best first, per input (softmax, or a sigmoid
/// per label for a multi-label model; logits with `raw_scores`).
async fn predict(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Answer<serde_json::Value> {
    let _permit = app.admit()?;
    let request: PredictRequest = parse(body)?;
    let model = app.pick(Head::SequenceClassification, request.model.as_deref())?;
    let (sequences, single) = match request.inputs {
        PredictInputs::One(s) => (vec![s], true),
        PredictInputs::Many(v) => (v, false),
    };
    let inputs: Vec<(String, Option<String>)> = sequences
        .into_iter()
        .map(|s| match s {
            Sequence::Single(a) => (a, None),
            Sequence::Pair(a, b) => (a, Some(b)),
        })
        .collect();
    let mut texts: Vec<&str> = inputs.iter().map(|(a, _)| a.as_str()).collect();
    texts.extend(inputs.iter().filter_map(|(_, b)| b.as_deref()));
    app.check_count(&texts)?;
    let tokens = tokenize_all(model, inputs, request.truncate).await?;
    let labels = &model.info.labels;
    let answers = infer(model, &tokens)
        .await?
        .into_iter()
        .map(|o| match o {
            Output::Logits(logits) => {
                let scores = if request.raw_scores {
                    logits
                } else {
                    activate(&logits, model.info.multi_label)
                };
                let mut scored: Vec<Scored> = labels
                    .iter()
                    .zip(scores)
                    .map(|(l, s)| Scored {
                        label: l.clone(),
                        score: s,
                    })
                    .collect();
                scored.sort_by(|a, b| b.score.total_cmp(&a.score));
                Ok(scored)
            }
            _ => Err(ApiError::backend("the model returned no class scores")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(one_or_many(answers, single)))
}

/// `POST /ner`: entities per input, grouped from token predictions exactly as `transformers`'
/// `pipeline("token-classification", aggregation_strategy="simple")` does.
async fn ner(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Answer<serde_json::Value> {
    let _permit = app.admit()?;
    let request: NerRequest = parse(body)?;
    let model = app.pick(Head::TokenClassification, request.model.as_deref())?;
    let (texts, single) = request.inputs.into_vec();
    let tokens = tokenize_texts(&app, model, &texts, request.truncate).await?;
    let outputs = infer(model, &tokens).await?;
    let mut answers = Vec::with_capacity(outputs.len());
    for ((output, t), text) in outputs.into_iter().zip(&tokens).zip(&texts) {
        let Output::TokenProbabilities(probs) = output else {
            return Err(ApiError::backend("the model returned no token scores"));
        };
        answers.push(
            entities(&model.tokenizer, t, &probs, &model.info.labels, text)
                .map_err(|e| ApiError::backend(e.to_string()))?,
        );
    }
    Ok(Json(one_or_many(answers, single)))
}

/// A label's (B/I, type): "B-PER" → (B, PER), "I-PER" → (I, PER), anything else (I, itself),
/// as the pipeline's `get_tag`.
fn split_tag(label: &str) -> (char, &str) {
    if let Some(t) = label.strip_prefix("B-") {
        ('B', t)
    } else if let Some(t) = label.strip_prefix("I-") {
        ('I', t)
    } else {
        ('I', label)
    }
}

/// The pipeline's "simple" aggregation: each non-special token takes its most probable label;
/// consecutive tokens of one type join a group unless a token says B-; a group's score is the
/// mean of its tokens', its word the tokens joined by the tokenizer's decoder (an unknown
/// token contributes its original text); groups of type O are dropped.
pub fn entities(
    tokenizer: &Tokenizer,
    encoding: &tokenizers::Encoding,
    probs: &[Vec<f32>],
    labels: &[String],
    text: &str,
) -> crate::Result<Vec<Entity>> {
    struct Piece<'a> {
        label: &'a str,
        score: f32,
        token: String,
        start: usize,
        end: usize,
    }
    let chars: Vec<char> = text.chars().collect();
    let unk = tokenizer.token_to_id("[UNK]");
    let mut pieces = Vec::new();
    for (i, row) in probs.iter().enumerate() {
        if encoding.get_special_tokens_mask().get(i) == Some(&1) {
            continue;
        }
        let best = (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
            .unwrap_or(0);
        let (start, end) = encoding.get_offsets()[i];
        let id = encoding.get_ids()[i];
        let token = if Some(id) == unk {
            chars[start.min(chars.len())..end.min(chars.len())]
                .iter()
                .collect()
        } else {
            tokenizer.id_to_token(id).unwrap_or_default()
        };
        pieces.push(Piece {
            label: &labels[best],
            score: row[best],
            token,
            start,
            end,
        });
    }
    let mut groups: Vec<Vec<Piece>> = Vec::new();
    for p in pieces {
        let joins = groups.last().and_then(|g| g.last()).is_some_and(|last| {
            let ((bi, tag), (_, last_tag)) = (split_tag(p.label), split_tag(last.label));
            tag == last_tag && bi != 'B'
        });
        match groups.last_mut() {
            Some(g) if joins => g.push(p),
            _ => groups.push(vec![p]),
        }
    }
    let mut out = Vec::new();
    for g in groups {
        let tag = split_tag(g[0].label).1;
        if tag == "O" {
            continue;
        }
        out.push(Entity {
            entity_group: tag.to_string(),
            score: g.iter().map(|p| p.score).sum::<f32>() / g.len() as f32,
            start: g[0].start,
            end: g[g.len() - 1].end,
            word: tokenizer.join_tokens(g.iter().map(|p| p.token.clone()).collect())?,
        });
    }
    Ok(out)
}

/// `POST /tokenize`: the tokens of each input, `[[{"id", "text", "special", "start", "stop"}]]`
/// (character offsets; `text` is the input's own text of a token, or the special token).
async fn tokenize(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Answer<Vec<Vec<Token>>> {
    let request: TokenizeRequest = parse(body)?;
    let model = match request.model.as_deref() {
        Some(n) => app.named(n)?,
        None => &app.models[0],
    };
    let (texts, _) = request.inputs.into_vec();
    let encoded = tokenize_texts(&app, model, &texts, true).await?;
    let answers = encoded
        .iter()
        .zip(&texts)
        .map(|(e, text)| {
            let chars: Vec<char> = text.chars().collect();
            (0..e.len())
                .filter_map(|i| {
                    let special = e.get_special_tokens_mask()[i] == 1;
                    if special && !request.add_special_tokens {
                        return None;
                    }
                    let (start, stop) = e.get_offsets()[i];
                    let text = if special {
                        e.get_tokens()[i].clone()
                    } else {
                        chars[start.min(chars.len())..stop.min(chars.len())]
                            .iter()
                            .collect()
                    };
                    Some(Token {
                        id: e.get_ids()[i],
                        text,
                        special,
                        start,
                        stop,
                    })
                })
                .collect()
        })
        .collect();
    Ok(Json(answers))
}

/// `POST /v1/embeddings` in OpenAI's format (vectors are unit-norm, as OpenAI's are).
async fn openai_embeddings(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Answer<serde_json::Value> {
    use base64::Engine;
    let _permit = app.admit()?;
    let request: OpenAiRequest = parse(body)?;
    let texts = match request.input {
        OpenAiInput::Texts(t) => t.into_vec().0,
        OpenAiInput::Tokens(_) => {
            return Err(ApiError::validation(
                "input must be a string or a list of strings (token ids are not accepted: they would be another tokenizer's)",
            ))
        }
    };
    let model = app.pick(Head::Embedding, Some(&request.model))?;
    if let Some(d) = request.dimensions {
        if d != model.info.hidden_size {
            return Err(ApiError::validation(format!(
                "dimensions is {d}; model {:?} gives {} (it cannot shorten its vectors)",
                model.info.name, model.info.hidden_size
            )));
        }
    }
    let tokens = tokenize_texts(&app, model, &texts, true).await?;
    let used: usize = tokens.iter().map(tokenizers::Encoding::len).sum();
    let data: Vec<serde_json::Value> = vectors(infer(model, &tokens).await?, true)?
        .into_iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = match request.encoding_format {
                EncodingFormat::Float => json!(v),
                EncodingFormat::Base64 => {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            };
            json!({ "object": "embedding", "embedding": embedding, "index": index })
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": model.info.name,
        "usage": { "prompt_tokens": used, "total_tokens": used },
    })))
}

/// `GET /v1/models`: the served models in OpenAI's format.
async fn openai_models(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let data: Vec<_> = app
        .models
        .iter()
        .map(|m| json!({ "id": m.info.name, "object": "model", "created": 0, "owned_by": "positio" }))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

/// `GET /health`: 200 while every model's batching thread runs, else 503.
async fn health(State(app): State<Arc<App>>) -> Response {
    match app.models.iter().find(|m| !m.queue.is_running()) {
        None => Json(json!({ "status": "ok" })).into_response(),
        Some(m) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unhealthy",
            format!("the batching thread of model {:?} has stopped", m.info.name),
        )
        .into_response(),
    }
}

/// `GET /info`: the models (head, labels, max length, positional encoding) and the limits.
async fn info(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let models: Vec<&ModelInfo> = app.models.iter().map(|m| &m.info).collect();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "models": models,
        "max_batch_tokens": app.batching.max_tokens,
        "max_batch_requests": app.batching.max_inputs,
        "max_client_batch_size": app.limits.max_client_batch_size,
        "max_concurrent_requests": app.limits.max_concurrent_requests,
        "payload_limit": app.limits.payload_limit,
        "request_timeout_s": app.limits.request_timeout.as_secs_f64(),
    }))
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}
