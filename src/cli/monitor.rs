//! `positio monitor run`: the news monitor (src/monitor). Every key of `--config monitor.toml`
//! is also a flag; a flag given wins over the file.

use super::DeviceArg;
use crate::monitor::annotate::{Annotators, Role};
use crate::monitor::report::{write_report, ReportOptions};
use crate::monitor::trends::{Negatives, SpikeRule};
use crate::monitor::{Clock, Monitor, MonitorOptions, Source};
use crate::{runtime, Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub(crate) enum MonitorCommand {
    /// Read a stream of news items (JSON Lines {"id", "time", "text", "title", "source"}),
    /// annotate them (sentiment, topics, entities), store them in SQLite, follow each series'
    /// negative share by window and append an alert (JSON Lines) when it spikes.
    Run(Box<RunArgs>),
    /// Draw a store's trends as one HTML page: a sentiment-trend plot per series with its
    /// alerts marked, and the items behind each alert.
    Report(ReportArgs),
}

#[derive(clap::Args)]
pub(crate) struct ReportArgs {
    /// The monitor's SQLite store.
    #[arg(long)]
    store: PathBuf,
    /// The HTML file to write.
    #[arg(long)]
    out: PathBuf,
    /// Entity series drawn: the N largest, and any that alerted [default: 10].
    #[arg(long, value_name = "N", default_value_t = 10)]
    top_entities: usize,
}

impl MonitorCommand {
    pub fn device(&self) -> Option<DeviceArg> {
        match self {
            MonitorCommand::Run(a) => Some(a.device),
            MonitorCommand::Report(_) => None,
        }
    }

    pub fn run(&self) -> Result<()> {
        match self {
            MonitorCommand::Run(a) => a.run(),
            MonitorCommand::Report(a) => {
                let options = ReportOptions {
                    top_entities: a.top_entities,
                };
                write_report(&a.store, &a.out, &options)?;
                eprintln!("wrote {}", a.out.display());
                Ok(())
            }
        }
    }
}

/// A duration: `600`, `90s`, `10m`, `1h` or `1d`.
fn seconds(text: &str) -> std::result::Result<i64, String> {
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, ""), |i| t.split_at(i));
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?}: a duration is a whole number with s, m, h or d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: a duration's unit is s, m, h or d")),
    };
    Ok(n * scale)
}

/// The keys of `--config` (TOML), each also a flag.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// role → model directory.
    model: Option<BTreeMap<String, PathBuf>>,
    source: Option<Vec<String>>,
    store: Option<PathBuf>,
    alerts: Option<PathBuf>,
    clock: Option<Clock>,
    window: Option<String>,
    lateness: Option<String>,
    batch_size: Option<usize>,
    follow: Option<bool>,
    poll: Option<f64>,
    feed_poll: Option<String>,
    top_entities: Option<usize>,
    metrics_addr: Option<String>,
    alertmanager: Option<String>,
    rule: Option<SpikeRule>,
}

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// A model, ROLE=DIR (repeatable): sentiment (a classifier with a "negative" label), topics
    /// (a multi-label classifier), entities (a NER model).
    #[arg(long = "model", value_parser = parse_model)]
    models: Vec<(Role, PathBuf)>,
    /// Where items come from (repeatable): a JSON Lines file, a directory of them, - for
    /// standard input, an RSS / Atom feed (http:// or https://), or a NATS JetStream stream
    /// (nats://HOST:PORT/STREAM[?consumer=NAME][&subject=SUBJ]).
    #[arg(long)]
    source: Vec<String>,
    /// The SQLite store (created if missing; a resumed run goes on from it).
    #[arg(long)]
    store: Option<PathBuf>,
    /// The alerts file (JSON Lines, appended).
    #[arg(long)]
    alerts: Option<PathBuf>,
    /// event: time is the newest item's (replays run at full speed); wall: this machine's
    /// [default: wall].
    #[arg(long, value_enum)]
    clock: Option<Clock>,
    /// Window width: 600, 90s, 10m, 1h, 1d [default: 10m].
    #[arg(long)]
    window: Option<String>,
    /// How long a window waits for late items after its end [default: 0].
    #[arg(long)]
    lateness: Option<String>,
    /// How a window's negatives are counted: expected (the sum of P(negative)) or argmax
    /// (items called negative) [default: expected]. A store keeps the way it was made with.
    #[arg(long, value_enum)]
    negatives: Option<Negatives>,
    /// The spike rule's z-score threshold [default: 3].
    #[arg(long)]
    z: Option<f64>,
    /// Weight of the newest window in the baseline [default: 0.1].
    #[arg(long)]
    alpha: Option<f64>,
    /// Items a window needs to be a spike [default: 5].
    #[arg(long)]
    min_count: Option<usize>,
    /// Negative items a window needs to be a spike [default: 3].
    #[arg(long)]
    min_negative: Option<usize>,
    /// Windows of history before a series can alert [default: 6].
    #[arg(long)]
    warmup: Option<u32>,
    /// Quiet windows after an alert [default: 3].
    #[arg(long)]
    cooldown: Option<u32>,
    /// Items per annotation batch [default: 32].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Keep watching files and directories for new lines and files (until Ctrl-C).
    #[arg(long)]
    follow: bool,
    /// Seconds between looks when following [default: 1].
    #[arg(long)]
    poll: Option<f64>,
    /// How often a feed is fetched again when following [default: 60s].
    #[arg(long)]
    feed_poll: Option<String>,
    /// Entities with series of their own: the N named by the most items [default: 50].
    #[arg(long, value_name = "N")]
    top_entities: Option<usize>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9187).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<String>,
    /// Also send alerts to this Alertmanager (e.g. http://127.0.0.1:9093).
    #[arg(long, value_name = "URL")]
    alertmanager: Option<String>,
    /// A TOML file with the same keys (model = { sentiment = "DIR" }, source = [...],
    /// [rule] z = 3, ...).
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArg,
}

