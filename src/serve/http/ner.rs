//! `POST /ner`: entities per input, as `transformers`' token classification pipeline reports
//! them (TEI has no such route). The token classifier runs in the model's batching queue; the
//! entities come from `tasks::ner`'s decoding, the one `positio predict ner` and `eval ner` use.

use super::error::{Answer, ApiError};
use super::types::{one_or_many, NerRequest};
use super::{infer, parse, tokenize_texts, App, Served};
use crate::serve::models::{Head, Output};
use crate::tasks::ner::decode::{entities, Aggregation, Entity};
use crate::tasks::ner::model::WordJob;
use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use std::sync::Arc;

/// `POST /ner`: entities per input by the request's `aggregation_strategy` (default `simple`,
/// as `predict ner`), grouped from token predictions as `transformers`' pipeline does.
pub(crate) async fn ner(State(app): State<Arc<App>>, body: Bytes) -> Answer<serde_json::Value> {
    let _permit = app.admit()?;
    let request: NerRequest = parse(&body)?;
    let model = app.pick(Head::TokenClassification, request.model.as_deref())?;
    let strategy = request.aggregation_strategy;
    let (texts, single) = request.inputs.into_vec();
    if strategy == Aggregation::Words {
        return Ok(Json(one_or_many(words(&app, model, texts).await?, single)));
    }
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

/// The `words` strategy: the texts' windows (never truncated) through the model's queue, then
/// decoded as `predict ner` and `eval ner` decode them (first pieces, CRF on whole texts).
async fn words(
    app: &App,
    model: &Served,
    texts: Vec<String>,
) -> Result<Vec<Vec<Entity>>, ApiError> {
    app.check_count(&texts.iter().map(String::as_str).collect::<Vec<_>>())?;
    let decoding = model
        .words
        .as_ref()
        .ok_or_else(|| ApiError::backend("the model has no word decoding"))?;
    let (tokenizer, window) = (model.tokenizer.clone(), decoding.window);
    let (job, texts) = tokio::task::spawn_blocking(move || {
        WordJob::new(&tokenizer, &texts, window).map(|job| (job, texts))
    })
    .await
    .map_err(|e| ApiError::backend(format!("tokenization failed: {e}")))??;
    let jobs = job
        .ids()
        .into_iter()
        .map(|ids| {
            let segments = vec![0; ids.len()];
            (ids, segments)
        })
        .collect();
    let mut probs = Vec::new();
    for output in model.queue.run(jobs).await? {
        let Output::TokenProbabilities(p) = output else {
            return Err(ApiError::backend("the model returned no token scores"));
        };
        probs.push(p);
    }
    Ok(job.entities(&probs, decoding, &texts))
}
