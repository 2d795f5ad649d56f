//! `positio serve`: an HTTP inference server for sentence embeddings, sequence classification
//! and NER, compatible with text-embeddings-inference and OpenAI clients.
//!
//! - `models`: loading each model directory by its head; the forward pass of a batch.
//! - `batcher`: the per-model queue and thread that forms dynamic batches.
//! - `http`: the router, request limits and metrics middleware; in it, the schemas
//!   (`types`), error answers (`error`), and the TEI (`routes`), OpenAI (`openai`) and `/ner`
//!   (`ner`) handlers.
//! - `metrics`: Prometheus counters and histograms.
//!
//! axum + tokio answer HTTP; tokenization runs on tokio's blocking pool; each model runs on its
//! own thread (whose matrix products use every core), so the async runtime never blocks.
//! SIGTERM or Ctrl-C stops accepting connections, lets in-flight requests finish, and returns.

pub(crate) mod batcher;
pub(crate) mod http;
pub use http::apps::ApplicationPaths;
pub(crate) mod metrics;
pub(crate) mod models;

use crate::{Error, Result};
use batcher::BatchLimits;
use burn::tensor::Device;
pub use http::Access;
use http::{App, RequestLimits, Served};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A model to serve: its name in requests and `/info`, and its directory.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub name: String,
    pub dir: PathBuf,
}

impl std::str::FromStr for ModelSpec {
    type Err = String;

    /// `NAME=DIR`, or `DIR` (named after its last path component).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (name, dir) = match s.split_once('=') {
            Some((n, d)) if !n.is_empty() && !n.contains('/') => (n.to_string(), PathBuf::from(d)),
            _ => {
                let dir = PathBuf::from(s);
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| format!("{s:?} names no directory"))?;
                (name, dir)
            }
        };
        Ok(ModelSpec { name, dir })
    }
}

/// Everything `serve` needs.
pub struct ServeOptions {
    pub models: Vec<ModelSpec>,
    /// The index, answer library and reranker behind `/search`, `/answer`, `/rerank`.
    pub apps: http::apps::ApplicationPaths,
    pub address: String,
    pub batching: BatchLimits,
    pub limits: RequestLimits,
    pub access: http::Access,
}

/// Loads the models, listens on `address`, and serves until SIGTERM / Ctrl-C (in-flight
/// requests finish first).
pub fn serve(options: ServeOptions, device: &Device) -> Result<()> {
    let (mut app, threads) = start(&options, device)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::invalid(format!("cannot start the async runtime: {e}")))?;
    app.apps = runtime.block_on(http::apps::prepare(&app, &options.apps, device))?;
    let app = Arc::new(app);
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&options.address)
            .await
            .map_err(|e| {
                Error::config(
                    "--host / --port",
                    format!("cannot listen on {}: {e}", options.address),
                )
            })?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::invalid(format!("cannot read the listening address: {e}")))?;
        tracing::info!("listening on http://{local}");
        let read_timeout = app.limits.read_timeout;
        accept(listener, http::router(app), read_timeout).await;
        Ok::<_, Error>(())
    })?;
    // The router (and with it every queue) is gone: the batching threads finish and end.
    for t in threads {
        let _ = t.join();
    }
    tracing::info!("stopped");
    Ok(())
}

/// The models of `options` loaded, each with its batching thread, and the routes' shared
/// state (without the applications, which need an async runtime to prepare).
fn start(
    options: &ServeOptions,
    device: &Device,
) -> Result<(App, Vec<std::thread::JoinHandle<()>>)> {
    let metrics = Arc::new(metrics::Metrics::new());
    let mut served = Vec::new();
    let mut threads = Vec::new();
    for spec in &options.models {
        if served.iter().any(|s: &Served| s.info.name == spec.name) {
            return Err(Error::config(
                "--model",
                format!(
                    "two models are named {:?}: name them with --model NAME=DIR",
                    spec.name
                ),
            ));
        }
        let loaded = models::load(&spec.name, &spec.dir, device)?;
        if loaded.info.max_input_length > options.batching.max_tokens {
            return Err(Error::config(
                "--max-batch-tokens",
                format!(
                    "{} is less than model {:?}'s input limit of {} tokens",
                    options.batching.max_tokens, spec.name, loaded.info.max_input_length
                ),
            ));
        }
        let (queue, thread) = batcher::spawn(
            spec.name.clone(),
            loaded.runner,
            options.batching,
            metrics.clone(),
        )
        .map_err(|e| Error::invalid(format!("cannot start a batching thread: {e}")))?;
        tracing::info!(
            model = spec.name,
            dir = %spec.dir.display(),
            head = ?loaded.info.head,
            route = loaded.info.head.route(),
            max_input_length = loaded.info.max_input_length,
            "loaded"
        );
        served.push(Served {
            info: loaded.info,
            tokenizer: Arc::new(loaded.tokenizer),
            queue,
            words: loaded.words,
        });
        threads.push(thread);
    }
    let app = App::new(
        served,
        metrics,
        options.limits,
        options.batching,
        options.access.clone(),
    );
    Ok((app, threads))
}

/// Serves each connection on its own task until Ctrl-C or SIGTERM, then stops accepting and
/// waits for the open connections to finish their requests.
///
/// hyper's HTTP/1 connections, with a timer so that `read_timeout` bounds the wait for a
/// request's headers (an idle keep-alive connection's next request included): a client that
/// opens connections and sends nothing, or a header a byte at a time, loses them.
async fn accept(listener: tokio::net::TcpListener, router: axum::Router, read_timeout: Duration) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(shutdown_signal());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The router of `models` with the server's default limits, for requests sent in-process (the
/// HTTP fuzz target): the same loading, batching and routes as `serve`, no socket. The
/// batching threads end when the router is dropped.
pub(crate) fn in_process(models: Vec<ModelSpec>, device: &Device) -> Result<axum::Router> {
    let options = ServeOptions {
        models,
        apps: ApplicationPaths::default(),
        address: String::new(),
        batching: BatchLimits::default(),
        limits: RequestLimits::default(),
        access: Access::default(),
    };
    let (app, _threads) = start(&options, device)?;
    Ok(http::router(Arc::new(app)))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
