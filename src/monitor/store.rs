//! The monitor's memory, one SQLite file (WAL): every item with its annotation, the series
//! each item belongs to, the windows of each series, each series' baseline, the alerts, and
//! each source's offset. A batch of items, the window counts they add and the source's offset
//! are one transaction, and an item already stored is skipped by id: a replayed or resumed
//! stream never counts an item twice, and a killed monitor loses nothing it acknowledged.
//!
//! A window keeps both counts of its negatives (items called negative, summed P(negative));
//! the store records which one its baselines learned ([`Negatives`]) and refuses a run that
//! counts the other way. A store made before the sum was kept gets it added from its items'
//! annotations, and counts by argmax as it always did.
//!
//! Entities are many and mostly rare, so only the `top_entities` entities by volume (items
//! naming them, all time) get their windows judged, alerts and metrics; the windows of the
//! others are closed unjudged (their items and memberships are still stored).

use super::annotate::Annotation;
use super::item::{format_time, Item};
use super::trends::{window_start, Baseline, Negatives, SpikeRule, Window};
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
    expected REAL NOT NULL DEFAULT 0, expected_squares REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (series, start));
CREATE TABLE IF NOT EXISTS baselines (series TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    series TEXT NOT NULL, start INTEGER NOT NULL, metric TEXT NOT NULL, alert TEXT NOT NULL,
    emitted INTEGER NOT NULL DEFAULT 0, pushed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (series, start, metric));
CREATE TABLE IF NOT EXISTS volumes (series TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS offsets (
    source TEXT PRIMARY KEY, offset INTEGER NOT NULL, line INTEGER NOT NULL);
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

/// A window closed by [`Store::close_windows`], with the baseline it was judged against.
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    pub series: String,
    pub window: Window,
    /// The series' usual negative rate before this window.
    pub baseline: f64,
}

/// Where alerts go: each keeps its own record of what it has been given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The alerts file.
    File,
    /// Alertmanager.
    Alertmanager,
}

impl Delivery {
    fn column(self) -> &'static str {
        match self {
            Delivery::File => "emitted",
            Delivery::Alertmanager => "pushed",
        }
    }
}

/// The store of one monitor.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Window width in seconds.
    width: i64,
    /// How its windows' negatives are counted.
    negatives: Negatives,
}

/// A value of the `meta` table.
fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

/// How the store at `path` counts negatives, as its `meta` records it (a store from before
/// the choice counted by argmax).
fn recorded_negatives(conn: &Connection, path: &Path) -> Result<Negatives> {
    let Some(name) = meta(conn, "negatives").map_err(|e| db_error(path, e))? else {
        return Ok(Negatives::Argmax);
    };
    [Negatives::Expected, Negatives::Argmax]
        .into_iter()
        .find(|n| n.name() == name)
        .ok_or_else(|| {
            Error::file(
                path,
                format!("counts negatives by {name:?}, which this positio does not know"),
            )
        })
}

/// Adds the `expected` and `expected_squares` columns to a store made before them, filled from
/// the items' P(negative).
fn add_expected_columns(conn: &Connection, width: i64) -> rusqlite::Result<()> {
    let has: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('windows') WHERE name = 'expected'")?
        .exists([])?;
    if has {
        return Ok(());
    }
    conn.execute_batch(
        "BEGIN;
         ALTER TABLE windows ADD COLUMN expected REAL NOT NULL DEFAULT 0;
         ALTER TABLE windows ADD COLUMN expected_squares REAL NOT NULL DEFAULT 0;",
    )?;
    // One pass over the memberships, grouped by window (the start as `window_start` computes
    // it, flooring times before 1970 too), then one update per window.
    conn.execute(
        "WITH p AS (
             SELECT m.series, m.time - ((m.time % ?1) + ?1) % ?1 AS start,
                    coalesce(json_extract(i.annotation, '$.negative'), 0) AS x
             FROM memberships m JOIN items i ON i.id = m.item),
         s AS (SELECT series, start, sum(x) AS e, sum(x * x) AS e2 FROM p GROUP BY series, start)
         UPDATE windows SET expected = s.e, expected_squares = s.e2
         FROM s WHERE s.series = windows.series AND s.start = windows.start",
        [width],
    )?;
    conn.execute_batch("COMMIT;")
}

