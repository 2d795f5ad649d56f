//! News monitoring: a stream of items (JSON lines, [`item`]) is annotated in batches by the
//! models given ([`annotate`]: sentiment, topics, entities), stored with its annotations in
//! SQLite ([`store`]), counted into tumbling windows per series (all items, each topic, each
//! entity), and each closed window is judged by the spike rule ([`trends`]); a spike is an
//! alert, appended to a JSON Lines file.
//!
//! Time comes from the items (`Clock::Event`: a day of news replays in seconds, which is how
//! rules are tuned and tested) or from the wall clock. A window closes when the clock has
//! passed its end by `lateness`; at the end of a finite input every window closes.
//!
//! Sources ([`sources`]): JSON Lines files, directories of them, standard input, RSS / Atom
//! feeds and NATS JetStream. A file's position is stored with the items it covers in one
//! transaction (a NATS message is acknowledged after it), so a killed monitor resumes where it
//! stopped; items are also stored by id, so a stream replayed from its start counts nothing
//! twice. A malformed item is logged with its origin and line and counted, never fatal. With
//! `follow`, the sources are watched for more until SIGINT or SIGTERM, which finish the batch
//! in hand and exit cleanly; a harder kill loses nothing either, since every batch is one
//! transaction.

pub mod alertmanager;
pub mod annotate;
pub mod item;
pub mod metrics;
pub mod report;
pub mod sources;
pub mod store;
pub mod trends;

use alertmanager::Alertmanager;
use annotate::{Annotation, Annotators};
use item::Item;
use metrics::Metrics;
use sources::Reader;
pub use sources::Source;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use store::{Alert, Delivery, Store};
use trends::SpikeRule;

use crate::{Error, Result};

/// Where the monitor's time comes from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Clock {
    /// The items' own times: the newest item seen is "now".
    Event,
    /// This machine's clock.
    Wall,
}

/// How the monitor runs.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    pub sources: Vec<Source>,
    pub store: PathBuf,
    pub alerts: PathBuf,
    pub clock: Clock,
    /// Window width in seconds.
    pub window: i64,
    /// Seconds a window stays open after its end, for late items.
    pub lateness: i64,
    pub rule: SpikeRule,
    /// Items per annotation batch.
    pub batch_size: usize,
    /// Keep watching files and directories for more.
    pub follow: bool,
    /// Seconds between looks when following.
    pub poll: f64,
    /// Seconds between fetches of a feed.
    pub feed_poll: f64,
    /// Entities (by volume) that get series of their own.
    pub top_entities: usize,
    /// Where to serve Prometheus metrics (`/metrics`), if anywhere.
    pub metrics_addr: Option<String>,
    /// Alertmanager's address, if alerts go there too.
    pub alertmanager: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Items read (new or already stored).
    pub read: usize,
    /// Items stored for the first time.
    pub stored: usize,
    /// Malformed lines skipped.
    pub malformed: usize,
    pub alerts: usize,
}

/// Appends alerts not yet in the alerts file, and marks them written. Alerts already in the
/// file (a run killed between writing and marking) are marked, not written again.
fn emit(store: &Store, path: &Path) -> Result<usize> {
    let pending = store.undelivered(Delivery::File)?;
    if pending.is_empty() {
        return Ok(0);
    }
    let written: std::collections::HashSet<(String, String, String)> =
        match std::fs::read_to_string(path) {
            Ok(text) => text
                .lines()
                .filter_map(|l| serde_json::from_str::<Alert>(l).ok())
                .map(|a| (a.series, a.time, a.metric))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
            Err(e) => return Err(Error::io(path, "read", e)),
        };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, "open", e))?;
    let mut emitted = 0;
    for (_, _, _, alert) in &pending {
        if !written.contains(&(
            alert.series.clone(),
            alert.time.clone(),
            alert.metric.clone(),
        )) {
            let line = serde_json::to_string(alert).expect("serialises") + "\n";
            file.write_all(line.as_bytes())
                .map_err(|e| Error::io(path, "write", e))?;
            emitted += 1;
        }
    }
    file.sync_all().map_err(|e| Error::io(path, "sync", e))?;
    for (series, start, metric, _) in &pending {
        store.mark_delivered(Delivery::File, series, *start, metric)?;
    }
    Ok(emitted)
}

/// The monitor: reads, annotates, stores, closes windows, alerts.
pub struct Monitor<'a> {
    options: &'a MonitorOptions,
    annotators: &'a Annotators,
    store: Store,
    /// The newest item time seen (the event clock).
    newest: i64,
    /// The run's counts (its [`Summary`] is read from them).
    metrics: Arc<Metrics>,
    alertmanager: Option<Alertmanager>,
}

