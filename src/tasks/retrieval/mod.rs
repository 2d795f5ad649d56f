//! Retrieval: finding the documents that answer a query (the guide's customer-service and
//! information-retrieval uses). `search` ranks documents by embedding similarity, `metrics`
//! scores a ranking as trec_eval does, `commands` runs `positio eval retrieval`.

pub mod commands;
pub mod metrics;
pub mod search;
