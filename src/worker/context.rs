//! librdkafka callbacks: delivery reports acknowledge outputs; rebalances drain and commit;
//! statistics feed the consumer-lag gauge.

use super::Shared;
use crate::keyed::by_name;
use prometheus::{Histogram, IntCounter};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// What a delivery report refers to: the input message an output belongs to.
#[derive(Debug)]
pub struct Pending {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub broker_ms: Option<i64>,
}

pub struct ProduceCtx {
    pub shared: Arc<Shared>,
    /// The series every acknowledgement updates, looked up once (see [`DeliverySeries`]).
    series: Mutex<DeliverySeries>,
}

impl ProduceCtx {
    pub fn new(shared: Arc<Shared>) -> ProduceCtx {
        ProduceCtx {
            shared,
            series: Mutex::default(),
        }
    }
}

/// The handles of the series an acknowledged output updates, by topic ([`by_name`]), made
/// when first needed. `with_label_values` hashes the labels and takes the family's lock for
/// every call: twice an output, on the thread that serves delivery reports.
#[derive(Default)]
struct DeliverySeries {
    /// `produced_messages_total{result="ok"}` by output topic.
    ok: Vec<(String, IntCounter)>,
    /// `end_to_end_latency_seconds` by input topic.
    latency: Vec<(Arc<str>, Histogram)>,
}

impl ClientContext for ProduceCtx {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.shared.client_error("producer", &error, reason);
    }
}

impl ProducerContext for ProduceCtx {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, p: Box<Pending>) {
        match result {
            Ok(m) => {
                self.shared.offsets.lock().expect("offsets lock").ack(
                    &p.topic,
                    p.partition,
                    p.offset,
                );
                let metrics = &self.shared.metrics;
                let series = &mut *self.series.lock().unwrap_or_else(|e| e.into_inner());
                let out_topic = m.topic();
                by_name(&mut series.ok, out_topic, || {
                    let ok = metrics.produced.with_label_values(&[out_topic, "ok"]);
                    (out_topic.to_string(), ok)
                })
                .1
                .inc();
                if let Some(ms) = p.broker_ms {
                    let now = chrono::Utc::now().timestamp_millis();
                    let secs = (now - ms).max(0) as f64 / 1000.0;
                    by_name(&mut series.latency, &p.topic, || {
                        let latency = metrics.latency.with_label_values(&[&*p.topic]);
                        (p.topic.clone(), latency)
                    })
                    .1
                    .observe(secs);
                }
            }
            Err((e, m)) => {
                let out_topic = m.topic();
                // librdkafka has retried (idempotently) until message.timeout.ms: this output is
                // lost for good. The input offset stays uncommitted and the worker stops, so a
                // restart reprocesses from the last committed offset.
                let reason = format!("delivery to {out_topic} failed: {e}");
                tracing::error!(topic = %p.topic, partition = p.partition, offset = p.offset, %reason, "output failed");
                self.shared.offsets.lock().expect("offsets lock").fail(
                    &p.topic,
                    p.partition,
                    p.offset,
                    reason.clone(),
                );
                self.shared
                    .metrics
                    .produced
                    .with_label_values(&[out_topic, "failed"])
                    .inc();
                self.shared.fail(reason);
            }
        }
    }
}

pub struct ConsumeCtx {
    pub shared: Arc<Shared>,
    /// Set once the producer exists; a revoke flushes it before the final commit.
    pub producer: Arc<OnceLock<Arc<ThreadedProducer<ProduceCtx>>>>,
    pub drain: Duration,
}

impl ClientContext for ConsumeCtx {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.shared
                        .metrics
                        .consumer_lag
                        .with_label_values(&[topic.as_str(), &partition.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.shared.client_error("consumer", &error, reason);
    }
}

impl ConsumerContext for ConsumeCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        // Drain: every output already handed to the producer gets its acknowledgement (or
        // fails) before the partitions are given up.
        if let Some(p) = self.producer.get() {
            if let Err(e) = p.flush(self.shared.drain_budget(self.drain)) {
                tracing::warn!(%e, "drain on revoke did not finish in time; uncommitted output will be reprocessed by the next owner");
            }
        }
        let mut commit = TopicPartitionList::new();
        {
            let mut offsets = self.shared.offsets.lock().expect("offsets lock");
            for e in tpl.elements() {
                // A partition this member no longer owns has no lag of its own to report.
                let _ = self
                    .shared
                    .metrics
                    .consumer_lag
                    .remove_label_values(&[e.topic(), &e.partition().to_string()]);
                if let Some(tracker) = offsets.revoke(e.topic(), e.partition()) {
                    if let Some(o) = tracker.to_commit() {
                        let _ = commit.add_partition_offset(
                            e.topic(),
                            e.partition(),
                            Offset::Offset(o),
                        );
                    }
                }
            }
        }
        if commit.count() > 0 {
            // Synchronous, but bounded: this runs inside a poll of the consumer (the worker's
            // loop, or the close when leaving the group), which must not wait forever.
            let budget = self.shared.drain_budget(self.drain);
            let result = super::commit_within(consumer, &commit, budget);
            self.shared
                .metrics
                .commits
                .with_label_values(&[if result.is_ok() { "ok" } else { "failed" }])
                .inc();
            match result {
                Ok(()) => {
                    tracing::info!(partitions = commit.count(), "committed revoked partitions")
                }
                Err(e) => {
                    tracing::warn!(%e, ?budget, "final commit on revoke failed or went unanswered; the next owner reprocesses from the previous commit")
                }
            }
        }
        self.shared.assigned.fetch_sub(
            tpl.count().min(self.shared.assigned.load(Ordering::SeqCst)),
            Ordering::SeqCst,
        );
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let mut offsets = self.shared.offsets.lock().expect("offsets lock");
                for e in tpl.elements() {
                    offsets.assign(e.topic(), e.partition());
                }
                self.shared
                    .assigned
                    .fetch_add(tpl.count(), Ordering::SeqCst);
                tracing::info!(partitions = ?offsets.partitions(), "assigned");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }

    /// The worker commits synchronously and counts each commit where it makes it; this only
    /// records the offsets librdkafka reports committed, so no commit is counted twice.
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                let mut tracked = self.shared.offsets.lock().expect("offsets lock");
                for e in offsets.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        tracked.committed(e.topic(), e.partition(), o);
                    }
                }
            }
            Err(e) => tracing::warn!(%e, "offset commit failed; retried at the next interval"),
        }
    }
}
