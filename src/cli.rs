//! The command line: argument definitions and the `process` shell (files or stdin in,
//! NDJSON bundles out). The Kafka worker's commands join here.

use crate::config::Config;
use crate::decode::framing::Framer;
use crate::pipeline::{Outcome, Pipeline, RecordContext};
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "alertctx",
    version,
    about = "Raw security telemetry in, agent-safe context bundles out"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the core offline: records from files (or stdin) → one bundle per line.
    Process(ProcessArgs),
    /// Run a Kafka worker: one member of the consumer group in `[kafka]`.
    Run(ConfigArgs),
    /// Check a configuration: every problem with its location; exits non-zero on any.
    Validate(ConfigArgs),
    /// The whole worker on this machine with nothing installed: in-process Kafka, example telemetry.
    Demo(crate::demo::DemoArgs),
    /// Write a seeded corpus of realistic raw telemetry (every source; ~1 KB a record; ~20% repeats).
    Generate(GenerateArgs),
    /// Send the example telemetry to a real cluster's raw topics (`<prefix><source>`).
    Produce(crate::produce::ProduceArgs),
    /// Replay one bundle from its provenance: is it reproduced byte for byte, and which mapping
    /// rule, enricher, tag rule and check produced each part.
    Explain(crate::explain::ExplainArgs),
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Records to write.
    #[arg(long, default_value_t = 100_000)]
    pub count: usize,
    /// Seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write here instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// `alertctx generate`.
