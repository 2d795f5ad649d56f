//! `POST /ner`: entities per input, as `transformers`' token classification pipeline with
//! `aggregation_strategy="simple"` reports them (TEI has no such route). The handler runs the
//! token classifier; [`entities`] groups its token predictions into entities.

use super::error::{Answer, ApiError};
use super::types::{one_or_many, Entity, NerRequest};
use super::{infer, parse, tokenize_texts, App};
use crate::data::tokenizer::Tokenizer;
use crate::serve::models::{Head, Output};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use std::sync::Arc;

/// `POST /ner`: entities per input, grouped from token predictions exactly as `transformers`'
/// `pipeline("token-classification", aggregation_strategy="simple")` does.
pub(crate) async fn ner(
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
        // Grouping fails only on the tokenizer's decoder: the server's failure, not the
        // request's, so not the 422 that `From<crate::Error>` would give.
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
pub(crate) fn entities(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_into_position_and_type() {
        assert_eq!(split_tag("B-PER"), ('B', "PER"));
        assert_eq!(split_tag("I-LOC"), ('I', "LOC"));
        assert_eq!(split_tag("O"), ('I', "O"));
        assert_eq!(split_tag("MISC"), ('I', "MISC"));
    }
}
