//! Classification reports as the field prints them: scikit-learn's `classification_report`
//! (per-label precision, recall, F1 and support; accuracy; micro, macro, weighted and, for
//! multi-label, samples averages), a confusion matrix for single-label tasks, subset accuracy
//! and Hamming loss for multi-label ones. Division by zero gives 0 (`zero_division=0`).
//! `scripts/reference/check_classify_report.py` checks these numbers against scikit-learn.

use serde::Serialize;

/// Precision, recall, F1 and support of one label or one average.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    pub name: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub labels: Vec<Scores>,
    /// Share of texts whose predicted label set equals the gold one (accuracy for single-label
    /// tasks, subset accuracy for multi-label ones).
    pub accuracy: f64,
    /// micro (multi-label only; equals accuracy for single-label), macro, weighted, samples
    /// (multi-label only).
    pub averages: Vec<Scores>,
    /// `confusion[gold][predicted]` counts (single-label only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Vec<Vec<usize>>>,
    /// Share of wrong (text, label) decisions (multi-label only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hamming_loss: Option<f64>,
    pub texts: usize,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn f1(p: f64, r: f64) -> f64 {
    ratio(2.0 * p * r, p + r)
}

/// Scores from true-positive, predicted and gold counts.
fn scores(name: &str, tp: f64, predicted: f64, gold: f64, support: usize) -> Scores {
    let (precision, recall) = (ratio(tp, predicted), ratio(tp, gold));
    Scores {
        name: name.into(),
        precision,
        recall,
        f1: f1(precision, recall),
        support,
    }
}

/// Macro and support-weighted means of per-label scores.
fn macro_and_weighted(rows: &[Scores]) -> [Scores; 2] {
    let n = rows.len().max(1) as f64;
    let total: usize = rows.iter().map(|r| r.support).sum();
    let mean = |f: &dyn Fn(&Scores) -> f64| rows.iter().map(f).sum::<f64>() / n;
    let weighted = |f: &dyn Fn(&Scores) -> f64| {
        ratio(
            rows.iter().map(|r| f(r) * r.support as f64).sum(),
            total as f64,
        )
    };
    [
        Scores {
            name: "macro avg".into(),
            precision: mean(&|r| r.precision),
            recall: mean(&|r| r.recall),
            f1: mean(&|r| r.f1),
            support: total,
        },
        Scores {
            name: "weighted avg".into(),
            precision: weighted(&|r| r.precision),
            recall: weighted(&|r| r.recall),
            f1: weighted(&|r| r.f1),
            support: total,
        },
    ]
}

/// One gold and one predicted class index per text.
pub fn single_label(gold: &[usize], predicted: &[usize], labels: &[String]) -> Report {
    let k = labels.len();
    let mut confusion = vec![vec![0usize; k]; k];
    for (&g, &p) in gold.iter().zip(predicted) {
        confusion[g][p] += 1;
    }
    let rows: Vec<Scores> = (0..k)
        .map(|c| {
            let tp = confusion[c][c] as f64;
            let predicted = (0..k).map(|g| confusion[g][c]).sum::<usize>() as f64;
            let support: usize = confusion[c].iter().sum();
            scores(&labels[c], tp, predicted, support as f64, support)
        })
        .collect();
    let correct = (0..k).map(|c| confusion[c][c]).sum::<usize>() as f64;
    let [macro_avg, weighted] = macro_and_weighted(&rows);
    Report {
        labels: rows,
        accuracy: ratio(correct, gold.len() as f64),
        averages: vec![macro_avg, weighted],
        confusion: Some(confusion),
        hamming_loss: None,
        texts: gold.len(),
    }
}

