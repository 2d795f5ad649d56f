//! `positio index` and `positio search`: a document index on disk, no server needed. Dense
//! search by an embedding model (exact, or an HNSW graph at scale), BM25 by tantivy, hybrid by
//! reciprocal-rank fusion, and an optional cross-encoder rerank of the first results.
//!
//! - `generations`: the directory layout that makes every write atomic (a crashed `add` leaves
//!   the previous index searchable; searches run during writes).
//! - `documents`: the documents and vectors of one generation.
//! - `dense`, `lexical`, `fusion`: the three ways of ranking.
//! - `searcher`: an index with its embedding model and an optional reranker.
//! - `bench`: the graph alone on raw vectors (`positio index bench`).
//! - `postgres`: the same index in PostgreSQL + pgvector (`--store postgres://…`).
//!
//! Each generation's `manifest.json` records the model (its path and a fingerprint of its
//! files) and the dimension, so that a query is never embedded by another model than the
//! documents were.

pub mod bench;
pub mod dense;
mod documents;
pub mod fusion;
mod generations;
mod lexical;
pub mod postgres;
pub mod searcher;

use crate::data::beir::Document;
use crate::tasks::embedding::Embedder;
use crate::{io, Error, Result};
use burn::tensor::Device;
use dense::{Dense, DensePolicy, HnswParams};
use documents::{Table, TableWriter};
use generations::Writer;
use lexical::{Lexical, LexicalWriter};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

const MANIFEST: &str = "manifest.json";
const FORMAT: u32 = 1;

/// How `search` ranks.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Cosine similarity of the model's embeddings.
    #[default]
    Dense,
    /// BM25 over the words.
    Bm25,
    /// Both, fused by reciprocal rank.
    Hybrid,
}

/// Which model embedded an index: where it was and what its files were.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelIdentity {
    pub path: PathBuf,
    /// FNV-1a of `config.json`, the weights' length and their first and last MiB.
    pub fingerprint: String,
}

impl ModelIdentity {
    pub fn of(dir: &Path) -> Result<ModelIdentity> {
        let mut hash = Fnv::default();
        let config = dir.join("config.json");
        hash.write(&std::fs::read(&config).map_err(|e| Error::io(&config, "read", e))?);
        let weights = dir.join("model.safetensors");
        let bytes = std::fs::read(&weights).map_err(|e| Error::io(&weights, "read", e))?;
        hash.write(&(bytes.len() as u64).to_le_bytes());
        const MIB: usize = 1 << 20;
        hash.write(&bytes[..bytes.len().min(MIB)]);
        hash.write(&bytes[bytes.len().saturating_sub(MIB)..]);
        Ok(ModelIdentity {
            path: std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()),
            fingerprint: format!("{:016x}", hash.0),
        })
    }
}

struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf29ce484222325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
    }
}

/// The recorded model of an index, or `model` when it is the same one (by fingerprint,
/// wherever it lies now); a different model is refused.
pub fn resolve_model(recorded: &ModelIdentity, model: Option<&Path>) -> Result<PathBuf> {
    let Some(model) = model else {
        return Ok(recorded.path.clone());
    };
    let given = ModelIdentity::of(model)?;
    if given.fingerprint != recorded.fingerprint {
        return Err(Error::config(
            "--model",
            format!(
                "{} is not the model this index was built with ({}, fingerprint {}; this one is {})",
                model.display(),
                recorded.path.display(),
                recorded.fingerprint,
                given.fingerprint
            ),
        ));
    }
    Ok(model.to_path_buf())
}

/// Where an index lives.
#[derive(Debug, Clone, Copy)]
pub enum Store<'a> {
    /// A directory of generations.
    Disk(&'a Path),
    /// A table of a PostgreSQL database with pgvector.
    Postgres { url: &'a str, name: &'a str },
}

impl<'a> Store<'a> {
    /// The index named `index`: a directory, or with a PostgreSQL `url` the table of that
    /// name.
    pub fn at(index: &'a Path, url: Option<&'a str>) -> Result<Store<'a>> {
        Ok(match url {
            None => Store::Disk(index),
            Some(url) => Store::Postgres {
                url,
                name: index.to_str().ok_or_else(|| {
                    Error::config("index name", "with --store, name the index in plain text")
                })?,
            },
        })
    }
}

/// What one generation holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub model: ModelIdentity,
    pub dim: usize,
    pub documents: usize,
    /// The key the next added document gets (keys are never reused).
    pub next_key: u64,
    pub dense: DensePolicy,
    /// The graph's parameters, when this generation has one.
    pub hnsw: Option<HnswParams>,
}

