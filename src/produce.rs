//! `alertctx produce`: send the example telemetry compiled into the binary (the records
//! `alertctx demo` uses, one message per record) to `<prefix><source>` topics of a real
//! cluster. The local compose stack (`deploy/compose`) loads its raw topics with it.

use rdkafka::client::ClientContext;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientConfig;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// Kafka bootstrap servers, host:port[,host:port...].
    #[arg(long)]
    pub brokers: String,
    /// Each source's records go to `<prefix><source>`.
    #[arg(long, default_value = "raw.")]
    pub topic_prefix: String,
    /// Rounds to send; 0 sends until stopped.
    #[arg(long, default_value_t = 1)]
    pub repeat: u64,
    /// Pause between rounds, e.g. `30s`.
    #[arg(long, default_value = "30s")]
    pub interval: String,
}

/// The example records as (topic, bytes), topics named `<prefix><source>`.
pub fn messages(prefix: &str) -> Vec<(String, Vec<u8>)> {
    crate::demo::example_messages()
        .into_iter()
        .map(|(topic, bytes)| {
            (
                format!("{prefix}{}", topic.strip_prefix("raw.").unwrap_or(&topic)),
                bytes,
            )
        })
        .collect()
}

/// Counts delivery failures, keeping the first error.
#[derive(Default)]
struct Deliveries {
    failed: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result {
            self.failed.fetch_add(1, Ordering::SeqCst);
            self.first_error
                .lock()
                .expect("error lock")
                .get_or_insert_with(|| format!("{}: {e}", rdkafka::Message::topic(m)));
        }
    }
}

/// Send every example record once; returns how many were acknowledged. Any failed delivery
/// (an unknown topic, say) is an error.
pub fn send_once(brokers: &str, prefix: &str) -> anyhow::Result<usize> {
    let producer: ThreadedProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        // An unknown topic or an unreachable cluster fails the run instead of hanging.
        .set("message.timeout.ms", "30000")
        .create_with_context(Deliveries::default())?;
    let messages = messages(prefix);
    for (topic, bytes) in &messages {
        let mut rec = BaseRecord::<(), [u8]>::to(topic).payload(bytes.as_slice());
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    rec = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => anyhow::bail!("{topic}: {e}"),
            }
        }
    }
    producer.flush(Duration::from_secs(60))?;
    let ctx = producer.context();
    let failed = ctx.failed.load(Ordering::SeqCst);
    if failed > 0 {
        let first = ctx
            .first_error
            .lock()
            .expect("error lock")
            .clone()
            .unwrap_or_default();
        anyhow::bail!(
            "{failed} of {} records were not delivered (first: {first})",
            messages.len()
        );
    }
    Ok(messages.len())
}

pub fn run(args: &ProduceArgs) -> anyhow::Result<()> {
    let interval = crate::timeparse::parse_duration_ms(&args.interval).ok_or_else(|| {
        anyhow::anyhow!("--interval: `{}` is not a duration like 30s", args.interval)
    })?;
    let topics = messages(&args.topic_prefix)
        .into_iter()
        .map(|(t, _)| t)
        .collect::<std::collections::BTreeSet<_>>();
    for round in 1.. {
        let n = send_once(&args.brokers, &args.topic_prefix)?;
        eprintln!(
            "produce: round {round}: {n} records to {} topics {}<source>",
            topics.len(),
            args.topic_prefix
        );
        if args.repeat != 0 && round >= args.repeat {
            break;
        }
        std::thread::sleep(Duration::from_millis(interval as u64));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::mocking::MockCluster;

    #[test]
    fn every_example_record_lands_on_its_prefixed_topic() {
        let cluster = MockCluster::new(1).unwrap();
        let brokers = cluster.bootstrap_servers();
        let expected = messages("test.");
        let mut per_topic = std::collections::BTreeMap::new();
        for (t, _) in &expected {
            assert!(t.starts_with("test.") && !t.starts_with("test.raw."), "{t}");
            *per_topic.entry(t.clone()).or_insert(0i64) += 1;
        }
        for t in per_topic.keys() {
            cluster.create_topic(t, 2, 1).unwrap();
        }
        assert_eq!(send_once(&brokers, "test.").unwrap(), expected.len());

        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .unwrap();
        for (t, n) in &per_topic {
            let on_topic: i64 = (0..2)
                .map(|p| c.fetch_watermarks(t, p, Duration::from_secs(10)).unwrap())
                .map(|(lo, hi)| hi - lo)
                .sum();
            assert_eq!(on_topic, *n, "{t}");
        }
    }
}
