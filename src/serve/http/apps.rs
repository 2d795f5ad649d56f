//! The application routes: `/rerank` (TEI's shape: a query and texts, each text's relevance
//! best first), `/search` (the served index, `positio search`'s steps) and `/answer` (the
//! answer library, `positio answer`'s steps). Every model call goes through the models'
//! batching queues like any other route; index and library lookups run on the blocking pool.

use super::error::{Answer, ApiError, ErrorKind};
use super::types::{one_or_many, AnswerRequest, Found, Ranked, RerankRequest, SearchRequest};
use super::{infer, parse, tokenize_all, tokenize_texts, vectors, App, Served};
use crate::index::searcher::OpenIndex;
use crate::index::{Hit, Index, ModelIdentity, SearchMode, Store};
use crate::serve::models::{Head, Output};
use crate::tasks::answer::commands::{AnswerModels, Calibration, RERANK_CANDIDATES};
use crate::tasks::answer::{by_relevance, check_router, read_library, route, AnswerLibrary};
use crate::tasks::recommend::commands::NewsRanker;
use crate::tasks::scores::softmax;
use crate::Error;
use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use burn::tensor::Device;
use std::path::PathBuf;
use std::sync::Arc;

/// What `serve` was asked to put behind the application routes.
#[derive(Debug, Clone, Default)]
pub struct ApplicationPaths {
    /// An index for `/search` (its model must be served): a directory, or with `store` the
    /// name of a PostgreSQL index.
    pub index: Option<PathBuf>,
    /// The PostgreSQL database (URL) of `index`.
    pub store: Option<String>,
    /// An answer library for `/answer`, answered with the first served embedding model.
    pub answers: Option<PathBuf>,
    /// The library's calibration (its threshold decides `no_match`).
    pub calibration: Option<PathBuf>,
    /// The served model that reranks (`/rerank`, and `/search` and `/answer` when present).
    pub reranker: Option<String>,
    /// The served intent classifier that routes `/answer` questions, and its minimum
    /// probability.
    pub router: Option<(String, f64)>,
    /// A recommender (`finetune recommend`'s run) and the news.tsv it ranks, for `/recommend`.
    pub recommender: Option<(PathBuf, PathBuf)>,
}

/// The application routes' state.
#[derive(Default)]
pub(crate) struct Applications {
    search: Option<(Arc<OpenIndex>, usize)>,
    answers: Option<(Arc<AnswerLibrary>, Option<f64>, usize)>,
    reranker: Option<usize>,
    router: Option<(usize, f64)>,
    pub(crate) recommender: Option<Arc<NewsRanker>>,
}

/// The served model named `name` (it is among them: `serve` adds it).
fn named(app: &App, name: &str) -> usize {
    app.models
        .iter()
        .position(|m| m.info.name == name)
        .expect("the named model is among the served models")
}

