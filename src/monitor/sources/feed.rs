//! RSS and Atom feeds polled over HTTP(S), the guide's crawler: each entry is an item (its id,
//! its published time or else its updated time, its title, its summary or content with HTML
//! tags removed, the feed's title as source). Parsing is `feed-rs`'s (RSS 0.9–2.0, Atom, JSON
//! Feed); fetching is `ureq`'s (rustls). A feed is fetched again only after `feed_poll`
//! seconds, with `If-None-Match` / `If-Modified-Since` so an unchanged feed costs one 304.
//! Entries are stored by id, so an entry seen in many fetches counts once. An entry without
//! a time is malformed (logged, counted). When following, a feed that cannot be fetched or
//! parsed is logged and tried again at the next poll; in a one-shot run it is an error.

use crate::monitor::item::Item;
use crate::monitor::Monitor;
use crate::{Error, Result};
use std::time::{Duration, Instant};

/// One polled feed.
pub(in crate::monitor) struct FeedReader {
    url: String,
    agent: ureq::Agent,
    /// Validators of the last answer, sent back so an unchanged feed is a 304.
    etag: Option<String>,
    last_modified: Option<String>,
    fetched: Option<Instant>,
}

/// Largest feed body read (bytes).
const MAX_FEED_BYTES: u64 = 32 << 20;

impl FeedReader {
    pub fn new(url: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .user_agent(concat!(
                "positio/",
                env!("CARGO_PKG_VERSION"),
                " (news monitor)"
            ))
            .build()
            .into();
        FeedReader {
            url: url.to_string(),
            agent,
            etag: None,
            last_modified: None,
            fetched: None,
        }
    }

    /// The feed's body, or `None` when it has not changed since the last fetch.
    fn fetch(&mut self) -> Result<Option<Vec<u8>>> {
        let mut request = self.agent.get(&self.url);
        if let Some(tag) = &self.etag {
            request = request.header("If-None-Match", tag);
        }
        if let Some(date) = &self.last_modified {
            request = request.header("If-Modified-Since", date);
        }
        let mut response = request
            .call()
            .map_err(|e| Error::file(&self.url, format!("fetching the feed: {e}")))?;
        if response.status() == 304 {
            return Ok(None);
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        self.etag = header("etag");
        self.last_modified = header("last-modified");
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_FEED_BYTES)
            .read_to_vec()
            .map_err(|e| Error::file(&self.url, format!("reading the feed: {e}")))?;
        Ok(Some(body))
    }

    /// Fetches the feed if `every` seconds have passed since the last fetch, and reads its
    /// entries. `follow`: a failure is logged and retried later instead of returned.
    pub fn read(&mut self, monitor: &mut Monitor, every: f64, follow: bool) -> Result<()> {
        if self
            .fetched
            .is_some_and(|t| t.elapsed() < Duration::from_secs_f64(every))
        {
            return Ok(());
        }
        self.fetched = Some(Instant::now());
        let items = match self.fetch().and_then(|body| match body {
            Some(body) => self.entries(monitor, &body).map(Some),
            None => Ok(None),
        }) {
            Ok(Some(items)) => items,
            Ok(None) => return Ok(()),
            Err(e) if follow => {
                tracing::warn!("{e}; trying again in {every} s");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for chunk in items.chunks(monitor.batch_size()) {
            monitor.batch(chunk.to_vec(), &self.url, 0, 0)?;
        }
        Ok(())
    }

    /// The items of a feed's body.
    fn entries(&self, monitor: &mut Monitor, body: &[u8]) -> Result<Vec<Item>> {
        let feed = feed_rs::parser::parse(body)
            .map_err(|e| Error::file(&self.url, format!("not an RSS or Atom feed: {e}")))?;
        let source = feed
            .title
            .as_ref()
            .map(text_of)
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| self.url.clone());
        let mut items = Vec::new();
        for (n, entry) in feed.entries.into_iter().enumerate() {
            let Some(time) = entry.published.or(entry.updated) else {
                monitor.malformed(&Error::file(
                    &self.url,
                    format!(
                        "entry {} ({:?}) has no published or updated time",
                        n + 1,
                        entry.id
                    ),
                ));
                continue;
            };
            let text = match (&entry.summary, &entry.content) {
                (Some(summary), _) => text_of(summary),
                (None, Some(content)) => content.body.as_deref().map_or(String::new(), |b| {
                    plain_text(b, is_html(content.content_type.as_ref()))
                }),
                (None, None) => String::new(),
            };
            let title = entry.title.as_ref().map(text_of).filter(|t| !t.is_empty());
            if text.is_empty() && title.is_none() {
                monitor.malformed(&Error::file(
                    &self.url,
                    format!(
                        "entry {} ({:?}) has neither text nor title",
                        n + 1,
                        entry.id
                    ),
                ));
                continue;
            }
            items.push(Item {
                id: entry.id,
                time: time.timestamp(),
                text,
                title,
                source: Some(source.clone()),
            });
        }
        Ok(items)
    }
}

fn is_html(media_type: &str) -> bool {
    media_type.contains("html")
}

/// A feed text as plain text.
fn text_of(text: &feed_rs::model::Text) -> String {
    plain_text(&text.content, is_html(text.content_type.as_ref()))
}

/// `text` with white space collapsed and, when it is HTML (feed summaries often are), its tags
/// removed and the common character references decoded.
fn plain_text(text: &str, html: bool) -> String {
    if !html {
        return text.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::plain_text;

    #[test]
    fn html_summaries_become_plain_text() {
        assert_eq!(
            plain_text(
                "<p>Oil <b>falls</b>&nbsp;3%</p>\n<br/>OPEC &amp; Saudi",
                true
            ),
            "Oil falls 3% OPEC & Saudi"
        );
        assert_eq!(plain_text("  a < b,   plain ", false), "a < b, plain");
    }
}