fn db_error(path: &Path, e: rusqlite::Error) -> Error {
    Error::file(path, format!("SQLite: {e}"))
}

/// The window in columns `at..at + 5` of a row: start, count, Σx, Σx², sentiment.
fn window_of_row(r: &rusqlite::Row, at: usize) -> rusqlite::Result<Window> {
    Ok(Window {
        start: r.get(at)?,
        count: r.get::<_, i64>(at + 1)? as usize,
        negative: r.get(at + 2)?,
        squares: r.get(at + 3)?,
        sentiment: r.get(at + 4)?,
    })
}

/// The series an annotated item belongs to.
pub fn series_of(annotation: &Annotation) -> Vec<String> {
    let mut series = vec!["all".to_string()];
    series.extend(annotation.topics.iter().map(|t| format!("topic:{t}")));
    series.extend(annotation.entities.iter().map(|e| format!("entity:{e}")));
    series
}

impl Store {
    /// Opens (or creates) the store; a store made with another window width, or counting
    /// negatives the other way, is refused.
    pub fn open(path: &Path, width: i64, negatives: Negatives) -> Result<Store> {
        let e = |e| db_error(path, e);
        let conn = Connection::open(path).map_err(e)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        conn.execute_batch(SCHEMA).map_err(e)?;
        match meta(&conn, "window").map_err(e)? {
            Some(w) if w != width.to_string() => {
                return Err(Error::file(
                    path,
                    format!("this store has windows of {w} s, not {width} s: use another store"),
                ))
            }
            Some(_) => {
                add_expected_columns(&conn, width).map_err(e)?;
                let counted = recorded_negatives(&conn, path)?.name();
                if counted != negatives.name() {
                    return Err(Error::file(
                        path,
                        format!(
                            "this store counts negatives by {counted}, not {}: pass \
                             --negatives {counted} or use another store",
                            negatives.name()
                        ),
                    ));
                }
            }
            None => {}
        }
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('window', ?1), ('negatives', ?2)",
            [width.to_string(), negatives.name().to_string()],
        )
        .map_err(e)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            width,
            negatives,
        })
    }

    /// Opens an existing store to read it (a report), with the window width it was made with.
    pub fn open_existing(path: &Path) -> Result<Store> {
        if !path.is_file() {
            return Err(Error::file(path, "no such monitor store"));
        }
        let e = |e| db_error(path, e);
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(e)?;
        let not_a_store = || Error::file(path, "not a monitor store (no window width in it)");
        let width = meta(&conn, "window")
            .map_err(|_| not_a_store())?
            .and_then(|w| w.parse().ok())
            .ok_or_else(not_a_store)?;
        let negatives = recorded_negatives(&conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            width,
            negatives,
        })
    }

    /// How the store counts negatives.
    pub fn negatives(&self) -> Negatives {
        self.negatives
    }

    /// The columns of `windows` that hold Σx and Σx² as this store counts negatives.
    fn negative_columns(&self) -> &'static str {
        match self.negatives {
            Negatives::Expected => "expected, expected_squares",
            Negatives::Argmax => "negative, negative",
        }
    }

    /// Window width in seconds.
    pub fn width(&self) -> i64 {
        self.width
    }

    fn e(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        |e| db_error(&self.path, e)
    }

    /// Where reading `source` goes on: (byte offset, line number), both 0 when never read.
    pub fn position(&self, source: &str) -> Result<(u64, u64)> {
        let o: Option<(i64, i64)> = self
            .conn
            .query_row(
                "SELECT offset, line FROM offsets WHERE source = ?1",
                [source],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.e())?;
        let (offset, line) = o.unwrap_or((0, 0));
        Ok((offset as u64, line as u64))
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
    /// windows, and moves `source`'s position to `(offset, line)`: one transaction. Returns
    /// how many items were new.
    pub fn record(
        &mut self,
        batch: &[(Item, Annotation)],
        source: &str,
        (offset, line): (u64, u64),
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
                if series.starts_with("entity:") {
                    tx.execute(
                        "INSERT INTO volumes (series, count) VALUES (?1, 1)
                         ON CONFLICT (series) DO UPDATE SET count = count + 1",
                        [&series],
                    )
                    .map_err(e)?;
                }
                tx.execute(
                    "INSERT INTO memberships (series, item, time, negative) VALUES (?1, ?2, ?3, ?4)",
                    params![series, item.id, item.time, negative],
                )
                .map_err(e)?;
                tx.execute(
                    "INSERT INTO windows
                       (series, start, count, negative, sentiment, expected, expected_squares)
                     VALUES (?1, ?2, 1, ?3, ?4, ?5, ?5 * ?5)
                     ON CONFLICT (series, start) DO UPDATE SET count = count + 1,
                       negative = negative + excluded.negative,
                       sentiment = sentiment + excluded.sentiment,
                       expected = expected + excluded.expected,
                       expected_squares = expected_squares + excluded.expected_squares",
                    params![
                        series,
                        start,
                        i64::from(negative),
                        f64::from(annotation.score.unwrap_or(0.0)),
                        f64::from(annotation.negative.unwrap_or(0.0))
                    ],
                )
                .map_err(e)?;
            }
        }
        tx.execute(
            "INSERT INTO offsets (source, offset, line) VALUES (?1, ?2, ?3)
             ON CONFLICT (source) DO UPDATE SET offset = excluded.offset, line = excluded.line",
            params![source, offset as i64, line as i64],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(added)
    }

    /// The `n` entity series with the most items, most first.
    pub fn top_entities(&self, n: usize) -> Result<Vec<String>> {
        let mut q = self
            .conn
            .prepare_cached("SELECT series FROM volumes ORDER BY count DESC, series LIMIT ?1")
            .map_err(self.e())?;
        let rows = q.query_map([n as i64], |r| r.get(0)).map_err(self.e())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.e())
    }

    /// Closes every open window that ends at or before `until` (Unix seconds), oldest first:
    /// each is judged against its series' baseline by `rule`, and a spike becomes an alert
    /// (stored, to be written by the caller). Entity series not in `top` (from
    /// [`Store::top_entities`]) are closed unjudged. One transaction. Returns the judged
    /// windows, oldest first.
    pub fn close_windows(
        &mut self,
        until: i64,
        rule: &SpikeRule,
        top: &[String],
    ) -> Result<Vec<Closed>> {
        let (width, path) = (self.width, self.path.clone());
        let columns = self.negative_columns();
        let e = |e| db_error(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        let open: Vec<(String, Window)> = {
            let mut q = tx
                .prepare(&format!(
                    "SELECT series, start, count, {columns}, sentiment FROM windows
                     WHERE closed = 0 AND start + ?1 <= ?2 ORDER BY start, series"
                ))
                .map_err(e)?;
            let rows = q
                .query_map(params![width, until], |r| {
                    Ok((r.get::<_, String>(0)?, window_of_row(r, 1)?))
                })
                .map_err(e)?;
            rows.collect::<std::result::Result<_, _>>().map_err(e)?
        };
        let mut closed = Vec::new();
        for (series, window) in open {
            tx.execute(
                "UPDATE windows SET closed = 1 WHERE series = ?1 AND start = ?2",
                params![series, window.start],
            )
            .map_err(e)?;
            if series.starts_with("entity:") && !top.contains(&series) {
                continue;
            }
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
            let before = baseline.rate();
            if let Some(spike) = baseline.judge(&window, rule, width) {
                // The items behind the spike: those called negative, or, counting expected
                // negatives, those more likely negative than the series usually is.
                let above = (self.negatives == Negatives::Expected).then_some(before);
                let mut q = tx
                    .prepare_cached(
                        "SELECT m.item FROM memberships m JOIN items i ON i.id = m.item
                         WHERE m.series = ?1 AND m.time >= ?2 AND m.time < ?3 AND CASE
                           WHEN ?4 IS NULL THEN m.negative = 1
                           ELSE json_extract(i.annotation, '$.negative') > ?4 END
                         ORDER BY m.time, m.item",
                    )
                    .map_err(e)?;
                let span = (window.start, window.start + width);
                let items = q
                    .query_map(params![series, span.0, span.1, above], |r| {
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
            closed.push(Closed {
                series,
                window,
                baseline: before,
            });
        }
        tx.commit().map_err(e)?;
        Ok(closed)
    }

    /// Alerts not yet delivered to `to`, oldest first.
    pub fn undelivered(&self, to: Delivery) -> Result<Vec<(String, i64, String, Alert)>> {
        let mut q = self
            .conn
            .prepare(&format!(
                "SELECT series, start, metric, alert FROM alerts WHERE {} = 0 ORDER BY start, series",
                to.column()
            ))
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

    /// Marks an alert as delivered to `to`.
    pub fn mark_delivered(
        &self,
        to: Delivery,
        series: &str,
        start: i64,
        metric: &str,
    ) -> Result<()> {
        self.conn
            .execute(
                &format!(
                    "UPDATE alerts SET {} = 1 WHERE series = ?1 AND start = ?2 AND metric = ?3",
                    to.column()
                ),
                params![series, start, metric],
            )
            .map_err(self.e())?;
        Ok(())
    }

    /// Every series with its item count, largest first (`all` leads).
    pub fn series(&self) -> Result<Vec<(String, usize)>> {
        let mut q = self
            .conn
            .prepare(
                "SELECT series, sum(count) AS n FROM windows GROUP BY series
                 ORDER BY series != 'all', n DESC, series",
            )
            .map_err(self.e())?;
        let rows = q
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))
            .map_err(self.e())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.e())
    }

    /// The windows of one series, oldest first.
    pub fn windows_of(&self, series: &str) -> Result<Vec<Window>> {
        let mut q = self
            .conn
            .prepare_cached(&format!(
                "SELECT start, count, {}, sentiment FROM windows WHERE series = ?1
                 ORDER BY start",
                self.negative_columns()
            ))
            .map_err(self.e())?;
        let rows = q
            .query_map([series], |r| window_of_row(r, 0))
            .map_err(self.e())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.e())
    }

    /// Every alert with its window's start, oldest first.
    pub fn alerts(&self) -> Result<Vec<(i64, Alert)>> {
        let mut q = self
            .conn
            .prepare("SELECT start, alert FROM alerts ORDER BY start, series")
            .map_err(self.e())?;
        let rows = q
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(self.e())?;
        let mut out = Vec::new();
        for row in rows {
            let (start, json) = row.map_err(self.e())?;
            let alert = serde_json::from_str(&json)
                .map_err(|e| Error::file(&self.path, format!("a stored alert is corrupt: {e}")))?;
            out.push((start, alert));
        }
        Ok(out)
    }

    /// A stored item and its annotation, by id.
    pub fn item(&self, id: &str) -> Result<Option<(Item, Annotation)>> {
        let row: Option<(Item, String)> = self
            .conn
            .query_row(
                "SELECT time, source, title, text, annotation FROM items WHERE id = ?1",
                [id],
                |r| {
                    let item = Item {
                        id: id.to_string(),
                        time: r.get(0)?,
                        source: r.get(1)?,
                        title: r.get(2)?,
                        text: r.get(3)?,
                    };
                    Ok((item, r.get(4)?))
                },
            )
            .optional()
            .map_err(self.e())?;
        let Some((item, annotation)) = row else {
            return Ok(None);
        };
        let annotation = serde_json::from_str(&annotation).map_err(|e| {
            Error::file(
                &self.path,
                format!("the annotation of {id} is corrupt: {e}"),
            )
        })?;
        Ok(Some((item, annotation)))
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
pub(crate) mod tests {
    use super::*;

    /// A store (60 s windows) whose windows are closed with two alerts, on "all" and
    /// "topic:crude" at 00:10, for eight negative items n100..n107.
    pub(crate) fn store_with_a_burst(dir: &Path) -> Store {
        let mut store = Store::open(&dir.join("m.db"), 60, Negatives::Expected).unwrap();
        store.record(&burst(), "f", (1, 1)).unwrap();
        store
            .close_windows(i64::MAX - 60, &SpikeRule::default(), &[])
            .unwrap();
        store
    }

    /// Ten quiet windows of ten items (two negative, topics crude and grain), then a window of
    /// ten crude items, eight negative.
    fn burst() -> Vec<(Item, Annotation)> {
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
        batch
    }

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

    /// Only the top entities by volume get judged windows; the others' windows close unjudged.
    #[test]
    fn only_the_top_entities_are_judged() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("m.db"), 60, Negatives::Expected).unwrap();
        let mut batch = Vec::new();
        for (i, names) in [
            vec!["OPEC", "Iran"],
            vec!["OPEC"],
            vec!["OPEC", "Texaco"],
            vec!["Iran"],
        ]
        .into_iter()
        .enumerate()
        {
            let mut a = annotation(false, "crude");
            a.entities = names.into_iter().map(String::from).collect();
            batch.push((item(i, i as i64), a));
        }
        store.record(&batch, "f", (1, 1)).unwrap();
        let top = store.top_entities(2).unwrap();
        assert_eq!(top, ["entity:OPEC", "entity:Iran"]);
        let judged: Vec<String> = store
            .close_windows(i64::MAX - 60, &SpikeRule::default(), &top)
            .unwrap()
            .into_iter()
            .map(|c| c.series)
            .collect();
        assert_eq!(judged, ["all", "entity:Iran", "entity:OPEC", "topic:crude"]);
        let open: i64 = store
            .conn
            .query_row("SELECT count(*) FROM windows WHERE closed = 0", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(open, 0, "Texaco's window stays open");
    }

    /// Ten quiet windows of ten items (two negative), then one of eight negative: one alert,
    /// for "all" and for the topic the burst is about, listing the burst's negative items; a
    /// batch recorded twice counts once.
    #[test]
    fn a_burst_is_alerted_once_with_its_items() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("m.db"), 60, Negatives::Expected).unwrap();
        let batch = burst();
        assert_eq!(store.record(&batch, "f", (10, 1)).unwrap(), 110);
        assert_eq!(
            store.record(&batch, "f", (20, 2)).unwrap(),
            0,
            "stored twice"
        );
        assert_eq!(store.position("f").unwrap(), (20, 2));
        let rule = SpikeRule::default();
        // The clock at the burst's window start: it stays open.
        let closed = store.close_windows(600, &rule, &[]).unwrap();
        assert_eq!(closed.len(), 30, "all, crude and grain for ten windows");
        assert!(store.undelivered(Delivery::File).unwrap().is_empty());
        assert_eq!(
            store
                .close_windows(i64::MAX - 60, &rule, &[])
                .unwrap()
                .len(),
            2
        );
        let alerts: Vec<Alert> = store
            .undelivered(Delivery::File)
            .unwrap()
            .into_iter()
            .map(|a| a.3)
            .collect();
        let series: Vec<&str> = alerts.iter().map(|a| a.series.as_str()).collect();
        assert_eq!(series, ["all", "topic:crude"], "{alerts:?}");
        let all = &alerts[0];
        assert_eq!(all.time, "1970-01-01T00:10:00Z");
        // Eight items at P(negative) 0.9 and two at 0.1: 7.4 expected negatives of ten.
        assert_eq!(all.count, 10);
        assert!((all.value - 0.74).abs() < 1e-6, "{all:?}");
        assert_eq!(
            all.items,
            (100..108).map(|i| format!("n{i}")).collect::<Vec<_>>()
        );
        // Closing again finds nothing new; each delivery keeps its own record.
        assert!(store
            .close_windows(i64::MAX - 60, &rule, &[])
            .unwrap()
            .is_empty());
        store
            .mark_delivered(Delivery::File, "all", 600, "negative_share")
            .unwrap();
        assert_eq!(store.undelivered(Delivery::File).unwrap().len(), 1);
        assert_eq!(store.undelivered(Delivery::Alertmanager).unwrap().len(), 2);
        let store = Store::open(&dir.path().join("m.db"), 60, Negatives::Expected).unwrap();
        assert_eq!(store.items().unwrap(), 110);
        let e = Store::open(&dir.path().join("m.db"), 600, Negatives::Expected)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("windows of 60 s, not 600 s"), "{e}");
        let e = Store::open(&dir.path().join("m.db"), 60, Negatives::Argmax)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("m.db") && e.contains("counts negatives by expected, not argmax"),
            "{e}"
        );
    }

    /// A burst the sentiment model half-believes (P(negative) 0.45, called neutral) after
    /// quiet windows (P(negative) 0.05, one item in ten called negative): counting expected
    /// negatives alerts on it, counting argmax-negative items cannot.
    #[test]
    fn expected_negatives_see_what_the_model_half_believes() {
        let mut batch = Vec::new();
        for w in 0..11 {
            for i in 0..10 {
                let n = w * 10 + i;
                let mut a = annotation(w < 10 && i == 0, "crude");
                a.negative = Some(match (w, i) {
                    (10, _) => 0.48,
                    (_, 0) => 0.9,
                    _ => 0.02,
                });
                batch.push((item(n, w as i64 * 60 + i as i64), a));
            }
        }
        let alerts = |negatives| {
            let dir = tempfile::tempdir().unwrap();
            let mut store = Store::open(&dir.path().join("m.db"), 60, negatives).unwrap();
            store.record(&batch, "f", (1, 1)).unwrap();
            let rule = SpikeRule {
                negatives,
                ..SpikeRule::default()
            };
            store.close_windows(i64::MAX - 60, &rule, &[]).unwrap();
            store.alerts().unwrap()
        };
        let found = alerts(Negatives::Expected);
        let series: Vec<(i64, &str)> = found.iter().map(|(t, a)| (*t, a.series.as_str())).collect();
        assert_eq!(series, [(600, "all"), (600, "topic:crude")]);
        // The alert lists the items more likely negative than the usual rate: the burst's ten.
        let all = &found[0].1;
        assert!((all.value - 0.48).abs() < 1e-6, "{all:?}");
        assert_eq!(
            all.items,
            (100..110).map(|i| format!("n{i}")).collect::<Vec<_>>()
        );
        assert_eq!(alerts(Negatives::Argmax), []);
    }

    /// A store made before the expected count was kept (no `expected` column, no record of
    /// how it counts) counts by argmax, gets the column filled from its items' annotations,
    /// and refuses to be run counting the other way.
    #[test]
    fn a_store_from_before_gets_its_expected_counts_and_keeps_counting_by_argmax() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let conn = Connection::open(&path).unwrap();
        let old_schema = SCHEMA.replace(
            "expected REAL NOT NULL DEFAULT 0, expected_squares REAL NOT NULL DEFAULT 0,\n    ",
            "",
        );
        assert_ne!(old_schema, SCHEMA);
        conn.execute_batch(&old_schema).unwrap();
        conn.execute_batch(
            r#"INSERT INTO meta VALUES ('window', '60');
            INSERT INTO items VALUES ('a', 5, NULL, NULL, 'x', '{"negative":0.75,"topics":[],"entities":[]}');
            INSERT INTO items VALUES ('b', 7, NULL, NULL, 'y', '{"negative":0.5,"topics":[],"entities":[]}');
            INSERT INTO items VALUES ('c', 65, NULL, NULL, 'z', '{"topics":[],"entities":[]}');
            INSERT INTO items VALUES ('d', -5, NULL, NULL, 'w', '{"negative":0.5,"topics":[],"entities":[]}');
            INSERT INTO memberships VALUES ('all', 'a', 5, 1), ('all', 'b', 7, 0), ('all', 'c', 65, 0),
                ('all', 'd', -5, 0);
            INSERT INTO windows (series, start, count, negative, sentiment)
                VALUES ('all', -60, 1, 0, 0.0), ('all', 0, 2, 1, -0.5), ('all', 60, 1, 0, 0.0);"#,
        )
        .unwrap();
        drop(conn);
        let e = Store::open(&path, 60, Negatives::Expected)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("counts negatives by argmax, not expected"),
            "{e}"
        );
        let store = Store::open(&path, 60, Negatives::Argmax).unwrap();
        let expected: Vec<(f64, f64)> = store
            .conn
            .prepare("SELECT expected, expected_squares FROM windows ORDER BY start")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(expected, [(0.5, 0.25), (1.25, 0.8125), (0.0, 0.0)]);
        let windows = store.windows_of("all").unwrap();
        let w = &windows[1];
        assert_eq!((w.count, w.negative, w.squares), (2, 1.0, 1.0));
        drop(store);
        let report = Store::open_existing(&path).unwrap();
        assert_eq!(report.negatives, Negatives::Argmax);
    }
}
