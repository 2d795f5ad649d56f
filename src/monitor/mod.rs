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
//! Sources: JSON Lines files, directories of them (their files in name order), or standard
//! input. A file's byte offset is stored with the items it covers in one transaction, so a
//! killed monitor resumes where it stopped; items are also stored by id, so a stream replayed
//! from its start counts nothing twice. A malformed line is logged with its file and line and
//! counted, never fatal. With `follow`, files and directories are watched for new lines and
//! new files until Ctrl-C (SIGINT), which finishes the batch in hand and exits cleanly; a
//! harder kill loses nothing either, since every batch is one transaction.

pub mod annotate;
pub mod item;
pub mod store;
pub mod trends;

use annotate::{Annotation, Annotators};
use item::Item;
use std::io::{BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use store::{Alert, Store};
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

/// Where items come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input.
    Stdin,
    /// A JSON Lines file, or a directory of them.
    Path(PathBuf),
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
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Items read (new or already stored).
    pub read: usize,
    /// Items stored for the first time.
    pub stored: usize,
    /// Malformed lines skipped.
    pub malformed: usize,
    pub alerts: usize,
}

/// The files of a source in reading order (a directory's `.jsonl` files by name).
fn files_of(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        if !path.exists() {
            return Err(Error::file(path, "no such file or directory"));
        }
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io(path, "read", e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl" || x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// Appends alerts not yet in the alerts file, and marks them written. Alerts already in the
/// file (a run killed between writing and marking) are marked, not written again.
fn emit(store: &Store, path: &Path) -> Result<usize> {
    let pending = store.unemitted()?;
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
        store.mark_emitted(series, *start, metric)?;
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
    summary: Summary,
}

impl<'a> Monitor<'a> {
    pub fn open(options: &'a MonitorOptions, annotators: &'a Annotators) -> Result<Self> {
        if options.window <= 0 {
            return Err(Error::config("--window", "must be positive"));
        }
        let store = Store::open(&options.store, options.window)?;
        Ok(Monitor {
            options,
            annotators,
            store,
            newest: i64::MIN,
            summary: Summary::default(),
        })
    }

    /// Annotates and stores one batch of `source` (ending at byte `offset`), then closes the
    /// windows the clock has passed.
    fn batch(&mut self, items: Vec<Item>, source: &str, offset: u64) -> Result<()> {
        self.summary.read += items.len();
        let unseen = self.store.unseen(&items)?;
        let new: Vec<Item> = items
            .into_iter()
            .zip(unseen)
            .filter_map(|(i, u)| u.then_some(i))
            .collect();
        let annotations: Vec<Annotation> = if new.is_empty() {
            Vec::new()
        } else {
            self.annotators.annotate(&new)?
        };
        if let Some(t) = new.iter().map(|i| i.time).max() {
            self.newest = self.newest.max(t);
        }
        let batch: Vec<(Item, Annotation)> = new.into_iter().zip(annotations).collect();
        self.summary.stored += self.store.record(&batch, source, offset)?;
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

    fn close(&mut self, until: i64) -> Result<()> {
        self.store.close_windows(until, &self.options.rule)?;
        self.summary.alerts += emit(&self.store, &self.options.alerts)?;
        Ok(())
    }

    /// Reads `lines` (from `origin`, its first line numbered `first_line`), in batches.
    fn lines(
        &mut self,
        origin: &Path,
        source: &str,
        reader: &mut dyn BufRead,
        mut offset: u64,
        mut line_no: usize,
    ) -> Result<u64> {
        let mut items = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| Error::io(origin, "read", e))?;
            // A last line without its newline may still be being written: leave it.
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            offset += n as u64;
            line_no += 1;
            if line.trim().is_empty() {
                continue;
            }
            match Item::parse(origin, line_no, line.trim_end()) {
                Ok(item) => items.push(item),
                Err(e) => {
                    tracing::warn!("skipped: {e}");
                    self.summary.malformed += 1;
                }
            }
            if items.len() == self.options.batch_size {
                self.batch(std::mem::take(&mut items), source, offset)?;
            }
            if crate::train::trainer::interrupted() {
                break;
            }
        }
        self.batch(items, source, offset)?;
        Ok(offset)
    }

    /// Reads what is new in one file.
    fn file(&mut self, path: &Path) -> Result<()> {
        let source = path.display().to_string();
        let offset = self.store.offset(&source)?;
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
        if file
            .metadata()
            .map_err(|e| Error::io(path, "stat", e))?
            .len()
            <= offset
        {
            return Ok(());
        }
        // Line numbers of a resumed file count from the offset's line.
        let before = {
            let mut head = std::io::BufReader::new(&mut file).take(offset);
            let mut count = 0;
            let mut buf = Vec::new();
            while std::io::BufRead::read_until(&mut head, b'\n', &mut buf)
                .map_err(|e| Error::io(path, "read", e))?
                > 0
            {
                count += 1;
                buf.clear();
            }
            count
        };
        file.seek(std::io::SeekFrom::Start(offset))
            .map_err(|e| Error::io(path, "seek", e))?;
        let mut reader = std::io::BufReader::new(file);
        self.lines(path, &source, &mut reader, offset, before)?;
        Ok(())
    }

    /// Runs until the sources end (or, following, until interrupted); then closes every
    /// window of a finite replay.
    pub fn run(mut self) -> Result<Summary> {
        crate::train::trainer::install_interrupt_handler();
        // Alerts a killed run stored but did not write.
        self.summary.alerts += emit(&self.store, &self.options.alerts)?;
        let options = self.options;
        loop {
            for source in &options.sources {
                match source {
                    Source::Stdin => {
                        let stdin = std::io::stdin();
                        let mut lock = stdin.lock();
                        self.lines(Path::new("<stdin>"), "-", &mut lock, 0, 0)?;
                    }
                    Source::Path(path) => {
                        for file in files_of(path)? {
                            self.file(&file)?;
                        }
                    }
                }
            }
            if !options.follow || crate::train::trainer::interrupted() {
                break;
            }
            std::thread::sleep(Duration::from_secs_f64(options.poll));
            if crate::train::trainer::interrupted() {
                break;
            }
        }
        if !options.follow {
            self.close(i64::MAX - options.window)?;
        }
        Ok(self.summary)
    }
}
