//! Where the monitor's items come from: standard input and JSON Lines files or directories
//! (`files.rs`), RSS / Atom feeds over HTTP (`feed.rs`), and NATS JetStream (`nats.rs`). A source
//! is named on the command line (`-`, a path, `https://…`, `nats://…`), opened once per run, and
//! read "what is there now" on each pass of the monitor's loop; each hands the monitor batches
//! of parsed items with their position, and counts its malformed items without stopping.

mod feed;
mod files;
mod nats;

pub use nats::NatsSource;

use super::Monitor;
use crate::Result;
use std::path::PathBuf;

/// Where items come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input (`-`).
    Stdin,
    /// A JSON Lines file, or a directory of them.
    Path(PathBuf),
    /// An RSS or Atom feed (`http://…`, `https://…`).
    Feed(String),
    /// A NATS JetStream stream (`nats://HOST:PORT/STREAM?consumer=NAME`).
    Nats(NatsSource),
}

impl std::str::FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(if s == "-" {
            Source::Stdin
        } else if s.starts_with("http://") || s.starts_with("https://") {
            Source::Feed(s.to_string())
        } else if s.starts_with("nats://") {
            Source::Nats(NatsSource::parse(s)?)
        } else {
            Source::Path(PathBuf::from(s))
        })
    }
}

/// An opened source.
pub(super) enum Reader {
    Stdin,
    Path(PathBuf),
    Feed(feed::FeedReader),
    Nats(Box<nats::NatsReader>),
}

impl Reader {
    /// Opens `source` (connects, for NATS).
    pub fn open(source: &Source) -> Result<Reader> {
        Ok(match source {
            Source::Stdin => Reader::Stdin,
            Source::Path(p) => Reader::Path(p.clone()),
            Source::Feed(url) => Reader::Feed(feed::FeedReader::new(url)),
            Source::Nats(n) => Reader::Nats(Box::new(nats::NatsReader::connect(n)?)),
        })
    }

    /// Reads what the source has now.
    pub fn read(&mut self, monitor: &mut Monitor) -> Result<()> {
        let (follow, feed_poll) = (monitor.options.follow, monitor.options.feed_poll);
        match self {
            Reader::Stdin => files::read_stdin(monitor),
            Reader::Path(path) => {
                for file in files::files_of(path)? {
                    files::read_file(monitor, &file)?;
                }
                Ok(())
            }
            Reader::Feed(feed) => feed.read(monitor, feed_poll, follow),
            Reader::Nats(nats) => nats.read(monitor),
        }
    }
}
