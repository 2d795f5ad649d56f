//! The request and response schemas of the TEI-compatible routes and `/ner`, apart from the
//! handlers so that a route's contract reads in one place. Requests refuse unknown fields
//! (a typo such as `normalise` is an error, not silently ignored).

use serde::{Deserialize, Serialize};

/// A text or a list of texts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Texts {
    One(String),
    Many(Vec<String>),
}

impl Texts {
    /// The texts, and whether the request sent a single one (answered with a single item).
    pub(crate) fn into_vec(self) -> (Vec<String>, bool) {
        match self {
            Texts::One(t) => (vec![t], true),
            Texts::Many(v) => (v, false),
        }
    }
}

fn default_true() -> bool {
    true
}

/// `POST /embed`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmbedRequest {
    pub(crate) inputs: Texts,
    #[serde(default = "default_true")]
    pub(crate) normalize: bool,
    #[serde(default = "default_true")]
    pub(crate) truncate: bool,
    /// Which served model (by name); the first embedding model when absent.
    pub(crate) model: Option<String>,
}

/// A text or a text pair.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub(crate) enum Sequence {
    Single(String),
    Pair(String, String),
}

/// TEI's `/predict` input: a sequence (a text, or a pair `[a, b]`), or a list of them.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub(crate) enum PredictInputs {
    One(Sequence),
    Many(Vec<Sequence>),
}

/// `POST /predict`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PredictRequest {
    pub(crate) inputs: PredictInputs,
    #[serde(default)]
    pub(crate) raw_scores: bool,
    #[serde(default = "default_true")]
    pub(crate) truncate: bool,
    pub(crate) model: Option<String>,
}

/// `POST /ner`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NerRequest {
    pub(crate) inputs: Texts,
    /// How piece labels become entities (default `simple`, as `predict ner`).
    #[serde(default)]
    pub(crate) aggregation_strategy: crate::tasks::ner::Aggregation,
    #[serde(default = "default_true")]
    pub(crate) truncate: bool,
    pub(crate) model: Option<String>,
}

/// `POST /tokenize`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenizeRequest {
    pub(crate) inputs: Texts,
    #[serde(default = "default_true")]
    pub(crate) add_special_tokens: bool,
    pub(crate) model: Option<String>,
}

/// A label and its score (`/predict`).
#[derive(Serialize)]
pub(crate) struct Scored {
    pub(crate) label: String,
    pub(crate) score: f32,
    /// Multi-label models only: whether the label is predicted (its probability at or above the
    /// label's decision threshold, as `positio predict classify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) predicted: Option<bool>,
}

/// A token of `/tokenize` (character offsets).
#[derive(Serialize)]
pub(crate) struct Token {
    pub(crate) id: u32,
    pub(crate) text: String,
    pub(crate) special: bool,
    pub(crate) start: usize,
    pub(crate) stop: usize,
}

/// A response that is one item for a single input, a list for a list (TEI's convention).
pub(crate) fn one_or_many<T: Serialize>(mut items: Vec<T>, single: bool) -> serde_json::Value {
    if single {
        serde_json::to_value(items.pop()).unwrap_or_default()
    } else {
        serde_json::to_value(items).unwrap_or_default()
    }
}

/// `POST /rerank` (TEI's): the texts' relevance to the query, best first.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RerankRequest {
    pub(crate) query: String,
    pub(crate) texts: Vec<String>,
    #[serde(default)]
    pub(crate) raw_scores: bool,
    #[serde(default)]
    pub(crate) return_text: bool,
    #[serde(default = "default_true")]
    pub(crate) truncate: bool,
    /// TEI's option: positio truncates on the right only (the passage side first).
    pub(crate) truncation_direction: Option<String>,
    pub(crate) model: Option<String>,
}

/// One text of a `/rerank` answer.
#[derive(Debug, Serialize)]
pub(crate) struct Ranked {
    pub(crate) index: usize,
    pub(crate) score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) text: Option<String>,
}