fn parse_model(text: &str) -> std::result::Result<(Role, PathBuf), String> {
    let (role, dir) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: give ROLE=DIR (sentiment=, topics=, entities=)"))?;
    Ok((role.parse()?, PathBuf::from(dir)))
}

fn read_config(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
    toml::from_str(&text).map_err(|e| Error::file(path, format!("not a monitor config: {e}")))
}

impl RunArgs {
    fn options(&self) -> Result<(MonitorOptions, Vec<(Role, PathBuf)>)> {
        let file = match &self.config {
            Some(p) => read_config(p)?,
            None => ConfigFile::default(),
        };
        let duration =
            |flag: &str, given: &Option<String>, filed: &Option<String>, default: &str| {
                let text = given.as_deref().or(filed.as_deref()).unwrap_or(default);
                seconds(text).map_err(|e| Error::config(flag, e))
            };
        let mut models = self.models.clone();
        if models.is_empty() {
            for (role, dir) in file.model.unwrap_or_default() {
                let role = role
                    .parse()
                    .map_err(|e: String| Error::config("model", e))?;
                models.push((role, dir));
            }
        }
        let sources = if self.source.is_empty() {
            file.source.unwrap_or_default()
        } else {
            self.source.clone()
        };
        if sources.is_empty() {
            return Err(Error::config("--source", "give a file, a directory or -"));
        }
        let mut rule = file.rule.unwrap_or_default();
        rule.negatives = self.negatives.unwrap_or(rule.negatives);
        rule.z = self.z.unwrap_or(rule.z);
        rule.alpha = self.alpha.unwrap_or(rule.alpha);
        rule.min_count = self.min_count.unwrap_or(rule.min_count);
        rule.min_negative = self.min_negative.unwrap_or(rule.min_negative);
        rule.warmup = self.warmup.unwrap_or(rule.warmup);
        rule.cooldown = self.cooldown.unwrap_or(rule.cooldown);
        if !(rule.alpha > 0.0 && rule.alpha <= 1.0) {
            return Err(Error::config("--alpha", "must be in (0, 1]"));
        }
        let options = MonitorOptions {
            sources: sources
                .iter()
                .map(|s| s.parse().map_err(|e: String| Error::config("--source", e)))
                .collect::<Result<Vec<Source>>>()?,
            store: self
                .store
                .clone()
                .or(file.store)
                .ok_or_else(|| Error::config("--store", "name the SQLite store"))?,
            alerts: self
                .alerts
                .clone()
                .or(file.alerts)
                .ok_or_else(|| Error::config("--alerts", "name the alerts file"))?,
            clock: self.clock.or(file.clock).unwrap_or(Clock::Wall),
            window: duration("--window", &self.window, &file.window, "10m")?,
            lateness: duration("--lateness", &self.lateness, &file.lateness, "0")?,
            rule,
            batch_size: self.batch_size.or(file.batch_size).unwrap_or(32).max(1),
            follow: self.follow || file.follow.unwrap_or(false),
            poll: self.poll.or(file.poll).unwrap_or(1.0).max(0.01),
            feed_poll: duration("--feed-poll", &self.feed_poll, &file.feed_poll, "60s")? as f64,
            top_entities: self.top_entities.or(file.top_entities).unwrap_or(50),
            metrics_addr: self.metrics_addr.clone().or(file.metrics_addr),
            alertmanager: self.alertmanager.clone().or(file.alertmanager),
        };
        Ok((options, models))
    }

