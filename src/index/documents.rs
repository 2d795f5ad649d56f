//! The documents of one index generation and their vectors, in one order (a document's *slot*):
//! - `documents.jsonl`: `{"key", "id", "title", "text"}` a line (what search results show and
//!   rerankers read);
//! - `table.bin`: per slot, the key (u64, the dense index's label, never reused) and the byte
//!   offset of its line, little-endian, so a result reads one line, not the file;
//! - `ids.json`: the ids by slot;
//! - `vectors.f32`: `[slots, dim]` unit vectors, little-endian (exact search; the source of
//!   an approximate index when one is built or rebuilt).
//!
//! Written once by [`TableWriter`] and never modified.

use crate::data::beir::Document;
use crate::{Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const DOCUMENTS: &str = "documents.jsonl";
const TABLE: &str = "table.bin";
const IDS: &str = "ids.json";
const VECTORS: &str = "vectors.f32";

#[derive(serde::Serialize, serde::Deserialize)]
struct Line {
    key: u64,
    id: String,
    title: String,
    text: String,
}

/// The read side: ids and keys in memory, texts on disk.
pub struct Table {
    dir: PathBuf,
    pub ids: Vec<String>,
    pub keys: Vec<u64>,
    offsets: Vec<u64>,
    by_id: HashMap<String, usize>,
}

impl Table {
    /// Opens a generation's table of `expected` documents (the manifest's count).
    pub fn open(dir: &Path, expected: usize) -> Result<Table> {
        let table_path = dir.join(TABLE);
        let bytes = std::fs::read(&table_path).map_err(|e| Error::io(&table_path, "read", e))?;
        if bytes.len() != expected * 16 {
            return Err(Error::file(
                &table_path,
                format!(
                    "corrupt index: {} bytes, expected {} for {expected} documents",
                    bytes.len(),
                    expected * 16
                ),
            ));
        }
        let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
        let keys: Vec<u64> = (0..expected).map(|i| word(2 * i)).collect();
        let offsets: Vec<u64> = (0..expected).map(|i| word(2 * i + 1)).collect();
        let ids_path = dir.join(IDS);
        let text =
            std::fs::read_to_string(&ids_path).map_err(|e| Error::io(&ids_path, "read", e))?;
        let ids: Vec<String> = serde_json::from_str(&text)
            .map_err(|e| Error::file(&ids_path, format!("corrupt index: {e}")))?;
        if ids.len() != expected {
            return Err(Error::file(
                &ids_path,
                format!("corrupt index: {} ids, expected {expected}", ids.len()),
            ));
        }
        let by_id = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect();
        Ok(Table {
            dir: dir.to_path_buf(),
            ids,
            keys,
            offsets,
            by_id,
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn slot_of_id(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The slot of a key (keys grow with the slots).
    pub fn slot_of_key(&self, key: u64) -> Option<usize> {
        self.keys.binary_search(&key).ok()
    }

    /// The documents in `slots`, read from their lines.
    pub fn documents(&self, slots: &[usize]) -> Result<Vec<Document>> {
        let path = self.dir.join(DOCUMENTS);
        let mut file = BufReader::new(File::open(&path).map_err(|e| Error::io(&path, "open", e))?);
        let mut line = String::new();
        slots
            .iter()
            .map(|&slot| {
                line.clear();
                file.seek(SeekFrom::Start(self.offsets[slot]))
                    .and_then(|_| file.read_line(&mut line))
                    .map_err(|e| Error::io(&path, "read", e))?;
                let row: Line = serde_json::from_str(&line).map_err(|e| {
                    Error::file(&path, format!("corrupt index at slot {slot}: {e}"))
                })?;
                if row.key != self.keys[slot] {
                    return Err(Error::file(
                        &path,
                        format!(
                            "corrupt index: slot {slot} holds key {}, not {}",
                            row.key, self.keys[slot]
                        ),
                    ));
                }
                Ok(Document {
                    id: row.id,
                    title: row.title,
                    text: row.text,
                })
            })
            .collect()
    }

    /// All vectors, `[slots][dim]`.
    pub fn vectors(&self, dim: usize) -> Result<Vec<Vec<f32>>> {
        let path = self.dir.join(VECTORS);
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| Error::io(&path, "read", e))?;
        if bytes.len() != self.len() * dim * 4 {
            return Err(Error::file(
                &path,
                format!(
                    "corrupt index: {} bytes, expected {} ({} vectors of {dim})",
                    bytes.len(),
                    self.len() * dim * 4,
                    self.len()
                ),
            ));
        }
        Ok(bytes
            .chunks_exact(dim * 4)
            .map(|v| {
                v.chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect()
            })
            .collect())
    }

    /// Each slot's raw line and vector bytes in order, for copying into the next generation.
    pub fn for_each_raw(
        &self,
        dim: usize,
        mut each: impl FnMut(usize, &str, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let docs_path = self.dir.join(DOCUMENTS);
        let vec_path = self.dir.join(VECTORS);
        let mut docs =
            BufReader::new(File::open(&docs_path).map_err(|e| Error::io(&docs_path, "open", e))?);
        let mut vecs =
            BufReader::new(File::open(&vec_path).map_err(|e| Error::io(&vec_path, "open", e))?);
        let mut line = String::new();
        let mut vector = vec![0u8; dim * 4];
        for slot in 0..self.len() {
            line.clear();
            docs.read_line(&mut line)
                .map_err(|e| Error::io(&docs_path, "read", e))?;
            vecs.read_exact(&mut vector)
                .map_err(|e| Error::io(&vec_path, "read", e))?;
            each(slot, &line, &vector)?;
        }
        Ok(())
    }
}

/// The write side: documents appended in slot order.
pub struct TableWriter {
    dir: PathBuf,
    docs: BufWriter<File>,
    vectors: BufWriter<File>,
    offset: u64,
    table: Vec<u8>,
    ids: Vec<String>,
    last_key: Option<u64>,
}

impl TableWriter {
    pub fn create(dir: &Path) -> Result<TableWriter> {
        let open = |name: &str| {
            let path = dir.join(name);
            File::create(&path)
                .map(BufWriter::new)
                .map_err(|e| Error::io(&path, "create", e))
        };
        Ok(TableWriter {
            dir: dir.to_path_buf(),
            docs: open(DOCUMENTS)?,
            vectors: open(VECTORS)?,
            offset: 0,
            table: Vec::new(),
            ids: Vec::new(),
            last_key: None,
        })
    }

    pub fn push(&mut self, key: u64, doc: &Document, vector: &[f32]) -> Result<()> {
        let line = serde_json::to_string(&Line {
            key,
            id: doc.id.clone(),
            title: doc.title.clone(),
            text: doc.text.clone(),
        })
        .expect("serialises")
            + "\n";
        let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push_raw(key, &doc.id, &line, &bytes)
    }

    /// A slot copied from an earlier generation as it was stored.
    pub fn push_raw(&mut self, key: u64, id: &str, line: &str, vector: &[u8]) -> Result<()> {
        assert!(
            self.last_key.is_none_or(|k| k < key),
            "keys grow with slots"
        );
        self.last_key = Some(key);
        self.docs
            .write_all(line.as_bytes())
            .map_err(|e| Error::io(self.dir.join(DOCUMENTS), "write", e))?;
        self.vectors
            .write_all(vector)
            .map_err(|e| Error::io(self.dir.join(VECTORS), "write", e))?;
        self.table.extend(key.to_le_bytes());
        self.table.extend(self.offset.to_le_bytes());
        self.offset += line.len() as u64;
        self.ids.push(id.to_string());
        Ok(())
    }

    /// Flushes everything; returns the number of documents written.
    pub fn finish(mut self) -> Result<usize> {
        self.docs
            .flush()
            .map_err(|e| Error::io(self.dir.join(DOCUMENTS), "write", e))?;
        self.vectors
            .flush()
            .map_err(|e| Error::io(self.dir.join(VECTORS), "write", e))?;
        let table = self.dir.join(TABLE);
        std::fs::write(&table, &self.table).map_err(|e| Error::io(&table, "write", e))?;
        let ids = self.dir.join(IDS);
        std::fs::write(&ids, serde_json::to_vec(&self.ids).expect("serialises"))
            .map_err(|e| Error::io(&ids, "write", e))?;
        Ok(self.ids.len())
    }
}
