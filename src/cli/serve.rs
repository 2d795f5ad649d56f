//! `positio serve`: the inference server's options.

use super::DeviceArg;
use crate::serve::batcher::BatchLimits;
use crate::serve::http::RequestLimits;
use crate::serve::{self, Access, ApplicationPaths, ModelSpec, ServeOptions};
use crate::{runtime, Result};

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogLevel {
    /// Every request (method, path, status, milliseconds), startup and shutdown.
    Info,
    /// Only problems.
    Warn,
    Error,
}

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// A model directory to serve, `DIR` or `NAME=DIR` (repeatable). Its head decides its
    /// route: a plain encoder embeds (/embed, /v1/embeddings), a sequence classifier predicts
    /// (/predict), a token classifier finds entities (/ner).
    #[arg(long = "model", required_unless_present = "recommender")]
    models: Vec<ModelSpec>,
    /// A reranker to serve, `DIR` or `NAME=DIR` (a one-label cross-encoder, `finetune rerank`):
    /// answers /rerank (TEI's), and reorders /search and /answer candidates.
    #[arg(long)]
    reranker: Option<ModelSpec>,
    /// An intent classifier to serve, `DIR` or `NAME=DIR` (single-label, `finetune classify`):
    /// routes /answer questions to their intent's templates first, as `answer --router`.
    #[arg(long, requires = "answers")]
    router: Option<ModelSpec>,
    /// The router's probability from which its intent is followed.
    #[arg(long, default_value_t = 0.5, requires = "router")]
    route_min: f64,
    /// An index (`positio index build`) for /search; its model must be served (--model).
    #[arg(long)]
    index: Option<std::path::PathBuf>,
    #[command(flatten)]
    store: super::index::StoreArg,
    /// An answer library (JSON Lines {"id", "answer", "questions"}) for /answer, embedded at
    /// startup by the served embedding model.
    #[arg(long)]
    answers: Option<std::path::PathBuf>,
    /// The answer library's calibration (`positio calibrate`): its threshold decides no_match.
    #[arg(long, requires = "answers")]
    calibration: Option<std::path::PathBuf>,
    /// A recommender (`finetune recommend`'s run) for /recommend, with --news.
    #[arg(long, requires = "news")]
    recommender: Option<std::path::PathBuf>,
    /// The news /recommend ranks (a MIND news.tsv); its vectors are cached beside the
    /// recommender (computed the first time) and mapped.
    #[arg(long, requires = "recommender")]
    news: Option<std::path::PathBuf>,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Padded tokens in one batch (inputs × longest input).
    #[arg(long, default_value_t = BatchLimits::default().max_tokens)]
    max_batch_tokens: usize,
    /// Inputs in one batch.
    #[arg(long, default_value_t = BatchLimits::default().max_inputs)]
    max_batch_requests: usize,
    /// Inputs in one request; more get 422.
    #[arg(long, default_value_t = RequestLimits::default().max_client_batch_size)]
    max_client_batch_size: usize,
    /// Requests answered at once; more get 429.
    #[arg(long, default_value_t = RequestLimits::default().max_concurrent_requests)]
    max_concurrent_requests: usize,
    /// Largest request body in bytes; larger gets 413.
    #[arg(long, default_value_t = RequestLimits::default().payload_limit)]
    payload_limit: usize,
    /// Seconds to answer a request; then 504.
    #[arg(long, default_value_t = RequestLimits::default().request_timeout.as_secs_f64())]
    request_timeout: f64,
    /// Seconds for a request's headers to arrive (and an idle keep-alive connection's next
    /// request), then the connection is closed; and for its body, then 408.
    #[arg(long, default_value_t = RequestLimits::default().read_timeout.as_secs_f64())]
    read_timeout: f64,
    /// Require `Authorization: Bearer KEY` on every route but /health (and /metrics with
    /// --metrics-public); else 401. Better given in the environment than on the command line,
    /// where other users of the machine can read it.
    #[arg(long, env = "POSITIO_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Serve /metrics without the API key (to a Prometheus scraper inside the trusted network).
    #[arg(long, requires = "api_key")]
    metrics_public: bool,
    #[arg(long, value_enum, default_value = "info")]
    log_level: LogLevel,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl ServeArgs {
    pub fn run(&self) -> Result<()> {
        let level = match self.log_level {
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Error => tracing::Level::ERROR,
        };
        // A second call (a library user with their own subscriber) keeps theirs.
        let _ = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init();
        let request_timeout = super::positive_seconds("--request-timeout", self.request_timeout)?;
        let read_timeout = super::positive_seconds("--read-timeout", self.read_timeout)?;
        if self.api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            return Err(crate::Error::config("--api-key", "is empty"));
        }
        let mut models = self.models.clone();
        models.extend(self.reranker.iter().chain(&self.router).cloned());
        if !(0.0..=1.0).contains(&self.route_min) {
            return Err(crate::Error::config("--route-min", "must be in [0, 1]"));
        }
        let options = ServeOptions {
            models,
            apps: ApplicationPaths {
                index: self.index.clone(),
                store: self.store.url().map(String::from),
                answers: self.answers.clone(),
                calibration: self.calibration.clone(),
                reranker: self.reranker.as_ref().map(|r| r.name.clone()),
                router: self
                    .router
                    .as_ref()
                    .map(|r| (r.name.clone(), self.route_min)),
                recommender: self.recommender.clone().zip(self.news.clone()),
            },
            address: format!("{}:{}", self.host, self.port),
            batching: BatchLimits {
                max_tokens: self.max_batch_tokens.max(1),
                max_inputs: self.max_batch_requests.max(1),
            },
            limits: RequestLimits {
                max_client_batch_size: self.max_client_batch_size.max(1),
                max_concurrent_requests: self.max_concurrent_requests.max(1),
                payload_limit: self.payload_limit,
                request_timeout,
                read_timeout,
            },
            access: Access {
                api_key: self.api_key.clone(),
                metrics_public: self.metrics_public,
            },
        };
        serve::serve(options, &runtime::device(self.device.device)?)
    }
}
