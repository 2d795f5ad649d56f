//! `POST /recommend`: one user's ranking by the served recommender (`serve --recommender RUN
//! --news news.tsv`), as `positio recommend` computes it: the given candidates best first, or
//! the best `top` of all news not in the history. News vectors come from the cache the
//! recommender keeps beside its run (mapped at startup), so a request encodes nothing: it
//! builds one user vector and takes dot products.

use super::error::{Answer, ApiError, ErrorKind};
use super::types::RecommendRequest;
use super::{parse, App};
use crate::tasks::recommend::commands::{Recommendation, Request};
use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use std::sync::Arc;

/// `POST /recommend`: `[{"rank", "id", "score", "title"}]`, best first.
pub(crate) async fn recommend(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Answer<Vec<Recommendation>> {
    let _permit = app.admit()?;
    let request: RecommendRequest = parse(&body)?;
    let Some(ranker) = app.apps.recommender.clone() else {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            "no recommender is served: start the server with --recommender RUN --news news.tsv",
        ));
    };
    if request.top == 0 {
        return Err(ApiError::validation("top must be at least 1"));
    }
    if request.candidates.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::new(ErrorKind::Empty, "candidates is empty"));
    }
    let ranked = tokio::task::spawn_blocking(move || {
        ranker.rank(&Request {
            history: &request.history,
            candidates: request.candidates.as_deref(),
            top: request.top,
        })
    })
    .await
    .map_err(|e| ApiError::backend(format!("recommendation failed: {e}")))??;
    Ok(Json(ranked))
}
