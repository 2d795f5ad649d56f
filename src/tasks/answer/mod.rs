//! Customer-service answering: a library of answer templates, each with its text and example
//! questions; a new question gets the template whose answer or examples are nearest in
//! embedding space (optionally reordered by a cross-encoder reranker), with a confidence, and
//! `no_match` below a threshold that `calibrate` (`commands::calibrate`) picks on development questions so that the
//! answers given reach a target precision (a wrong answer is worse than handing over to a
//! colleague).
//!
//! The library file (JSON Lines): `{"id": str, "answer": str, "questions": [str],
//! "intent": str}` (`questions` and `intent` optional). Development questions: `{"text": str, "answer": str | null}`, the id
//! of the right template, or null when none is right.
//!
//! Intent routing: with a router (a single-label classifier fine-tuned on intents, as
//! `finetune classify` trains one), each question is first classified; when the router's
//! probability reaches its minimum, only the templates of that intent are candidates, and an
//! intent without templates is handed over (`no_match`, no template). Below the minimum the
//! whole library is searched. Every template's intent must be one of the router's labels.
//!
//! `commands` runs the models (`positio answer`, `positio calibrate`); the server runs the same
//! steps with its batched models (`serve::http::apps`).

pub mod commands;

use crate::data::beir::{field, json_lines};
use crate::tasks::retrieval::search::ExactIndex;
use crate::{Error, Result};
use burn::tensor::Device;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One answer template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub id: String,
    pub answer: String,
    pub questions: Vec<String>,
    /// The intent a router sends this template's questions under.
    pub intent: Option<String>,
}

/// Reads a library (`id`, `answer`, optional `questions` and `intent`), refusing duplicate
/// ids.
pub fn read_library(path: &Path) -> Result<Vec<Template>> {
    let mut seen = BTreeMap::new();
    let mut templates = Vec::new();
    for (line, row) in json_lines(path)? {
        let id = field(path, line, &row, "id", true)?;
        if id.is_empty() {
            return Err(Error::line(path, line, "empty \"id\""));
        }
        if let Some(first) = seen.insert(id.clone(), line) {
            return Err(Error::line(
                path,
                line,
                format!("id {id:?} already on line {first}"),
            ));
        }
        let answer = field(path, line, &row, "answer", true)?;
        if answer.trim().is_empty() {
            return Err(Error::line(path, line, "empty \"answer\""));
        }
        let questions = match row.get("questions") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|q| {
                    q.as_str().map(String::from).ok_or_else(|| {
                        Error::line(
                            path,
                            line,
                            format!("\"questions\" must hold strings, got {q}"),
                        )
                    })
                })
                .collect::<Result<_>>()?,
            Some(other) => {
                return Err(Error::line(
                    path,
                    line,
                    format!("\"questions\" must be a list of strings, got {other}"),
                ))
            }
        };
        let intent = match row.get("intent") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(other) => {
                return Err(Error::line(
                    path,
                    line,
                    format!("\"intent\" must be a non-empty string, got {other}"),
                ))
            }
        };
        templates.push(Template {
            id,
            answer,
            questions,
            intent,
        });
    }
    if templates.is_empty() {
        return Err(Error::file(path, "no answer templates"));
    }
    Ok(templates)
}

/// A development question and the template that answers it (`None`: no template does).
#[derive(Debug, Clone, PartialEq)]
pub struct DevQuestion {
    pub text: String,
    pub answer: Option<String>,
}

/// Reads development questions, checking each named template is in `library`.
pub fn read_dev(path: &Path, library: &[Template]) -> Result<Vec<DevQuestion>> {
    let ids: std::collections::HashSet<&str> = library.iter().map(|t| t.id.as_str()).collect();
    let mut out = Vec::new();
    for (line, row) in json_lines(path)? {
        let text = field(path, line, &row, "text", true)?;
        let answer = match row.get("answer") {
            None => {
                return Err(Error::line(
                    path,
                    line,
                    "no \"answer\" (a template id, or null)",
                ))
            }
            Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) if ids.contains(s.as_str()) => Some(s.clone()),
            Some(serde_json::Value::String(s)) => {
                return Err(Error::line(
                    path,
                    line,
                    format!("template {s:?} is not in the library"),
                ))
            }
            Some(other) => {
                return Err(Error::line(
                    path,
                    line,
                    format!("\"answer\" must be a template id or null, got {other}"),
                ))
            }
        };
        out.push(DevQuestion { text, answer });
    }
    if out.is_empty() {
        return Err(Error::file(path, "no questions"));
    }
    Ok(out)
}

