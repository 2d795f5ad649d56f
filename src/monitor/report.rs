//! `positio monitor report`: one self-contained HTML page from a monitor's store: per series
//! (all items, every topic, the top entities, and any series that alerted) a sentiment-trend
//! plot by window (negative share, mean sentiment, volume) with its alerts marked, and under it
//! each alert with the items behind it. The plots are SVG written here (a polyline and a few
//! axes need no plotting crate, and the page needs no scripts or fonts of its own).

use super::item::format_time;
use super::store::{Alert, Store};
use super::trends::{Negatives, Window};
use crate::Result;
use std::fmt::Write;
use std::path::Path;

/// Plot size in SVG units.
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 240.0;
/// Plot margins: left, right, top, bottom.
const MARGIN: (f64, f64, f64, f64) = (48.0, 48.0, 12.0, 28.0);
/// Characters of an item's text shown under an alert.
const SNIPPET: usize = 160;

/// What to draw.
pub struct ReportOptions {
    /// Entity series drawn (the largest), besides any entity that alerted.
    pub top_entities: usize,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG plot of one series' windows, alerts (window starts) marked.
fn plot(windows: &[Window], alerts: &[i64], width: i64) -> String {
    let (left, right, top, bottom) = MARGIN;
    let (w, h) = (WIDTH - left - right, HEIGHT - top - bottom);
    let t0 = windows.first().map_or(0, |x| x.start);
    let t1 = windows.last().map_or(0, |x| x.start) + width;
    let x = |t: i64| left + w * (t - t0) as f64 / (t1 - t0).max(1) as f64;
    // Negative share on [0, 1] and mean sentiment on [-1, 1] share the plot's height.
    let y_share = |v: f64| top + h * (1.0 - v);
    let y_sentiment = |v: f64| top + h * (1.0 - (v + 1.0) / 2.0);
    let most = windows.iter().map(|x| x.count).max().unwrap_or(1).max(1) as f64;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    // Volume bars, scaled to the busiest window.
    for win in windows {
        let bar = h * 0.35 * win.count as f64 / most;
        let _ = write!(
            svg,
            "<rect class=\"volume\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bar:.1}\"><title>{} · {} items</title></rect>",
            x(win.start),
            top + h - bar,
            (x(win.start + width) - x(win.start)).max(0.5),
            format_time(win.start),
            win.count
        );
    }
    for v in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.2}</text>\
             <text x=\"{}\" y=\"{:.1}\">{:+.1}</text>",
            left + w,
            left - 4.0,
            y_share(v) + 4.0,
            left + w + 4.0,
            y_share(v) + 4.0,
            2.0 * v - 1.0,
            y = y_share(v),
        );
    }
    let ticks = 6;
    for i in 0..=ticks {
        let t = t0 + (t1 - t0) * i / ticks;
        let label = format_time(t)
            .replace('T', " ")
            .trim_end_matches('Z')
            .to_string();
        let label = label.get(..16).unwrap_or(&label);
        let anchor = match i {
            0 => "start",
            i if i == ticks => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{label}</text>",
            x(t),
            HEIGHT - 8.0
        );
    }
    let line = |class: &str, y: &dyn Fn(&Window) -> f64| {
        let points: Vec<String> = windows
            .iter()
            .map(|win| {
                format!(
                    "{:.1},{:.1}",
                    x(win.start) + 0.5 * (x(win.start + width) - x(win.start)),
                    y(win)
                )
            })
            .collect();
        format!(
            "<polyline class=\"{class}\" points=\"{}\"/>",
            points.join(" ")
        )
    };
    svg += &line("sentiment", &|win| y_sentiment(win.mean_sentiment()));
    svg += &line("share", &|win| y_share(win.negative_share()));
    for &start in alerts {
        if let Some(win) = windows.iter().find(|w| w.start == start) {
            let cx = x(start) + 0.5 * (x(start + width) - x(start));
            let _ = write!(
                svg,
                "<line class=\"alert\" x1=\"{cx:.1}\" x2=\"{cx:.1}\" y1=\"{top}\" y2=\"{}\"/>\
                 <circle class=\"alert\" cx=\"{cx:.1}\" cy=\"{:.1}\" r=\"5\"><title>alert {}: negative share {:.2}</title></circle>",
                top + h,
                y_share(win.negative_share()),
                format_time(start),
                win.negative_share()
            );
        }
    }
    svg + "</svg>"
}

/// The table of one alert's items.
fn alert_items(store: &Store, alert: &Alert) -> Result<String> {
    let mut html = String::from(
        "<table><tr><th>item</th><th>time</th><th>P(negative)</th><th>title / text</th></tr>",
    );
    for id in &alert.items {
        let Some((item, annotation)) = store.item(id)? else {
            continue;
        };
        let mut snippet: String = item.content().chars().take(SNIPPET).collect();
        if item.content().chars().count() > SNIPPET {
            snippet.push('…');
        }
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(id),
            format_time(item.time),
            annotation
                .negative
                .map_or("–".into(), |p| format!("{p:.2}")),
            escape(&snippet)
        );
    }
    Ok(html + "</table>")
}

