//! The index in PostgreSQL + pgvector (`--store postgres://…`), for a team that keeps its
//! documents in the database it already runs: one table per index (`positio_idx_NAME`: id,
//! title, text, the embedding as `vector(dim)` under an HNSW index with inner-product ops,
//! and a generated `tsvector` under a GIN index), and one catalogue row per index in
//! `positio_indexes` (model path and fingerprint, dimension, HNSW parameters) so that the
//! model check is the same as on disk.
//!
//! Writes are transactions: `build` creates the table, copies the documents in (binary COPY)
//! and builds both indexes before it commits; `add` and `delete` commit as one, so searches
//! (MVCC) see the index before or after, never between. Lexical search is PostgreSQL's
//! full-text `ts_rank` over the OR of the query's words (PostgreSQL has no BM25), fused with
//! dense search by reciprocal rank as on disk.
//!
//! tokio-postgres is async; these functions are synchronous, each running its statements on
//! a small runtime of its own: call them from plain threads or tokio's blocking pool (the
//! server does), never from an async task.

use super::dense::HnswParams;
use super::{fusion, Hit, ModelIdentity, SearchMode, WriteSummary};
use crate::data::beir::Document;
use crate::{Error, Result};
use pgvector::Vector;
use std::collections::HashSet;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};

const CATALOGUE: &str = "CREATE TABLE IF NOT EXISTS positio_indexes (
    name text PRIMARY KEY, model_path text NOT NULL, fingerprint text NOT NULL,
    dim integer NOT NULL, hnsw_m integer NOT NULL, hnsw_ef_construction integer NOT NULL,
    ef_search integer NOT NULL)";

/// A current-thread runtime that may be dropped anywhere, even inside the server's runtime
/// (a plain `Runtime` panics there).
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for OwnRuntime {
    type Target = tokio::runtime::Runtime;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("alive until dropped")
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A connection to the database of `url`, on its own runtime.
struct Database {
    runtime: OwnRuntime,
    client: Client,
    url: String,
}

fn db_error(url: &str, e: tokio_postgres::Error) -> Error {
    // The URL without its password.
    let shown = match url.split_once('@') {
        Some((creds, host)) => match creds.rsplit_once(':') {
            Some((user, _)) if user.contains("//") && creds.matches(':').count() > 1 => {
                format!("{user}:***@{host}")
            }
            _ => url.to_string(),
        },
        None => url.to_string(),
    };
    let detail = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string());
    Error::invalid(format!("PostgreSQL ({shown}): {detail}"))
}

impl Database {
    fn connect(url: &str) -> Result<Database> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::invalid(format!("cannot start a runtime for PostgreSQL: {e}")))?;
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, NoTls)
                .await
                .map_err(|e| db_error(url, e))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!("PostgreSQL connection: {e}");
                }
            });
            Ok::<_, Error>(client)
        })?;
        Ok(Database {
            runtime: OwnRuntime(Some(runtime)),
            client,
            url: url.to_string(),
        })
    }
}

/// What `positio_indexes` records of one index.
#[derive(Debug, Clone)]
pub struct Catalogued {
    pub model: ModelIdentity,
    pub dim: usize,
    pub hnsw: HnswParams,
}

fn table_of(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(Error::config(
            "index name",
            format!(
                "{name:?}: with --store, name the index with lowercase letters, digits and _ \
                 (at most 40)"
            ),
        ));
    }
    Ok(format!("positio_idx_{name}"))
}

async fn catalogued(client: &Client, url: &str, name: &str) -> Result<Catalogued> {
    let e = |e| db_error(url, e);
    client.batch_execute(CATALOGUE).await.map_err(e)?;
    let row = client
        .query_opt(
            "SELECT model_path, fingerprint, dim, hnsw_m, hnsw_ef_construction, ef_search
             FROM positio_indexes WHERE name = $1",
            &[&name],
        )
        .await
        .map_err(e)?
        .ok_or_else(|| {
            Error::invalid(format!(
                "no index {name:?} in the database: build it with `positio index build --store`"
            ))
        })?;
    let int = |i: usize| row.get::<_, i32>(i) as usize;
    Ok(Catalogued {
        model: ModelIdentity {
            path: row.get::<_, String>(0).into(),
            fingerprint: row.get(1),
        },
        dim: int(2),
        hnsw: HnswParams {
            connectivity: int(3),
            expansion_add: int(4),
            expansion_search: int(5),
        },
    })
}

/// Copies documents and their vectors into `table` (binary COPY, inside the caller's
/// transaction).
async fn copy_documents(
    tx: &tokio_postgres::Transaction<'_>,
    url: &str,
    table: &str,
    documents: &[Document],
    vectors: &[Vec<f32>],
) -> Result<()> {
    let e = |e| db_error(url, e);
    let vector_type = tx.prepare("SELECT $1::vector").await.map_err(e)?.params()[0].clone();
    let sink = tx
        .copy_in(&format!(
            "COPY {table} (id, title, body, embedding) FROM STDIN BINARY"
        ))
        .await
        .map_err(e)?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::TEXT, Type::TEXT, vector_type]);
    let mut writer = std::pin::pin!(writer);
    for (d, v) in documents.iter().zip(vectors) {
        let v = Vector::from(v.clone());
        let row: [&(dyn ToSql + Sync); 4] = [&d.id, &d.title, &d.text, &v];
        writer.as_mut().write(&row).await.map_err(e)?;
    }
    writer.finish().await.map_err(e)?;
    Ok(())
}

