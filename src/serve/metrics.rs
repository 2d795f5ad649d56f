//! The server's Prometheus metrics (`GET /metrics`, text format): requests by route and status,
//! request / queue / inference durations, batch sizes in inputs and padded tokens, queue depth.
//! The `prometheus` crate does the bookkeeping and the exposition format.

use prometheus::{
    exponential_buckets, Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub(crate) struct Metrics {
    registry: Registry,
    /// Finished requests, by route and HTTP status.
    pub requests: IntCounterVec,
    /// Whole request time, by route.
    pub request_seconds: HistogramVec,
    /// Time an input waited in a model's queue before its batch started, by model.
    pub queue_seconds: HistogramVec,
    /// Time of one batch's forward pass, by model.
    pub inference_seconds: HistogramVec,
    /// Inputs per batch, by model.
    pub batch_inputs: HistogramVec,
    /// Padded tokens per batch (inputs × longest), by model.
    pub batch_tokens: HistogramVec,
    /// Inputs waiting in a model's queue.
    pub queue_depth: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Self {
        let seconds = exponential_buckets(0.0005, 2.0, 16).expect("valid buckets");
        let histogram = |name: &str, help: &str, label: &str, buckets: Vec<f64>| {
            HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), &[label])
                .expect("valid histogram")
        };
        let m = Metrics {
            registry: Registry::new(),
            requests: IntCounterVec::new(
                Opts::new(
                    "positio_requests_total",
                    "Requests answered, by route and status",
                ),
                &["route", "status"],
            )
            .expect("valid counter"),
            request_seconds: histogram(
                "positio_request_duration_seconds",
                "Time from request to response",
                "route",
                seconds.clone(),
            ),
            queue_seconds: histogram(
                "positio_queue_duration_seconds",
                "Time an input waited for its batch",
                "model",
                seconds.clone(),
            ),
            inference_seconds: histogram(
                "positio_inference_duration_seconds",
                "Forward pass time of one batch",
                "model",
                seconds,
            ),
            batch_inputs: histogram(
                "positio_batch_size",
                "Inputs per batch",
                "model",
                exponential_buckets(1.0, 2.0, 10).expect("valid buckets"),
            ),
            batch_tokens: histogram(
                "positio_batch_tokens",
                "Padded tokens per batch",
                "model",
                exponential_buckets(16.0, 2.0, 12).expect("valid buckets"),
            ),
            queue_depth: IntGaugeVec::new(
                Opts::new("positio_queue_depth", "Inputs waiting for a batch"),
                &["model"],
            )
            .expect("valid gauge"),
        };
        for c in [
            Box::new(m.requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.request_seconds.clone()),
            Box::new(m.queue_seconds.clone()),
            Box::new(m.inference_seconds.clone()),
            Box::new(m.batch_inputs.clone()),
            Box::new(m.batch_tokens.clone()),
            Box::new(m.queue_depth.clone()),
        ] {
            m.registry.register(c).expect("metric names are unique");
        }
        m
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding our own registry into memory cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
