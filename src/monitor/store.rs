//! The monitor's memory, one SQLite file (WAL): every item with its annotation, the series
//! each item belongs to, the windows of each series, each series' baseline, the alerts, and
//! each source's offset. A batch of items, the window counts they add and the source's offset
//! are one transaction, and an item already stored is skipped by id: a replayed or resumed
//! stream never counts an item twice, and a killed monitor loses nothing it acknowledged.

use super::annotate::Annotation;
use super::item::{format_time, Item};
use super::trends::{window_start, Baseline, SpikeRule, Window};
use crate::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY, time INTEGER NOT NULL, source TEXT, title TEXT, text TEXT NOT NULL,
    annotation TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memberships (
    series TEXT NOT NULL, item TEXT NOT NULL, time INTEGER NOT NULL, negative INTEGER NOT NULL,
    PRIMARY KEY (series, item));
CREATE TABLE IF NOT EXISTS windows (
    series TEXT NOT NULL, start INTEGER NOT NULL, count INTEGER NOT NULL,
    negative INTEGER NOT NULL, sentiment REAL NOT NULL, closed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (series, start));
CREATE TABLE IF NOT EXISTS baselines (series TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    series TEXT NOT NULL, start INTEGER NOT NULL, metric TEXT NOT NULL, alert TEXT NOT NULL,
    emitted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (series, start, metric));
CREATE TABLE IF NOT EXISTS offsets (source TEXT PRIMARY KEY, offset INTEGER NOT NULL);
";

/// An alert, as the alerts file holds it (one JSON object a line).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// The window's start, RFC 3339.
    pub time: String,
    /// `all`, `topic:<name>` or `entity:<name>`.
    pub series: String,
    pub metric: String,
    pub value: f64,
    pub baseline: f64,
    pub z: f64,
    pub count: usize,
    /// The window's negative items.
    pub items: Vec<String>,
}

/// The store of one monitor.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Window width in seconds.
    width: i64,
}

fn db_error(path: &Path, e: rusqlite::Error) -> Error {
    Error::file(path, format!("SQLite: {e}"))
}

/// The series an annotated item belongs to.
pub fn series_of(annotation: &Annotation) -> Vec<String> {
    let mut series = vec!["all".to_string()];
    series.extend(annotation.topics.iter().map(|t| format!("topic:{t}")));
    series.extend(annotation.entities.iter().map(|e| format!("entity:{e}")));
    series
}