    fn run(&self) -> Result<()> {
        let (options, models) = self.options()?;
        let device = runtime::device(self.device.device)?;
        let roles: Vec<(Role, &Path)> = models.iter().map(|(r, d)| (*r, d.as_path())).collect();
        let annotators = Annotators::load(&roles, options.batch_size, &device)?;
        let summary = Monitor::open(&options, &annotators)?.run()?;
        println!("{}", serde_json::to_string(&summary).expect("serialises"));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: RunArgs,
    }

    /// Every key of the config file reaches the options; a flag given wins over the file; an
    /// unknown key is refused with the file's name.
    #[test]
    fn the_config_file_holds_every_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("monitor.toml");
        std::fs::write(
            &path,
            r#"
model = { sentiment = "runs/s", entities = "runs/e" }
source = ["-", "nats://h:4222/NEWS?consumer=eu", "https://example.com/rss"]
store = "m.db"
alerts = "a.jsonl"
clock = "event"
window = "5m"
lateness = "1m"
batch_size = 8
follow = true
poll = 0.5
feed_poll = "2m"
top_entities = 7
metrics_addr = "127.0.0.1:9187"
alertmanager = "http://am:9093"
[rule]
negatives = "argmax"
z = 4.0
min_count = 3
"#,
        )
        .unwrap();
        let config = path.to_str().unwrap();
        let wrap =
            Wrap::try_parse_from(["monitor", "--config", config, "--window", "10m", "--z", "5"])
                .unwrap();
        let (o, models) = wrap.args.options().unwrap();
        assert_eq!(
            models,
            [
                (Role::Entities, PathBuf::from("runs/e")),
                (Role::Sentiment, PathBuf::from("runs/s"))
            ]
        );
        assert_eq!(o.sources.len(), 3);
        assert_eq!(o.sources[0], Source::Stdin);
        assert!(matches!(&o.sources[1], Source::Nats(n) if n.consumer == "eu"));
        assert_eq!(o.sources[2], Source::Feed("https://example.com/rss".into()));
        assert_eq!((o.window, o.lateness, o.feed_poll), (600, 60, 120.0));
        assert_eq!((o.rule.z, o.rule.min_count, o.rule.warmup), (5.0, 3, 6));
        assert_eq!(o.rule.negatives, Negatives::Argmax);
        assert_eq!(
            (o.batch_size, o.follow, o.poll, o.top_entities),
            (8, true, 0.5, 7)
        );
        assert_eq!(o.clock, Clock::Event);
        assert_eq!(o.metrics_addr.as_deref(), Some("127.0.0.1:9187"));
        assert_eq!(o.alertmanager.as_deref(), Some("http://am:9093"));
        std::fs::write(&path, "windw = \"5m\"\n").unwrap();
        let wrap = Wrap::try_parse_from(["monitor", "--config", config]).unwrap();
        let e = wrap.args.options().err().unwrap().to_string();
        assert!(e.contains("monitor.toml") && e.contains("windw"), "{e}");
    }

    #[test]
    fn durations_read_their_units() {
        assert_eq!(seconds("600"), Ok(600));
        assert_eq!(seconds("10m"), Ok(600));
        assert_eq!(seconds("1h"), Ok(3600));
        assert_eq!(seconds("2d"), Ok(172_800));
        assert!(seconds("10 minutes").is_err());
        assert!(seconds("m").is_err());
    }
}
