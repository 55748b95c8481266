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
#[command(name = "alertctx", version, about = "Raw security telemetry in, agent-safe context bundles out")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the core offline: records from files (or stdin) → one bundle per line.
    Process(ProcessArgs),
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

/// Counts for a whole run, by source (`(dead letter)` for records that never reached one).
#[derive(Debug, Default)]
pub struct Summary {
    pub by_source: BTreeMap<String, Tally>,
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
            Outcome::DeadLetter(_) => {
                let t = self.by_source.entry(DEAD_LETTER_SOURCE.into()).or_default();
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
        let mut s = format!("{:<22} {:>9} {:>9} {:>9} {:>9} {:>6}\n", "source", "records", "bundles", "dups", "dead", "score");
        let row = |name: &str, t: &Tally| {
            let mean = if t.bundles > 0 { format!("{:.1}", t.score_sum as f64 / t.bundles as f64) } else { "-".into() };
            format!("{:<22} {:>9} {:>9} {:>9} {:>9} {:>6}\n", name, t.records, t.bundles, t.duplicates, t.dead_letters, mean)
        };
        for (name, t) in &self.by_source {
            s.push_str(&row(name, t));
        }
        s.push_str(&row("total", &self.total()));
        s
    }
}

fn open_output(path: Option<&PathBuf>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(BufWriter::new(std::fs::File::create(p).map_err(|e| anyhow::anyhow!("creating {}: {e}", p.display()))?)),
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
    let inputs: Vec<PathBuf> = if args.inputs.is_empty() { vec![PathBuf::from("-")] } else { args.inputs.clone() };
    let total_bytes: u64 = inputs.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let progress = if std::io::stderr().is_terminal() && !args.quiet && total_bytes > 8 << 20 {
        let bar = indicatif::ProgressBar::new(total_bytes);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let mut summary = Summary::default();
    let mut outcomes = Vec::new();
    let mut framed = Vec::new();
    let mut line = Vec::new();
    for input in &inputs {
        let name = input.display().to_string();
        let reader: Box<dyn Read> = if name == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::fs::File::open(input).map_err(|e| anyhow::anyhow!("opening {name}: {e}"))?)
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
            for f in framed.drain(..) {
                pipeline.process_framed(f, RecordContext::default(), &mut outcomes);
            }
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