/// A gold and a predicted label set per text, as one flag per label.
pub fn multi_label(gold: &[Vec<bool>], predicted: &[Vec<bool>], labels: &[String]) -> Report {
    let k = labels.len();
    let (mut tp, mut pred, mut sup) = (vec![0usize; k], vec![0usize; k], vec![0usize; k]);
    let (mut exact, mut wrong) = (0usize, 0usize);
    let (mut sp, mut sr, mut sf) = (0.0, 0.0, 0.0);
    for (g, p) in gold.iter().zip(predicted) {
        let mut hits = 0usize;
        for c in 0..k {
            tp[c] += usize::from(g[c] && p[c]);
            pred[c] += usize::from(p[c]);
            sup[c] += usize::from(g[c]);
            hits += usize::from(g[c] && p[c]);
            wrong += usize::from(g[c] != p[c]);
        }
        exact += usize::from(g == p);
        let (ng, np) = (
            g.iter().filter(|&&x| x).count() as f64,
            p.iter().filter(|&&x| x).count() as f64,
        );
        let h = hits as f64;
        sp += ratio(h, np);
        sr += ratio(h, ng);
        sf += ratio(2.0 * h, ng + np);
    }
    let rows: Vec<Scores> = (0..k)
        .map(|c| {
            scores(
                &labels[c],
                tp[c] as f64,
                pred[c] as f64,
                sup[c] as f64,
                sup[c],
            )
        })
        .collect();
    let total: usize = sup.iter().sum();
    let micro = scores(
        "micro avg",
        tp.iter().sum::<usize>() as f64,
        pred.iter().sum::<usize>() as f64,
        total as f64,
        total,
    );
    let n = gold.len() as f64;
    let samples = Scores {
        name: "samples avg".into(),
        precision: ratio(sp, n),
        recall: ratio(sr, n),
        f1: ratio(sf, n),
        support: total,
    };
    let [macro_avg, weighted] = macro_and_weighted(&rows);
    Report {
        labels: rows,
        accuracy: ratio(exact as f64, n),
        averages: vec![micro, macro_avg, weighted, samples],
        confusion: None,
        hamming_loss: Some(ratio(wrong as f64, n * k as f64)),
        texts: gold.len(),
    }
}

impl Report {
    /// The average named `name` ("micro avg", "macro avg", ...), if the report has it.
    pub fn average(&self, name: &str) -> Option<&Scores> {
        self.averages.iter().find(|s| s.name == name)
    }

    /// Micro-averaged F1: accuracy for a single-label task.
    pub(crate) fn micro_f1(&self) -> f64 {
        self.average("micro avg").map_or(self.accuracy, |s| s.f1)
    }

    /// The report as `classification_report` prints it (4 digits), then the confusion matrix
    /// or the multi-label summary.
    pub fn table(&self) -> String {
        let width = self
            .labels
            .iter()
            .map(|s| s.name.chars().count())
            .chain([12])
            .max()
            .unwrap_or(12);
        let row = |s: &Scores| {
            format!(
                "{:>width$} {:>9.4} {:>9.4} {:>9.4} {:>9}\n",
                s.name, s.precision, s.recall, s.f1, s.support
            )
        };
        let mut out = format!(
            "{:>width$} {:>9} {:>9} {:>9} {:>9}\n\n",
            "", "precision", "recall", "f1-score", "support"
        );
        for s in &self.labels {
            out += &row(s);
        }
        out += "\n";
        if self.confusion.is_some() {
            out += &format!(
                "{:>width$} {:>9} {:>9} {:>9.4} {:>9}\n",
                "accuracy", "", "", self.accuracy, self.texts
            );
        }
        for s in &self.averages {
            out += &row(s);
        }
        if let Some(confusion) = &self.confusion {
            out += "\nconfusion matrix (rows: gold, columns: predicted)\n\n";
            let cell = self
                .labels
                .iter()
                .map(|s| s.name.chars().count())
                .chain(confusion.iter().flatten().map(|c| c.to_string().len()))
                .max()
                .unwrap_or(1);
            out += &format!("{:>width$}", "");
            for s in &self.labels {
                out += &format!(" {:>cell$}", s.name);
            }
            out += "\n";
            for (s, counts) in self.labels.iter().zip(confusion) {
                out += &format!("{:>width$}", s.name);
                for c in counts {
                    out += &format!(" {c:>cell$}");
                }
                out += "\n";
            }
        }
        if let Some(h) = self.hamming_loss {
            out += &format!(
                "\nsubset accuracy {:.4}, Hamming loss {h:.4}, {} texts\n",
                self.accuracy, self.texts
            );
        }
        out
    }
}
