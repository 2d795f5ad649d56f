//! Figures as PNG: training curves from `metrics.jsonl` (`positio plot RUN_DIR`) and a
//! classifier's confusion matrix (`positio eval classify --plot`).

use crate::{Error, Result};
use plotters::coord::{types::RangedCoordf64, Shift};
use plotters::prelude::*;
use std::path::Path;

/// DejaVu Sans (Bitstream Vera licence, assets/fonts/LICENSE-DejaVu.txt), embedded so that
/// plotting needs no system fonts.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Makes the embedded font plotters' "sans-serif".
fn register_font() -> Result<()> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| Error::invalid("cannot load the embedded font"))
}

/// (step, value) series read from a metrics log.
#[derive(Debug, Default)]
pub(crate) struct Curves {
    pub train_loss: Vec<(f64, f64)>,
    pub val_loss: Vec<(f64, f64)>,
    pub val_perplexity: Vec<(f64, f64)>,
    /// Any other validation metric (accuracy, F1), by name.
    pub val_other: Vec<(String, Vec<(f64, f64)>)>,
}

pub(crate) fn read_curves(path: &Path) -> Result<Curves> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
    let mut c = Curves::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Error::line(path, i + 1, format!("malformed JSON: {e}")))?;
        let step = v["step"]
            .as_f64()
            .ok_or_else(|| Error::line(path, i + 1, "no \"step\""))?;
        let obj = v.as_object().expect("a JSON object");
        match v["split"].as_str() {
            Some("train") => {
                if let Some(l) = v["loss"].as_f64() {
                    c.train_loss.push((step, l));
                }
            }
            Some("val") => {
                for (k, x) in obj {
                    let Some(x) = x.as_f64() else { continue };
                    match k.as_str() {
                        "step" => {}
                        "loss" => c.val_loss.push((step, x)),
                        "perplexity" => c.val_perplexity.push((step, x)),
                        other => match c.val_other.iter_mut().find(|(n, _)| n == other) {
                            Some((_, s)) => s.push((step, x)),
                            None => c.val_other.push((other.to_string(), vec![(step, x)])),
                        },
                    }
                }
            }
            _ => {}
        }
    }
    if c.train_loss.is_empty() && c.val_loss.is_empty() {
        return Err(Error::file(
            path,
            "no training or validation losses to plot",
        ));
    }
    Ok(c)
}

fn range(series: &[&[(f64, f64)]]) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let pts = series.iter().flat_map(|s| s.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        if y.is_finite() {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
    }
    if x0 > x1 {
        return (0.0..1.0, 0.0..1.0);
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    (x0..x1.max(x0 + 1.0), (y0 - pad)..(y1 + pad))
}

type Panel<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A captioned chart on `area` whose axes span `series`, its mesh drawn (x: step).
fn panel<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    caption: &str,
    y_desc: &str,
    series: &[&[(f64, f64)]],
) -> std::result::Result<
    Panel<'a, 'b>,
    DrawingAreaErrorKind<<BitMapBackend<'b> as DrawingBackend>::ErrorType>,
> {
    let (xr, yr) = range(series);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(xr, yr)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc(y_desc)
        .draw()?;
    Ok(chart)
}

/// Draws loss (train and validation) and validation perplexity / other metrics side by side.
pub fn plot(run_dir: &Path, out: &Path) -> Result<()> {
    let curves = read_curves(&run_dir.join("metrics.jsonl"))?;
    register_font()?;
    let fail = |e: &dyn std::fmt::Display| Error::file(out, format!("cannot draw: {e}"));
    let root = BitMapBackend::new(out, (1400, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let title = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let root = root
        .titled(&title, ("sans-serif", 26))
        .map_err(|e| fail(&e))?;
    let (left, right) = root.split_horizontally(700);

    let mut chart = panel(
        &left,
        "loss",
        "cross-entropy",
        &[&curves.train_loss, &curves.val_loss],
    )
    .map_err(|e| fail(&e))?;
    for (series, color, name) in [
        (&curves.train_loss, BLUE, "train"),
        (&curves.val_loss, RED, "validation"),
    ] {
        if !series.is_empty() {
            chart
                .draw_series(LineSeries::new(
                    series.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| fail(&e))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;

    let (name, series) = if !curves.val_perplexity.is_empty() {
        ("validation perplexity".to_string(), &curves.val_perplexity)
    } else if let Some((n, s)) = curves
        .val_other
        .iter()
        .find(|(n, _)| n == "entity_f1")
        .or(curves.val_other.first())
    {
        (format!("validation {n}"), s)
    } else {
        ("validation loss".to_string(), &curves.val_loss)
    };
    let mut chart = panel(&right, &name, "", &[series]).map_err(|e| fail(&e))?;
    chart
        .draw_series(LineSeries::new(series.iter().copied(), RED.stroke_width(2)))
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(series.iter().map(|&p| Circle::new(p, 3, RED.filled())))
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

/// A confusion matrix (`counts[gold][predicted]`) as a PNG heat map: each cell shaded by its
/// share of the gold row, with its count written in it.
pub fn confusion(labels: &[String], counts: &[Vec<usize>], out: &Path) -> Result<()> {
    register_font()?;
    let fail = |e: &dyn std::fmt::Display| Error::file(out, format!("cannot draw: {e}"));
    let k = labels.len();
    let cell = (600 / k.max(1)).clamp(24, 120) as u32;
    let side = cell * k as u32;
    let root = BitMapBackend::new(out, (side + 260, side + 200)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let root = root
        .titled(
            "confusion matrix (rows: gold, columns: predicted)",
            ("sans-serif", 20),
        )
        .map_err(|e| fail(&e))?;
    let name = |i: &usize| labels.get(*i).cloned().unwrap_or_default();
    let mut chart = ChartBuilder::on(&root)
        .margin(20)
        .x_label_area_size(120)
        .y_label_area_size(160)
        // An integer range includes its end: 0..k-1 gives the k segments of the k labels.
        .build_cartesian_2d(
            (0..k.saturating_sub(1)).into_segmented(),
            (0..k.saturating_sub(1)).into_segmented(),
        )
        .map_err(|e| fail(&e))?;
    let segment = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => name(i),
        SegmentValue::Last => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted")
        .y_desc("gold")
        .x_label_formatter(&segment)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => name(&(k - 1 - i)),
            SegmentValue::Last => String::new(),
        })
        .x_labels(k)
        .y_labels(k)
        .draw()
        .map_err(|e| fail(&e))?;
    for (g, row) in counts.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (p, &c) in row.iter().enumerate() {
            let share = c as f64 / total;
            let y = k - 1 - g;
            let shade = RGBColor(
                (255.0 * (1.0 - 0.8 * share)) as u8,
                (255.0 * (1.0 - 0.6 * share)) as u8,
                255,
            );
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [
                        (SegmentValue::Exact(p), SegmentValue::Exact(y)),
                        (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1)),
                    ],
                    shade.filled(),
                )))
                .map_err(|e| fail(&e))?;
            chart
                .draw_series(std::iter::once(Text::new(
                    c.to_string(),
                    (SegmentValue::CenterOf(p), SegmentValue::CenterOf(y)),
                    ("sans-serif", 16),
                )))
                .map_err(|e| fail(&e))?;
        }
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