/// The library with its texts embedded: each template is found by its answer and by each of
/// its example questions.
pub struct AnswerLibrary {
    pub templates: Vec<Template>,
    index: ExactIndex,
    /// The template of each embedded text.
    owner: Vec<usize>,
}

/// What the library answers to one question.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Answer {
    /// The best template's id (given even when `no_match`, for the record); `None` when the
    /// question was routed to an intent without templates.
    pub template: Option<String>,
    pub answer: Option<String>,
    /// The reranker's relevance (0..1) when there is one, else the cosine similarity (0
    /// without a template).
    pub confidence: f64,
    /// True when the confidence is below the threshold, or there is no template: hand over
    /// instead of answering.
    pub no_match: bool,
    /// The router's intent and its probability, when a router was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<Route>,
}

/// Where a router sent a question.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Route {
    pub label: String,
    pub probability: f64,
    /// Whether the probability reached the router's minimum, so only this intent's templates
    /// were candidates.
    pub routed: bool,
}

/// The route of a question from the router's class probabilities.
pub fn route(probabilities: &[f32], labels: &[String], min_probability: f64) -> Route {
    let (best, p) = probabilities
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("a router has labels");
    Route {
        label: labels[best].clone(),
        probability: f64::from(*p),
        routed: f64::from(*p) >= min_probability,
    }
}