/// `index build --store`: the table, its documents and both indexes, in one transaction.
pub fn build(
    url: &str,
    name: &str,
    model: &ModelIdentity,
    hnsw: HnswParams,
    documents: &[Document],
    vectors: &[Vec<f32>],
) -> Result<WriteSummary> {
    let table = table_of(name)?;
    let dim = vectors.first().map_or(0, Vec::len);
    let Database {
        runtime,
        mut client,
        url,
    } = Database::connect(url)?;
    let e = |e| db_error(&url, e);
    runtime.block_on(async {
        client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS vector")
            .await
            .map_err(e)?;
        client.batch_execute(CATALOGUE).await.map_err(e)?;
        let tx = client.transaction().await.map_err(e)?;
        let inserted = tx
            .execute(
                "INSERT INTO positio_indexes VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT DO NOTHING",
                &[
                    &name,
                    &model.path.display().to_string(),
                    &model.fingerprint,
                    &(dim as i32),
                    &(hnsw.connectivity as i32),
                    &(hnsw.expansion_add as i32),
                    &(hnsw.expansion_search as i32),
                ],
            )
            .await
            .map_err(e)?;
        if inserted == 0 {
            return Err(Error::invalid(format!(
                "the database already has an index {name:?}: add to it with `positio index add --store`"
            )));
        }
        tx.batch_execute(&format!(
            "CREATE TABLE {table} (key bigserial PRIMARY KEY, id text UNIQUE NOT NULL,
                title text NOT NULL, body text NOT NULL, embedding vector({dim}) NOT NULL,
                words tsvector GENERATED ALWAYS AS
                    (to_tsvector('english', title || ' ' || body)) STORED)"
        ))
        .await
        .map_err(e)?;
        copy_documents(&tx, &url, &table, documents, vectors).await?;
        tx.batch_execute(&format!(
            "CREATE INDEX ON {table} USING hnsw (embedding vector_ip_ops)
                WITH (m = {}, ef_construction = {});
             CREATE INDEX ON {table} USING gin (words)",
            hnsw.connectivity, hnsw.expansion_add
        ))
        .await
        .map_err(e)?;
        tx.commit().await.map_err(e)?;
        Ok(WriteSummary {
            added: documents.len(),
            documents: documents.len(),
            graph: true,
            ..WriteSummary::default()
        })
    })
}

/// The catalogue row of an index (its model, for embedding what `add` and `search` bring).
pub fn describe(url: &str, name: &str) -> Result<Catalogued> {
    let db = Database::connect(url)?;
    db.runtime.block_on(catalogued(&db.client, &db.url, name))
}

/// `index add` / `index delete --store`: one transaction that removes `delete` and the
/// documents `documents` replace, then copies `documents` in. `model` must be the index's.
pub fn write(
    url: &str,
    name: &str,
    model: Option<&ModelIdentity>,
    documents: &[Document],
    vectors: &[Vec<f32>],
    delete: &[String],
) -> Result<WriteSummary> {
    let table = table_of(name)?;
    let Database {
        runtime,
        mut client,
        url,
    } = Database::connect(url)?;
    let e = |e| db_error(&url, e);
    runtime.block_on(async {
        let entry = catalogued(&client, &url, name).await?;
        if let Some(m) = model {
            if m.fingerprint != entry.model.fingerprint {
                return Err(Error::config(
                    "--model",
                    format!(
                        "{} is not the model this index was built with ({})",
                        m.path.display(),
                        entry.model.path.display()
                    ),
                ));
            }
        }
        if let Some(v) = vectors.first().filter(|v| v.len() != entry.dim) {
            return Err(Error::shape(
                "document embedding (the index's dimension)",
                entry.dim,
                v.len(),
            ));
        }
        let mut seen = HashSet::new();
        if let Some(d) = documents.iter().find(|d| !seen.insert(d.id.as_str())) {
            return Err(Error::invalid(format!(
                "document id {:?} is given twice",
                d.id
            )));
        }
        let tx = client.transaction().await.map_err(e)?;
        let ids: Vec<&str> = documents.iter().map(|d| d.id.as_str()).collect();
        let replaced = tx
            .execute(&format!("DELETE FROM {table} WHERE id = ANY($1)"), &[&ids])
            .await
            .map_err(e)? as usize;
        let deleted = tx
            .execute(
                &format!("DELETE FROM {table} WHERE id = ANY($1)"),
                &[&delete],
            )
            .await
            .map_err(e)? as usize;
        copy_documents(&tx, &url, &table, documents, vectors).await?;
        let count: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .map_err(e)?
            .get(0);
        tx.commit().await.map_err(e)?;
        Ok(WriteSummary {
            added: documents.len() - replaced,
            replaced,
            deleted,
            not_found: delete.len() - deleted,
            documents: count as usize,
            graph: true,
        })
    })
}

