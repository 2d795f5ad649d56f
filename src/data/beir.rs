//! Retrieval datasets in the BEIR layout, the format the field exchanges them in: a directory
//! with `corpus.jsonl` (`{"_id", "title", "text"}` a line), `queries.jsonl` (`{"_id", "text"}`)
//! and `qrels/SPLIT.tsv` (a header, then `query-id<TAB>corpus-id<TAB>score`). Every problem is
//! reported with its file and line; other keys (BEIR's `metadata`) are ignored.

use crate::data::text::{read_text, TextEncoding};
use crate::{Error, Result};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// A document of the corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub title: String,
    pub text: String,
}

impl Document {
    /// What an embedding model reads: the title and the text, as BEIR's sentence-transformers
    /// wrapper joins them (`title + " " + text`, stripped).
    pub fn passage(&self) -> String {
        format!("{} {}", self.title, self.text).trim().to_string()
    }
}

/// A query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub id: String,
    pub text: String,
}

/// Relevance judgements: query id → document id → grade (above 0: relevant, as trec_eval counts).
pub type Qrels = BTreeMap<String, BTreeMap<String, i64>>;

/// A BEIR directory read whole: the queries of the split are those its qrels judge.
#[derive(Debug, Clone)]
pub struct BeirData {
    pub corpus: Vec<Document>,
    pub queries: Vec<Query>,
    pub qrels: Qrels,
}

/// Reads `dir` (corpus, queries and `qrels/{split}.tsv`). Queries the qrels do not mention are
/// left out; a qrels line naming an unknown query or document is an error.
pub fn read(dir: &Path, split: &str) -> Result<BeirData> {
    let corpus = read_corpus(&dir.join("corpus.jsonl"))?;
    let queries = read_queries(&dir.join("queries.jsonl"))?;
    let qrels_path = dir.join("qrels").join(format!("{split}.tsv"));
    let doc_ids: HashSet<&str> = corpus.iter().map(|d| d.id.as_str()).collect();
    let query_ids: HashSet<&str> = queries.iter().map(|q| q.id.as_str()).collect();
    let mut qrels = Qrels::new();
    for (line, (q, d, grade)) in qrels_lines(&qrels_path)? {
        let problem = if !query_ids.contains(q.as_str()) {
            Some(format!("query {q:?} is not in queries.jsonl"))
        } else if !doc_ids.contains(d.as_str()) {
            Some(format!("document {d:?} is not in corpus.jsonl"))
        } else {
            None
        };
        if let Some(what) = problem {
            return Err(Error::line(&qrels_path, line, what));
        }
        qrels.entry(q).or_default().insert(d, grade);
    }
    let queries = queries
        .into_iter()
        .filter(|q| qrels.contains_key(&q.id))
        .collect();
    Ok(BeirData {
        corpus,
        queries,
        qrels,
    })
}

/// Every line of a JSON Lines file as an object, with its 1-based line number (blank lines are
/// skipped).
pub(crate) fn json_lines(
    path: &Path,
) -> Result<Vec<(usize, serde_json::Map<String, serde_json::Value>)>> {
    let text = read_text(path, TextEncoding::Utf8)?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(serde_json::Value::Object(o)) => rows.push((i + 1, o)),
            Ok(_) => return Err(Error::line(path, i + 1, "expected a JSON object")),
            Err(e) => return Err(Error::line(path, i + 1, format!("malformed JSON: {e}"))),
        }
    }
    Ok(rows)
}

/// A string field (`_id` may also be a number, as some BEIR sets write it).
pub(crate) fn field(
    path: &Path,
    line: usize,
    row: &serde_json::Map<String, serde_json::Value>,
    key: &str,
    required: bool,
) -> Result<String> {
    match row.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Number(n)) if key == "_id" => Ok(n.to_string()),
        None | Some(serde_json::Value::Null) if !required => Ok(String::new()),
        None => Err(Error::line(path, line, format!("no \"{key}\""))),
        Some(other) => Err(Error::line(
            path,
            line,
            format!("\"{key}\" must be a string, got {other}"),
        )),
    }
}

/// Refuses a second row with an id already seen.
fn unique(path: &Path, line: usize, id: &str, seen: &mut BTreeMap<String, usize>) -> Result<()> {
    if id.is_empty() {
        return Err(Error::line(path, line, "empty \"_id\""));
    }
    if let Some(first) = seen.insert(id.to_string(), line) {
        return Err(Error::line(
            path,
            line,
            format!("\"_id\" {id:?} already used on line {first}"),
        ));
    }
    Ok(())
}

/// `corpus.jsonl`: `_id` and `text` required, `title` optional.
pub fn read_corpus(path: &Path) -> Result<Vec<Document>> {
    let mut seen = BTreeMap::new();
    let mut docs = Vec::new();
    for (line, row) in json_lines(path)? {
        let id = field(path, line, &row, "_id", true)?;
        unique(path, line, &id, &mut seen)?;
        docs.push(Document {
            title: field(path, line, &row, "title", false)?,
            text: field(path, line, &row, "text", true)?,
            id,
        });
    }
    if docs.is_empty() {
        return Err(Error::file(path, "no documents"));
    }
    Ok(docs)
}

/// `queries.jsonl`: `_id` and `text`.
pub fn read_queries(path: &Path) -> Result<Vec<Query>> {
    let mut seen = BTreeMap::new();
    let mut queries = Vec::new();
    for (line, row) in json_lines(path)? {
        let id = field(path, line, &row, "_id", true)?;
        unique(path, line, &id, &mut seen)?;
        queries.push(Query {
            text: field(path, line, &row, "text", true)?,
            id,
        });
    }
    Ok(queries)
}

