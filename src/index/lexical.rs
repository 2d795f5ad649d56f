//! BM25 over the documents' words, by tantivy (its defaults: k1 = 1.2, b = 0.75, the default
//! tokenizer: split on non-alphanumerics, lowercase, drop tokens over 40 bytes). A document is
//! its title and text as one field; its key is a fast field, so a hit maps to a slot without
//! reading stored text. A query is the OR of its tokens (as tantivy's query parser builds it
//! for plain words), built directly so no query syntax can fail on user text.
//!
//! tantivy segments are immutable: the next generation starts from hard links to the current
//! one's files (copies where links fail) and commits its additions and deletions there.

use crate::{Error, Result};
use std::path::Path;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, FAST, INDEXED, TEXT};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, Term};

const BM25: &str = "bm25";
/// Memory of tantivy's indexing buffer (its minimum per thread is 15 MB).
const WRITER_MEMORY: usize = 64 << 20;

fn tantivy_error(path: &Path, e: tantivy::TantivyError) -> Error {
    Error::file(path, format!("BM25 index: {e}"))
}

fn schema() -> (Schema, Field, Field) {
    let mut builder = Schema::builder();
    let key = builder.add_u64_field("key", INDEXED | FAST);
    let body = builder.add_text_field("body", TEXT);
    (builder.build(), key, body)
}

/// Changes to a generation's BM25 index.
pub struct LexicalWriter {
    path: std::path::PathBuf,
    writer: IndexWriter,
    key: Field,
    body: Field,
}

impl LexicalWriter {
    /// A new BM25 index in `generation`, holding what `previous` held (if any).
    pub fn begin(generation: &Path, previous: Option<&Path>) -> Result<LexicalWriter> {
        let path = generation.join(BM25);
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, "create", e))?;
        let (schema, key, body) = schema();
        let index = match previous {
            Some(previous) => {
                let from = previous.join(BM25);
                for entry in std::fs::read_dir(&from).map_err(|e| Error::io(&from, "list", e))? {
                    let entry = entry.map_err(|e| Error::io(&from, "list", e))?;
                    let target = path.join(entry.file_name());
                    if entry.path().is_file() && std::fs::hard_link(entry.path(), &target).is_err()
                    {
                        std::fs::copy(entry.path(), &target)
                            .map_err(|e| Error::io(&target, "copy", e))?;
                    }
                }
                Index::open_in_dir(&path).map_err(|e| tantivy_error(&path, e))?
            }
            None => Index::create_in_dir(&path, schema).map_err(|e| tantivy_error(&path, e))?,
        };
        let writer = index
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(|e| tantivy_error(&path, e))?;
        Ok(LexicalWriter {
            path,
            writer,
            key,
            body,
        })
    }

    pub fn add(&mut self, key: u64, passage: &str) -> Result<()> {
        self.writer
            .add_document(doc!(self.key => key, self.body => passage))
            .map(drop)
            .map_err(|e| tantivy_error(&self.path, e))
    }

    pub fn delete(&mut self, key: u64) {
        self.writer.delete_term(Term::from_field_u64(self.key, key));
    }

    pub fn commit(mut self) -> Result<()> {
        self.writer
            .commit()
            .map_err(|e| tantivy_error(&self.path, e))?;
        self.writer
            .wait_merging_threads()
            .map_err(|e| tantivy_error(&self.path, e))
    }
}

/// A generation's BM25 index, open for searching.
pub struct Lexical {
    index: Index,
    reader: IndexReader,
    body: Field,
    path: std::path::PathBuf,
}

impl Lexical {
    pub fn open(generation: &Path) -> Result<Lexical> {
        let path = generation.join(BM25);
        let index = Index::open_in_dir(&path).map_err(|e| tantivy_error(&path, e))?;
        let body = index
            .schema()
            .get_field("body")
            .map_err(|e| tantivy_error(&path, e))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| tantivy_error(&path, e))?;
        Ok(Lexical {
            index,
            reader,
            body,
            path,
        })
    }

    /// The `k` best keys for `text` by BM25, best first.
    pub fn search(&self, text: &str, k: usize) -> Result<Vec<(u64, f64)>> {
        let mut analyzer = self
            .index
            .tokenizer_for_field(self.body)
            .map_err(|e| tantivy_error(&self.path, e))?;
        let mut terms = Vec::new();
        let mut stream = analyzer.token_stream(text);
        while stream.advance() {
            let term = Term::from_field_text(self.body, &stream.token().text);
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let query = BooleanQuery::new(
            terms
                .into_iter()
                .map(|t| {
                    let q: Box<dyn Query> =
                        Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs));
                    (Occur::Should, q)
                })
                .collect(),
        );
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&query, &TopDocs::with_limit(k).order_by_score())
            .map_err(|e| tantivy_error(&self.path, e))?;
        top.into_iter()
            .map(|(score, address)| {
                let keys = searcher
                    .segment_reader(address.segment_ord)
                    .fast_fields()
                    .u64("key")
                    .map_err(|e| tantivy_error(&self.path, e))?;
                let key = keys.first(address.doc_id).ok_or_else(|| {
                    Error::file(&self.path, "corrupt BM25 index: a document has no key")
                })?;
                Ok((key, f64::from(score)))
            })
            .collect()
    }
}
