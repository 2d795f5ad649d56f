//! IOB tags (`B-PER`, `I-LOC`, `O`, …): the one parser of tags and their schemes, shared by the
//! CoNLL reader, the seqeval metrics, the CRF's transition constraints and the NER label set.

use serde::{Deserialize, Serialize};

/// Tagging schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// `I-` may start an entity; `B-` only separates two adjacent entities of one type (CoNLL-2003).
    Iob1,
    /// Every entity starts with `B-`.
    #[value(alias = "bio")]
    Iob2,
    /// `B-` begin, `I-` inside, `E-` end, `S-` single-token entity.
    #[value(alias = "bioes")]
    Iobes,
}

/// A tag's prefix (`B`, `I`, `E`, `S`, or `O`) and entity type (`""` for `O`; `"_"` for a
/// prefix without a type, as seqeval reads it).
pub(crate) fn split_tag(tag: &str) -> (char, &str) {
    if tag == "O" || tag.is_empty() {
        return ('O', "");
    }
    let prefix = tag.chars().next().unwrap_or('O');
    (prefix, tag.split_once('-').map_or("_", |(_, ty)| ty))
}

/// The entity type of a tag, `None` for `O`.
pub(crate) fn entity_type(tag: &str) -> Option<&str> {
    match split_tag(tag) {
        ('O', _) => None,
        (_, ty) => Some(ty),
    }
}

/// `O`, or one of `B-` / `I-` / `E-` / `S-` followed by a type.
pub(crate) fn is_valid(tag: &str) -> bool {
    // `get`, not indexing: a tag may start with a multi-byte character.
    tag == "O" || (tag.len() > 2 && matches!(tag.get(..2), Some("B-" | "I-" | "E-" | "S-")))
}

/// The scheme the tags are written in: IOBES if any `E-`/`S-`, IOB1 if an entity starts with
/// `I-`, else IOB2.
pub fn detect<'a>(sentences: impl IntoIterator<Item = &'a [String]>) -> Scheme {
    let mut iob1 = false;
    for tags in sentences {
        let mut prev = ('O', "");
        for t in tags {
            let (p, ty) = split_tag(t);
            if p == 'E' || p == 'S' {
                return Scheme::Iobes;
            }
            if p == 'I' && (prev.0 == 'O' || prev.1 != ty) {
                iob1 = true;
            }
            prev = (p, ty);
        }
    }
    if iob1 {
        Scheme::Iob1
    } else {
        Scheme::Iob2
    }
}

/// One sentence's tags in IOB2.
pub fn to_iob2(tags: &[String], scheme: Scheme) -> Vec<String> {
    let mut out = Vec::with_capacity(tags.len());
    let mut prev = ('O', String::new());
    for t in tags {
        let (p, ty) = split_tag(t);
        let converted = match (scheme, p) {
            (_, 'O') => "O".to_string(),
            (Scheme::Iob1, 'I') if prev.0 == 'O' || prev.1 != ty => format!("B-{ty}"),
            (Scheme::Iobes, 'S') => format!("B-{ty}"),
            (Scheme::Iobes, 'E') => format!("I-{ty}"),
            _ => t.clone(),
        };
        prev = (p, ty.to_string());
        out.push(converted);
    }
    out
}

/// The label set of IOB2 sentences: `O` first, then by type, `B-` before `I-`.
pub(crate) fn label_set<'a>(tags: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut types: Vec<&str> = tags.into_iter().filter_map(|t| entity_type(t)).collect();
    types.sort_unstable();
    types.dedup();
    std::iter::once("O".to_string())
        .chain(
            types
                .iter()
                .flat_map(|t| [format!("B-{t}"), format!("I-{t}")]),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn tags_split_into_prefix_and_type() {
        assert_eq!(split_tag("O"), ('O', ""));
        assert_eq!(split_tag("B-PER"), ('B', "PER"));
        assert_eq!(split_tag("I-B-X"), ('I', "B-X"));
        assert_eq!(split_tag("B"), ('B', "_"));
        assert_eq!(entity_type("S-LOC"), Some("LOC"));
        assert_eq!(entity_type("O"), None);
        assert!(is_valid("O") && is_valid("E-ORG"));
        assert!(!is_valid("B-") && !is_valid("X-PER") && !is_valid("o"));
    }

    #[test]
    fn schemes_are_detected_and_converted() {
        let iob1 = tags("I-PER I-PER O I-LOC B-LOC");
        let iobes = tags("S-PER O B-LOC E-LOC");
        let iob2 = tags("B-PER I-PER O B-LOC");
        assert_eq!(detect([iob1.as_slice()]), Scheme::Iob1);
        assert_eq!(detect([iob2.as_slice(), iobes.as_slice()]), Scheme::Iobes);
        assert_eq!(detect([iob2.as_slice()]), Scheme::Iob2);
        assert_eq!(
            to_iob2(&iob1, Scheme::Iob1),
            tags("B-PER I-PER O B-LOC B-LOC")
        );
        assert_eq!(to_iob2(&iobes, Scheme::Iobes), tags("B-PER O B-LOC I-LOC"));
        assert_eq!(to_iob2(&iob2, Scheme::Iob2), iob2);
    }

    #[test]
    fn label_set_is_ordered() {
        let t = tags("B-PER O I-LOC B-PER");
        assert_eq!(label_set(&t), tags("O B-LOC I-LOC B-PER I-PER"));
    }
}