fn default_top_k() -> usize {
    10
}

fn default_rerank_top() -> usize {
    20
}

/// `POST /search`: the served index's best documents for a query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchRequest {
    pub(crate) query: String,
    #[serde(default = "default_top_k")]
    pub(crate) top_k: usize,
    #[serde(default)]
    pub(crate) mode: crate::index::SearchMode,
    /// Rerank the first `rerank_top` hits [default: when a reranker is served].
    pub(crate) rerank: Option<bool>,
    #[serde(default = "default_rerank_top")]
    pub(crate) rerank_top: usize,
}

/// One document of a `/search` answer.
#[derive(Debug, Serialize)]
pub(crate) struct Found {
    pub(crate) rank: usize,
    pub(crate) id: String,
    pub(crate) score: f64,
    pub(crate) title: String,
    pub(crate) text: String,
}

/// `POST /answer`: the library's answer to a question or to each of a list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnswerRequest {
    pub(crate) inputs: Texts,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn texts_are_one_or_many() {
        let one: Texts = serde_json::from_value(json!("a")).unwrap();
        assert_eq!(one.into_vec(), (vec!["a".to_string()], true));
        let many: Texts = serde_json::from_value(json!(["a", "b"])).unwrap();
        assert_eq!(many.into_vec(), (vec!["a".into(), "b".into()], false));
        assert!(serde_json::from_value::<Texts>(json!(5)).is_err());
        assert!(serde_json::from_value::<Texts>(json!([1, 2])).is_err());
    }

    #[test]
    fn requests_take_defaults_and_refuse_unknown_fields() {
        let r: EmbedRequest = serde_json::from_value(json!({ "inputs": "x" })).unwrap();
        assert!(r.normalize && r.truncate && r.model.is_none());
        let r: TokenizeRequest = serde_json::from_value(json!({ "inputs": ["x"] })).unwrap();
        assert!(r.add_special_tokens);
        let e = serde_json::from_value::<EmbedRequest>(json!({ "inputs": "x", "normalise": true }))
            .err()
            .unwrap();
        assert!(e.to_string().contains("normalise"), "{e}");
        assert!(serde_json::from_value::<NerRequest>(json!({})).is_err());
    }

    #[test]
    fn predict_takes_texts_pairs_and_lists_of_them() {
        let inputs = |v| serde_json::from_value::<PredictRequest>(json!({ "inputs": v }));
        let s = |t: &str| t.to_string();
        assert_eq!(
            inputs(json!("a")).unwrap().inputs,
            PredictInputs::One(Sequence::Single(s("a")))
        );
        assert_eq!(
            inputs(json!(["a", "b"])).unwrap().inputs,
            PredictInputs::One(Sequence::Pair(s("a"), s("b")))
        );
        assert_eq!(
            inputs(json!([["a", "b"], "c"])).unwrap().inputs,
            PredictInputs::Many(vec![
                Sequence::Pair(s("a"), s("b")),
                Sequence::Single(s("c"))
            ])
        );
        let r = inputs(json!("a")).unwrap();
        assert!(!r.raw_scores && r.truncate);
    }

    #[test]
    fn one_input_gets_one_item_a_list_a_list() {
        assert_eq!(one_or_many(vec![1, 2], false), json!([1, 2]));
        assert_eq!(one_or_many(vec![7], true), json!(7));
        assert_eq!(one_or_many(vec![vec![1]], false), json!([[1]]));
        assert_eq!(one_or_many::<u8>(vec![], false), json!([]));
    }
}

/// `POST /recommend`: a user's clicked news ids (oldest first) and the candidates to rank, or
/// without them how many of all news to return.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecommendRequest {
    #[serde(default)]
    pub(crate) history: Vec<String>,
    pub(crate) candidates: Option<Vec<String>>,
    #[serde(default = "default_recommend_top")]
    pub(crate) top: usize,
}

fn default_recommend_top() -> usize {
    10
}
