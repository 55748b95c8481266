//! `alertctx demo`: the whole worker on this machine with nothing installed. An in-process
//! Kafka cluster (librdkafka's mock cluster), the example telemetry from the repository
//! produced to one raw topic per source, the worker consuming it, bundles printed as they come,
//! `/metrics` served, and a summary once every message is accounted for.

use crate::cli::Summary;
use crate::config::{Config, KafkaConfig};
use crate::decode::framing::{frame_all, Framed};
use crate::metrics::Metrics;
use crate::pipeline::Outcome;
use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The example telemetry compiled into the binary: (source, file name, bytes).
pub const EXAMPLES: &[(&str, &str, &[u8])] = &include!(concat!(env!("OUT_DIR"), "/examples.rs"));

pub const OUTPUT_TOPIC: &str = "alertctx.bundles";
pub const DLQ_TOPIC: &str = "alertctx.dead-letters";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address for /metrics, /healthz, /readyz.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub metrics_listen: String,
    /// Enricher definitions to load (skipped when the directory does not exist).
    #[arg(long, default_value = "enrichers")]
    pub enrichers: std::path::PathBuf,
    /// Print every bundle in full instead of one line each.
    #[arg(long)]
    pub full: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// Every example record as a Kafka message: (topic, bytes). A Zeek TSV log goes as one
/// message (its rows need their header); everything else one record per message.
pub fn example_messages() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (source, name, bytes) in EXAMPLES {
        if bytes.starts_with(b"#separator") {
            out.push((format!("raw.{source}"), bytes.to_vec()));
            continue;
        }
        for f in frame_all(name, bytes, crate::decode::Limits::default()) {
            let bytes = match f {
                Framed::Record(r) => r.bytes,
                Framed::Error { bytes, .. } => bytes,
            };
            out.push((format!("raw.{source}"), bytes));
        }
    }
    out
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let cluster = MockCluster::new(1).context("starting the in-process Kafka cluster")?;
    let brokers = cluster.bootstrap_servers();
    let messages = example_messages();
    let mut topics: Vec<String> = messages.iter().map(|(t, _)| t.clone()).collect();
    topics.sort();
    topics.dedup();
    for t in topics
        .iter()
        .map(String::as_str)
        .chain([OUTPUT_TOPIC, DLQ_TOPIC])
    {
        cluster
            .create_topic(t, 3, 1)
            .with_context(|| format!("creating topic {t}"))?;
    }
    eprintln!(
        "demo: in-process Kafka at {brokers}; producing {} example records to {} raw topics",
        messages.len(),
        topics.len()
    );
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()?;
    for (topic, bytes) in &messages {
        producer
            .send(BaseRecord::<(), [u8]>::to(topic).payload(bytes.as_slice()))
            .map_err(|(e, _)| e)?;
    }
    producer.flush(Duration::from_secs(30))?;

    let mut cfg = Config::default();
    if args.enrichers.is_dir() {
        cfg.pipeline.enrichers = Some(args.enrichers.clone());
    }
    cfg.quality.reference_time = "none".into();
    cfg.metrics.listen = args.metrics_listen.clone();
    cfg.kafka = Some(KafkaConfig {
        brokers: brokers.clone(),
        group_id: "alertctx-demo".into(),
        topics: topics.clone(),
        output_topic: OUTPUT_TOPIC.into(),
        dlq_topic: DLQ_TOPIC.into(),
        max_in_flight: 20_000,
        commit_interval: "200ms".into(),
        drain_timeout: "10s".into(),
        consumer: Default::default(),
        producer: Default::default(),
    });
    let metrics = Arc::new(Metrics::new());
    let expected = messages.len() as u64;
    let m = metrics.clone();
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let done = async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let consumed: u64 = topics
                .iter()
                .map(|t| m.input_messages.with_label_values(&[t.as_str()]).get())
                .sum();
            if (consumed >= expected && m.in_flight.get() == 0) || Instant::now() > deadline {
                // One more commit interval so the last offsets are committed before the drain.
                tokio::time::sleep(Duration::from_millis(300)).await;
                return;
            }
        }
    };
    let shutdown = async move {
        tokio::select! {
            _ = done => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    let mut summary = Summary::default();
    let full = args.full;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stats = rt.block_on(crate::worker::run_with(
        &cfg,
        metrics.clone(),
        shutdown,
        |o| {
            summary.add(o);
            match o {
                Outcome::Bundle { json, report, .. } if full => println!("{json}"),
                Outcome::Bundle { json, report, .. } => {
                    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
                    let title = [
                        "finding_info.title",
                        "api.operation",
                        "query.hostname",
                        "process.cmd_line",
                        "user.name",
                        "dst_endpoint.ip",
                    ]
                    .iter()
                    .find_map(|p| crate::path::get_str(&v["alert"], p))
                    .unwrap_or_default();
                    let title: String = title.chars().take(60).collect();
                    println!(
                        "{:<14} {:<22} score {:>3}  {:<60} {}",
                        report.source,
                        crate::ocsf::class_name(report.class_uid),
                        report.score,
                        title,
                        v["tags"]
                            .as_array()
                            .map(|t| t
                                .iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join(" "))
                            .unwrap_or_default()
                    );
                }
                Outcome::DeadLetter(d) => {
                    println!("{:<14} dead letter: {} ({})", "-", d.reason, d.message)
                }
                Outcome::Duplicate { .. } => {}
            }
        },
    ))?;

    // Read the output topics back: what the agents would see.
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "alertctx-demo-reader")
        .set("auto.offset.reset", "earliest")
        .create()?;
    let mut counted = 0;
    for t in [OUTPUT_TOPIC, DLQ_TOPIC] {
        for p in 0..3 {
            let (lo, hi) = reader.fetch_watermarks(t, p, Duration::from_secs(5))?;
            counted += hi - lo;
        }
    }
    eprintln!();
    eprint!("{}", summary.render());
    let total = summary.total();
    eprintln!(
        "demo: {} messages consumed; {} bundles + {} folded duplicates + {} dead letters; {} messages on {OUTPUT_TOPIC} and {DLQ_TOPIC}",
        stats.messages, total.bundles, total.duplicates, total.dead_letters, counted
    );
    // Every message consumed; every bundle and dead letter on its topic; an envelope's records
    // each count once in records = bundles + duplicates + dead letters.
    if stats.messages != expected
        || counted as u64 != total.bundles + total.dead_letters
        || total.records < expected
    {
        anyhow::bail!("not every example record was accounted for");
    }
    eprintln!(
        "demo: every record accounted for. Metrics were served at http://{}/metrics",
        args.metrics_listen
    );
    Ok(())
}