impl<'a> Monitor<'a> {
    pub fn open(options: &'a MonitorOptions, annotators: &'a Annotators) -> Result<Self> {
        if options.window <= 0 {
            return Err(Error::config("--window", "must be positive"));
        }
        let store = Store::open(&options.store, options.window, options.rule.negatives)?;
        // The alerts file exists from the start (empty while nothing spikes), so a path that
        // cannot be written fails now, not at the first alert.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&options.alerts)
            .map_err(|e| Error::io(&options.alerts, "open", e))?;
        let metrics = Metrics::new();
        if let Some(addr) = &options.metrics_addr {
            let at = metrics.serve(addr)?;
            tracing::info!("metrics at http://{at}/metrics");
        }
        Ok(Monitor {
            options,
            annotators,
            store,
            newest: i64::MIN,
            metrics,
            alertmanager: options.alertmanager.as_deref().map(Alertmanager::new),
        })
    }

    /// Annotates and stores one batch of `source` (ending at byte `offset`, line `line`), then
    /// closes the windows the clock has passed.
    fn batch(&mut self, items: Vec<Item>, source: &str, offset: u64, line: u64) -> Result<()> {
        self.metrics.read.inc_by(items.len() as u64);
        let unseen = self.store.unseen(&items)?;
        let new: Vec<Item> = items
            .into_iter()
            .zip(unseen)
            .filter_map(|(i, u)| u.then_some(i))
            .collect();
        let annotations: Vec<Annotation> = if new.is_empty() {
            Vec::new()
        } else {
            let _timer = self.metrics.annotate_seconds.start_timer();
            self.annotators.annotate(&new)?
        };
        if let Some(t) = new.iter().map(|i| i.time).max() {
            self.newest = self.newest.max(t);
            self.metrics.newest_item.set(self.newest as f64);
        }
        let batch: Vec<(Item, Annotation)> = new.into_iter().zip(annotations).collect();
        let stored = self.store.record(&batch, source, (offset, line))?;
        self.metrics.stored.inc_by(stored as u64);
        self.close(self.now().saturating_sub(self.options.lateness))
    }

    fn now(&self) -> i64 {
        match self.options.clock {
            Clock::Event => self.newest,
            Clock::Wall => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        }
    }

    /// Closes the windows that end by `until`, updates the metrics, and delivers new alerts.
    fn close(&mut self, until: i64) -> Result<()> {
        let top = self.store.top_entities(self.options.top_entities)?;
        let closed = self.store.close_windows(until, &self.options.rule, &top)?;
        if !closed.is_empty() {
            self.metrics.observe(&closed, &top);
        }
        self.deliver()
    }

    /// Writes the alerts not yet in the alerts file, and pushes those Alertmanager has not
    /// accepted.
    fn deliver(&self) -> Result<()> {
        let written = emit(&self.store, &self.options.alerts)?;
        self.metrics.alerts.inc_by(written as u64);
        if let Some(am) = &self.alertmanager {
            am.push(&self.store, self.options.window, self.options.rule.cooldown)?;
        }
        Ok(())
    }

    /// Logs and counts a malformed item.
    fn malformed(&mut self, e: &Error) {
        tracing::warn!("skipped: {e}");
        self.metrics.malformed.inc();
    }

    fn batch_size(&self) -> usize {
        self.options.batch_size
    }

    /// Where reading `source` goes on: (byte offset, line number).
    fn position(&self, source: &str) -> Result<(u64, u64)> {
        self.store.position(source)
    }

    /// Runs until the sources end (or, following, until interrupted); then closes every
    /// window of a finite replay.
    pub fn run(mut self) -> Result<Summary> {
        crate::train::trainer::install_interrupt_handler();
        // Alerts a killed run stored but did not deliver.
        self.deliver()?;
        let options = self.options;
        let mut readers = options
            .sources
            .iter()
            .map(Reader::open)
            .collect::<Result<Vec<_>>>()?;
        loop {
            for reader in &mut readers {
                reader.read(&mut self)?;
            }
            if !options.follow || crate::train::trainer::interrupted() {
                break;
            }
            // On the wall clock, time passes without items.
            self.close(self.now().saturating_sub(options.lateness))?;
            std::thread::sleep(Duration::from_secs_f64(options.poll));
            if crate::train::trainer::interrupted() {
                break;
            }
        }
        if !options.follow {
            self.close(i64::MAX - options.window)?;
        }
        let m = &self.metrics;
        Ok(Summary {
            read: m.read.get() as usize,
            stored: m.stored.get() as usize,
            malformed: m.malformed.get() as usize,
            alerts: m.alerts.get() as usize,
        })
    }
}