impl Store {
    /// Opens (or creates) the store; a store made with another window width is refused.
    pub fn open(path: &Path, width: i64) -> Result<Store> {
        let e = |e| db_error(path, e);
        let conn = Connection::open(path).map_err(e)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        conn.execute_batch(SCHEMA).map_err(e)?;
        let recorded: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'window'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(e)?;
        match recorded {
            Some(w) if w != width.to_string() => {
                return Err(Error::file(
                    path,
                    format!("this store has windows of {w} s, not {width} s: use another store"),
                ))
            }
            Some(_) => {}
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('window', ?1)",
                    [width.to_string()],
                )
                .map_err(e)?;
            }
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            width,
        })
    }

    fn e(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        |e| db_error(&self.path, e)
    }

    /// Where reading `source` goes on (bytes; 0 when never read).
    pub fn offset(&self, source: &str) -> Result<u64> {
        let o: Option<i64> = self
            .conn
            .query_row(
                "SELECT offset FROM offsets WHERE source = ?1",
                [source],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.e())?;
        Ok(o.unwrap_or(0) as u64)
    }

    /// Whether each item is new to the store.
    pub fn unseen(&self, items: &[Item]) -> Result<Vec<bool>> {
        let mut q = self
            .conn
            .prepare_cached("SELECT 1 FROM items WHERE id = ?1")
            .map_err(self.e())?;
        items
            .iter()
            .map(|i| q.exists([&i.id]).map(|seen| !seen).map_err(self.e()))
            .collect()
    }

    /// Stores annotated items (ids already stored are skipped), adds them to their series'
    /// windows, and moves `source`'s offset to `offset`: one transaction. Returns how many
    /// items were new.
    pub fn record(
        &mut self,
        batch: &[(Item, Annotation)],
        source: &str,
        offset: u64,
    ) -> Result<usize> {
        let (width, path) = (self.width, self.path.clone());
        let e = |e| db_error(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        let mut added = 0;
        for (item, annotation) in batch {
            let json = serde_json::to_string(annotation).expect("serialises");
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO items (id, time, source, title, text, annotation)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![item.id, item.time, item.source, item.title, item.text, json],
                )
                .map_err(e)?;
            if inserted == 0 {
                continue;
            }
            added += 1;
            let negative = annotation.is_negative();
            let start = window_start(item.time, width);
            for series in series_of(annotation) {
                tx.execute(
                    "INSERT INTO memberships (series, item, time, negative) VALUES (?1, ?2, ?3, ?4)",
                    params![series, item.id, item.time, negative],
                )
                .map_err(e)?;
                tx.execute(
                    "INSERT INTO windows (series, start, count, negative, sentiment)
                     VALUES (?1, ?2, 1, ?3, ?4)
                     ON CONFLICT (series, start) DO UPDATE SET count = count + 1,
                       negative = negative + excluded.negative,
                       sentiment = sentiment + excluded.sentiment",
                    params![
                        series,
                        start,
                        i64::from(negative),
                        f64::from(annotation.score.unwrap_or(0.0))
                    ],
                )
                .map_err(e)?;
            }
        }
        tx.execute(
            "INSERT INTO offsets (source, offset) VALUES (?1, ?2)
             ON CONFLICT (source) DO UPDATE SET offset = excluded.offset",
            params![source, offset as i64],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(added)
    }

    /// Closes every open window that ends at or before `until` (Unix seconds), oldest first:
    /// each is judged against its series' baseline by `rule`, and a spike becomes an alert.
    /// One transaction. Returns the new alerts.
    pub fn close_windows(&mut self, until: i64, rule: &SpikeRule) -> Result<Vec<Alert>> {
        let (width, path) = (self.width, self.path.clone());
        let e = |e| db_error(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        let open: Vec<(String, Window)> = {
            let mut q = tx
                .prepare(
                    "SELECT series, start, count, negative, sentiment FROM windows
                     WHERE closed = 0 AND start + ?1 <= ?2 ORDER BY start, series",
                )
                .map_err(e)?;
            let rows = q
                .query_map(params![width, until], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        Window {
                            start: r.get(1)?,
                            count: r.get::<_, i64>(2)? as usize,
                            negative: r.get::<_, i64>(3)? as usize,
                            sentiment: r.get(4)?,
                            negative_items: Vec::new(),
                        },
                    ))
                })
                .map_err(e)?;
            rows.collect::<std::result::Result<_, _>>().map_err(e)?
        };
        let mut alerts = Vec::new();
        for (series, window) in open {
            let state: Option<String> = tx
                .query_row(
                    "SELECT state FROM baselines WHERE series = ?1",
                    [&series],
                    |r| r.get(0),
                )
                .optional()
                .map_err(e)?;
            let mut baseline: Baseline = match state {
                Some(s) => serde_json::from_str(&s).map_err(|err| {
                    Error::file(&path, format!("the baseline of {series} is corrupt: {err}"))
                })?,
                None => Baseline::default(),
            };
            if let Some(spike) = baseline.judge(&window, rule, width) {
                let mut q = tx
                    .prepare_cached(
                        "SELECT item FROM memberships WHERE series = ?1 AND negative = 1
                         AND time >= ?2 AND time < ?3 ORDER BY time, item",
                    )
                    .map_err(e)?;
                let items = q
                    .query_map(params![series, window.start, window.start + width], |r| {
                        r.get::<_, String>(0)
                    })
                    .map_err(e)?
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(e)?;
                let alert = Alert {
                    time: format_time(window.start),
                    series: series.clone(),
                    metric: "negative_share".into(),
                    value: spike.value,
                    baseline: spike.baseline,
                    z: spike.z,
                    count: window.count,
                    items,
                };
                tx.execute(
                    "INSERT OR IGNORE INTO alerts (series, start, metric, alert) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        series,
                        window.start,
                        alert.metric,
                        serde_json::to_string(&alert).expect("serialises")
                    ],
                )
                .map_err(e)?;
                alerts.push(alert);
            }
            tx.execute(
                "INSERT INTO baselines (series, state) VALUES (?1, ?2)
                 ON CONFLICT (series) DO UPDATE SET state = excluded.state",
                params![
                    series,
                    serde_json::to_string(&baseline).expect("serialises")
                ],
            )
            .map_err(e)?;
            tx.execute(
                "UPDATE windows SET closed = 1 WHERE series = ?1 AND start = ?2",
                params![series, window.start],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(alerts)
    }

    /// Alerts not yet written to the alerts file, oldest first.
    pub fn unemitted(&self) -> Result<Vec<(String, i64, String, Alert)>> {
        let mut q = self
            .conn
            .prepare("SELECT series, start, metric, alert FROM alerts WHERE emitted = 0 ORDER BY start, series")
            .map_err(self.e())?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(self.e())?;
        let mut out = Vec::new();
        for row in rows {
            let (series, start, metric, json) = row.map_err(self.e())?;
            let alert = serde_json::from_str(&json)
                .map_err(|e| Error::file(&self.path, format!("a stored alert is corrupt: {e}")))?;
            out.push((series, start, metric, alert));
        }
        Ok(out)
    }

    /// Marks an alert as written.
    pub fn mark_emitted(&self, series: &str, start: i64, metric: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE alerts SET emitted = 1 WHERE series = ?1 AND start = ?2 AND metric = ?3",
                params![series, start, metric],
            )
            .map_err(self.e())?;
        Ok(())
    }

    /// Items stored.
    pub fn items(&self) -> Result<usize> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM items", [], |r| r.get(0))
            .map_err(self.e())?;
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: usize, time: i64) -> Item {
        Item {
            id: format!("n{id}"),
            time,
            text: "x".into(),
            title: None,
            source: None,
        }
    }

    fn annotation(negative: bool, topic: &str) -> Annotation {
        Annotation {
            sentiment: Some(if negative { "negative" } else { "neutral" }.into()),
            negative: Some(if negative { 0.9 } else { 0.1 }),
            score: Some(if negative { -0.8 } else { 0.0 }),
            topics: vec![topic.into()],
            entities: Vec::new(),
        }
    }

    /// Ten quiet windows of ten items (two negative), then one of eight negative: one alert,
    /// for "all" and for the topic the burst is about, listing the burst's negative items; a
    /// batch recorded twice counts once.
    #[test]
    fn a_burst_is_alerted_once_with_its_items() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("m.db"), 60).unwrap();
        let mut n = 0;
        let mut batch = Vec::new();
        for w in 0..11 {
            let negatives = if w == 10 { 8 } else { 2 };
            for i in 0..10 {
                let topic = if w == 10 {
                    "crude"
                } else {
                    ["crude", "grain"][i % 2]
                };
                batch.push((item(n, w * 60 + i as i64), annotation(i < negatives, topic)));
                n += 1;
            }
        }
        assert_eq!(store.record(&batch, "f", 10).unwrap(), 110);
        assert_eq!(store.record(&batch, "f", 20).unwrap(), 0, "stored twice");
        assert_eq!(store.offset("f").unwrap(), 20);
        let rule = SpikeRule::default();
        // The clock at the burst's window start: it stays open.
        assert!(store.close_windows(600, &rule).unwrap().is_empty());
        let alerts = store.close_windows(i64::MAX - 60, &rule).unwrap();
        let series: Vec<&str> = alerts.iter().map(|a| a.series.as_str()).collect();
        assert_eq!(series, ["all", "topic:crude"], "{alerts:?}");
        let all = &alerts[0];
        assert_eq!(all.time, "1970-01-01T00:10:00Z");
        assert_eq!((all.count, all.value), (10, 0.8));
        assert_eq!(
            all.items,
            (100..108).map(|i| format!("n{i}")).collect::<Vec<_>>()
        );
        // Closing again finds nothing new; the alerts wait to be written once.
        assert!(store
            .close_windows(i64::MAX - 60, &rule)
            .unwrap()
            .is_empty());
        assert_eq!(store.unemitted().unwrap().len(), 2);
        let store = Store::open(&dir.path().join("m.db"), 60).unwrap();
        assert_eq!(store.items().unwrap(), 110);
        let e = Store::open(&dir.path().join("m.db"), 600)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("windows of 60 s, not 600 s"), "{e}");
    }
}
