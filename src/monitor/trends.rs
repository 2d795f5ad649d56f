//! Trends and the spike rule. Items fall into tumbling windows (a window starts at a multiple
//! of its width, UTC); each series (all items, a topic, an entity) keeps per window its volume,
//! summed sentiment and negatives, counted one of two ways ([`Negatives`]): the items the
//! sentiment model calls negative, or (the default) the sum of their P(negative), the
//! *expected* number of negative items, which keeps what the model half-believes (a burst of
//! items it gives P(negative) 0.4 each is invisible to the argmax count, not to the sum; the
//! replay in docs/RESULTS.md measures both). When a window closes its negative share is judged
//! against the series' baseline, which every earlier window with items has taught, the newest
//! weighing most (each window shrinks the weight of those before it by `1 − alpha`):
//!
//! ```text
//! x      = an item's negative count: 1 or 0 (argmax), or its P(negative) (expected)
//! p      = weighted Σx / weighted items               (the usual negative rate)
//! v      = weighted Σx² / weighted items − p²         (the spread of one item's x)
//! N      = weighted items                             (how much history p rests on)
//! excess = weighted mean of (share − p)² − v/count over past windows of at least
//!          min_count items that were not spikes
//! z      = (share − p) / sqrt(max(excess, 0) + v/count + v/N + 1e-4)
//! ```
//!
//! The rate is pooled over items, so the sparse series of a topic or an entity, with a few
//! items a window, learn from every item rather than only from busy windows. A window's share
//! varies by v/count from counting alone, so `excess` is what the rate itself moves beyond that
//! (counting the past windows' noise again would let a burst of a dozen negative items in a
//! window of twenty pass unseen); the window's own counting noise and the uncertainty of p
//! from N items are added back. Counting by argmax, x² = x and v is the binomial p·(1 − p);
//! counting expected negatives, v is the spread of the model's own probabilities, much smaller
//! when it hedges (every item near 0.2): the binomial would drown such a model's bursts in
//! noise it does not have. A window raises an alert when the series has `warmup` windows of
//! history, the window holds at least `min_count` items and `min_negative` negatives, `z ≥ z`,
//! and the series raised no alert in the `cooldown` windows before it (one spike, one alert).
//! Every window is then folded in, so a level that
//! lasts becomes the new normal. docs/RESULTS.md measures the rule on the replay of
//! experiments/monitor_replay.py.

/// How a window's negatives are counted.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Negatives {
    /// The sum of P(negative) over the window's items.
    Expected,
    /// The items whose most probable label is negative.
    Argmax,
}

impl Negatives {
    /// The name a store records.
    pub fn name(self) -> &'static str {
        match self {
            Negatives::Expected => "expected",
            Negatives::Argmax => "argmax",
        }
    }
}

/// The spike rule's settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpikeRule {
    /// How negatives are counted.
    pub negatives: Negatives,
    /// Weight of the newest window in the baseline (0 < alpha ≤ 1).
    pub alpha: f64,
    /// The z-score from which a window is a spike.
    pub z: f64,
    /// Items a window needs before it can be a spike.
    pub min_count: usize,
    /// Negatives (as counted) a window needs before it can be a spike.
    pub min_negative: usize,
    /// Windows of history a series needs before it can alert.
    pub warmup: u32,
    /// Windows after an alert in which the series stays quiet.
    pub cooldown: u32,
}

impl Default for SpikeRule {
    fn default() -> Self {
        SpikeRule {
            negatives: Negatives::Expected,
            alpha: 0.1,
            z: 3.0,
            min_count: 5,
            min_negative: 3,
            warmup: 6,
            cooldown: 3,
        }
    }
}

/// One window of one series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    /// Unix seconds.
    pub start: i64,
    pub count: usize,
    /// Negatives as the store counts them ([`Negatives`]): Σx.
    pub negative: f64,
    /// Σx² (equal to `negative` counting by argmax).
    pub squares: f64,
    /// Sum over items of P(positive) − P(negative).
    pub sentiment: f64,
}

impl Window {
    pub fn negative_share(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.negative / self.count as f64
        }
    }

    pub fn mean_sentiment(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sentiment / self.count as f64
        }
    }
}