fn read_manifest(generation: &Path) -> Result<Manifest> {
    let path = generation.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, "read", e))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| Error::file(&path, format!("corrupt index manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(Error::file(
            &path,
            format!(
                "index format {} (this positio reads format {FORMAT})",
                manifest.format
            ),
        ));
    }
    Ok(manifest)
}

/// An index open for searching: one generation, unaffected by later writes.
pub struct Index {
    pub manifest: Manifest,
    table: Table,
    dense: Dense,
    lexical: Lexical,
}

/// A ranked result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    pub id: String,
    pub score: f64,
}

impl Index {
    /// Opens the current generation of `dir`.
    pub fn open(dir: &Path, device: &Device) -> Result<Index> {
        let generation = generations::current(dir)?;
        let manifest = read_manifest(&generation)?;
        let table = Table::open(&generation, manifest.documents)?;
        let dense = Dense::open(&generation, &table, manifest.dim, manifest.hnsw, device)?;
        let lexical = Lexical::open(&generation)?;
        Ok(Index {
            manifest,
            table,
            dense,
            lexical,
        })
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// HNSW candidates per search (ignored by exact search).
    pub fn set_expansion(&self, ef: usize) {
        self.dense.set_expansion(ef);
    }

    /// The `top` best documents for each query: `texts` for BM25, `vectors` (the index model's
    /// embeddings of the same texts) for dense search; hybrid fuses both rankings, each taken
    /// to depth `max(top, 100)`.
    pub fn search(
        &self,
        texts: &[String],
        vectors: Option<&[Vec<f32>]>,
        mode: SearchMode,
        top: usize,
    ) -> Result<Vec<Vec<Hit>>> {
        let depth = fusion::depth(mode, top);
        let dense = match mode {
            SearchMode::Bm25 => None,
            _ => {
                let vectors = vectors.ok_or_else(|| {
                    Error::invalid(format!("{mode:?} search needs the query embeddings"))
                })?;
                if let Some(v) = vectors.iter().find(|v| v.len() != self.manifest.dim) {
                    return Err(Error::shape(
                        "query embedding (the index's dimension)",
                        self.manifest.dim,
                        v.len(),
                    ));
                }
                Some(self.dense.search(&self.table, vectors, depth)?)
            }
        };
        let mut out = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let lexical = match mode {
                SearchMode::Dense => None,
                _ => Some(
                    self.lexical
                        .search(text, depth)?
                        .into_iter()
                        .map(|(key, score)| {
                            let slot = self.table.slot_of_key(key).ok_or_else(|| {
                                Error::invalid(format!(
                                    "corrupt index: BM25 names key {key}, which no document has"
                                ))
                            })?;
                            Ok((slot, score))
                        })
                        .collect::<Result<Vec<_>>>()?,
                ),
            };
            let ranked = fusion::combine(dense.as_ref().map(|d| d[i].clone()), lexical);
            out.push(
                ranked
                    .into_iter()
                    .take(top)
                    .map(|(slot, score)| Hit {
                        id: self.table.ids[slot].clone(),
                        score,
                    })
                    .collect(),
            );
        }
        Ok(out)
    }

    /// The stored documents of `ids` (each must be in the index).
    pub fn documents(&self, ids: &[&str]) -> Result<Vec<Document>> {
        let slots = ids
            .iter()
            .map(|id| {
                self.table
                    .slot_of_id(id)
                    .ok_or_else(|| Error::invalid(format!("document {id:?} is not in the index")))
            })
            .collect::<Result<Vec<_>>>()?;
        self.table.documents(&slots)
    }

    /// Reorders the first `relevance.len()` hits by a reranker's relevance of each (sigmoid of
    /// its logit), which becomes their score; the rest follow with theirs (which may be higher:
    /// the order is the list's order).
    pub fn reorder(hits: &mut [Hit], relevance: &[f32]) {
        for (hit, s) in hits.iter_mut().zip(relevance) {
            hit.score = f64::from(*s);
        }
        hits[..relevance.len()].sort_by(|a, b| b.score.total_cmp(&a.score));
    }
}

/// What a write did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WriteSummary {
    pub added: usize,
    pub replaced: usize,
    pub deleted: usize,
    /// Ids asked to be deleted that the index did not have.
    pub not_found: usize,
    pub documents: usize,
    pub graph: bool,
}

/// How a new index is built.
pub struct BuildOptions {
    pub dense: DensePolicy,
    pub hnsw: HnswParams,
    pub batch_size: usize,
}