/// Refuses a router that cannot send a question to some template: every template's intent
/// must be one of its labels.
pub fn check_router(templates: &[Template], labels: &[String], router: &str) -> Result<()> {
    for t in templates {
        match &t.intent {
            None => {
                return Err(Error::config(
                    "--router",
                    format!(
                        "template {:?} has no \"intent\": with a router, every template needs one",
                        t.id
                    ),
                ))
            }
            Some(i) if !labels.contains(i) => {
                return Err(Error::config(
                    "--router",
                    format!(
                        "template {:?} has intent {i:?}, which is not a label of {router} ({})",
                        t.id,
                        labels.join(", ")
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

impl AnswerLibrary {
    /// The texts to embed, in the order [`AnswerLibrary::new`] expects their vectors.
    pub fn texts(templates: &[Template]) -> Vec<String> {
        templates
            .iter()
            .flat_map(|t| std::iter::once(t.answer.clone()).chain(t.questions.iter().cloned()))
            .collect()
    }

    pub fn new(templates: Vec<Template>, vectors: &[Vec<f32>], device: &Device) -> Result<Self> {
        let owner: Vec<usize> = templates
            .iter()
            .enumerate()
            .flat_map(|(i, t)| std::iter::repeat_n(i, 1 + t.questions.len()))
            .collect();
        let ids = (0..owner.len()).map(|i| format!("{i:09}")).collect();
        let index = ExactIndex::new(ids, vectors, device)?;
        Ok(AnswerLibrary {
            templates,
            index,
            owner,
        })
    }

    /// The `k` most similar templates of each question (`(template, cosine)`, best first): a
    /// template scores its nearest text. A question with a route that was taken draws only
    /// from its intent's templates (none, when the intent has none).
    pub fn candidates(
        &self,
        questions: &[Vec<f32>],
        routes: &[Option<Route>],
        k: usize,
    ) -> Result<Vec<Vec<(usize, f64)>>> {
        let hits = self.index.search_slots(questions, self.owner.len())?;
        Ok(hits
            .into_iter()
            .zip(routes)
            .map(|(hits, route)| {
                let intent = route.as_ref().filter(|r| r.routed).map(|r| &r.label);
                let mut best: Vec<(usize, f64)> = Vec::new();
                let mut seen = HashMap::new();
                for (slot, score) in hits {
                    let t = self.owner[slot];
                    if intent.is_some_and(|i| self.templates[t].intent.as_ref() != Some(i)) {
                        continue;
                    }
                    if seen.insert(t, ()).is_none() {
                        best.push((t, score));
                        if best.len() == k {
                            break;
                        }
                    }
                }
                best
            })
            .collect())
    }

    /// The answer from ranked `(template, confidence)` candidates (best first; none: hand
    /// over).
    pub fn decide(
        &self,
        ranked: &[(usize, f64)],
        threshold: Option<f64>,
        intent: Option<Route>,
    ) -> Answer {
        match ranked.first() {
            Some(&(t, confidence)) => Answer {
                template: Some(self.templates[t].id.clone()),
                answer: Some(self.templates[t].answer.clone()),
                confidence,
                no_match: threshold.is_some_and(|th| confidence < th),
                intent,
            },
            None => Answer {
                template: None,
                answer: None,
                confidence: 0.0,
                no_match: true,
                intent,
            },
        }
    }
}

/// Reorders candidates by reranker relevance (`scores`, one per candidate), best first.
pub fn by_relevance(candidates: &[(usize, f64)], scores: &[f32]) -> Vec<(usize, f64)> {
    let mut ranked: Vec<(usize, f64)> = candidates
        .iter()
        .zip(scores)
        .map(|(&(t, _), &s)| (t, f64::from(s)))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked
}

/// The lowest threshold whose answered questions (confidence ≥ threshold) reach `target`
/// precision, so the most questions are answered: `(threshold, precision, answered)`; `None`
/// when no threshold reaches it. `outcomes` are (confidence, whether the best template is the
/// right one).
pub fn pick_threshold(outcomes: &[(f64, bool)], target: f64) -> Option<(f64, f64, usize)> {
    let mut sorted = outcomes.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut best = None;
    let mut correct = 0usize;
    for i in 0..sorted.len() {
        correct += usize::from(sorted[i].1);
        // A threshold answers every question of equal confidence alike.
        if i + 1 < sorted.len() && sorted[i + 1].0 == sorted[i].0 {
            continue;
        }
        let precision = correct as f64 / (i + 1) as f64;
        if precision >= target {
            best = Some((sorted[i].0, precision, i + 1));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_answers_the_most_questions_at_the_target_precision() {
        // Confidence order: ✓ ✓ ✗ ✓ ✓ ✗ ✗.
        let o = [
            (0.9, true),
            (0.8, true),
            (0.7, false),
            (0.6, true),
            (0.5, true),
            (0.4, false),
            (0.3, false),
        ];
        // Precision of the first n: 1, 1, .67, .75, .8, .67, .57.
        assert_eq!(pick_threshold(&o, 0.8), Some((0.5, 0.8, 5)));
        assert_eq!(pick_threshold(&o, 0.75).unwrap().2, 5);
        assert_eq!(pick_threshold(&o, 0.95), Some((0.8, 1.0, 2)));
        assert_eq!(pick_threshold(&o, 0.5), Some((0.3, 4.0 / 7.0, 7)));
        assert_eq!(pick_threshold(&[(0.9, false)], 0.5), None);
        // Ties move together: answering 0.8 answers both 0.8s.
        let tied = [(0.9, true), (0.8, true), (0.8, false)];
        assert_eq!(pick_threshold(&tied, 0.9), Some((0.9, 1.0, 1)));
    }

    #[test]
    fn library_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        std::fs::write(
            &p,
            "{\"id\":\"a\",\"answer\":\"x\"}\n{\"id\":\"a\",\"answer\":\"y\"}\n",
        )
        .unwrap();
        let e = read_library(&p).unwrap_err().to_string();
        assert!(e.ends_with("a.jsonl:2: id \"a\" already on line 1"), "{e}");
        std::fs::write(&p, "{\"id\":\"a\",\"answer\":\"x\",\"questions\":\"q\"}\n").unwrap();
        let e = read_library(&p).unwrap_err().to_string();
        assert!(e.contains(":1: \"questions\" must be a list"), "{e}");
        std::fs::write(
            &p,
            "{\"id\":\"a\",\"answer\":\"x\",\"questions\":[\"q\"]}\n",
        )
        .unwrap();
        let lib = read_library(&p).unwrap();
        let d = dir.path().join("d.jsonl");
        std::fs::write(
            &d,
            "{\"text\":\"q\",\"answer\":null}\n{\"text\":\"q\",\"answer\":\"b\"}\n",
        )
        .unwrap();
        let e = read_dev(&d, &lib).unwrap_err().to_string();
        assert!(
            e.ends_with("d.jsonl:2: template \"b\" is not in the library"),
            "{e}"
        );
    }
}