/// `qrels/SPLIT.tsv`: a header line, then `query-id<TAB>corpus-id<TAB>score` (integer grades).
pub fn read_qrels(path: &Path) -> Result<Qrels> {
    let mut qrels = Qrels::new();
    for (_, (q, d, grade)) in qrels_lines(path)? {
        qrels.entry(q).or_default().insert(d, grade);
    }
    Ok(qrels)
}

/// (query id, document id, grade).
type Judgement = (String, String, i64);

/// The judgements of a qrels file with their line numbers; a pair judged twice is an error.
fn qrels_lines(path: &Path) -> Result<Vec<(usize, Judgement)>> {
    let text = read_text(path, TextEncoding::Utf8)?;
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header))
            if header.split('\t').count() == 3 && parse_judgement(header).is_err() => {}
        _ => {
            return Err(Error::line(
                path,
                1,
                "expected the header query-id<TAB>corpus-id<TAB>score",
            ))
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let (q, d, grade) = parse_judgement(line).map_err(|why| Error::line(path, i + 1, why))?;
        if !seen.insert((q.clone(), d.clone())) {
            return Err(Error::line(
                path,
                i + 1,
                format!("query {q:?} and document {d:?} are judged twice"),
            ));
        }
        out.push((i + 1, (q, d, grade)));
    }
    if out.is_empty() {
        return Err(Error::file(path, "no judgements"));
    }
    Ok(out)
}

/// `query-id<TAB>corpus-id<TAB>integer score`.
fn parse_judgement(line: &str) -> std::result::Result<Judgement, String> {
    let cols: Vec<&str> = line.split('\t').map(str::trim).collect();
    let [q, d, s] = cols[..] else {
        return Err(format!(
            "expected 3 tab-separated columns (query-id, corpus-id, score), got {}",
            cols.len()
        ));
    };
    if q.is_empty() || d.is_empty() {
        return Err("empty query or corpus id".into());
    }
    let grade = s
        .parse::<i64>()
        .map_err(|_| format!("score {s:?} is not an integer"))?;
    Ok((q.to_string(), d.to_string(), grade))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::test_file as write;

    fn fixture(qrels: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "corpus.jsonl",
            "{\"_id\": \"d1\", \"title\": \"Oil\", \"text\": \"prices rose\", \"metadata\": {}}\n\
             {\"_id\": 2, \"text\": \"wheat\"}\n",
        );
        write(
            dir.path(),
            "queries.jsonl",
            "{\"_id\": \"q1\", \"text\": \"oil\"}\n{\"_id\": \"q2\", \"text\": \"corn\"}\n",
        );
        write(dir.path(), "qrels/test.tsv", qrels);
        dir
    }

    #[test]
    fn reads_the_layout_and_keeps_the_judged_queries() {
        let dir = fixture("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\t2\t0\n");
        let data = read(dir.path(), "test").unwrap();
        assert_eq!(data.corpus.len(), 2);
        assert_eq!(data.corpus[1].id, "2");
        assert_eq!(data.corpus[0].passage(), "Oil prices rose");
        assert_eq!(data.corpus[1].passage(), "wheat");
        assert_eq!(data.queries.len(), 1);
        assert_eq!(data.qrels["q1"]["2"], 0);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let cases = [
            (
                "query-id\tcorpus-id\tscore\nq1\td1\n",
                "test.tsv:2: expected 3",
            ),
            (
                "query-id\tcorpus-id\tscore\nq1\td1\thigh\n",
                "test.tsv:2: score \"high\"",
            ),
            (
                "query-id\tcorpus-id\tscore\nq1\td9\t1\n",
                "test.tsv:2: document \"d9\"",
            ),
            (
                "query-id\tcorpus-id\tscore\nq7\td1\t1\n",
                "test.tsv:2: query \"q7\"",
            ),
            ("q1\td1\t1\n", "test.tsv:1: expected the header"),
            (
                "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td1\t2\n",
                "test.tsv:3: query \"q1\" and document \"d1\" are judged twice",
            ),
        ];
        for (qrels, expected) in cases {
            let dir = fixture(qrels);
            let e = read(dir.path(), "test").unwrap_err().to_string();
            assert!(e.contains(expected), "{e:?} lacks {expected:?}");
        }
        let dir = fixture("query-id\tcorpus-id\tscore\nq1\td1\t1\n");
        write(
            dir.path(),
            "corpus.jsonl",
            "{\"_id\": \"d1\", \"text\": \"a\"}\n{\"_id\": \"d1\", \"text\": \"b\"}\n",
        );
        let e = read(dir.path(), "test").unwrap_err().to_string();
        assert!(
            e.contains("corpus.jsonl:2: \"_id\" \"d1\" already used on line 1"),
            "{e}"
        );
        write(
            dir.path(),
            "corpus.jsonl",
            "{\"_id\": \"d1\", \"text\": 3}\n",
        );
        let e = read(dir.path(), "test").unwrap_err().to_string();
        assert!(
            e.contains("corpus.jsonl:1: \"text\" must be a string"),
            "{e}"
        );
        write(dir.path(), "corpus.jsonl", "{\"_id\": \"d1\"\n");
        let e = read(dir.path(), "test").unwrap_err().to_string();
        assert!(e.contains("corpus.jsonl:1: malformed JSON"), "{e}");
    }
}
