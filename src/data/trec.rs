//! TREC run files, what trec_eval and pytrec_eval read: one line per retrieved document,
//! `qid Q0 docid rank score tag`, whitespace-separated.
//!
//! A [`Run`] keeps every query's documents in trec_eval's order (score descending, ties by
//! document id descending), so the rank column positio writes is the rank trec_eval scores, and
//! scores are written in Rust's shortest round-trip form so a run read back is the same run.

use crate::data::text::{read_text, TextEncoding};
use crate::{io, Error, Result};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;

/// Retrieved documents per query id, each `(document id, score)`, in trec_eval's order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    pub queries: BTreeMap<String, Vec<(String, f64)>>,
}

/// trec_eval's ranking: higher score first; on a tie, the larger document id first.
pub fn trec_order(a: &(String, f64), b: &(String, f64)) -> Ordering {
    b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0))
}

impl Run {
    /// Sets a query's results (any order; they are sorted as trec_eval ranks them).
    pub fn insert(&mut self, query: &str, mut docs: Vec<(String, f64)>) {
        docs.sort_by(trec_order);
        self.queries.insert(query.to_string(), docs);
    }

    /// Writes `qid Q0 docid rank score tag` lines (ranks from 1), atomically.
    pub fn write(&self, path: &Path, tag: &str) -> Result<()> {
        let mut out = String::new();
        for (q, docs) in &self.queries {
            for (rank, (d, score)) in docs.iter().enumerate() {
                out.push_str(&format!("{q} Q0 {d} {} {score:?} {tag}\n", rank + 1));
            }
        }
        io::write_atomic(path, out.as_bytes())
    }

    /// Reads a six-column run file; the rank column is read but not used, as trec_eval does.
    pub fn read(path: &Path) -> Result<Run> {
        let text = read_text(path, TextEncoding::Utf8)?;
        let mut queries: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split_whitespace().collect();
            let [q, _, d, rank, score, _] = cols[..] else {
                return Err(Error::line(
                    path,
                    i + 1,
                    format!(
                        "expected 6 columns (qid Q0 docid rank score tag), got {}",
                        cols.len()
                    ),
                ));
            };
            rank.parse::<i64>().map_err(|_| {
                Error::line(path, i + 1, format!("rank {rank:?} is not an integer"))
            })?;
            let score = score
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite())
                .ok_or_else(|| {
                    Error::line(path, i + 1, format!("score {score:?} is not a number"))
                })?;
            let docs = queries.entry(q.to_string()).or_default();
            if docs.iter().any(|(seen, _)| seen == d) {
                return Err(Error::line(
                    path,
                    i + 1,
                    format!("document {d:?} is retrieved twice for query {q:?}"),
                ));
            }
            docs.push((d.to_string(), score));
        }
        let mut run = Run::default();
        for (q, docs) in queries {
            run.insert(&q, docs);
        }
        Ok(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_as_trec_eval_and_round_trips() {
        let mut run = Run::default();
        let s = |d: &str, v: f64| (d.to_string(), v);
        run.insert(
            "q1",
            vec![s("a", 0.5), s("b", 0.75), s("c", 0.5), s("d", 0.1 + 0.2)],
        );
        let order: Vec<&str> = run.queries["q1"].iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(order, ["b", "c", "a", "d"]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.trec");
        run.write(&path, "positio").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("q1 Q0 b 1 0.75 positio\nq1 Q0 c 2 0.5 positio\n"),
            "{text}"
        );
        assert_eq!(Run::read(&path).unwrap(), run);
    }

    #[test]
    fn malformed_lines_are_refused_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.trec");
        for (text, expected) in [
            ("q1 Q0 a 1 0.5\n", ":1: expected 6 columns"),
            ("q1 Q0 a 1 0.5 t\nq1 Q0 b x 0.4 t\n", ":2: rank \"x\""),
            ("q1 Q0 a 1 high t\n", ":1: score \"high\""),
            (
                "q1 Q0 a 1 0.5 t\nq1 Q0 a 2 0.4 t\n",
                ":2: document \"a\" is retrieved twice",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = Run::read(&path).unwrap_err().to_string();
            assert!(e.contains(expected), "{e:?} lacks {expected:?}");
        }
    }
}