/// A series' memory of the windows before.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Baseline {
    /// Weighted negative items (Σx).
    pub negatives: f64,
    /// Weighted Σx²; absent in a baseline stored before it was kept, which counted by argmax
    /// (so Σx² = Σx).
    #[serde(default)]
    pub squares: Option<f64>,
    /// Weighted items.
    pub items: f64,
    /// Weighted mean of the squared deviation beyond counting noise.
    pub excess: f64,
    /// Windows folded in.
    pub windows: u32,
    /// Start of the window of the last alert.
    pub last_alert: Option<i64>,
}

/// A window judged a spike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    /// The window's negative share.
    pub value: f64,
    /// The baseline mean it was judged against.
    pub baseline: f64,
    pub z: f64,
}

impl Baseline {
    /// The usual negative rate.
    pub fn rate(&self) -> f64 {
        if self.items > 0.0 {
            self.negatives / self.items
        } else {
            0.0
        }
    }

    /// The spread of one item's negative count around the usual rate.
    fn item_variance(&self) -> f64 {
        if self.items > 0.0 {
            let squares = self.squares.unwrap_or(self.negatives);
            (squares / self.items - self.rate().powi(2)).max(0.0)
        } else {
            0.0
        }
    }

    /// Judges the closed window `w` (windows `width` seconds wide), then folds it in.
    pub fn judge(&mut self, w: &Window, rule: &SpikeRule, width: i64) -> Option<Spike> {
        let share = w.negative_share();
        let (p, n) = (self.rate(), w.count as f64);
        let v = self.item_variance();
        let cooling = self
            .last_alert
            .is_some_and(|last| w.start - last <= i64::from(rule.cooldown) * width);
        let judged = w.count >= rule.min_count
            && w.negative >= rule.min_negative as f64
            && self.windows >= rule.warmup
            && !cooling;
        let spike = if judged {
            let noise = (self.excess.max(0.0) + v / n + v / self.items + 1e-4).sqrt();
            let z = (share - p) / noise;
            (z >= rule.z).then_some(Spike {
                value: share,
                baseline: p,
                z,
            })
        } else {
            None
        };
        if spike.is_some() {
            self.last_alert = Some(w.start);
        }
        if w.count > 0 {
            let keep = 1.0 - rule.alpha;
            // Smaller windows teach the rate but not its spread (their shares are mostly
            // noise), and a spike does not teach the spread either: it would hide the next.
            if self.windows > 0 && w.count >= rule.min_count && spike.is_none() {
                let excess = (share - p).powi(2) - v / n;
                self.excess = keep * self.excess + rule.alpha * excess;
            }
            self.squares = Some(keep * self.squares.unwrap_or(self.negatives) + w.squares);
            self.negatives = keep * self.negatives + w.negative;
            self.items = keep * self.items + n;
            self.windows += 1;
        }
        spike
    }
}

