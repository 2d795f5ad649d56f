//! Alerts to Prometheus Alertmanager (`POST /api/v2/alerts`, its JSON), which routes them on
//! to Slack, PagerDuty or e-mail. Each alert is labelled `alertname="PositioNegativeSpike"`,
//! `series`, `metric` and `severity="warning"`, annotated with a summary, the numbers and the
//! items behind it, and lasts from its window's start until its cool-down ends (`endsAt`).
//! The store remembers what Alertmanager has accepted (a 2xx answer): an alert it could not
//! take is logged and sent again with the next batch; Alertmanager itself merges repeats of an
//! alert with the same labels.

use super::item::format_time;
use super::store::{Alert, Delivery, Store};
use crate::Result;
use serde_json::{json, Value};
use std::time::Duration;

/// At most this many item ids go into an alert's annotations.
const MAX_ITEMS: usize = 50;

/// An Alertmanager to push alerts to.
pub struct Alertmanager {
    /// `…/api/v2/alerts`.
    endpoint: String,
    agent: ureq::Agent,
}

impl Alertmanager {
    /// `base` is Alertmanager's address, e.g. `http://127.0.0.1:9093`.
    pub fn new(base: &str) -> Alertmanager {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Alertmanager {
            endpoint: format!("{}/api/v2/alerts", base.trim_end_matches('/')),
            agent,
        }
    }

    /// The postable alert of `alert`, whose window starts at `start` and is `width` seconds
    /// wide; it ends when `cooldown` more windows have passed.
    fn postable(alert: &Alert, start: i64, width: i64, cooldown: u32) -> Value {
        let shown = &alert.items[..alert.items.len().min(MAX_ITEMS)];
        json!({
            "labels": {
                "alertname": "PositioNegativeSpike",
                "series": alert.series,
                "metric": alert.metric,
                "severity": "warning",
            },
            "annotations": {
                "summary": format!(
                    "{} {:.2} in {} (baseline {:.2}, z {:.1}, {} items)",
                    alert.metric, alert.value, alert.series, alert.baseline, alert.z, alert.count
                ),
                "value": format!("{}", alert.value),
                "baseline": format!("{}", alert.baseline),
                "z": format!("{}", alert.z),
                "count": alert.count.to_string(),
                "items": shown.join(" "),
            },
            "startsAt": format_time(start),
            "endsAt": format_time(start + width * (1 + i64::from(cooldown))),
        })
    }

    /// Sends every alert Alertmanager has not accepted yet; returns how many it accepted. A
    /// failure is logged and left for the next call.
    pub fn push(&self, store: &Store, width: i64, cooldown: u32) -> Result<usize> {
        let pending = store.undelivered(Delivery::Alertmanager)?;
        if pending.is_empty() {
            return Ok(0);
        }
        let body: Vec<Value> = pending
            .iter()
            .map(|(_, start, _, a)| Self::postable(a, *start, width, cooldown))
            .collect();
        let json = serde_json::to_vec(&body).expect("serialises");
        match self
            .agent
            .post(&self.endpoint)
            .header("content-type", "application/json")
            .send(&json[..])
        {
            Ok(_) => {
                for (series, start, metric, _) in &pending {
                    store.mark_delivered(Delivery::Alertmanager, series, *start, metric)?;
                }
                Ok(pending.len())
            }
            Err(e) => {
                tracing::warn!(
                    "Alertmanager {}: {e}; {} alerts will be sent again",
                    self.endpoint,
                    pending.len()
                );
                Ok(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};

    /// Answers one request with `status`; hands back its request line and body.
    fn answer_once(status: u16) -> (String, std::thread::JoinHandle<(String, String)>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut request, mut length) = (String::new(), 0);
            reader.read_line(&mut request).unwrap();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap();
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let reply =
                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            stream.write_all(reply.as_bytes()).unwrap();
            (request, String::from_utf8(body).unwrap())
        });
        (url, handle)
    }

    /// A refused push leaves the alerts pending; an accepted one posts Alertmanager's JSON and
    /// marks them, so the next push sends nothing.
    #[test]
    fn alerts_are_posted_until_alertmanager_accepts_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::monitor::store::tests::store_with_a_burst(dir.path());
        let (url, server) = answer_once(500);
        assert_eq!(Alertmanager::new(&url).push(&store, 60, 3).unwrap(), 0);
        server.join().unwrap();
        let (url, server) = answer_once(200);
        let am = Alertmanager::new(&format!("{url}/"));
        assert_eq!(am.push(&store, 60, 3).unwrap(), 2);
        let (request, body) = server.join().unwrap();
        assert!(request.starts_with("POST /api/v2/alerts "), "{request}");
        let alerts: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(alerts.len(), 2);
        let a = &alerts[0];
        assert_eq!(a["labels"]["alertname"], "PositioNegativeSpike");
        assert_eq!(a["labels"]["series"], "all");
        assert_eq!(a["startsAt"], "1970-01-01T00:10:00Z");
        assert_eq!(a["endsAt"], "1970-01-01T00:14:00Z");
        assert_eq!(
            a["annotations"]["items"],
            "n100 n101 n102 n103 n104 n105 n106 n107"
        );
        assert!(a["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("negative_share 0.74 in all (baseline"));
        assert_eq!(alerts[1]["labels"]["series"], "topic:crude");
        assert_eq!(am.push(&store, 60, 3).unwrap(), 0, "sent twice");
    }
}
