//! The monitor's Prometheus metrics, served at `GET /metrics` on `--metrics-addr` so that a
//! Grafana dashboard can follow the trends: per series (`all`, each topic, the top entities;
//! the label set stays bounded because entities that leave the top are removed) the last closed
//! window's negative share, volume, mean sentiment and baseline; and counters of items read,
//! stored and malformed, alerts raised, and the annotation time per batch. The `prometheus`
//! crate keeps the numbers; a small axum server on its own thread answers scrapes.

use super::store::Closed;
use crate::{Error, Result};
use prometheus::{
    exponential_buckets, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, Opts,
    Registry, TextEncoder,
};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The monitor's metrics.
pub struct Metrics {
    registry: Registry,
    pub negative_share: GaugeVec,
    pub volume: GaugeVec,
    pub mean_sentiment: GaugeVec,
    pub baseline: GaugeVec,
    pub read: IntCounter,
    pub stored: IntCounter,
    pub malformed: IntCounter,
    pub alerts: IntCounter,
    pub annotate_seconds: Histogram,
    /// Event time of the newest item (Unix seconds).
    pub newest_item: Gauge,
    /// Series with gauges now.
    series: Mutex<HashSet<String>>,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let gauge = |name: &str, help: &str| {
            GaugeVec::new(Opts::new(name, help), &["series"]).expect("valid gauge")
        };
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid counter");
        let m = Metrics {
            registry: Registry::new(),
            negative_share: gauge(
                "positio_monitor_negative_share",
                "Negative share of the series' last closed window",
            ),
            volume: gauge(
                "positio_monitor_volume",
                "Items in the series' last closed window",
            ),
            mean_sentiment: gauge(
                "positio_monitor_mean_sentiment",
                "Mean P(positive) - P(negative) of the series' last closed window",
            ),
            baseline: gauge(
                "positio_monitor_negative_share_baseline",
                "The series' baseline negative share the last window was judged against",
            ),
            read: counter("positio_monitor_items_read_total", "Items read"),
            stored: counter(
                "positio_monitor_items_stored_total",
                "Items stored for the first time",
            ),
            malformed: counter(
                "positio_monitor_items_malformed_total",
                "Malformed items skipped",
            ),
            alerts: counter("positio_monitor_alerts_total", "Alerts raised"),
            annotate_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "positio_monitor_annotate_duration_seconds",
                    "Time to annotate one batch with every model",
                )
                .buckets(exponential_buckets(0.01, 2.0, 14).expect("valid buckets")),
            )
            .expect("valid histogram"),
            newest_item: Gauge::new(
                "positio_monitor_newest_item_time_seconds",
                "Event time of the newest item stored",
            )
            .expect("valid gauge"),
            series: Mutex::new(HashSet::new()),
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 10] = [
            Box::new(m.negative_share.clone()),
            Box::new(m.volume.clone()),
            Box::new(m.mean_sentiment.clone()),
            Box::new(m.baseline.clone()),
            Box::new(m.read.clone()),
            Box::new(m.stored.clone()),
            Box::new(m.malformed.clone()),
            Box::new(m.alerts.clone()),
            Box::new(m.annotate_seconds.clone()),
            Box::new(m.newest_item.clone()),
        ];
        for c in collectors {
            m.registry.register(c).expect("metric names are unique");
        }
        Arc::new(m)
    }

    /// Sets the gauges of each judged window (oldest first, so the newest stays), and drops
    /// the gauges of entity series no longer among `top_entities`.
    pub fn observe(&self, closed: &[Closed], top_entities: &[String]) {
        let mut series = self.series.lock().expect("not poisoned");
        for c in closed {
            let labels = [c.series.as_str()];
            self.negative_share
                .with_label_values(&labels)
                .set(c.window.negative_share());
            self.volume
                .with_label_values(&labels)
                .set(c.window.count as f64);
            self.mean_sentiment
                .with_label_values(&labels)
                .set(c.window.mean_sentiment());
            self.baseline.with_label_values(&labels).set(c.baseline);
            series.insert(c.series.clone());
        }
        let gone: Vec<String> = series
            .iter()
            .filter(|s| s.starts_with("entity:") && !top_entities.contains(s))
            .cloned()
            .collect();
        for s in gone {
            for g in [
                &self.negative_share,
                &self.volume,
                &self.mean_sentiment,
                &self.baseline,
            ] {
                let _ = g.remove_label_values(&[s.as_str()]);
            }
            series.remove(&s);
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Serves `GET /metrics` on `addr` from a thread of its own, for the life of the process.
    pub fn serve(self: &Arc<Self>, addr: &str) -> Result<std::net::SocketAddr> {
        let listener = std::net::TcpListener::bind(addr).map_err(|e| {
            Error::config("--metrics-addr", format!("cannot listen on {addr}: {e}"))
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::config("--metrics-addr", e.to_string()))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::config("--metrics-addr", e.to_string()))?;
        let metrics = self.clone();
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let app =
                        axum::Router::new().route(
                            "/metrics",
                            axum::routing::get(move || {
                                let m = metrics.clone();
                                async move {
                                    ([("content-type", "text/plain; version=0.0.4")], m.render())
                                }
                            }),
                        );
                    let _ = axum::serve(listener, app).await;
                });
            })
            .map_err(|e| Error::config("--metrics-addr", e.to_string()))?;
        Ok(local)
    }
}