/// Embeds `documents` in blocks (progress on stderr when it is a terminal).
fn embed_documents(
    embedder: &Embedder,
    documents: &[Document],
    batch_size: usize,
) -> Result<Vec<Vec<f32>>> {
    let bar = indicatif::ProgressBar::new(documents.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("embedding {pos}/{len} documents {wide_bar} {eta}")
            .expect("a valid template"),
    );
    let mut vectors = Vec::with_capacity(documents.len());
    for block in documents.chunks(batch_size.max(1) * 16) {
        let passages: Vec<String> = block.iter().map(Document::passage).collect();
        vectors.extend(embedder.embed(&passages, embedder.pooling, batch_size)?);
        bar.inc(block.len() as u64);
    }
    bar.finish_and_clear();
    Ok(vectors)
}

/// `index build`: a new index of `documents` embedded by `model`. Refuses a directory (or a
/// database name) that already holds an index.
pub fn build(
    store: Store,
    model: &Path,
    documents: &[Document],
    options: &BuildOptions,
    device: &Device,
) -> Result<WriteSummary> {
    if let Store::Disk(dir) = store {
        if dir.join("CURRENT").exists() {
            return Err(Error::file(
                dir,
                "already an index: add to it with `positio index add`, or remove the directory first",
            ));
        }
    }
    let identity = ModelIdentity::of(model)?;
    let embedder = Embedder::load(model, device)?;
    let vectors = embed_documents(&embedder, documents, options.batch_size)?;
    match store {
        Store::Disk(dir) => {
            let manifest = Manifest {
                format: FORMAT,
                model: identity,
                dim: vectors.first().map_or(0, Vec::len),
                documents: 0,
                next_key: 0,
                dense: options.dense,
                hnsw: None,
            };
            write(dir, None, manifest, options.hnsw, documents, &vectors, &[])
        }
        Store::Postgres { url, name } => {
            postgres::build(url, name, &identity, options.hnsw, documents, &vectors)
        }
    }
}

/// `index add`: `documents` embedded by the index's model (`model`, when given, must be that
/// model: it says where the model lies now); a document whose id the index has replaces it.
pub fn add(
    store: Store,
    model: Option<&Path>,
    documents: &[Document],
    batch_size: usize,
    device: &Device,
) -> Result<WriteSummary> {
    // On disk: the current generation and its manifest (`write` reads them again under the
    // lock, since another writer may commit while these documents are embedded).
    let (recorded, dim, current) = match store {
        Store::Disk(dir) => {
            let generation = generations::current(dir)?;
            let manifest = read_manifest(&generation)?;
            (
                manifest.model.clone(),
                manifest.dim,
                Some((generation, manifest)),
            )
        }
        Store::Postgres { url, name } => {
            let entry = postgres::describe(url, name)?;
            (entry.model, entry.dim, None)
        }
    };
    let model = resolve_model(&recorded, model)?;
    let embedder = Embedder::load(&model, device)?;
    let vectors = embed_documents(&embedder, documents, batch_size)?;
    if let Some(v) = vectors.first().filter(|v| v.len() != dim) {
        return Err(Error::shape(
            "document embedding (the index's dimension)",
            dim,
            v.len(),
        ));
    }
    match (store, current) {
        (Store::Disk(dir), Some((generation, manifest))) => {
            let params = manifest.hnsw.unwrap_or_default();
            write(
                dir,
                Some(generation),
                manifest,
                params,
                documents,
                &vectors,
                &[],
            )
        }
        (Store::Postgres { url, name }, _) => {
            postgres::write(url, name, Some(&recorded), documents, &vectors, &[])
        }
        (Store::Disk(_), None) => unreachable!("a directory index has a current generation"),
    }
}

/// `index delete`: removes the documents of `ids` (ids it does not have are counted, not
/// refused).
pub fn delete(store: Store, ids: &[String]) -> Result<WriteSummary> {
    match store {
        Store::Disk(dir) => {
            let generation = generations::current(dir)?;
            let manifest = read_manifest(&generation)?;
            let params = manifest.hnsw.unwrap_or_default();
            write(dir, Some(generation), manifest, params, &[], &[], ids)
        }
        Store::Postgres { url, name } => postgres::write(url, name, None, &[], &[], ids),
    }
}