/// An index in the database, open for searching.
pub struct PgIndex {
    db: Database,
    table: String,
    pub entry: Catalogued,
}

impl PgIndex {
    pub fn open(url: &str, name: &str) -> Result<PgIndex> {
        let table = table_of(name)?;
        let db = Database::connect(url)?;
        let entry = db.runtime.block_on(catalogued(&db.client, &db.url, name))?;
        Ok(PgIndex { db, table, entry })
    }

    /// pgvector's HNSW candidates per search (`hnsw.ef_search`).
    pub fn set_expansion(&mut self, ef: usize) {
        self.entry.hnsw.expansion_search = ef;
    }

    /// As [`super::Index::search`]: dense by pgvector's HNSW, lexical by `ts_rank`, hybrid
    /// fused by reciprocal rank.
    pub fn search(
        &self,
        texts: &[String],
        vectors: Option<&[Vec<f32>]>,
        mode: SearchMode,
        top: usize,
    ) -> Result<Vec<Vec<Hit>>> {
        let depth = fusion::depth(mode, top);
        let db = &self.db;
        let e = |e| db_error(&db.url, e);
        db.runtime.block_on(async {
            db.client
                .batch_execute(&format!(
                    "SET hnsw.ef_search = {}",
                    self.entry.hnsw.expansion_search.max(depth)
                ))
                .await
                .map_err(e)?;
            let mut out = Vec::with_capacity(texts.len());
            for (i, text) in texts.iter().enumerate() {
                let dense = match (mode, vectors) {
                    (SearchMode::Bm25, _) => None,
                    (_, Some(v)) => {
                        if v[i].len() != self.entry.dim {
                            return Err(Error::shape(
                                "query embedding (the index's dimension)",
                                self.entry.dim,
                                v[i].len(),
                            ));
                        }
                        let q = Vector::from(v[i].clone());
                        let rows = db
                            .client
                            .query(
                                &format!(
                                    "SELECT id, (-(embedding <#> $1))::float8 FROM {}
                                     ORDER BY embedding <#> $1 LIMIT $2",
                                    self.table
                                ),
                                &[&q, &(depth as i64)],
                            )
                            .await
                            .map_err(e)?;
                        Some(
                            rows.iter()
                                .map(|r| (r.get::<_, String>(0), r.get::<_, f64>(1)))
                                .collect::<Vec<_>>(),
                        )
                    }
                    (_, None) => {
                        return Err(Error::invalid(format!(
                            "{mode:?} search needs the query embeddings"
                        )))
                    }
                };
                let lexical = match mode {
                    SearchMode::Dense => None,
                    _ => {
                        let rows = db
                            .client
                            .query(
                                &format!(
                                    "SELECT id, ts_rank(words, q)::float8 FROM {},
                                        to_tsquery('english', replace(
                                            plainto_tsquery('english', $1)::text, ' & ', ' | ')) q
                                     WHERE words @@ q ORDER BY 2 DESC, key LIMIT $2",
                                    self.table
                                ),
                                &[text, &(depth as i64)],
                            )
                            .await
                            .map_err(e)?;
                        Some(
                            rows.iter()
                                .map(|r| (r.get::<_, String>(0), r.get::<_, f64>(1)))
                                .collect::<Vec<_>>(),
                        )
                    }
                };
                let ranked = fusion::combine(dense, lexical);
                out.push(
                    ranked
                        .into_iter()
                        .take(top)
                        .map(|(id, score)| Hit { id, score })
                        .collect(),
                );
            }
            Ok(out)
        })
    }

    /// How many documents the index holds.
    pub fn count(&self) -> Result<usize> {
        let db = &self.db;
        let row = db
            .runtime
            .block_on(
                db.client
                    .query_one(&format!("SELECT count(*) FROM {}", self.table), &[]),
            )
            .map_err(|e| db_error(&db.url, e))?;
        Ok(row.get::<_, i64>(0) as usize)
    }

    /// The stored documents of `ids`, in that order.
    pub fn documents(&self, ids: &[&str]) -> Result<Vec<Document>> {
        let db = &self.db;
        let rows = db
            .runtime
            .block_on(db.client.query(
                &format!(
                    "SELECT id, title, body FROM {} WHERE id = ANY($1)",
                    self.table
                ),
                &[&ids],
            ))
            .map_err(|e| db_error(&db.url, e))?;
        let mut found: std::collections::HashMap<String, Document> = rows
            .iter()
            .map(|r| {
                let d = Document {
                    id: r.get(0),
                    title: r.get(1),
                    text: r.get(2),
                };
                (d.id.clone(), d)
            })
            .collect();
        ids.iter()
            .map(|id| {
                found
                    .remove(*id)
                    .ok_or_else(|| Error::invalid(format!("document {id:?} is not in the index")))
            })
            .collect()
    }
}
