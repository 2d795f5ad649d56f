//! Labelled texts for sequence classification, one reader per format: TSV and CSV with a header
//! row, JSON Lines, and the Financial PhraseBank's `sentence@label` lines.
//!
//! Files are decoded as a whole first ([`read_text`], UTF-8 or on request Latin-1). Every other
//! problem (a missing column or field, a missing label) is an error naming the file and line.
//! An empty text is valid (real test files have articles with neither title nor body): the
//! model reads it as `[CLS] [SEP]`, and training skips it. CSV quoting is parsed by the `csv`
//! crate; TSV follows GLUE's convention of no quoting at all (SST-2 phrases contain `"`).

pub use crate::data::text::{read_text, TextEncoding};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The layout of a labelled file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LabelledFormat {
    /// Tab-separated, a header row naming the columns, no quoting.
    Tsv,
    /// Comma-separated with a header row, RFC 4180 quoting.
    Csv,
    /// One JSON object a line; a label is a string (or number), or a list of strings.
    Jsonl,
    /// `sentence@label` a line (Financial PhraseBank).
    Phrasebank,
}

impl LabelledFormat {
    /// The format a file name implies: `.tsv`, `.csv`, `.jsonl` / `.json` / `.ndjson`, and
    /// `.txt` for the PhraseBank layout.
    pub fn of_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("tsv") => Ok(LabelledFormat::Tsv),
            Some("csv") => Ok(LabelledFormat::Csv),
            Some("jsonl" | "json" | "ndjson") => Ok(LabelledFormat::Jsonl),
            Some("txt") => Ok(LabelledFormat::Phrasebank),
            _ => Err(Error::file(
                path,
                "cannot tell the format from the file name: pass --format tsv|csv|jsonl|phrasebank",
            )),
        }
    }
}

/// Which columns (TSV / CSV) or fields (JSON Lines) hold what.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Columns {
    /// The text: one column, or for JSON Lines one or more fields joined by a newline.
    /// Empty: `sentence`, else `text`, else the pair `sentence1` + `sentence2`.
    pub text: Vec<String>,
    /// The second text of a sentence pair.
    pub pair: Option<String>,
    /// The label (default `label`).
    pub label: Option<String>,
}

/// How to read a labelled file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReadOptions {
    /// Default: from the file name ([`LabelledFormat::of_path`]).
    pub format: Option<LabelledFormat>,
    pub encoding: TextEncoding,
    pub columns: Columns,
}

/// One labelled text (or text pair).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub text: String,
    pub pair: Option<String>,
    /// One label, or any number (also none) in a multi-label file.
    pub labels: Vec<String>,
    /// 1-based line of the file where the example starts.
    pub line: usize,
}

impl Example {
    /// Whether the text (and the pair text, if any) holds nothing but white space.
    pub fn is_empty(&self) -> bool {
        self.text.trim().is_empty() && self.pair.as_deref().is_none_or(|p| p.trim().is_empty())
    }

    /// A text to predict on: no pair, no labels, no line.
    pub fn unlabelled(text: &str) -> Example {
        Example {
            text: text.to_string(),
            pair: None,
            labels: Vec::new(),
            line: 0,
        }
    }
}

/// Reads the labelled examples of `path`; a file without any is an error.
pub fn read(path: &Path, options: &ReadOptions) -> Result<Vec<Example>> {
    let format = match options.format {
        Some(f) => f,
        None => LabelledFormat::of_path(path)?,
    };
    let text = read_text(path, options.encoding)?;
    let examples = match format {
        LabelledFormat::Tsv => read_table(path, &text, b'\t', &options.columns)?,
        LabelledFormat::Csv => read_table(path, &text, b',', &options.columns)?,
        LabelledFormat::Jsonl => read_jsonl(path, &text, &options.columns)?,
        LabelledFormat::Phrasebank => read_phrasebank(path, &text)?,
    };
    if examples.is_empty() {
        return Err(Error::file(path, "no labelled examples"));
    }
    Ok(examples)
}

