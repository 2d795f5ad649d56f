//! Raw text corpora for pretraining: plain-text files (a document per line, or documents
//! separated by blank lines) and JSON Lines (chosen text fields), several files or globs at once,
//! read as a stream so a corpus larger than memory works.
//!
//! Bad input is an error naming the file and line; with `skip_bad` it is skipped and counted.

use crate::{Error, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// How documents are laid out, as named on the command line and in configurations.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum CorpusFormat {
    /// One document per line.
    Lines,
    /// Documents separated by one or more blank lines.
    Paragraphs,
    /// One JSON object per line (text from the chosen fields).
    Jsonl,
}

/// How documents are laid out in the files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One document per line.
    Lines,
    /// Documents separated by one or more blank lines.
    Paragraphs,
    /// One JSON object per line; the document is its `fields` joined by newlines.
    Jsonl { fields: Vec<String> },
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CorpusSpec {
    /// Files or glob patterns.
    pub inputs: Vec<String>,
    pub layout: Layout,
    /// Skip (and count) lines that are not valid UTF-8 or not valid JSON, instead of failing.
    pub skip_bad: bool,
}

/// Counts of what a pass over the corpus read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReadStats {
    pub files: usize,
    pub documents: usize,
    pub skipped_lines: usize,
}

impl CorpusSpec {
    /// The files the inputs name, in order (globs expanded and sorted); each must exist.
    pub(crate) fn files(&self) -> Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for input in &self.inputs {
            let is_pattern = input.contains(['*', '?', '[']);
            if !is_pattern {
                let p = PathBuf::from(input);
                if !p.is_file() {
                    return Err(Error::file(&p, "no such corpus file"));
                }
                files.push(p);
                continue;
            }
            let mut matched: Vec<PathBuf> = glob::glob(input)
                .map_err(|e| Error::config("corpus", format!("bad glob pattern '{input}': {e}")))?
                .filter_map(|p| p.ok())
                .filter(|p| p.is_file())
                .collect();
            if matched.is_empty() {
                return Err(Error::config(
                    "corpus",
                    format!("pattern '{input}' matches no file"),
                ));
            }
            matched.sort();
            files.extend(matched);
        }
        if files.is_empty() {
            return Err(Error::config("corpus", "no corpus files given"));
        }
        Ok(files)
    }

    /// Calls `f` on every document in order; stops at the first error (or error from `f`).
    pub(crate) fn for_each_document(
        &self,
        mut f: impl FnMut(String) -> Result<()>,
    ) -> Result<ReadStats> {
        let mut stats = ReadStats::default();
        for path in self.files()? {
            stats.files += 1;
            read_file(&path, &self.layout, self.skip_bad, &mut stats, &mut f)?;
        }
        Ok(stats)
    }
}

fn read_file(
    path: &Path,
    layout: &Layout,
    skip_bad: bool,
    stats: &mut ReadStats,
    f: &mut impl FnMut(String) -> Result<()>,
) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    let mut paragraph = String::new();
    let mut line_no = 0usize;
    let mut emit = |doc: String, stats: &mut ReadStats| -> Result<()> {
        stats.documents += 1;
        f(doc)
    };
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(path, "read", e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        if line_no == 1 && buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
            buf.drain(..3);
        }
        let line = match std::str::from_utf8(&buf) {
            Ok(l) => l,
            Err(e) if skip_bad => {
                let _ = e;
                stats.skipped_lines += 1;
                continue;
            }
            Err(e) => {
                return Err(Error::line(path, line_no, format!("not valid UTF-8 (byte {}); re-encode the file as UTF-8 or pass --skip-bad-lines", e.valid_up_to())));
            }
        };
        match layout {
            Layout::Lines => {
                if !line.trim().is_empty() {
                    emit(line.to_string(), stats)?;
                }
            }
            Layout::Paragraphs => {
                if line.trim().is_empty() {
                    if !paragraph.is_empty() {
                        emit(std::mem::take(&mut paragraph), stats)?;
                    }
                } else {
                    if !paragraph.is_empty() {
                        paragraph.push('\n');
                    }
                    paragraph.push_str(line);
                }
            }
            Layout::Jsonl { fields } => {
                if line.trim().is_empty() {
                    continue;
                }
                match json_document(line, fields) {
                    Ok(doc) if doc.trim().is_empty() => {}
                    Ok(doc) => emit(doc, stats)?,
                    Err(_) if skip_bad => stats.skipped_lines += 1,
                    Err(m) => {
                        return Err(Error::line(
                            path,
                            line_no,
                            format!("{m}; fix the line or pass --skip-bad-lines"),
                        ))
                    }
                }
            }
        }
    }
    if !paragraph.is_empty() {
        emit(paragraph, stats)?;
    }
    Ok(())
}

/// The text of one JSON Lines record: its string fields joined by newlines.
fn json_document(line: &str, fields: &[String]) -> std::result::Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("malformed JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("a JSON Lines record must be an object")?;
    let mut parts = Vec::with_capacity(fields.len());
    for field in fields {
        match obj.get(field) {
            Some(serde_json::Value::String(s)) => {
                if !s.is_empty() {
                    parts.push(s.as_str());
                }
            }
            Some(serde_json::Value::Null) => {}
            Some(other) => return Err(format!("field '{field}' is not a string but {other}")),
            None => return Err(format!("no field '{field}'")),
        }
    }
    Ok(parts.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(inputs: Vec<String>, layout: Layout, skip_bad: bool) -> CorpusSpec {
        CorpusSpec {
            inputs,
            layout,
            skip_bad,
        }
    }

    fn documents(spec: &CorpusSpec) -> Result<(Vec<String>, ReadStats)> {
        let mut docs = Vec::new();
        let stats = spec.for_each_document(|d| {
            docs.push(d);
            Ok(())
        })?;
        Ok((docs, stats))
    }

    #[test]
    fn inputs_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.txt").display().to_string();
        let e = spec(vec![missing.clone()], Layout::Lines, false)
            .files()
            .unwrap_err();
        assert_eq!(e.to_string(), format!("{missing}: no such corpus file"));
        let pattern = dir.path().join("*.txt").display().to_string();
        let e = spec(vec![pattern], Layout::Lines, false)
            .files()
            .unwrap_err();
        assert!(
            matches!(&e, Error::Config { key, .. } if key == "corpus"),
            "{e:?}"
        );
        assert!(e.to_string().contains("matches no file"), "{e}");
        let e = spec(vec![], Layout::Lines, false).files().unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e:?}");
    }

    #[test]
    fn bad_lines_name_the_line_or_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        std::fs::write(&path, "{\"text\": \"one\"}\n\n[1]\n{\"text\": \"two\"}\n").unwrap();
        let jsonl = Layout::Jsonl {
            fields: vec!["text".into()],
        };
        let input = vec![path.display().to_string()];
        let e = documents(&spec(input.clone(), jsonl.clone(), false)).unwrap_err();
        assert!(matches!(e, Error::Parse { line: 3, .. }), "{e:?}");
        assert!(e.to_string().contains("must be an object"), "{e}");
        let (docs, stats) = documents(&spec(input, jsonl, true)).unwrap();
        assert_eq!(docs, ["one", "two"]);
        assert_eq!(stats.skipped_lines, 1);
    }

    #[test]
    fn paragraphs_are_documents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.txt");
        std::fs::write(&path, "a\nb\n\n\nc\n").unwrap();
        let input = vec![path.display().to_string()];
        let (docs, _) = documents(&spec(input, Layout::Paragraphs, false)).unwrap();
        assert_eq!(docs, ["a\nb", "c"]);
    }
}
