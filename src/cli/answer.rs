//! `positio answer` and `positio calibrate`: customer-service answering from a template library.

use super::{DeviceArg, TextInputs};
use crate::tasks::answer::commands::{self, AnswerModels, Answerer, Calibration};
use crate::tasks::answer::read_library;
use crate::{runtime, Error, Result};
use std::io::Write;
use std::path::PathBuf;

/// The library and models both commands read.
#[derive(clap::Args)]
pub(crate) struct LibraryArgs {
    /// The answer templates: JSON Lines {"id", "answer", "questions": [...], "intent"}
    /// (questions optional; intent needed with --router).
    #[arg(long)]
    library: PathBuf,
    /// The embedding model that finds candidate templates.
    #[arg(long)]
    model: PathBuf,
    /// A reranker that reorders the 5 best candidates; its relevance becomes the confidence.
    #[arg(long)]
    rerank: Option<PathBuf>,
    /// An intent classifier (`finetune classify`, single-label) that routes each question to
    /// the templates of its intent first; an intent without templates is handed over.
    #[arg(long)]
    router: Option<PathBuf>,
    /// The router's probability from which its intent is followed; below it the whole
    /// library is searched.
    #[arg(long, default_value_t = 0.5, requires = "router")]
    route_min: f64,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl LibraryArgs {
    fn models(&self) -> AnswerModels<'_> {
        AnswerModels {
            model: &self.model,
            reranker: self.rerank.as_deref(),
            router: self.router.as_deref().map(|r| (r, self.route_min)),
        }
    }

    fn load(&self) -> Result<Answerer> {
        if !(0.0..=1.0).contains(&self.route_min) {
            return Err(Error::config("--route-min", "must be in [0, 1]"));
        }
        let templates = read_library(&self.library)?;
        let device = runtime::device(self.device.device)?;
        Answerer::load(templates, &self.models(), self.batch_size, &device)
    }
}

#[derive(clap::Args)]
pub(crate) struct AnswerArgs {
    #[command(flatten)]
    pub library: LibraryArgs,
    #[command(flatten)]
    texts: TextInputs,
    /// A calibration file from `positio calibrate` (for the same models): its threshold decides
    /// no_match.
    #[arg(long, conflicts_with = "threshold")]
    calibration: Option<PathBuf>,
    /// A confidence threshold given directly (below it: no_match).
    #[arg(long)]
    threshold: Option<f64>,
}

impl AnswerArgs {
    pub fn run(&self) -> Result<()> {
        let threshold = match &self.calibration {
            Some(path) => {
                let c = Calibration::read(path)?;
                c.check(path, &self.library.models())?;
                Some(c.threshold)
            }
            None => self.threshold,
        };
        let questions = self.texts.read()?;
        let answerer = self.library.load()?;
        let answers = answerer.answer(&questions, threshold)?;
        let mut out = std::io::stdout().lock();
        for (q, a) in questions.iter().zip(answers) {
            let mut line = serde_json::to_value(&a).expect("serialises");
            line["text"] = q.clone().into();
            line["threshold"] = threshold.into();
            writeln!(out, "{line}").map_err(|e| Error::io("standard output", "write", e))?;
        }
        Ok(())
    }
}

#[derive(clap::Args)]
pub(crate) struct CalibrateArgs {
    #[command(flatten)]
    pub library: LibraryArgs,
    /// Development questions: JSON Lines {"text", "answer": template id or null}.
    #[arg(long)]
    dev: PathBuf,
    /// The precision the answers given must reach on --dev.
    #[arg(long)]
    target_precision: f64,
    /// Where to write the calibration (JSON), for `answer --calibration`.
    #[arg(long)]
    out: PathBuf,
}

impl CalibrateArgs {
    pub fn run(&self) -> Result<()> {
        let answerer = self.library.load()?;
        let c = commands::calibrate(
            &answerer,
            &self.library.models(),
            &self.dev,
            self.target_precision,
            &self.out,
        )?;
        println!(
            "threshold {:.4}: precision {:.4} (target {}), {:.1} % of {} questions answered; {}",
            c.threshold,
            c.precision,
            c.target_precision,
            100.0 * c.coverage,
            c.questions,
            self.out.display()
        );
        Ok(())
    }
}