/// The served embedding model that is `recorded` (by fingerprint: it may lie elsewhere now).
fn served_by(app: &App, recorded: &ModelIdentity) -> crate::Result<Option<usize>> {
    for (i, m) in app.models.iter().enumerate() {
        if m.info.head == Head::Embedding
            && ModelIdentity::of(&m.info.directory)?.fingerprint == recorded.fingerprint
        {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn startup(e: ApiError) -> Error {
    Error::invalid(format!("while preparing the application routes: {e:?}"))
}

/// Opens the index, embeds the answer library (through the batching queues) and checks that
/// every model they need is served.
pub(crate) async fn prepare(
    app: &App,
    paths: &ApplicationPaths,
    device: &Device,
) -> crate::Result<Applications> {
    let mut apps = Applications::default();
    if let Some(name) = &paths.reranker {
        let i = named(app, name);
        let info = &app.models[i].info;
        if info.head != Head::SequenceClassification || info.labels.len() != 1 {
            return Err(Error::config(
                "--reranker",
                format!(
                    "{} is not a reranker (a sequence classifier with one label)",
                    info.directory.display()
                ),
            ));
        }
        apps.reranker = Some(i);
    }
    if let Some(name) = &paths.index {
        let (at, url, dev) = (name.clone(), paths.store.clone(), device.clone());
        // PostgreSQL's client runs its own runtime: open it off this one.
        let index = tokio::task::spawn_blocking(move || {
            OpenIndex::open(Store::at(&at, url.as_deref())?, &dev)
        })
        .await
        .map_err(|e| Error::invalid(format!("opening the index failed: {e}")))??;
        let model = served_by(app, index.model())?.ok_or_else(|| {
            Error::config(
                "--index",
                format!(
                    "{} was built with {}: serve that model too (--model)",
                    name.display(),
                    index.model().path.display()
                ),
            )
        })?;
        apps.search = Some((Arc::new(index), model));
    }
    if let Some((name, min)) = &paths.router {
        let i = named(app, name);
        let info = &app.models[i].info;
        if info.head != Head::SequenceClassification || info.multi_label || info.labels.len() < 2 {
            return Err(Error::config(
                "--router",
                format!(
                    "{} is not an intent classifier (single-label, two labels or more)",
                    info.directory.display()
                ),
            ));
        }
        apps.router = Some((i, *min));
    }
    if let Some((model, news)) = &paths.recommender {
        apps.recommender = Some(Arc::new(NewsRanker::load(model, news, device)?));
    }
    if let Some(path) = &paths.answers {
        let templates = read_library(path)?;
        if let Some((r, _)) = apps.router {
            let info = &app.models[r].info;
            check_router(
                &templates,
                &info.labels,
                &info.directory.display().to_string(),
            )?;
        }
        let calibration = paths
            .calibration
            .as_deref()
            .map(|c| Calibration::read(c).map(|cal| (c, cal)))
            .transpose()?;
        let model = match &calibration {
            Some((c, cal)) => served_by(app, &cal.model)?.ok_or_else(|| {
                Error::file(
                    c,
                    format!(
                        "calibrated with {}: serve that model too (--model)",
                        cal.model.path.display()
                    ),
                )
            })?,
            None => app
                .models
                .iter()
                .position(|m| m.info.head == Head::Embedding)
                .ok_or_else(|| Error::config("--answers", "needs an embedding model (--model)"))?,
        };
        if let Some((c, cal)) = &calibration {
            let dir = |i: usize| app.models[i].info.directory.as_path();
            let models = AnswerModels {
                model: dir(model),
                reranker: apps.reranker.map(dir),
                router: apps.router.map(|(r, min)| (dir(r), min)),
            };
            cal.check(c, &models)?;
        }
        let served = &app.models[model];
        let texts = AnswerLibrary::texts(&templates);
        let mut vecs = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(64) {
            let inputs = chunk.iter().map(|t| (t.clone(), None)).collect();
            let tokens = tokenize_all(served, inputs, true).await.map_err(startup)?;
            vecs.extend(
                vectors(infer(served, &tokens).await.map_err(startup)?, true).map_err(startup)?,
            );
        }
        let library = AnswerLibrary::new(templates, &vecs, device)?;
        let threshold = calibration.map(|(_, c)| c.threshold);
        apps.answers = Some((Arc::new(library), threshold, model));
    }
    Ok(apps)
}

/// The one-label logit of each (query, passage) pair, through the reranker's queue.
async fn logits(
    reranker: &Served,
    query: &str,
    passages: &[String],
    truncate: bool,
) -> Result<Vec<f32>, ApiError> {
    let inputs = passages
        .iter()
        .map(|p| (query.to_string(), Some(p.clone())))
        .collect();
    let tokens = tokenize_all(reranker, inputs, truncate).await?;
    infer(reranker, &tokens)
        .await?
        .into_iter()
        .map(|o| match o {
            Output::Logits(l) if l.len() == 1 => Ok(l[0]),
            _ => Err(ApiError::backend(
                "the reranker returned no relevance logit",
            )),
        })
        .collect()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Relevance in (0, 1) of each passage.
async fn relevance(
    reranker: &Served,
    query: &str,
    passages: &[String],
) -> Result<Vec<f32>, ApiError> {
    Ok(logits(reranker, query, passages, true)
        .await?
        .into_iter()
        .map(sigmoid)
        .collect())
}

/// The embedding of one text by a served model, unit-norm.
async fn embed_one(app: &App, model: &Served, text: &str) -> Result<Vec<Vec<f32>>, ApiError> {
    let tokens = tokenize_texts(app, model, &[text.to_string()], true).await?;
    vectors(infer(model, &tokens).await?, true)
}

/// `POST /rerank`: `[{"index", "score"[, "text"]}]`, best first.
pub(crate) async fn rerank(State(app): State<Arc<App>>, body: Bytes) -> Answer<Vec<Ranked>> {
    let _permit = app.admit()?;
    let request: RerankRequest = parse(&body)?;
    let model = match (request.model.as_deref(), app.apps.reranker) {
        (Some(name), _) => app.pick(Head::SequenceClassification, Some(name))?,
        (None, Some(i)) => &app.models[i],
        (None, None) => app.pick(Head::SequenceClassification, None)?,
    };
    if model.info.labels.len() != 1 {
        return Err(ApiError::validation(format!(
            "model {:?} has {} labels; a reranker has one",
            model.info.name,
            model.info.labels.len()
        )));
    }
    if request.query.is_empty() {
        return Err(ApiError::new(ErrorKind::Empty, "query is empty"));
    }
    if let Some(d) = request.truncation_direction.as_deref() {
        if !d.eq_ignore_ascii_case("right") {
            return Err(ApiError::validation(format!(
                "truncation_direction {d:?}: positio truncates on the right only"
            )));
        }
    }
    app.check_count(&request.texts.iter().map(String::as_str).collect::<Vec<_>>())?;
    let raw = logits(model, &request.query, &request.texts, request.truncate).await?;
    let mut ranked: Vec<Ranked> = raw
        .into_iter()
        .enumerate()
        .map(|(index, l)| Ranked {
            index,
            score: if request.raw_scores { l } else { sigmoid(l) },
            text: request.return_text.then(|| request.texts[index].clone()),
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(Json(ranked))
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::backend(format!("search failed: {e}")))?
        .map_err(ApiError::from)
}

/// `POST /search`: `[{"rank", "id", "score", "title", "text"}]`.
pub(crate) async fn search(State(app): State<Arc<App>>, body: Bytes) -> Answer<Vec<Found>> {
    let _permit = app.admit()?;
    let request: SearchRequest = parse(&body)?;
    let Some((index, embedder)) = app.apps.search.clone() else {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            "no index is served: start the server with --index",
        ));
    };
    if request.query.is_empty() {
        return Err(ApiError::new(ErrorKind::Empty, "query is empty"));
    }
    if request.top_k == 0 {
        return Err(ApiError::validation("top_k must be at least 1"));
    }
    let reranker = match (request.rerank, app.apps.reranker) {
        (Some(true), None) => {
            return Err(ApiError::validation(
                "no reranker is served: start the server with --reranker",
            ))
        }
        (Some(false), _) | (None, None) => None,
        (_, Some(i)) => Some(&app.models[i]),
    };
    let vecs = match request.mode {
        SearchMode::Bm25 => None,
        _ => Some(embed_one(&app, &app.models[embedder], &request.query).await?),
    };
    let depth = match reranker {
        Some(_) => request.top_k.max(request.rerank_top),
        None => request.top_k,
    };
    // The index may be PostgreSQL's, whose client blocks: every call runs on the blocking pool.
    let (mode, query, idx) = (request.mode, request.query.clone(), index.clone());
    let mut hits: Vec<Hit> = blocking(move || {
        Ok(idx
            .search(&[query], vecs.as_deref(), mode, depth)?
            .pop()
            .unwrap_or_default())
    })
    .await?;
    if let Some(reranker) = reranker {
        let (idx, head, k) = (index.clone(), hits.clone(), request.rerank_top);
        let passages: Vec<String> = blocking(move || idx.passages(&head, k)).await?;
        let r = relevance(reranker, &request.query, &passages).await?;
        Index::reorder(&mut hits, &r);
    }
    hits.truncate(request.top_k);
    let (idx, ids) = (
        index.clone(),
        hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
    );
    let docs = blocking(move || idx.documents(&ids.iter().map(String::as_str).collect::<Vec<_>>()))
        .await?;
    Ok(Json(
        hits.iter()
            .zip(docs)
            .enumerate()
            .map(|(rank, (h, d))| Found {
                rank: rank + 1,
                id: h.id.clone(),
                score: h.score,
                title: d.title,
                text: d.text,
            })
            .collect(),
    ))
}

/// `POST /answer`: `{"template", "answer", "confidence", "no_match"}` per input.
pub(crate) async fn answer(State(app): State<Arc<App>>, body: Bytes) -> Answer<serde_json::Value> {
    let _permit = app.admit()?;
    let request: AnswerRequest = parse(&body)?;
    let Some((library, threshold, embedder)) = app.apps.answers.clone() else {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            "no answer library is served: start the server with --answers",
        ));
    };
    let (texts, single) = request.inputs.into_vec();
    let routes = match app.apps.router {
        Some((r, min)) => {
            let router = &app.models[r];
            let tokens = tokenize_texts(&app, router, &texts, true).await?;
            infer(router, &tokens)
                .await?
                .into_iter()
                .map(|o| match o {
                    Output::Logits(l) => Ok(Some(route(&softmax(&l), &router.info.labels, min))),
                    _ => Err(ApiError::backend("the router returned no logits")),
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        None => vec![None; texts.len()],
    };
    let model = &app.models[embedder];
    let tokens = tokenize_texts(&app, model, &texts, true).await?;
    let vecs = vectors(infer(model, &tokens).await?, true)?;
    let candidates = library.candidates(&vecs, &routes, RERANK_CANDIDATES)?;
    let mut answers = Vec::with_capacity(texts.len());
    for ((text, candidates), route) in texts.iter().zip(candidates).zip(routes) {
        let ranked = match app.apps.reranker {
            Some(r) => {
                let passages: Vec<String> = candidates
                    .iter()
                    .map(|&(t, _)| library.templates[t].answer.clone())
                    .collect();
                by_relevance(
                    &candidates,
                    &relevance(&app.models[r], text, &passages).await?,
                )
            }
            None => candidates,
        };
        answers.push(library.decide(&ranked, threshold, route));
    }
    Ok(Json(one_or_many(answers, single)))
}