pub fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let mut out = open_output(args.output.as_ref())?;
    for r in crate::generate::Generator::new(args.seed).take(args.count) {
        out.write_all(r.line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Configuration file (TOML); `ALERTCTX__SECTION__KEY` environment variables override it.
    #[arg(long)]
    pub config: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ProcessArgs {
    /// Configuration file (TOML). Default: embedded mappings and tag rules, no enrichment.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Write bundles here instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Write dead-letter records here (NDJSON). Default: discard them, but count them.
    #[arg(long)]
    pub dlq: Option<PathBuf>,
    /// Suppress the summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Threads for the stages without shared state (decode, normalize, sanitise; tag, score,
    /// write). 0: one per core. The output is the same for any value.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Records handed to the threads at a time. The output is the same for any value.
    #[arg(long, default_value_t = 2048)]
    pub batch_size: usize,
    /// Input files; `-` or none for stdin.
    pub inputs: Vec<PathBuf>,
}

/// Per-source tallies for the summary.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    pub records: u64,
    pub bundles: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
    pub score_sum: u64,
}

/// Counts for a whole run, by source. A dead letter never reached a mapping; it counts under
/// the source a `[[routes]]` entry pins its input to, else under `(dead letter)`.
#[derive(Debug, Default)]
pub struct Summary {
    pub by_source: BTreeMap<String, Tally>,
    pub routes: Vec<crate::normalize::Route>,
    /// The counts of each enricher that keeps any (geo's cache), at the end of the run.
    pub enrichers: Vec<(String, crate::enrich::EnricherStats)>,
}

pub const DEAD_LETTER_SOURCE: &str = "(dead letter)";

impl Summary {
    pub fn add(&mut self, o: &Outcome) {
        match o {
            Outcome::Bundle { report, .. } => {
                let t = self.by_source.entry(report.source.clone()).or_default();
                t.records += 1;
                t.bundles += 1;
                t.score_sum += report.score as u64;
            }
            Outcome::Duplicate { source, .. } => {
                let t = self.by_source.entry(source.clone()).or_default();
                t.records += 1;
                t.duplicates += 1;
            }
            Outcome::DeadLetter(d) => {
                let source = crate::normalize::routed_source(&self.routes, d.origin.input_name())
                    .unwrap_or(DEAD_LETTER_SOURCE);
                let t = self.by_source.entry(source.to_string()).or_default();
                t.records += 1;
                t.dead_letters += 1;
            }
        }
    }

    pub fn total(&self) -> Tally {
        let mut all = Tally::default();
        for t in self.by_source.values() {
            all.records += t.records;
            all.bundles += t.bundles;
            all.duplicates += t.duplicates;
            all.dead_letters += t.dead_letters;
            all.score_sum += t.score_sum;
        }
        all
    }

    pub fn render(&self) -> String {
        let mut s = format!(
            "{:<22} {:>9} {:>9} {:>9} {:>9} {:>6}\n",
            "source", "records", "bundles", "dups", "dead", "score"
        );
        let row = |name: &str, t: &Tally| {
            let mean = if t.bundles > 0 {
                format!("{:.1}", t.score_sum as f64 / t.bundles as f64)
            } else {
                "-".into()
            };
            format!(
                "{:<22} {:>9} {:>9} {:>9} {:>9} {:>6}\n",
                name, t.records, t.bundles, t.duplicates, t.dead_letters, mean
            )
        };
        for (name, t) in &self.by_source {
            s.push_str(&row(name, t));
        }
        s.push_str(&row("total", &self.total()));
        for (name, e) in &self.enrichers {
            s.push_str(&enricher_line(name, e));
        }
        s
    }
}

/// A line of the summary for an enricher's counts: what sizing its cache needs (how often it
/// answered, how full it is) and whether its reference data read cleanly.
fn enricher_line(name: &str, e: &crate::enrich::EnricherStats) -> String {
    let lookups = e.hits + e.misses;
    let ratio = if lookups > 0 {
        format!("{:.1}%", 100.0 * e.hits as f64 / lookups as f64)
    } else {
        "-".into()
    };
    format!(
        "enricher {name}: {lookups} cache lookups, {} hits ({ratio}), {} of {} entries held; {} lookup errors\n",
        e.hits, e.entries, e.capacity, e.lookup_errors
    )
}

fn open_output(path: Option<&PathBuf>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(BufWriter::new(
            std::fs::File::create(p)
                .map_err(|e| anyhow::anyhow!("creating {}: {e}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    })
}

/// `alertctx process`.
pub fn process(args: &ProcessArgs) -> anyhow::Result<Summary> {
    let cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let mut pipeline = Pipeline::from_config(&cfg)?;
    for w in &pipeline.warnings {
        eprintln!("warning: {w}");
    }
    let mut out = open_output(args.output.as_ref())?;
    let mut dlq: Option<Box<dyn Write>> = match &args.dlq {
        Some(p) => Some(open_output(Some(p))?),
        None => None,
    };
    let inputs: Vec<PathBuf> = if args.inputs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.inputs.clone()
    };
    let total_bytes: u64 = inputs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    // Progress on a terminal: a bar for named files over 8 MiB, a running count of bytes for
    // stdin (whose size is not known).
    let reads_stdin = inputs.iter().any(|p| p.as_os_str() == "-");
    let on_terminal = std::io::stderr().is_terminal() && !args.quiet;
    let progress = if on_terminal && reads_stdin {
        let spinner = indicatif::ProgressBar::new_spinner();
        spinner.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes} read, {bytes_per_sec} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        spinner.enable_steady_tick(std::time::Duration::from_millis(200));
        Some(spinner)
    } else if on_terminal && total_bytes > 8 << 20 {
        let bar = indicatif::ProgressBar::new(total_bytes);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let batch_size = args.batch_size.max(1);
    let mut summary = Summary {
        routes: cfg.routes.clone(),
        ..Summary::default()
    };
    let mut outcomes = Vec::new();
    let mut framed = Vec::new();
    let mut line = Vec::new();
    for input in &inputs {
        let name = input.display().to_string();
        let reader: Box<dyn Read> = if name == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(
                std::fs::File::open(input).map_err(|e| anyhow::anyhow!("opening {name}: {e}"))?,
            )
        };
        let mut reader = BufReader::with_capacity(1 << 16, reader);
        let mut framer = Framer::new(&name, pipeline.limits());
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                framer.finish(&mut framed);
            } else {
                framer.push_line(&line, &mut framed);
                if let Some(bar) = &progress {
                    bar.inc(n as u64);
                }
            }
            if framed.len() < batch_size && n != 0 {
                continue;
            }
            pipeline.process_batch(
                std::mem::take(&mut framed),
                threads,
                RecordContext::default(),
                &mut outcomes,
            );
            for o in outcomes.drain(..) {
                summary.add(&o);
                match o {
                    Outcome::Bundle { json, .. } => {
                        out.write_all(json.as_bytes())?;
                        out.write_all(b"\n")?;
                    }
                    Outcome::DeadLetter(d) => {
                        if let Some(w) = dlq.as_mut() {
                            serde_json::to_writer(&mut *w, &d)?;
                            w.write_all(b"\n")?;
                        }
                    }
                    Outcome::Duplicate { .. } => {}
                }
            }
            if n == 0 {
                break;
            }
        }
    }
    summary.enrichers = pipeline
        .enricher_stats()
        .map(|(name, e)| (name.to_string(), e))
        .collect();
    out.flush()?;
    if let Some(w) = dlq.as_mut() {
        w.flush()?;
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if !args.quiet {
        eprint!("{}", summary.render());
    }
    Ok(summary)
}

/// Structured logs: JSON lines when stderr is not a terminal, human-readable otherwise.
/// `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        let _ = builder.try_init();
    } else {
        let _ = builder.json().with_current_span(false).try_init();
    }
}

/// `alertctx run`.
pub fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    init_logging();
    let cfg = Config::load(&args.config)?;
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: draining"),
                _ = term.recv() => tracing::info!("SIGTERM: draining"),
            }
        };
        crate::worker::run(&cfg, metrics, shutdown).await
    })?;
    Ok(())
}

