//! Data in: raw-text corpora, packed token datasets, tokenizers (loading and WordPiece
//! training), CoNLL files and their tag schemes, labelled texts for classification, and text
//! decoding.

pub mod conll;
pub mod corpus;
pub mod dataset;
pub mod labelled;
pub mod tags;
pub mod text;
pub mod tokenizer;
pub mod wordpiece;