/// The start of the window of width `width` that holds `t`.
pub fn window_start(t: i64, width: i64) -> i64 {
    t.div_euclid(width) * width
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: i64, count: usize, negative: usize) -> Window {
        Window {
            start,
            count,
            negative: negative as f64,
            squares: negative as f64,
            ..Window::default()
        }
    }

    /// A window of `count` items, each with P(negative) `p`.
    fn hedged(start: i64, count: usize, p: f64) -> Window {
        Window {
            start,
            count,
            negative: count as f64 * p,
            squares: count as f64 * p * p,
            ..Window::default()
        }
    }

    /// A model that hedges (every quiet item near P(negative) 0.2) is judged by the spread of
    /// its own probabilities: a window of items at 0.45 is a spike, where the binomial spread
    /// of 0-or-1 counts (z ≈ 1.9 here) would hide it; quiet windows at 0.18–0.22 are not.
    #[test]
    fn expected_negatives_are_judged_by_the_models_own_spread() {
        let rule = SpikeRule::default();
        let mut b = Baseline::default();
        for i in 0..20 {
            let p = [0.18, 0.2, 0.22, 0.2][i % 4];
            assert_eq!(b.judge(&hedged(i as i64 * 600, 10, p), &rule, 600), None);
        }
        assert!(b.item_variance() < 0.001, "{b:?}");
        let spike = b
            .judge(&hedged(20 * 600, 10, 0.45), &rule, 600)
            .expect("a spike");
        assert!(
            spike.z > 5.0 && (spike.baseline - 0.2).abs() < 0.01,
            "{spike:?}"
        );
    }

    /// A baseline stored before Σx² was kept counted by argmax: its spread is binomial.
    #[test]
    fn a_baseline_from_before_squares_were_kept_reads_as_argmax() {
        let old: Baseline =
            serde_json::from_str(r#"{"negatives":2.0,"items":10.0,"excess":0.0,"windows":7}"#)
                .unwrap();
        assert!((old.item_variance() - 0.16).abs() < 1e-12);
    }

    /// Twenty quiet windows (shares 0.1–0.3), then a burst: one alert at its first window, none
    /// while it cools down, none in the quiet part or for a window too small to count.
    #[test]
    fn a_burst_raises_one_alert_at_its_start() {
        let rule = SpikeRule::default();
        let mut b = Baseline::default();
        let quiet = [2, 3, 1, 2, 2, 3, 2, 1, 2, 3, 2, 2, 1, 3, 2, 2, 3, 2, 1, 2];
        let mut alerts = Vec::new();
        let mut t = 0;
        for n in quiet {
            alerts.extend(b.judge(&window(t, 10, n), &rule, 600).map(|s| (t, s)));
            t += 600;
        }
        assert!(alerts.is_empty(), "{alerts:?}");
        // A small window with every item negative: too few items to mean anything.
        assert_eq!(b.judge(&window(t, 3, 3), &rule, 600), None);
        t += 600;
        let burst_start = t;
        for n in [8, 9, 8, 7] {
            alerts.extend(b.judge(&window(t, 10, n), &rule, 600).map(|s| (t, s)));
            t += 600;
        }
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let (at, spike) = alerts[0];
        assert_eq!(at, burst_start);
        assert!(
            spike.value == 0.8 && spike.baseline < 0.3 && spike.z >= 3.0,
            "{spike:?}"
        );
    }

    /// Quiet windows of ten items whose shares vary only as counting noise around 0.15; then
    /// a half-negative window of eight is still quiet, while eleven negative items in a window
    /// of 21 are a spike.
    #[test]
    fn counting_noise_does_not_hide_a_burst_in_a_busy_window() {
        let rule = SpikeRule::default();
        let mut b = Baseline::default();
        let quiet = [1, 2, 0, 3, 1, 2, 1, 0, 2, 3, 1, 2, 1, 1, 3, 0, 2, 1, 2, 1];
        for (i, n) in quiet.into_iter().enumerate() {
            assert_eq!(b.judge(&window(i as i64 * 600, 10, n), &rule, 600), None);
        }
        let t = quiet.len() as i64 * 600;
        assert_eq!(b.clone().judge(&window(t, 8, 4), &rule, 600), None);
        let spike = b.judge(&window(t, 21, 11), &rule, 600).expect("a spike");
        assert!(spike.z > rule.z && spike.baseline < 0.2, "{spike:?}");
    }

    /// A sparse series (a topic with one or two items a window) learns its rate from every
    /// item, so a burst of six negative items is found; two negative items of six on a series
    /// that is rarely negative are below `min_negative`.
    #[test]
    fn a_sparse_series_learns_from_every_item() {
        let rule = SpikeRule::default();
        let mut b = Baseline::default();
        for i in 0..30 {
            let (count, negative) = [(1, 0), (2, 0), (1, 1), (2, 0), (1, 0)][i % 5];
            assert_eq!(
                b.judge(&window(i as i64 * 600, count, negative), &rule, 600),
                None
            );
        }
        assert_eq!(b.judge(&window(30 * 600, 6, 2), &rule, 600), None);
        let spike = b
            .judge(&window(31 * 600, 6, 6), &rule, 600)
            .expect("a spike");
        assert!(spike.z > rule.z, "{spike:?}");
    }

    #[test]
    fn no_alert_before_the_warmup_and_windows_align_to_their_width() {
        let rule = SpikeRule::default();
        let mut b = Baseline::default();
        for i in 0..rule.warmup {
            let n = if i == 3 { 10 } else { 1 };
            assert_eq!(b.judge(&window(i64::from(i) * 60, 10, n), &rule, 60), None);
        }
        assert_eq!(window_start(541_659_601, 600), 541_659_600);
        assert_eq!(window_start(-1, 600), -600);
    }
}
