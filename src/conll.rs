//! CoNLL files: whitespace-separated columns with the word first and the tag in the last (or a
//! chosen) column, blank lines between sentences, `-DOCSTART-` lines skipped. Tags in IOB1,
//! IOB2 or IOBES are detected (or chosen) and converted to IOB2 for training and scoring.
//! CRLF line endings and a UTF-8 byte-order mark are accepted; anything malformed is an error
//! naming the file, the line and its content.

use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Tagging schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scheme {
    /// `I-` may start an entity; `B-` only separates two adjacent entities of one type (CoNLL-2003).
    Iob1,
    /// Every entity starts with `B-`.
    Iob2,
    /// `B-` begin, `I-` inside, `E-` end, `S-` single-token entity.
    Iobes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    pub words: Vec<String>,
    /// Tags as read (before any conversion).
    pub tags: Vec<String>,
    /// 1-based line number of the first word.
    pub line: usize,
}

/// A tag split into its prefix (`B`, `I`, `E`, `S`, or `O`) and entity type.
pub fn split_tag(tag: &str) -> (char, &str) {
    if tag == "O" {
        return ('O', "");
    }
    let mut chars = tag.chars();
    let prefix = chars.next().unwrap_or('O');
    (prefix, tag.get(2..).unwrap_or(""))
}

fn valid_tag(tag: &str) -> bool {
    tag == "O" || (tag.len() > 2 && matches!(&tag[..2], "B-" | "I-" | "E-" | "S-"))
}

/// Reads a CoNLL file. `tag_column` is 0-based; by default the last column.
pub fn read(path: &Path, tag_column: Option<usize>) -> Result<Vec<Sentence>> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes)).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        Error::line(path, line, "not valid UTF-8")
    })?;
    let mut sentences = Vec::new();
    let mut current = Sentence { words: Vec::new(), tags: Vec::new(), line: 0 };
    let mut columns: Option<usize> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() || fields[0] == "-DOCSTART-" {
            if !current.words.is_empty() {
                sentences.push(std::mem::replace(&mut current, Sentence { words: Vec::new(), tags: Vec::new(), line: 0 }));
            }
            continue;
        }
        let expected = *columns.get_or_insert(fields.len());
        if fields.len() != expected {
            return Err(Error::line(path, n, format!("expected {expected} columns like the lines before, found {}: {line:?}", fields.len())));
        }
        if expected < 2 {
            return Err(Error::line(path, n, format!("a line needs a word and a tag, found one column: {line:?}")));
        }
        let col = tag_column.unwrap_or(expected - 1);
        if col == 0 || col >= expected {
            return Err(Error::line(path, n, format!("tag column {col} does not exist (columns 1..{} hold tags; 0 is the word)", expected - 1)));
        }
        let tag = fields[col];
        if !valid_tag(tag) {
            return Err(Error::line(path, n, format!("invalid tag {tag:?} (expected O, or B-/I-/E-/S- and a type): {line:?}")));
        }
        if current.words.is_empty() {
            current.line = n;
        }
        current.words.push(fields[0].to_string());
        current.tags.push(tag.to_string());
    }
    if !current.words.is_empty() {
        sentences.push(current);
    }
    if sentences.is_empty() {
        return Err(Error::file(path, "no sentences"));
    }
    Ok(sentences)
}

/// The scheme the tags are written in: IOBES if any `E-`/`S-`, IOB1 if an entity starts with
/// `I-`, else IOB2.
pub fn detect(sentences: &[Sentence]) -> Scheme {
    let mut iob1 = false;
    for s in sentences {
        let mut prev = ('O', "");
        for t in &s.tags {
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

/// Reads a file and converts its tags to IOB2 (detecting the scheme unless given).
pub fn read_iob2(path: &Path, tag_column: Option<usize>, scheme: Option<Scheme>) -> Result<(Vec<Sentence>, Scheme)> {
    let mut sentences = read(path, tag_column)?;
    let scheme = scheme.unwrap_or_else(|| detect(&sentences));
    for s in &mut sentences {
        s.tags = to_iob2(&s.tags, scheme);
    }
    Ok((sentences, scheme))
}

/// Writes `word gold predicted` lines, a blank line after each sentence (conlleval's input).
pub fn write_predictions(path: &Path, sentences: &[Sentence], predicted: &[Vec<String>]) -> Result<()> {
    let mut out = Vec::new();
    for (s, p) in sentences.iter().zip(predicted) {
        for ((w, g), t) in s.words.iter().zip(&s.tags).zip(p) {
            writeln!(out, "{w} {g} {t}").expect("writing to memory");
        }
        out.push(b'\n');
    }
    crate::io::write_atomic(path, &out)
}
