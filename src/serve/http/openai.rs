//! OpenAI's embeddings API (`POST /v1/embeddings`, `GET /v1/models`), so that OpenAI's client
//! libraries work against this server unchanged: its request shape, and its answer shape
//! (`{"object": "list", "data": [...], "model", "usage"}`) over the same embedding models as
//! `/embed`.

use super::error::{Answer, ApiError};
use super::types::Texts;
use super::{infer, parse, tokenize_texts, vectors, App};
use crate::serve::models::Head;
use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// OpenAI's embeddings request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenAiRequest {
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

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum EncodingFormat {
    #[default]
    Float,
    Base64,
}

/// `POST /v1/embeddings` in OpenAI's format (vectors are unit-norm, as OpenAI's are).
pub(crate) async fn openai_embeddings(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Answer<serde_json::Value> {
    use base64::Engine;
    let _permit = app.admit()?;
    let request: OpenAiRequest = parse(&body)?;
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
pub(crate) async fn openai_models(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let data: Vec<_> = app
        .models
        .iter()
        .map(|m| json!({ "id": m.info.name, "object": "model", "created": 0, "owned_by": "positio" }))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(v: serde_json::Value) -> Result<OpenAiRequest, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn texts_are_taken_and_token_ids_recognised() {
        let r = request(json!({ "input": ["a", "b"], "model": "m" })).unwrap();
        assert!(matches!(r.input, OpenAiInput::Texts(Texts::Many(ref v)) if v.len() == 2));
        assert_eq!(r.encoding_format, EncodingFormat::Float);
        assert!(r.dimensions.is_none());
        let r = request(json!({ "input": [[1, 2]], "model": "m" })).unwrap();
        assert!(matches!(r.input, OpenAiInput::Tokens(_)));
    }

    #[test]
    fn openai_options_are_accepted_and_typos_refused() {
        let r = request(json!({
            "input": "a", "model": "m", "encoding_format": "base64", "dimensions": 8, "user": "u"
        }))
        .unwrap();
        assert_eq!(r.encoding_format, EncodingFormat::Base64);
        assert_eq!(r.dimensions, Some(8));
        assert!(
            request(json!({ "input": "a" })).is_err(),
            "model is required"
        );
        assert!(request(json!({ "input": "a", "model": "m", "encoding": "float" })).is_err());
        assert!(request(json!({ "input": "a", "model": "m", "encoding_format": "int8" })).is_err());
    }
}
