//! Trends and the spike rule. Items fall into tumbling windows (a window starts at a multiple
//! of its width, UTC); each series (all items, a topic, an entity) keeps per window its volume,
//! summed sentiment and negative count. When a window closes its negative share is judged
//! against the series' baseline: exponentially weighted (weight `alpha`) means of the shares,
//! of their squared deviations, and of 1 / count over the windows before it. The spread of
//! past shares is partly the counting noise of small windows (a binomial share of `n` items
//! varies by mean·(1 − mean)/n even when the true rate is steady), so that part is taken out
//! to estimate how much the rate itself moves, and the counting noise of the window being
//! judged is put back:
//!
//! ```text
//! rate variance = max(0, variance − mean·(1 − mean)·mean(1/n))
//! z = (share − mean) / sqrt(rate variance + mean·(1 − mean)/count + 1e-4)
//! ```
//!
//! (Counting the past windows' noise as well, as a plain z-score of the shares would, lets a
//! burst of a dozen negative items in a window of twenty pass unseen: measured on the replay
//! of experiments/monitor_replay.py, docs/RESULTS.md.) A window raises an alert when the
//! series has `warmup` windows of history, the window holds at least `min_count` items,
//! `z ≥ z`, and the series raised no alert in the `cooldown` windows before it (one spike,
//! one alert). A window of at least `min_count` items is then folded into the baseline, so a
//! level that lasts becomes the new normal; smaller windows neither alert nor teach (their
//! shares are mostly noise).

/// The spike rule's settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpikeRule {
    /// Weight of the newest window in the baseline (0 < alpha ≤ 1).
    pub alpha: f64,
    /// The z-score from which a window is a spike.
    pub z: f64,
    /// Items a window needs before it can be a spike.
    pub min_count: usize,
    /// Windows of history a series needs before it can alert.
    pub warmup: u32,
    /// Windows after an alert in which the series stays quiet.
    pub cooldown: u32,
}

impl Default for SpikeRule {
    fn default() -> Self {
        SpikeRule {
            alpha: 0.1,
            z: 3.0,
            min_count: 5,
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
    pub negative: usize,
    /// Sum over items of P(positive) − P(negative).
    pub sentiment: f64,
    /// Ids of the negative items (the alert lists them).
    pub negative_items: Vec<String>,
}

impl Window {
    pub fn negative_share(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.negative as f64 / self.count as f64
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
    pub mean: f64,
    pub variance: f64,
    /// Mean of 1 / count (the windows' counting noise is mean·(1 − mean) times this).
    #[serde(default)]
    pub inverse_count: f64,
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
    /// Judges the closed window `w` (windows `width` seconds wide), then folds it in.
    pub fn judge(&mut self, w: &Window, rule: &SpikeRule, width: i64) -> Option<Spike> {
        let share = w.negative_share();
        let cooling = self
            .last_alert
            .is_some_and(|last| w.start - last <= i64::from(rule.cooldown) * width);
        let spike = if w.count >= rule.min_count && self.windows >= rule.warmup && !cooling {
            let binomial = self.mean * (1.0 - self.mean);
            let rate_variance = (self.variance - binomial * self.inverse_count).max(0.0);
            let noise = (rate_variance + binomial / w.count as f64 + 1e-4).sqrt();
            let z = (share - self.mean) / noise;
            (z >= rule.z).then_some(Spike {
                value: share,
                baseline: self.mean,
                z,
            })
        } else {
            None
        };
        if spike.is_some() {
            self.last_alert = Some(w.start);
        }
        if w.count >= rule.min_count.max(1) {
            let inverse = 1.0 / w.count as f64;
            if self.windows == 0 {
                self.mean = share;
                self.variance = 0.0;
                self.inverse_count = inverse;
            } else {
                let d = share - self.mean;
                self.mean += rule.alpha * d;
                self.variance = (1.0 - rule.alpha) * (self.variance + rule.alpha * d * d);
                self.inverse_count += rule.alpha * (inverse - self.inverse_count);
            }
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
            negative,
            ..Window::default()
        }
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
    /// of 21 are a spike, which counting the past windows' noise again would have hidden.
    #[test]
    fn counting_noise_does_not_hide_a_burst_in_a_busy_window() {
        let rule = SpikeRule::default();
        let mut b = Baseline::default();
        let quiet = [1, 2, 0, 3, 1, 2, 1, 0, 2, 3, 1, 2, 1, 1, 3, 0, 2, 1, 2, 1];
        for (i, n) in quiet.into_iter().enumerate() {
            assert_eq!(b.judge(&window(i as i64 * 600, 10, n), &rule, 600), None);
        }
        let t = quiet.len() as i64 * 600;
        assert_eq!(b.judge(&window(t, 8, 4), &rule, 600), None);
        let (share, before) = (11.0 / 21.0, b.clone());
        let spike = b
            .judge(&window(t + 600, 21, 11), &rule, 600)
            .expect("a spike");
        let p = before.mean;
        let twice = (share - p) / (before.variance + p * (1.0 - p) / 21.0 + 1e-4).sqrt();
        assert!(twice < rule.z && spike.z > rule.z, "{twice} {spike:?}");
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