/// Writes the report of the store at `store_path` to `out` (atomically).
pub fn write_report(store_path: &Path, out: &Path, options: &ReportOptions) -> Result<()> {
    let store = Store::open_existing(store_path)?;
    let width = store.width();
    let alerts = store.alerts()?;
    let mut entities = 0;
    let series: Vec<(String, usize)> = store
        .series()?
        .into_iter()
        .filter(|(s, _)| {
            let alerted = alerts.iter().any(|(_, a)| &a.series == s);
            let keep = !s.starts_with("entity:") || alerted || entities < options.top_entities;
            if s.starts_with("entity:") && !alerted && keep {
                entities += 1;
            }
            keep
        })
        .collect();
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>positio monitor report</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1000px}}\
         .share{{fill:none;stroke:#c0392b;stroke-width:1.5}}\
         .sentiment{{fill:none;stroke:#2471a3;stroke-width:1}}\
         .volume{{fill:#d5d8dc}} .grid{{stroke:#eee}} line.alert{{stroke:#c0392b;stroke-dasharray:3,3}}\
         circle.alert{{fill:#c0392b}} table{{border-collapse:collapse;font-size:12px;margin:.5em 0 1.5em}}\
         td,th{{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}}</style></head><body>\
         <h1>News monitor report</h1><p>Store <code>{}</code>: {} series drawn, windows of {} s, {} alerts. \
         <span style=\"color:#c0392b\">Red</span>: negative share, {} (left axis, 0–1); \
         <span style=\"color:#2471a3\">blue</span>: mean sentiment P(positive) − P(negative) (right axis); \
         grey bars: items per window; dashed lines and dots: alerts.</p>",
        escape(&store_path.display().to_string()),
        series.len(),
        width,
        alerts.len(),
        match store.negatives() {
            Negatives::Expected => "the mean P(negative)",
            Negatives::Argmax => "the share of items called negative",
        },
    );
    for (name, total) in &series {
        let windows = store.windows_of(name)?;
        let mine: Vec<&(i64, Alert)> = alerts.iter().filter(|(_, a)| &a.series == name).collect();
        let starts: Vec<i64> = mine.iter().map(|(s, _)| *s).collect();
        let _ = write!(
            html,
            "<section><h2 id=\"{name}\">{name}</h2><p>{total} items in {n} windows, {a} alerts</p>{svg}",
            name = escape(name),
            n = windows.len(),
            a = mine.len(),
            svg = plot(&windows, &starts, width)
        );
        for (_, alert) in mine {
            let _ = write!(
                html,
                "<h3>Alert {}: {} {:.2} against a baseline of {:.2} (z {:.1}, {} items)</h3>",
                escape(&alert.time),
                escape(&alert.metric),
                alert.value,
                alert.baseline,
                alert.z,
                alert.count
            );
            html += &alert_items(&store, alert)?;
        }
        html += "</section>";
    }
    html += "</body></html>\n";
    crate::io::write_atomic(out, html.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The burst store's report draws each series with its windows, marks the two alerts, and
    /// lists the eight negative items behind each.
    #[test]
    fn a_report_draws_each_series_and_lists_the_items_of_its_alerts() {
        let dir = tempfile::tempdir().unwrap();
        drop(crate::monitor::store::tests::store_with_a_burst(dir.path()));
        let out = dir.path().join("report.html");
        write_report(
            &dir.path().join("m.db"),
            &out,
            &ReportOptions { top_entities: 10 },
        )
        .unwrap();
        let html = std::fs::read_to_string(&out).unwrap();
        for series in ["all", "topic:crude", "topic:grain"] {
            assert!(html.contains(&format!("<h2 id=\"{series}\">")), "{series}");
        }
        assert_eq!(html.matches("<svg").count(), 3);
        assert_eq!(html.matches("<circle class=\"alert\"").count(), 2);
        assert_eq!(html.matches("<h3>Alert 1970-01-01T00:10:00Z").count(), 2);
        // Eight items in each alert's table.
        assert_eq!(html.matches("<td>n10").count(), 16);
        assert!(html.contains("110 items in 11 windows, 1 alerts"));
        assert!(html.contains("negative share, the mean P(negative)"));
        let missing = write_report(
            &dir.path().join("none.db"),
            &out,
            &ReportOptions { top_entities: 1 },
        );
        assert!(missing
            .unwrap_err()
            .to_string()
            .contains("no such monitor store"));
    }
}
