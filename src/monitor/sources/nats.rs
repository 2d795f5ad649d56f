//! NATS JetStream, for a stream shared by several monitors: `nats://HOST:PORT/STREAM`, read
//! through a durable pull consumer (`?consumer=NAME`, default `positio-monitor`; monitors
//! that share a consumer name split the stream between them, monitors with their own names each
//! read all of it; `&subject=SUBJ` filters the stream's subjects when the consumer is created;
//! `&ack_wait=SECONDS`, default 60, is how long the server waits for an acknowledgement before
//! delivering a message again). Each message is one item (its JSON object). Messages are
//! acknowledged only after the batch they are in is stored: the messages of a monitor killed
//! before that are delivered again after `ack_wait`, and the store, keyed by item id, counts
//! them once. A malformed message is logged (with its stream sequence), counted
//! and acknowledged, so it is not delivered again. When following, a failed fetch (the server
//! restarting, say) is logged and tried again at the next poll. The client is `async-nats`,
//! run on a single-threaded tokio runtime of its own.

use crate::monitor::item::Item;
use crate::monitor::Monitor;
use crate::{Error, Result};
use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use futures_util::StreamExt;
use std::path::Path;
use std::time::Duration;

/// Where a NATS source points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSource {
    /// The source as given (the store's name for it).
    pub url: String,
    /// `nats://HOST:PORT` (with user and password when given).
    pub server: String,
    pub stream: String,
    pub consumer: String,
    pub subject: Option<String>,
    /// Seconds the server waits for an acknowledgement.
    pub ack_wait: u64,
}

impl NatsSource {
    /// Reads `nats://HOST:PORT/STREAM[?consumer=NAME][&subject=SUBJ]`.
    pub fn parse(url: &str) -> std::result::Result<NatsSource, String> {
        let bad = |why: &str| {
            format!("{url:?}: {why} (nats://HOST:PORT/STREAM?consumer=NAME&subject=S&ack_wait=60)")
        };
        let rest = url
            .strip_prefix("nats://")
            .ok_or_else(|| bad("not nats://"))?;
        let (server, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("name the JetStream stream after the server"))?;
        let (stream, query) = path.split_once('?').unwrap_or((path, ""));
        if server.is_empty() || stream.is_empty() || stream.contains('/') {
            return Err(bad("give one server and one stream"));
        }
        let mut source = NatsSource {
            url: url.to_string(),
            server: format!("nats://{server}"),
            stream: stream.to_string(),
            consumer: "positio-monitor".into(),
            subject: None,
            ack_wait: 60,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("consumer", v)) if !v.is_empty() => source.consumer = v.to_string(),
                Some(("subject", v)) if !v.is_empty() => source.subject = Some(v.to_string()),
                Some(("ack_wait", v)) => {
                    source.ack_wait = v
                        .parse()
                        .ok()
                        .filter(|&s| s > 0)
                        .ok_or_else(|| bad("ack_wait is a whole number of seconds"))?
                }
                _ => return Err(bad(&format!("unknown parameter {pair:?}"))),
            }
        }
        Ok(source)
    }
}

/// A connected durable consumer.
pub(in crate::monitor) struct NatsReader {
    source: NatsSource,
    runtime: tokio::runtime::Runtime,
    consumer: PullConsumer,
}

impl NatsReader {
    /// Connects and gets (or creates) the durable consumer.
    pub fn connect(source: &NatsSource) -> Result<NatsReader> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Error::file(&source.url, format!("NATS: {what}: {e}"))
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail("starting its runtime", &e))?;
        let consumer = runtime.block_on(async {
            let client = async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(10))
                .connect(source.server.as_str())
                .await
                .map_err(|e| fail(&format!("connecting to {}", source.server), &e))?;
            let jetstream = async_nats::jetstream::new(client);
            let stream = jetstream
                .get_stream(&source.stream)
                .await
                .map_err(|e| fail(&format!("stream {:?}", source.stream), &e))?;
            let config = pull::Config {
                durable_name: Some(source.consumer.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs(source.ack_wait),
                filter_subject: source.subject.clone().unwrap_or_default(),
                ..Default::default()
            };
            stream
                .get_or_create_consumer(&source.consumer, config)
                .await
                .map_err(|e| fail(&format!("consumer {:?}", source.consumer), &e))
        })?;
        Ok(NatsReader {
            source: source.clone(),
            runtime,
            consumer,
        })
    }

    /// Reads every message waiting now, a batch at a time: stores, then acknowledges.
    pub fn read(&mut self, monitor: &mut Monitor) -> Result<()> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Error::file(&self.source.url, format!("NATS: {what}: {e}"))
        };
        let origin = Path::new(&self.source.url);
        loop {
            let messages = self.runtime.block_on(async {
                let mut batch = self
                    .consumer
                    .fetch()
                    .max_messages(monitor.batch_size())
                    // Bounds the wait, so a pull request lost with a dropped connection is
                    // given up (5 s later) instead of waited on for ever.
                    .expires(Duration::from_secs(1))
                    .messages()
                    .await
                    .map_err(|e| fail("fetching", &e))?;
                let mut messages = Vec::new();
                while let Some(m) = batch.next().await {
                    messages.push(m.map_err(|e| fail("receiving", &e))?);
                }
                Ok::<_, Error>(messages)
            });
            // Following, a lost connection is waited out (the client reconnects by itself);
            // what was fetched but not stored is delivered again.
            let messages = match messages {
                Ok(m) if m.is_empty() => return Ok(()),
                Ok(m) => m,
                Err(e) if monitor.options.follow => {
                    tracing::warn!("{e}; trying again");
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let mut items = Vec::with_capacity(messages.len());
            let mut last = 0;
            for m in &messages {
                let sequence = m.info().map_or(0, |i| i.stream_sequence);
                last = last.max(sequence);
                let parsed = std::str::from_utf8(&m.payload)
                    .map_err(|e| Error::line(origin, sequence as usize, format!("not UTF-8: {e}")))
                    .and_then(|text| Item::parse(origin, sequence as usize, text.trim()));
                match parsed {
                    Ok(item) => items.push(item),
                    Err(e) => monitor.malformed(&e),
                }
            }
            monitor.batch(items, &self.source.url, last, last)?;
            self.runtime.block_on(async {
                for m in &messages {
                    m.ack().await.map_err(|e| fail("acknowledging", &e))?;
                }
                Ok::<_, Error>(())
            })?;
            if crate::train::trainer::interrupted() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NatsSource;

    #[test]
    fn nats_urls_name_server_stream_and_consumer() {
        let s = NatsSource::parse("nats://127.0.0.1:4222/NEWS").unwrap();
        assert_eq!(
            (s.server.as_str(), s.stream.as_str(), s.consumer.as_str()),
            ("nats://127.0.0.1:4222", "NEWS", "positio-monitor")
        );
        let s = NatsSource::parse("nats://u:p@h:1/NEWS?consumer=eu&subject=news.eu").unwrap();
        assert_eq!(s.server, "nats://u:p@h:1");
        assert_eq!(
            (s.consumer.as_str(), s.subject.as_deref()),
            ("eu", Some("news.eu"))
        );
        assert_eq!(
            NatsSource::parse("nats://h:1/N?ack_wait=5")
                .unwrap()
                .ack_wait,
            5
        );
        for bad in [
            "nats://h:1",
            "nats://h:1/",
            "nats://h:1/A/B",
            "nats://h:1/A?x=1",
            "nats://h:1/A?ack_wait=0",
        ] {
            assert!(NatsSource::parse(bad).is_err(), "{bad}");
        }
    }
}
