//! CoNLL files: whitespace-separated columns with the word first and the tag in the last (or a
//! chosen) column, blank lines between sentences, `-DOCSTART-` lines skipped. Tags in IOB1,
//! IOB2 or IOBES are detected (or chosen) and converted to IOB2 for training and scoring.
//! CRLF line endings and a UTF-8 byte-order mark are accepted; anything malformed is an error
//! naming the file, the line and its content.

use crate::data::tags::{detect, is_valid, to_iob2, Scheme};
use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    pub words: Vec<String>,
    /// Tags as read (before any conversion).
    pub tags: Vec<String>,
    /// 1-based line number of the first word.
    pub line: usize,
}

/// The lines of a CoNLL file grouped by sentence: each non-blank, non-`-DOCSTART-` line with
/// its 1-based number, without its line ending.
pub(crate) fn sentence_lines(path: &Path) -> Result<Vec<Vec<(usize, String)>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes)).map_err(
        |e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            Error::line(path, line, "not valid UTF-8")
        },
    )?;
    let mut sentences = vec![Vec::new()];
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let first = line.split_whitespace().next();
        if first.is_none() || first == Some("-DOCSTART-") {
            if !sentences.last().is_some_and(Vec::is_empty) {
                sentences.push(Vec::new());
            }
        } else {
            sentences
                .last_mut()
                .expect("never empty")
                .push((i + 1, line.to_string()));
        }
    }
    sentences.retain(|s| !s.is_empty());
    if sentences.is_empty() {
        return Err(Error::file(path, "no sentences"));
    }
    Ok(sentences)
}

/// Reads a CoNLL file. `tag_column` is 0-based; by default the last column.
pub fn read(path: &Path, tag_column: Option<usize>) -> Result<Vec<Sentence>> {
    let mut columns: Option<usize> = None;
    let mut out = Vec::new();
    for lines in sentence_lines(path)? {
        let mut sentence = Sentence {
            words: Vec::new(),
            tags: Vec::new(),
            line: lines[0].0,
        };
        for (n, line) in &lines {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let expected = *columns.get_or_insert(fields.len());
            if fields.len() != expected {
                return Err(Error::line(
                    path,
                    *n,
                    format!(
                        "expected {expected} columns like the lines before, found {}: {line:?}",
                        fields.len()
                    ),
                ));
            }
            if expected < 2 {
                return Err(Error::line(
                    path,
                    *n,
                    format!("a line needs a word and a tag, found one column: {line:?}"),
                ));
            }
            let col = tag_column.unwrap_or(expected - 1);
            if col == 0 || col >= expected {
                return Err(Error::line(
                    path,
                    *n,
                    format!(
                        "tag column {col} does not exist (columns 1..{} hold tags; 0 is the word)",
                        expected - 1
                    ),
                ));
            }
            let tag = fields[col];
            if !is_valid(tag) {
                return Err(Error::line(
                    path,
                    *n,
                    format!(
                        "invalid tag {tag:?} (expected O, or B-/I-/E-/S- and a type): {line:?}"
                    ),
                ));
            }
            sentence.words.push(fields[0].to_string());
            sentence.tags.push(tag.to_string());
        }
        out.push(sentence);
    }
    Ok(out)
}

/// The words of a CoNLL file (its first column; any tags are ignored and set to `O`), with each
/// sentence's lines as read, for prediction.
pub(crate) fn read_words(path: &Path) -> Result<(Vec<Sentence>, Vec<Vec<String>>)> {
    let blocks = sentence_lines(path)?;
    let sentences = blocks
        .iter()
        .map(|lines| {
            let words: Vec<String> = lines
                .iter()
                .map(|(_, l)| l.split_whitespace().next().unwrap_or_default().to_string())
                .collect();
            Sentence {
                tags: vec!["O".into(); words.len()],
                words,
                line: lines[0].0,
            }
        })
        .collect();
    Ok((
        sentences,
        blocks
            .into_iter()
            .map(|b| b.into_iter().map(|(_, l)| l).collect())
            .collect(),
    ))
}

/// Reads a file and converts its tags to IOB2 (detecting the scheme unless given).
pub fn read_iob2(
    path: &Path,
    tag_column: Option<usize>,
    scheme: Option<Scheme>,
) -> Result<(Vec<Sentence>, Scheme)> {
    let mut sentences = read(path, tag_column)?;
    let scheme = scheme.unwrap_or_else(|| detect(sentences.iter().map(|s| s.tags.as_slice())));
    for s in &mut sentences {
        s.tags = to_iob2(&s.tags, scheme);
    }
    Ok((sentences, scheme))
}

/// Writes `word gold predicted` lines, a blank line after each sentence (conlleval's input).
pub(crate) fn write_predictions(
    path: &Path,
    sentences: &[Sentence],
    predicted: &[Vec<String>],
) -> Result<()> {
    let mut out = Vec::new();
    for (s, p) in sentences.iter().zip(predicted) {
        for ((w, g), t) in s.words.iter().zip(&s.tags).zip(p) {
            writeln!(out, "{w} {g} {t}").expect("writing to memory");
        }
        out.push(b'\n');
    }
    crate::io::write_atomic(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.conll");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_sentences_and_converts_tags() {
        let (_dir, path) = file("EU NNP I-ORG\nrejects VBZ O\n\nPeter NNP I-PER\n");
        let (s, scheme) = read_iob2(&path, None, None).unwrap();
        assert_eq!(scheme, Scheme::Iob1);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].words, ["EU", "rejects"]);
        assert_eq!(s[0].tags, ["B-ORG", "O"]);
        assert_eq!(s[1].line, 4);
        let s = read(&path, Some(1)).unwrap_err();
        assert!(matches!(s, Error::Parse { line: 1, .. }), "{s:?}");
    }

    #[test]
    fn errors_name_the_line() {
        let (_dir, path) = file("a O\nb O\nc X O\n");
        let e = read(&path, None).unwrap_err();
        assert!(matches!(e, Error::Parse { line: 3, .. }), "{e:?}");
        assert!(e.to_string().contains("expected 2 columns"), "{e}");
        let (_dir, path) = file("a B-\n");
        let e = read(&path, None).unwrap_err().to_string();
        assert!(e.contains(":1: invalid tag"), "{e}");
        let (_dir, path) = file("\n\n");
        let e = read(&path, None).unwrap_err().to_string();
        assert!(e.ends_with("no sentences"), "{e}");
    }
}
