//! The monitor's models, any subset of three: sentiment (a single-label classifier with a
//! `negative` label, e.g. the Financial PhraseBank model), topics (a multi-label classifier at
//! its own decision threshold, e.g. the Reuters model) and entities (a token classifier: its
//! organisations, people and places). Each runs in batches through the same model code as
//! `predict classify` / `predict ner`.

use super::item::Item;
use crate::data::labelled::Example;
use crate::hf::FromCheckpoint;
use crate::tasks::classify::ClassifierModel;
use crate::tasks::ner::{Aggregation, NerModel};
use crate::{Error, Result};
use burn::tensor::Device;
use std::path::Path;

/// Entity types that get series (CoNLL's names; MISC is left out).
const ENTITY_TYPES: [&str; 3] = ["ORG", "PER", "LOC"];

/// What the models say of one item.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Annotation {
    /// The sentiment label, when there is a sentiment model.
    pub sentiment: Option<String>,
    /// P(negative).
    pub negative: Option<f32>,
    /// P(positive) − P(negative) (0 without a positive label).
    pub score: Option<f32>,
    pub topics: Vec<String>,
    /// Entity names (organisations, people, places), each once.
    pub entities: Vec<String>,
}

impl Annotation {
    /// Whether the item counts as negative.
    pub fn is_negative(&self) -> bool {
        self.sentiment
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("negative"))
    }
}

/// Which model fills which part of the annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Sentiment,
    Topics,
    Entities,
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "sentiment" => Ok(Role::Sentiment),
            "topics" => Ok(Role::Topics),
            "entities" => Ok(Role::Entities),
            _ => Err(format!(
                "{s:?}: the roles are sentiment, topics and entities"
            )),
        }
    }
}

/// The loaded models.
pub struct Annotators {
    sentiment: Option<(ClassifierModel, usize, Option<usize>)>,
    topics: Option<ClassifierModel>,
    entities: Option<NerModel>,
    batch_size: usize,
}

impl Annotators {
    /// Loads each `(role, directory)`; each role at most once.
    pub fn load(models: &[(Role, &Path)], batch_size: usize, device: &Device) -> Result<Self> {
        let mut a = Annotators {
            sentiment: None,
            topics: None,
            entities: None,
            batch_size,
        };
        for (i, &(role, dir)) in models.iter().enumerate() {
            if models[..i].iter().any(|(r, _)| *r == role) {
                return Err(Error::config("--model", format!("{role:?} is given twice")));
            }
            match role {
                Role::Sentiment => {
                    let m = ClassifierModel::load(dir, None, device)?;
                    let find =
                        |name: &str| m.labels.iter().position(|l| l.eq_ignore_ascii_case(name));
                    let Some(negative) = find("negative").filter(|_| !m.multi_label) else {
                        return Err(Error::config(
                            "--model sentiment=",
                            format!(
                                "{} is not a sentiment model: a single-label classifier with a \
                                 \"negative\" label (its labels: {})",
                                dir.display(),
                                m.labels.join(", ")
                            ),
                        ));
                    };
                    let positive = find("positive");
                    a.sentiment = Some((m, negative, positive));
                }
                Role::Topics => a.topics = Some(ClassifierModel::load(dir, None, device)?),
                Role::Entities => a.entities = Some(NerModel::load(dir, None, device)?),
            }
        }
        if models.is_empty() {
            return Err(Error::config("--model", "give at least one model"));
        }
        Ok(a)
    }

    /// The annotation of each item.
    pub fn annotate(&self, items: &[Item]) -> Result<Vec<Annotation>> {
        let texts: Vec<String> = items.iter().map(Item::content).collect();
        let examples: Vec<Example> = texts.iter().map(|t| Example::unlabelled(t)).collect();
        let mut out = vec![Annotation::default(); items.len()];
        if let Some((m, negative, positive)) = &self.sentiment {
            let probs = m.probabilities(&m.encode(&examples)?, self.batch_size);
            for (a, p) in out.iter_mut().zip(&probs) {
                let best = m.decide(std::slice::from_ref(p), None)[0][0];
                a.sentiment = Some(m.labels[best].clone());
                a.negative = Some(p[*negative]);
                a.score = Some(positive.map_or(0.0, |i| p[i]) - p[*negative]);
            }
        }
        if let Some(m) = &self.topics {
            let probs = m.probabilities(&m.encode(&examples)?, self.batch_size);
            for (a, chosen) in out.iter_mut().zip(m.decide(&probs, None)) {
                a.topics = chosen.iter().map(|&c| m.labels[c].clone()).collect();
            }
        }
        if let Some(m) = &self.entities {
            let found = m.entities(&texts, Aggregation::Words, self.batch_size)?;
            for (a, entities) in out.iter_mut().zip(found) {
                for e in entities {
                    let kind = e.entity_group.as_deref().unwrap_or_default();
                    let name = e.word.trim().to_string();
                    if ENTITY_TYPES.contains(&kind)
                        && !name.is_empty()
                        && !a.entities.contains(&name)
                    {
                        a.entities.push(name);
                    }
                }
            }
        }
        Ok(out)
    }
}
