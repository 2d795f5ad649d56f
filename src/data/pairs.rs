//! Training pairs for embedding models: an anchor (a question), its positive (the answer) and
//! optionally hard negatives, as sentence-transformers' `(anchor, positive, negative)` datasets.
//!
//! JSON Lines: `{"anchor": str, "positive": str, "negative": str | [str]}` (`negative`
//! optional). TSV: the header `anchor<TAB>positive[<TAB>negative...]`, then one pair a line.
//! Every row must carry the same number of negatives (the loss scores a fixed-width block), and
//! every problem is reported with its file and line.

use crate::data::text::{read_text, TextEncoding};
use crate::{Error, Result};
use std::path::Path;

/// One training example.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub anchor: String,
    pub positive: String,
    pub negatives: Vec<String>,
}

/// Writes pairs as JSON Lines (`negative` a list, left out when empty), atomically.
pub fn write_jsonl(path: &Path, pairs: &[Pair]) -> Result<()> {
    let mut out = String::new();
    for p in pairs {
        let mut row = serde_json::json!({"anchor": p.anchor, "positive": p.positive});
        if !p.negatives.is_empty() {
            row["negative"] = serde_json::json!(p.negatives);
        }
        out.push_str(&row.to_string());
        out.push('\n');
    }
    crate::io::write_atomic(path, out.as_bytes())
}

/// Reads a `.jsonl` / `.json` or `.tsv` file of pairs (by extension).
pub fn read(path: &Path) -> Result<Vec<Pair>> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let text = read_text(path, TextEncoding::Utf8)?;
    let rows = match ext {
        "jsonl" | "json" => json_lines(path, &text)?,
        "tsv" => tsv(path, &text)?,
        _ => {
            return Err(Error::file(
                path,
                "name a .jsonl (anchor / positive / negative objects) or .tsv (anchor<TAB>positive[<TAB>negative]) file",
            ))
        }
    };
    let Some((_, first)) = rows.first() else {
        return Err(Error::file(path, "no pairs"));
    };
    let width = first.negatives.len();
    if let Some((line, p)) = rows.iter().find(|(_, p)| p.negatives.len() != width) {
        return Err(Error::line(
            path,
            *line,
            format!(
                "{} negatives where the first pair has {width}: every pair needs the same number",
                p.negatives.len()
            ),
        ));
    }
    Ok(rows.into_iter().map(|(_, p)| p).collect())
}

fn non_empty(path: &Path, line: usize, what: &str, s: String) -> Result<String> {
    if s.trim().is_empty() {
        return Err(Error::line(path, line, format!("empty {what}")));
    }
    Ok(s)
}

fn json_lines(path: &Path, text: &str) -> Result<Vec<(usize, Pair)>> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Error::line(path, n, format!("malformed JSON: {e}")))?;
        let Some(obj) = v.as_object() else {
            return Err(Error::line(path, n, "expected a JSON object"));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "anchor" | "positive" | "negative"))
        {
            return Err(Error::line(
                path,
                n,
                format!("unknown key {k:?} (expected anchor, positive, negative)"),
            ));
        }
        let text_of = |key: &str| match obj.get(key) {
            Some(serde_json::Value::String(s)) => non_empty(path, n, key, s.clone()),
            Some(_) => Err(Error::line(path, n, format!("\"{key}\" must be a string"))),
            None => Err(Error::line(path, n, format!("no \"{key}\""))),
        };
        let negatives = match obj.get("negative") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::String(s)) => vec![non_empty(path, n, "negative", s.clone())?],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|x| match x {
                    serde_json::Value::String(s) => non_empty(path, n, "negative", s.clone()),
                    _ => Err(Error::line(path, n, "\"negative\" must hold strings")),
                })
                .collect::<Result<_>>()?,
            Some(_) => {
                return Err(Error::line(
                    path,
                    n,
                    "\"negative\" must be a string or a list of strings",
                ))
            }
        };
        rows.push((
            n,
            Pair {
                anchor: text_of("anchor")?,
                positive: text_of("positive")?,
                negatives,
            },
        ));
    }
    Ok(rows)
}

fn tsv(path: &Path, text: &str) -> Result<Vec<(usize, Pair)>> {
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, h)| h.split('\t').collect())
        .unwrap_or_default();
    let negatives_named = header.iter().skip(2).all(|h| h.trim() == "negative");
    if header.len() < 2
        || header[0].trim() != "anchor"
        || header[1].trim() != "positive"
        || !negatives_named
    {
        return Err(Error::line(
            path,
            1,
            "expected the header anchor<TAB>positive, then optionally negative columns",
        ));
    }
    let mut rows = Vec::new();
    for (i, line) in lines {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != header.len() {
            return Err(Error::line(
                path,
                n,
                format!(
                    "{} columns where the header has {}",
                    cols.len(),
                    header.len()
                ),
            ));
        }
        let field = |k: usize, what: &str| non_empty(path, n, what, cols[k].to_string());
        rows.push((
            n,
            Pair {
                anchor: field(0, "anchor")?,
                positive: field(1, "positive")?,
                negatives: (2..cols.len())
                    .map(|k| field(k, "negative"))
                    .collect::<Result<_>>()?,
            },
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(name: &str, text: &str) -> Result<Vec<Pair>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        read(&path)
    }

    #[test]
    fn reads_both_formats() {
        let j = read_str(
            "p.jsonl",
            "{\"anchor\": \"q\", \"positive\": \"a\", \"negative\": \"n\"}\n\n{\"anchor\": \"q2\", \"positive\": \"a2\", \"negative\": [\"m\"]}\n",
        )
        .unwrap();
        assert_eq!(j.len(), 2);
        assert_eq!(j[1].negatives, ["m"]);
        let t = read_str("p.tsv", "anchor\tpositive\nq\ta\nq2\ta2\n").unwrap();
        assert_eq!(
            t[1],
            Pair {
                anchor: "q2".into(),
                positive: "a2".into(),
                negatives: vec![]
            }
        );
    }

    #[test]
    fn errors_name_the_line() {
        for (name, text, expected) in [
            ("p.jsonl", "{\"anchor\": \"q\"}\n", "p.jsonl:1: no \"positive\""),
            ("p.jsonl", "{\"anchor\": \"q\", \"positive\": \"a\"}\n{\"anchor\": \"q\", \"positive\": \"a\", \"negative\": \"n\"}\n", "p.jsonl:2: 1 negatives where the first pair has 0"),
            ("p.jsonl", "{\"anchor\": \"q\", \"positve\": \"a\"}\n", "p.jsonl:1: unknown key \"positve\""),
            ("p.jsonl", "{\"anchor\": \" \", \"positive\": \"a\"}\n", "p.jsonl:1: empty anchor"),
            ("p.tsv", "question\tanswer\n", "p.tsv:1: expected the header"),
            ("p.tsv", "anchor\tpositive\nq\ta\tb\n", "p.tsv:2: 3 columns where the header has 2"),
            ("p.txt", "x", "name a .jsonl"),
            ("p.tsv", "anchor\tpositive\n", "no pairs"),
        ] {
            let e = read_str(name, text).unwrap_err().to_string();
            assert!(e.contains(expected), "{e:?} lacks {expected:?}");
        }
    }
}