/// Where the text, pair and label are in a header or object: `(text names, pair, label)`.
fn resolve(columns: &Columns, has: impl Fn(&str) -> bool) -> (Vec<String>, Option<String>, String) {
    let label = columns.label.clone().unwrap_or_else(|| "label".into());
    if !columns.text.is_empty() {
        return (columns.text.clone(), columns.pair.clone(), label);
    }
    for name in ["sentence", "text"] {
        if has(name) {
            return (vec![name.into()], columns.pair.clone(), label);
        }
    }
    if has("sentence1") && has("sentence2") && columns.pair.is_none() {
        return (vec!["sentence1".into()], Some("sentence2".into()), label);
    }
    (vec!["sentence".into()], columns.pair.clone(), label)
}

/// TSV (no quoting) or CSV (quoted fields) with a header row.
fn read_table(path: &Path, text: &str, delimiter: u8, columns: &Columns) -> Result<Vec<Example>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quoting(delimiter != b'\t')
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let bad = |e: csv::Error| {
        let line = e.position().map_or(1, |p| p.line() as usize);
        Error::line(path, line, format!("malformed row: {e}"))
    };
    let header: Vec<String> = reader
        .headers()
        .map_err(bad)?
        .iter()
        .map(String::from)
        .collect();
    let (text_names, pair_name, label_name) = resolve(columns, |n| header.iter().any(|h| h == n));
    if text_names.len() != 1 {
        return Err(Error::config(
            "--text-column",
            format!(
                "a TSV / CSV file has one text column, got {} ({})",
                text_names.len(),
                path.display()
            ),
        ));
    }
    let index = |name: &str, option: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            Error::line(
                path,
                1,
                format!("no column {name:?} in the header {header:?} (choose one with {option})"),
            )
        })
    };
    let text_at = index(&text_names[0], "--text-column")?;
    let pair_at = pair_name
        .as_deref()
        .map(|p| index(p, "--text-pair-column"))
        .transpose()?;
    let label_at = index(&label_name, "--label-column")?;
    let mut examples = Vec::new();
    for record in reader.records() {
        let record = record.map_err(bad)?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        if record.len() == 1 && record[0].trim().is_empty() {
            continue;
        }
        let field = |at: usize, what: &str| {
            record.get(at).ok_or_else(|| {
                Error::line(
                    path,
                    line,
                    format!(
                        "{} fields, the {what} is column {} of the header",
                        record.len(),
                        at + 1
                    ),
                )
            })
        };
        let label = field(label_at, "label")?.trim();
        if label.is_empty() {
            return Err(Error::line(path, line, "empty label"));
        }
        examples.push(Example {
            text: field(text_at, "text")?.to_string(),
            pair: pair_at
                .map(|at| field(at, "pair text").map(str::to_string))
                .transpose()?,
            labels: vec![label.to_string()],
            line,
        });
    }
    Ok(examples)
}