/// Writes the next generation: the current one's documents less `delete` and less those that
/// `documents` replace, then `documents`; the dense graph, BM25 and manifest to match.
fn write(
    dir: &Path,
    read_from: Option<PathBuf>,
    mut manifest: Manifest,
    params: HnswParams,
    documents: &[Document],
    vectors: &[Vec<f32>],
    delete: &[String],
) -> Result<WriteSummary> {
    let mut seen = HashSet::new();
    if let Some(d) = documents.iter().find(|d| !seen.insert(d.id.as_str())) {
        return Err(Error::invalid(format!(
            "document id {:?} is given twice",
            d.id
        )));
    }
    let writer = Writer::begin(dir, read_from.is_none())?;
    // The generation the writer replaces (another writer may have committed since `read_from`).
    let (previous, old) = match &writer.previous {
        Some(p) => {
            let m = read_manifest(p)?;
            if m.model.fingerprint != manifest.model.fingerprint {
                return Err(Error::file(
                    p,
                    "the index's model changed during this write",
                ));
            }
            manifest = m;
            (Some(p.clone()), Some(Table::open(p, manifest.documents)?))
        }
        None => (None, None),
    };
    let mut summary = WriteSummary::default();
    let mut removed: Vec<u64> = Vec::new();
    let mut removed_slots: HashSet<usize> = HashSet::new();
    if let Some(old) = &old {
        for id in delete {
            match old.slot_of_id(id) {
                Some(slot) if removed_slots.insert(slot) => summary.deleted += 1,
                Some(_) => {}
                None => summary.not_found += 1,
            }
        }
        for d in documents {
            if let Some(slot) = old.slot_of_id(&d.id) {
                removed_slots.insert(slot);
                summary.replaced += 1;
            }
        }
        removed = removed_slots.iter().map(|&s| old.keys[s]).collect();
        removed.sort_unstable();
    } else {
        summary.not_found = delete.len();
    }
    let mut table = TableWriter::create(&writer.next)?;
    let mut lexical = LexicalWriter::begin(&writer.next, previous.as_deref())?;
    for &key in &removed {
        lexical.delete(key);
    }
    if let Some(old) = &old {
        old.for_each_raw(manifest.dim, |slot, line, vector| {
            if removed_slots.contains(&slot) {
                return Ok(());
            }
            table.push_raw(old.keys[slot], &old.ids[slot], line, vector)
        })?;
    }
    let first_new = manifest.next_key;
    for (i, (doc, vector)) in documents.iter().zip(vectors).enumerate() {
        let key = first_new + i as u64;
        table.push(key, doc, vector)?;
        lexical.add(key, &doc.passage())?;
    }
    lexical.commit()?;
    summary.added = documents.len() - summary.replaced;
    manifest.next_key = first_new + documents.len() as u64;
    manifest.documents = table.finish()?;
    summary.documents = manifest.documents;
    // The graph: updated in place of the previous one, or built from every vector when the
    // index first reaches the size that needs one.
    if manifest.dense.uses_graph(manifest.documents) {
        let new: Vec<(u64, &[f32])> = documents
            .iter()
            .zip(vectors)
            .enumerate()
            .map(|(i, (_, v))| (first_new + i as u64, v.as_slice()))
            .collect();
        if manifest.hnsw.is_some() || previous.is_none() {
            dense::write_graph(
                &writer.next,
                previous.as_deref(),
                manifest.dim,
                params,
                &removed,
                &new,
            )?;
        } else {
            let table = Table::open(&writer.next, manifest.documents)?;
            let all = table.vectors(manifest.dim)?;
            let keyed: Vec<(u64, &[f32])> = table
                .keys
                .iter()
                .zip(&all)
                .map(|(&k, v)| (k, v.as_slice()))
                .collect();
            dense::write_graph(&writer.next, None, manifest.dim, params, &[], &keyed)?;
        }
        manifest.hnsw = Some(params);
        summary.graph = true;
    } else {
        manifest.hnsw = None;
    }
    io::write_atomic(
        &writer.next.join(MANIFEST),
        (serde_json::to_string_pretty(&manifest).expect("serialises") + "\n").as_bytes(),
    )?;
    writer.commit()?;
    Ok(summary)
}

/// Ids for `index delete`: one a line (blank lines skipped).
pub fn read_ids(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
    let ids: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let mut seen = HashMap::new();
    for (line, id) in text.lines().enumerate() {
        if let Some(first) = seen.insert(id.trim(), line + 1) {
            if !id.trim().is_empty() {
                return Err(Error::line(
                    path,
                    line + 1,
                    format!("id {id:?} already on line {first}"),
                ));
            }
        }
    }
    Ok(ids)
}
