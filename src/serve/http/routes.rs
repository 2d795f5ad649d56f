//! The text-embeddings-inference routes: `/embed`, `/predict`, `/tokenize` run a model (or
//! its tokenizer) through the shared helpers of [`super`]; `/health`, `/info`, `/metrics`
//! report on the server. Answers are TEI's shapes, so TEI's clients work unchanged.

use super::error::{Answer, ApiError, ErrorKind};
use super::types::{
    one_or_many, EmbedRequest, PredictInputs, PredictRequest, Scored, Sequence, Token,
    TokenizeRequest,
};
use super::{infer, parse, tokenize_all, tokenize_texts, vectors, App};
use crate::serve::models::{Head, ModelInfo, Output};
use crate::tasks::classify::activate;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

/// `POST /embed`: `[[f32]]`, one vector per input.
pub(crate) async fn embed(State(app): State<Arc<App>>, body: Bytes) -> Answer<Vec<Vec<f32>>> {
    let _permit = app.admit()?;
    let request: EmbedRequest = parse(&body)?;
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
pub(crate) async fn predict(State(app): State<Arc<App>>, body: Bytes) -> Answer<serde_json::Value> {
    let _permit = app.admit()?;
    let request: PredictRequest = parse(&body)?;
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
                let info = &model.info;
                let probs = activate(&logits, info.multi_label);
                let predicted = |c: usize| {
                    info.multi_label
                        .then(|| f64::from(probs[c]) >= info.thresholds[c])
                };
                let scores = if request.raw_scores { &logits } else { &probs };
                let mut scored: Vec<Scored> = labels
                    .iter()
                    .zip(scores)
                    .enumerate()
                    .map(|(c, (l, &s))| Scored {
                        label: l.clone(),
                        score: s,
                        predicted: predicted(c),
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

/// `POST /tokenize`: the tokens of each input, `[[{"id", "text", "special", "start", "stop"}]]`
/// (character offsets; `text` is the input's own text of a token, or the special token).
pub(crate) async fn tokenize(State(app): State<Arc<App>>, body: Bytes) -> Answer<Vec<Vec<Token>>> {
    let request: TokenizeRequest = parse(&body)?;
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

/// `GET /health`: 200 while every model's batching thread runs, else 503.
pub(crate) async fn health(State(app): State<Arc<App>>) -> Response {
    match app.models.iter().find(|m| !m.queue.is_running()) {
        None => Json(json!({ "status": "ok" })).into_response(),
        Some(m) => ApiError::new(
            ErrorKind::Unhealthy,
            format!("the batching thread of model {:?} has stopped", m.info.name),
        )
        .into_response(),
    }
}

/// `GET /info`: the models (head, labels, max length, positional encoding) and the limits.
pub(crate) async fn info(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
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
pub(crate) async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}
