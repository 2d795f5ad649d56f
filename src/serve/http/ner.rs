//! `POST /ner`: entities per input, as `transformers`' token classification pipeline reports
//! them (TEI has no such route). The token classifier runs in the model's batching queue; the
//! entities come from `tasks::ner::decode`, the decoding `positio predict ner` uses too.

use super::error::{Answer, ApiError};
use super::types::{one_or_many, NerRequest};
use super::{infer, parse, tokenize_texts, App};
use crate::serve::models::{Head, Output};
use crate::tasks::ner::decode::{entities, Aggregation};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use std::sync::Arc;

/// `POST /ner`: entities per input by the request's `aggregation_strategy` (default `simple`,
/// as `predict ner`), grouped from token predictions as `transformers`' pipeline does.
pub(crate) async fn ner(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Answer<serde_json::Value> {
    let _permit = app.admit()?;
    let request: NerRequest = parse(body)?;
    let model = app.pick(Head::TokenClassification, request.model.as_deref())?;
    let strategy = request.aggregation_strategy;
    if strategy == Aggregation::Words {
        return Err(ApiError::validation(
            "aggregation_strategy \"words\" (CoNLL words, windows, CRF) is offered by `positio predict ner` and `eval ner`; the server has none, simple, first, average and max",
        ));
    }
    let (texts, single) = request.inputs.into_vec();
    let tokens = tokenize_texts(&app, model, &texts, request.truncate).await?;
    let outputs = infer(model, &tokens).await?;
    let mut answers = Vec::with_capacity(outputs.len());
    for ((output, t), text) in outputs.into_iter().zip(&tokens).zip(&texts) {
        let Output::TokenProbabilities(probs) = output else {
            return Err(ApiError::backend("the model returned no token scores"));
        };
        // Grouping fails only on the tokenizer's decoder: the server's failure, not the
        // request's, so not the 422 that `From<crate::Error>` would give.
        answers.push(
            entities(
                &model.tokenizer,
                t,
                &probs,
                &model.info.labels,
                text,
                strategy,
            )
            .map_err(|e| ApiError::backend(e.to_string()))?,
        );
    }
    Ok(Json(one_or_many(answers, single)))
}