/// Every problem `validate` finds, each with where it is.
pub fn validate_config(path: &std::path::Path) -> Vec<String> {
    // Structure first (syntax, unknown keys, types), every problem with its line.
    if let Ok(text) = std::fs::read_to_string(path) {
        let structural = Config::structural_problems(&text);
        if !structural.is_empty() {
            return structural
                .into_iter()
                .map(|p| format!("{}: {p}", path.display()))
                .collect();
        }
    }
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return vec![format!("{e:#}")],
    };
    let mut problems = Vec::new();
    let mut check = |what: &str, r: anyhow::Result<()>| {
        if let Err(e) = r {
            problems.push(format!("{}: {what}: {e:#}", path.display()));
        }
    };
    check(
        "[quality]",
        crate::score::Scorer::new(&cfg.quality).map(|_| ()),
    );
    check(
        "[dedup]",
        crate::dedup::Deduper::new(&cfg.dedup).map(|_| ()),
    );
    check(
        "[pipeline].mappings / [[routes]]",
        match &cfg.pipeline.mappings {
            Some(d) => crate::normalize::Normalizer::from_dir(d, cfg.routes.clone()).map(|_| ()),
            None => crate::normalize::Normalizer::embedded(cfg.routes.clone()).map(|_| ()),
        },
    );
    check(
        "[pipeline].tags",
        match &cfg.pipeline.tags {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
                .and_then(|t| crate::tag::Tagger::from_toml(&t).map(|_| ())),
            None => Ok(()),
        },
    );
    if let Some(dir) = &cfg.pipeline.enrichers {
        check(
            "[pipeline].enrichers",
            crate::enrich::load_dir(dir).map(|_| ()),
        );
    }
    check(
        "[metrics].listen",
        if cfg.metrics.listen.is_empty()
            || cfg.metrics.listen.parse::<std::net::SocketAddr>().is_ok()
        {
            Ok(())
        } else {
            Err(anyhow::anyhow!(
                "`{}` is not host:port with an IP address",
                cfg.metrics.listen
            ))
        },
    );
    match &cfg.kafka {
        None => check(
            "[kafka]",
            Err(anyhow::anyhow!(
                "missing: `alertctx run` needs brokers, group_id, topics, output_topic, dlq_topic"
            )),
        ),
        Some(k) => {
            check(
                "[kafka].brokers",
                if k.brokers.trim().is_empty() {
                    Err(anyhow::anyhow!("empty"))
                } else {
                    Ok(())
                },
            );
            check(
                "[kafka].group_id",
                if k.group_id.trim().is_empty() {
                    Err(anyhow::anyhow!("empty"))
                } else {
                    Ok(())
                },
            );
            check(
                "[kafka].topics",
                if k.topics.is_empty() {
                    Err(anyhow::anyhow!("no raw topics to consume"))
                } else {
                    Ok(())
                },
            );
            check(
                "[kafka].output_topic / dlq_topic",
                if k.output_topic == k.dlq_topic
                    || k.topics.contains(&k.output_topic)
                    || k.topics.contains(&k.dlq_topic)
                {
                    Err(anyhow::anyhow!(
                        "the output, dead-letter and raw topics must all differ"
                    ))
                } else {
                    Ok(())
                },
            );
            for (key, v) in [
                ("commit_interval", &k.commit_interval),
                ("drain_timeout", &k.drain_timeout),
            ] {
                check(
                    &format!("[kafka].{key}"),
                    crate::timeparse::parse_duration_ms(v)
                        .map(|_| ())
                        .ok_or_else(|| anyhow::anyhow!("`{v}` is not a duration")),
                );
            }
            check(
                "[kafka].max_in_flight",
                if k.max_in_flight == 0 {
                    Err(anyhow::anyhow!("must be at least 1"))
                } else {
                    Ok(())
                },
            );
            check(
                "[kafka].consumer",
                crate::worker::consumer_config(k)
                    .create::<rdkafka::consumer::BaseConsumer>()
                    .map(|_| ())
                    .map_err(Into::into),
            );
            check(
                "[kafka].producer",
                crate::worker::producer_config(k)
                    .create::<rdkafka::producer::BaseProducer>()
                    .map(|_| ())
                    .map_err(Into::into),
            );
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::DeadLetter;
    use crate::record::Origin;

    fn dead(input: &str) -> Outcome {
        Outcome::DeadLetter(DeadLetter {
            reason: "invalid_json",
            message: String::new(),
            origin: Origin::File {
                input: input.into(),
                line: 1,
            },
            index: None,
            bytes: b"{".to_vec(),
        })
    }

    #[test]
    fn dead_letters_count_under_their_routed_source() {
        let mut s = Summary {
            routes: vec![crate::normalize::Route {
                input: "okta-*.log".into(),
                source: "okta".into(),
            }],
            ..Summary::default()
        };
        s.add(&dead("logs/okta-1.log"));
        s.add(&dead("logs/other.log"));
        assert_eq!(s.by_source["okta"].dead_letters, 1);
        assert_eq!(s.by_source[DEAD_LETTER_SOURCE].dead_letters, 1);
        assert_eq!(s.total().records, 2);
    }
}