/// One JSON object a line; blank lines are skipped.
fn read_jsonl(path: &Path, text: &str, columns: &Columns) -> Result<Vec<Example>> {
    let mut examples = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| Error::line(path, line, format!("not valid JSON: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| Error::line(path, line, "not a JSON object"))?;
        let (text_names, pair_name, label_name) = resolve(columns, |n| object.contains_key(n));
        let string = |name: &str, option: &str| match object.get(name) {
            Some(serde_json::Value::String(s)) => Ok(s.as_str()),
            Some(other) => Err(Error::line(
                path,
                line,
                format!("field {name:?} is {other}, not a string"),
            )),
            None => Err(Error::line(
                path,
                line,
                format!("no field {name:?} (choose the field with {option})"),
            )),
        };
        let parts = text_names
            .iter()
            .map(|n| string(n, "--field"))
            .collect::<Result<Vec<_>>>()?;
        let labels = match object.get(&label_name) {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => vec![s.trim().into()],
            Some(serde_json::Value::Number(n)) => vec![n.to_string()],
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    serde_json::Value::String(s) if !s.trim().is_empty() => Ok(s.trim().into()),
                    other => Err(Error::line(
                        path,
                        line,
                        format!("label {other} in {label_name:?} is not a non-empty string"),
                    )),
                })
                .collect::<Result<Vec<String>>>()?,
            Some(other) => {
                return Err(Error::line(
                    path,
                    line,
                    format!(
                    "label field {label_name:?} is {other}: expected a string or a list of strings"
                ),
                ))
            }
            None => {
                return Err(Error::line(
                    path,
                    line,
                    format!("no label field {label_name:?} (choose it with --label-column)"),
                ))
            }
        };
        examples.push(Example {
            text: parts.join("\n"),
            pair: pair_name
                .as_deref()
                .map(|p| string(p, "--text-pair-column").map(str::to_string))
                .transpose()?,
            labels,
            line,
        });
    }
    Ok(examples)
}

/// `sentence@label` lines; the label follows the last `@`.
fn read_phrasebank(path: &Path, text: &str) -> Result<Vec<Example>> {
    let mut examples = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let (sentence, label) = raw.rsplit_once('@').ok_or_else(|| {
            Error::line(path, line, "expected `sentence@label` (no @ on the line)")
        })?;
        let label = label.trim();
        if label.is_empty() {
            return Err(Error::line(path, line, "empty label after @"));
        }
        examples.push(Example {
            text: sentence.to_string(),
            pair: None,
            labels: vec![label.into()],
            line,
        });
    }
    Ok(examples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_the_file_name() {
        let of = |p: &str| LabelledFormat::of_path(Path::new(p));
        assert_eq!(of("a.TSV").unwrap(), LabelledFormat::Tsv);
        assert_eq!(of("a.ndjson").unwrap(), LabelledFormat::Jsonl);
        assert_eq!(of("a.txt").unwrap(), LabelledFormat::Phrasebank);
        let e = of("a.parquet").unwrap_err();
        assert!(matches!(e, Error::File { .. }) && e.to_string().contains("--format"));
    }

    #[test]
    fn errors_name_the_line() {
        let p = Path::new("p.txt");
        let e = read_phrasebank(p, "good@positive\n\nno label here\n").unwrap_err();
        assert!(matches!(e, Error::Parse { line: 3, .. }), "{e:?}");
        let e = read_table(
            Path::new("p.tsv"),
            "text\tlabel\nfine\tx\nok\t\n",
            b'\t',
            &Columns::default(),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "p.tsv:3: empty label");
        // An empty text is valid: an article with neither title nor body.
        let read = read_table(
            Path::new("p.tsv"),
            "text\tlabel\nfine\tx\n\ty\n",
            b'\t',
            &Columns::default(),
        )
        .unwrap();
        assert_eq!((read[1].text.as_str(), read[1].line), ("", 3));
        let two = Columns {
            text: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        let e = read_table(Path::new("p.tsv"), "a\tb\tlabel\n", b'\t', &two).unwrap_err();
        assert!(
            matches!(&e, Error::Config { key, .. } if key == "--text-column"),
            "{e:?}"
        );
    }

    #[test]
    fn jsonl_labels() {
        let p = Path::new("p.jsonl");
        let ex = read_jsonl(
            p,
            "{\"text\": \"t\", \"label\": \"x\"}\n",
            &Columns::default(),
        )
        .unwrap();
        assert_eq!(ex[0].labels, ["x"]);
        assert_eq!(ex[0].line, 1);
        let e = read_jsonl(
            p,
            "{\"text\": \"t\", \"label\": \"x\"}\n[]\n",
            &Columns::default(),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "p.jsonl:2: not a JSON object");
    }
}
