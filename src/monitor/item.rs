//! One item of a monitored stream, as a JSON line: `{"id": str, "time": RFC 3339, "text": str,
//! "title": str (optional), "source": str (optional)}`. A malformed line is an error naming its
//! origin and line; the monitor logs and counts it and goes on.

use crate::{Error, Result};
use std::path::Path;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A news item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    /// Seconds since the Unix epoch (UTC).
    pub time: i64,
    pub text: String,
    pub title: Option<String>,
    pub source: Option<String>,
}

impl Item {
    /// Parses line `line` (1-based) of `origin`.
    pub fn parse(origin: &Path, line: usize, json: &str) -> Result<Item> {
        let row: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| Error::line(origin, line, format!("not a JSON object: {e}")))?;
        let Some(obj) = row.as_object() else {
            return Err(Error::line(origin, line, "not a JSON object"));
        };
        let text_of = |key: &str, required: bool| -> Result<Option<String>> {
            match obj.get(key) {
                None | Some(serde_json::Value::Null) if !required => Ok(None),
                None | Some(serde_json::Value::Null) => {
                    Err(Error::line(origin, line, format!("no \"{key}\"")))
                }
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(Error::line(
                    origin,
                    line,
                    format!("\"{key}\" must be a string, got {other}"),
                )),
            }
        };
        let id = text_of("id", true)?.expect("required");
        if id.is_empty() {
            return Err(Error::line(origin, line, "empty \"id\""));
        }
        let stamp = text_of("time", true)?.expect("required");
        let time = OffsetDateTime::parse(&stamp, &Rfc3339)
            .map_err(|e| {
                Error::line(
                    origin,
                    line,
                    format!("\"time\" {stamp:?} is not RFC 3339 (1987-03-02T05:00:00Z): {e}"),
                )
            })?
            .unix_timestamp();
        Ok(Item {
            id,
            time,
            text: text_of("text", true)?.expect("required"),
            title: text_of("title", false)?,
            source: text_of("source", false)?,
        })
    }

    /// What the models read: the title and the text.
    pub fn content(&self) -> String {
        match &self.title {
            Some(t) if !t.trim().is_empty() => format!("{t}. {}", self.text),
            _ => self.text.clone(),
        }
    }
}

/// `t` (Unix seconds) as RFC 3339 in UTC, e.g. `1987-03-02T05:00:00Z`.
pub fn format_time(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_parse_and_bad_lines_name_their_line() {
        let p = Path::new("news.jsonl");
        let item = Item::parse(
            p,
            1,
            r#"{"id": "a1", "time": "1987-03-02T05:00:00Z", "text": "Oil rose.", "title": "Oil"}"#,
        )
        .unwrap();
        assert_eq!(item.time, 541_659_600);
        assert_eq!(item.content(), "Oil. Oil rose.");
        assert_eq!(format_time(item.time), "1987-03-02T05:00:00Z");
        let offset = Item::parse(
            p,
            1,
            r#"{"id": "a", "time": "1987-03-02T07:00:00+02:00", "text": ""}"#,
        )
        .unwrap();
        assert_eq!(offset.time, item.time);
        for (line, want) in [
            ("{", "news.jsonl:3: not a JSON object"),
            ("[1]", "news.jsonl:3: not a JSON object"),
            (
                r#"{"time": "1987-03-02T05:00:00Z", "text": "x"}"#,
                "news.jsonl:3: no \"id\"",
            ),
            (
                r#"{"id": "a", "time": "yesterday", "text": "x"}"#,
                "is not RFC 3339",
            ),
            (
                r#"{"id": "a", "time": "1987-03-02T05:00:00Z", "text": 3}"#,
                "\"text\" must be a string",
            ),
        ] {
            let e = Item::parse(p, 3, line).unwrap_err().to_string();
            assert!(e.contains(want), "{line}: {e}");
        }
    }
}
