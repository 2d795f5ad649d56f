//! positio: Transformer encoders with every mainstream positional encoding, in Rust.
//!
//! Where things live:
//! - [`model`]: the network. `config` (the `config.json` schema), `encoder` (embeddings, blocks,
//!   the stack), `recurrent` (LSTM / GRU layers in place of the blocks), `attention`, `layers`;
//!   `position/` holds one file per positional encoding and the three hooks they plug into
//!   (added to the embeddings, a bias on the attention scores, a rotation of queries and keys);
//!   `heads/` the task heads (language model, token classifier, CRF, sequence classifier). A new
//!   encoding goes in `model/position/`, a new head in `model/heads/`.
//! - [`kernels`]: fused CPU kernels with hand-written backward passes, each beside its
//!   composite twin (burn's backend extension), the recurrent time loop among them; the
//!   backend-free fallback for other devices; the fp32 / bf16 switch for matrix products.
//! - [`hf`]: Hugging Face model directories in and out (naming rule, safetensors, config,
//!   tokenizer files); `Checkpoint` reads a directory once and builds any head from it; `average`
//!   makes one model of several fine-tuned ones (a model soup).
//! - [`data`]: corpora, packed token datasets, tokenizers (and WordPiece training), CoNLL files
//!   and their tags, labelled texts for classification (TSV, CSV, JSON Lines, PhraseBank), MIND
//!   click logs.
//! - [`train`]: the generic trainer (checkpoints, exact resume, run directories), AdamW and its
//!   schedule, masking objectives, and the loop's data-parallel side (shards of a global batch,
//!   gradient all-reduce, parameter checks).
//! - [`distributed`]: the process group of data-parallel training (MPI through the `mpi`
//!   feature); a new engine (NCCL, gloo) implements its `Collective` there.
//! - [`tasks`]: what a user trains or runs: pretraining and causal-LM perplexity, sentence
//!   embeddings, NER, sequence classification, news recommendation. A new task gets a folder
//!   here.
//! - [`index`]: the document index behind `positio index` and `positio search`: generations
//!   on disk (atomic writes), exact or HNSW dense search, BM25, hybrid fusion, reranking.
//! - [`monitor`]: news monitoring: a stream of items annotated (sentiment, topics, entities),
//!   stored in SQLite, counted into windows per series, and spikes of negative news alerted.
//! - [`serve`]: the HTTP inference server (routes, dynamic batching, metrics); a new route goes
//!   in `serve/http/` (see its module list).
//! - [`tools`]: the demo, plots, benchmarks and the load generator.
//! - [`fuzz`]: the fuzz targets (every reader and parser of outside input, the server's
//!   routes), driven by `tests/fuzz.rs` in CI and by libFuzzer in `fuzz/`.
//! - [`cli`]: the command line, one file per command family; `main.rs` only parses and exits.
//! - [`runtime`]: allocator, flush-to-zero floats, and the compute device, CUDA only after
//!   probing driver, GPU and NVRTC (a new backend goes there).

pub mod cli;
pub mod data;
pub mod distributed;
pub mod error;
pub mod fuzz;
pub mod hf;
pub mod index;
pub(crate) mod io;
pub mod kernels;
pub mod model;
pub mod monitor;
pub mod rng;
pub mod runtime;
pub mod serve;
pub mod tasks;
pub mod tools;
pub mod train;

pub use error::{Error, Result};
