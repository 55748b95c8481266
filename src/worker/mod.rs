//! The Kafka worker (`alertctx run`): one member of a consumer group, a thin shell around the
//! same [`Pipeline`] that `alertctx process` runs.
//!
//! For every consumed message: frame and process it, register its outputs with the partition's
//! [offset tracker](offsets), and hand each output to the idempotent, lz4-compressing producer.
//! Delivery reports acknowledge outputs ([`context`]); acknowledged offsets are committed
//! (synchronously) every `commit_interval`. A revoke flushes the producer and commits the revoked partitions
//! synchronously; so does shutdown (SIGTERM, SIGINT) within `drain_timeout`. An output that
//! fails for good stops the worker without committing past it: the next owner reprocesses.
//!
//! No librdkafka call the worker makes waits without limit: a synchronous commit waits at most
//! `drain_timeout` for its answer ([`commit_within`]; librdkafka's own sync commit waits forever
//! for a reply that can be lost), and leaving the group (unsubscribe, and the consumer's close,
//! which rust-rdkafka runs on drop as a loop until librdkafka says closed) runs on a thread of
//! its own that the shutdown waits for only until the drain deadline (`leave_group`).

pub mod consume_errors;
pub mod context;
pub mod drain;
pub mod heap;
pub mod offsets;
pub mod repeats;

use crate::config::{Config, KafkaConfig};
use crate::decode::framing::{frame_message, Framed};
use crate::metrics::{count_since, Metrics};
use crate::pipeline::{DeadLetter, Outcome, Pipeline, RecordContext, GROUP_RUN};
use crate::record::Origin;
use anyhow::Context as _;
use context::{ConsumeCtx, Pending, ProduceCtx};
use offsets::Offsets;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// State shared between the processing loop, librdkafka's callbacks and the HTTP endpoint.
pub struct Shared {
    pub offsets: Mutex<Offsets>,
    pub metrics: Arc<Metrics>,
    /// Partitions currently assigned.
    pub assigned: AtomicUsize,
    /// Set when shutting down: not ready any more.
    pub stopping: AtomicBool,
    /// The first permanent failure; the worker stops on it.
    pub fatal: Mutex<Option<String>>,
    /// Set when shutdown begins: every drain step after it shares what is left
    /// ([`drain::budget`]).
    pub drain_deadline: Mutex<Option<Instant>>,
    /// Which client errors were logged when ([`repeats::Repeats`]).
    pub repeats: Mutex<repeats::Repeats>,
}

impl Shared {
    pub fn new(metrics: Arc<Metrics>) -> Shared {
        Shared {
            offsets: Mutex::new(Offsets::default()),
            metrics,
            assigned: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            fatal: Mutex::new(None),
            drain_deadline: Mutex::new(None),
            repeats: Mutex::new(repeats::Repeats::new(Duration::from_secs(30))),
        }
    }

    /// A librdkafka error reported by `client` (`consumer` and `producer` for their error
    /// callbacks, `poll` for the consumer's message stream, which repeats the consumer's
    /// connection errors and alone reports a partition's): counted every time, logged the
    /// first time and then at most every 30 s for each kind, with how many it stood for.
    pub fn client_error(&self, client: &str, error: &KafkaError, reason: &str) {
        let kind = error
            .rdkafka_error_code()
            .map_or_else(|| "other".to_string(), |c| format!("{c:?}"));
        self.metrics
            .client_errors
            .with_label_values(&[client, kind.as_str()])
            .inc();
        let key = format!("{client} {kind}");
        let logged = self
            .repeats
            .lock()
            .expect("repeats lock")
            .note(&key, Instant::now());
        if let Some(repeats) = logged {
            tracing::warn!(client, %error, reason, repeats, "kafka client error");
        }
    }

    /// How long a drain step may wait now.
    pub fn drain_budget(&self, full: Duration) -> Duration {
        let d = *self.drain_deadline.lock().expect("drain lock");
        drain::budget(d, Instant::now(), full)
    }

    /// Shutdown begins: not ready any more, and the drain deadline starts.
    pub fn begin_shutdown(&self, full: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        let mut d = self.drain_deadline.lock().expect("drain lock");
        *d = Some(drain::deadline(*d, Instant::now(), full));
    }

    pub fn fail(&self, reason: String) {
        let mut f = self.fatal.lock().expect("fatal lock");
        if f.is_none() {
            *f = Some(reason);
        }
    }

    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().expect("fatal lock").clone()
    }

    /// Ready: partitions assigned, not stopping, nothing failed.
    pub fn ready(&self) -> bool {
        self.assigned.load(Ordering::SeqCst) > 0
            && !self.stopping.load(Ordering::SeqCst)
            && self.fatal().is_none()
    }

    /// Alive: nothing failed for good.
    pub fn healthy(&self) -> bool {
        self.fatal().is_none()
    }
}

/// What a worker run did, for tests and the demo's summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunStats {
    pub messages: u64,
    pub bundles: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
}

fn duration(s: &str, key: &str) -> anyhow::Result<Duration> {
    crate::timeparse::parse_duration_ms(s)
        .map(|ms| Duration::from_millis(ms as u64))
        .ok_or_else(|| anyhow::anyhow!("kafka.{key}: `{s}` is not a duration like 1s or 500ms"))
}

/// librdkafka properties for the consumer: ours first, the operator's passthrough on top.
pub fn consumer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("group.id", &k.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Bounded prefetch: memory stays flat when the group is far behind.
        .set("queued.max.messages.kbytes", "16384")
        // At most 1 MiB a fetch response, librdkafka's per-partition default: a backlog is
        // read in its partitions' order. A broker that fills a response from one partition
        // (the test broker ignores `max.partition.fetch.bytes`) otherwise hands over 16 MiB
        // of one partition at a time; reading 400k records that way put a record a median
        // 30,700 records from its place (p99 103,000) and the exact-repeat memo, which
        // remembers 65,536, caught 45% of the repeats instead of 75% (README, Performance).
        .set("fetch.max.bytes", "1048576")
        // Above the producer's message.timeout.ms (300 s) plus a drain: a member held in
        // backpressure by a stalled output fails on that output before the group evicts it.
        .set("max.poll.interval.ms", "360000")
        .set("statistics.interval.ms", "5000");
    passthrough(c, &k.consumer)
}

/// The operator's librdkafka properties, set last so they win.
fn passthrough(
    mut c: ClientConfig,
    props: &std::collections::BTreeMap<String, String>,
) -> ClientConfig {
    for (key, v) in props {
        c.set(key, v);
    }
    c
}

/// librdkafka properties for the producer.
pub fn producer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        // Batches of ~10× more bundles than librdkafka's 5 ms default gives at 12k bundles/s:
        // fewer produce requests and delivery wake-ups. In four back-to-back benchmark pairs
        // the worker used 3–33% less CPU a record, and latency at half load was no worse
        // (the consumer's fetch wait dominates it; README, Performance).
        .set("linger.ms", "50")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "100000")
        // Bundles wait here for the broker: 64 MiB is twice what `max_in_flight` messages'
        // bundles take at ~3 KB each, so the in-flight bound, not this, is what stops input.
        .set("queue.buffering.max.kbytes", "65536")
        .set("message.timeout.ms", "300000");
    passthrough(c, &k.producer)
}

/// A message of the batch being processed, and where its outcomes come from.
struct Taken {
    /// Its position among the messages received.
    msg: usize,
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    broker_ms: Option<i64>,
    /// Whether it went to the pipeline (its value is not empty).
    in_batch: bool,
}

/// Run the worker until `shutdown` resolves or an output fails for good.
pub async fn run(
    cfg: &Config,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<RunStats> {
    run_with(cfg, metrics, shutdown, |_| {}).await
}

/// [`run`] with a callback that sees every outcome (the demo prints bundles with it).
pub async fn run_with(
    cfg: &Config,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
    mut on_outcome: impl FnMut(&Outcome),
) -> anyhow::Result<RunStats> {
    let k = cfg
        .kafka
        .as_ref()
        .context("the configuration has no [kafka] section")?;
    let commit_interval = duration(&k.commit_interval, "commit_interval")?;
    let drain = duration(&k.drain_timeout, "drain_timeout")?;
    // Before librdkafka allocates: its batches reuse freed memory instead of faulting in fresh
    // pages for every one.
    match heap::keep_freed_memory() {
        heap::HeapSetting::Tunables => {
            tracing::info!("GLIBC_TUNABLES sets glibc's malloc: its heap thresholds left as set")
        }
        setting => tracing::debug!(?setting, "glibc heap thresholds"),
    }
    let mut pipeline = Pipeline::from_config(cfg)?;
    for w in &pipeline.warnings {
        tracing::warn!("{w}");
    }
    let shared = Arc::new(Shared::new(metrics.clone()));
    let server = crate::http::spawn(&cfg.metrics.listen, shared.clone()).await?;

    let producer_slot = Arc::new(OnceLock::new());
    let producer: Arc<ThreadedProducer<ProduceCtx>> = Arc::new(
        producer_config(k)
            .create_with_context(ProduceCtx::new(shared.clone()))
            .context("creating the producer")?,
    );
    let _ = producer_slot.set(producer.clone());
    let consumer: StreamConsumer<ConsumeCtx> = consumer_config(k)
        .create_with_context(ConsumeCtx {
            shared: shared.clone(),
            producer: producer_slot,
            drain,
        })
        .context("creating the consumer")?;
    let topics: Vec<&str> = k.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).context("subscribing")?;
    tracing::info!(topics = ?k.topics, group = %k.group_id, "worker started");

    let mut stats = RunStats::default();
    let mut ticker = tokio::time::interval(commit_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut outcomes = Vec::new();
    // The core's counts since start (exact repeats folded; guesses right and wrong), as far
    // as the metrics have them.
    let (mut exact_counted, mut right_counted, mut wrong_counted) = (0, 0, 0);
    let guessed_right = metrics.dedup_guesses.with_label_values(&["right"]);
    let guessed_wrong = metrics.dedup_guesses.with_label_values(&["wrong"]);
    let mut enricher_series: Vec<_> = pipeline
        .enricher_stats()
        .map(|(name, now)| {
            let mut series = metrics.enricher(name);
            series.update(&now);
            series
        })
        .collect();
    let mut topics = InputTopics::new(&metrics.input_messages);
    let out_topic: Arc<str> = Arc::from(k.output_topic.as_str());
    let dlq_topic: Arc<str> = Arc::from(k.dlq_topic.as_str());
    let result: anyhow::Result<()> = loop {
        if let Some(f) = shared.fatal() {
            break Err(anyhow::anyhow!("stopping: {f}"));
        }
        let in_flight = shared.offsets.lock().expect("offsets lock").in_flight();
        metrics.in_flight.set(in_flight as i64);
        metrics.dedup_keys.set(pipeline.dedup_len() as i64);
        if in_flight >= k.max_in_flight {
            // Backpressure: wait for acknowledgements before taking more input, committing
            // what they free at the usual interval.
            tokio::select! {
                biased;
                _ = &mut shutdown => break Ok(()),
                _ = ticker.tick() => commit(&consumer, &shared, drain),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
            continue;
        }
        tokio::select! {
            biased;
            _ = &mut shutdown => break Ok(()),
            _ = ticker.tick() => commit(&consumer, &shared, drain),
            msg = consumer.recv() => {
                // This message and those already waiting behind it, as many as the pipeline
                // takes source by source (`Pipeline::process_grouped`) and the in-flight limit
                // leaves room for. Nothing waits for more to arrive.
                let room = k.max_in_flight.saturating_sub(in_flight).clamp(1, GROUP_RUN);
                let mut msgs = Vec::new();
                match msg {
                    Err(e) => shared.client_error("poll", &e, ""),
                    Ok(m) => msgs.push(m),
                }
                while !msgs.is_empty() && msgs.len() < room {
                    match ready_now(consumer.recv()) {
                        Some(Ok(m)) => msgs.push(m),
                        Some(Err(e)) => {
                            shared.client_error("poll", &e, "");
                            break;
                        }
                        None => break,
                    }
                }
                let mut taken = Vec::with_capacity(msgs.len());
                let mut batch = Vec::with_capacity(msgs.len());
                for (i, m) in msgs.iter().enumerate() {
                    let (topic, consumed) = topics.get(m.topic());
                    let (partition, offset) = (m.partition(), m.offset());
                    if !shared.offsets.lock().expect("offsets lock").owns(&topic, partition) {
                        // Fetched before a revoke: the partition's new owner processes it.
                        tracing::debug!(%topic, partition, offset, "skipping a message of a partition no longer owned");
                        continue;
                    }
                    let broker_ms = m.timestamp().to_millis();
                    consumed.inc();
                    stats.messages += 1;
                    let origin = Origin::Kafka { topic: topic.clone(), partition, offset };
                    let in_batch = match m.payload() {
                        Some(bytes) if !bytes.is_empty() => {
                            batch.push((Framed::Record(frame_message(bytes, origin)), RecordContext { broker_ms }));
                            true
                        }
                        _ => false,
                    };
                    taken.push(Taken { msg: i, topic, partition, offset, broker_ms, in_batch });
                }
                let mut ends = Vec::with_capacity(batch.len());
                pipeline.process_grouped(batch, &mut outcomes, &mut ends);
                count_since(&metrics.exact_repeats, pipeline.exact_repeats_folded(), &mut exact_counted);
                let (guesses, wrong) = pipeline.guesses();
                count_since(&guessed_right, guesses - wrong, &mut right_counted);
                count_since(&guessed_wrong, wrong, &mut wrong_counted);
                for (series, (_, now)) in enricher_series.iter_mut().zip(pipeline.enricher_stats()) {
                    series.update(&now);
                }
                // When the batch's sources were last seen, to the second: one clock read a batch.
                let now_s = chrono::Utc::now().timestamp();
                let mut all = std::mem::take(&mut outcomes).into_iter();
                let (mut ends, mut at) = (ends.into_iter(), 0);
                let mut mine = Vec::new();
                for t in &taken {
                    if shared.fatal().is_some() {
                        // An output failed for good: the loop stops at its top, and the rest
                        // of the batch, never begun, is reprocessed after the restart.
                        break;
                    }
                    let (topic, partition, offset, broker_ms) = (t.topic.clone(), t.partition, t.offset, t.broker_ms);
                    if t.in_batch {
                        let end = ends.next().expect("one end for each record of the batch");
                        mine.extend(all.by_ref().take(end - at));
                        at = end;
                    } else {
                        mine.push(Outcome::DeadLetter(DeadLetter {
                            reason: "empty_record",
                            message: "the message has no value".into(),
                            origin: Origin::Kafka { topic: topic.clone(), partition, offset },
                            index: None,
                            bytes: Vec::new(),
                        }));
                    }
                    let outputs = mine.iter().filter(|o| !matches!(o, Outcome::Duplicate { .. })).count() as u32;
                    shared.offsets.lock().expect("offsets lock").get(&topic, partition).begin(offset, outputs);
                    for o in mine.drain(..) {
                        metrics.observe(&o, now_s);
                        on_outcome(&o);
                        let pending = || Box::new(Pending { topic: topic.clone(), partition, offset, broker_ms });
                        match o {
                            Outcome::Bundle { json, key, report } => {
                                stats.bundles += 1;
                                let headers = bundle_headers(&report.source, report.class_uid, report.score);
                                let mut rec = BaseRecord::with_opaque_to(&out_topic, pending()).payload(json.as_str()).headers(headers);
                                // No entity to key by: no key, so the partitioner spreads these.
                                if !key.is_empty() {
                                    rec = rec.key(key.as_str());
                                }
                                if let Err(reason) = send(&producer, rec).await {
                                    // The broker refuses this bundle (too large, say): dead-letter
                                    // the input instead, so nothing is lost and nothing loops.
                                    let dl = DeadLetter {
                                        reason: "output_rejected",
                                        message: reason,
                                        origin: Origin::Kafka { topic: topic.clone(), partition, offset },
                                        index: None,
                                        bytes: msgs[t.msg].payload().unwrap_or_default().to_vec(),
                                    };
                                    metrics.dead_letters.with_label_values(&[dl.reason, &topic]).inc();
                                    stats.dead_letters += 1;
                                    if let Err(e) = send(&producer, dead_letter_record(&dlq_topic, &dl, pending())).await {
                                        shared.offsets.lock().expect("offsets lock").fail(&topic, partition, offset, e.clone());
                                        shared.fail(e);
                                    }
                                }
                            }
                            Outcome::DeadLetter(dl) => {
                                stats.dead_letters += 1;
                                if let Err(e) = send(&producer, dead_letter_record(&dlq_topic, &dl, pending())).await {
                                    shared.offsets.lock().expect("offsets lock").fail(&topic, partition, offset, e.clone());
                                    shared.fail(e);
                                }
                            }
                            Outcome::Duplicate { .. } => stats.duplicates += 1,
                        }
                    }
                }
            }
        }
    };

    // Drain and commit synchronously: flush, commit, leave the group (whose revoke flushes and
    // commits again) all within one `drain_timeout`. Each step gets what is left of the deadline
    // and none blocks this thread past it.
    shared.begin_shutdown(drain);
    let budget = shared.drain_budget(drain);
    let p = producer.clone();
    // On a blocking thread: a flush waits up to its budget, and other tasks of this thread (the
    // HTTP endpoint on a current-thread runtime, another member in a test) go on meanwhile.
    match tokio::task::spawn_blocking(move || p.flush(budget)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(%e, "drain did not finish in time; unacknowledged output is reprocessed after restart")
        }
        Err(e) => {
            tracing::warn!(%e, "the drain's flush did not complete; unacknowledged output is reprocessed after restart")
        }
    }
    commit(&consumer, &shared, shared.drain_budget(drain));
    leave_group(consumer, producer, shared.drain_budget(drain)).await;
    server.abort();
    tracing::info!(?stats, "worker stopped");
    result.map(|_| stats)
}

/// What `f` gives at once, if it is ready: `f` polled once and dropped. For taking the messages
/// already waiting behind the first: `tokio::time::timeout(Duration::ZERO, ..)` does the same
/// with a timer, whose clock read and entry cost a little for every message (about 1% of the
/// worker's CPU in `perf`).
fn ready_now<F: Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// Each input topic's name, shared by the messages' origins and offsets, and its series of
/// `input_messages_total`: made once per topic rather than for each message (an allocation,
/// and a hash of the name and a lock in `with_label_values`).
struct InputTopics<'m> {
    family: &'m prometheus::IntCounterVec,
    /// By topic ([`by_name`](crate::keyed::by_name)).
    known: Vec<(Arc<str>, prometheus::IntCounter)>,
}

impl<'m> InputTopics<'m> {
    fn new(family: &'m prometheus::IntCounterVec) -> Self {
        InputTopics {
            family,
            known: Vec::new(),
        }
    }

    /// The shared name of `topic` and its counter of messages consumed.
    fn get(&mut self, topic: &str) -> (Arc<str>, &prometheus::IntCounter) {
        let family = self.family;
        let (name, series) = crate::keyed::by_name(&mut self.known, topic, || {
            (Arc::from(topic), family.with_label_values(&[topic]))
        });
        (name.clone(), series)
    }
}

/// Leave the group and release the clients, waiting at most `budget`.
///
/// The consumer's close is the one step librdkafka gives no timeout: rust-rdkafka's drop calls
/// `rd_kafka_consumer_close_queue` and polls until librdkafka reports the consumer closed, which
/// it does only once the revoke has run, outstanding commits and the LeaveGroup have been
/// answered; a reply that never comes leaves it polling forever. So unsubscribe, the close (whose
/// revoke flushes and commits within what is left of the drain deadline) and the producer's
/// release run on a thread of their own, and the shutdown waits for that thread only until the
/// deadline. A close that has not finished by then is left running: nothing is committed past
/// acknowledged output either way, and the group evicts the member after `session.timeout.ms`.
async fn leave_group(
    consumer: StreamConsumer<ConsumeCtx>,
    producer: Arc<ThreadedProducer<ProduceCtx>>,
    budget: Duration,
) {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("alertctx-leave".into())
        .spawn(move || {
            consumer.unsubscribe();
            drop(consumer);
            // The last reference but the consumer context's, which the close has released:
            // stopping the producer's poll thread and destroying it happens here too.
            drop(producer);
            let _ = done_tx.send(());
        });
    if let Err(e) = spawned {
        // The closure, and the clients with it, were dropped on this thread.
        tracing::warn!(%e, "could not start a thread to leave the group; left it on this one");
        return;
    }
    match tokio::time::timeout(budget, done_rx).await {
        Ok(_) => tracing::debug!("left the group"),
        Err(_) => tracing::warn!(
            ?budget,
            "leaving the group did not finish within the drain deadline; the close goes on in the background and the group evicts this member after session.timeout.ms"
        ),
    }
}

/// The headers of a bundle's message: its source, class and quality score, for consumers that
/// route on them without parsing the bundle.
pub fn bundle_headers(source: &str, class_uid: u32, score: u8) -> OwnedHeaders {
    let (mut class, mut points) = (itoa::Buffer::new(), itoa::Buffer::new());
    let h = with_header(
        OwnedHeaders::new_with_capacity(3),
        "alertctx.source",
        source,
    );
    let h = with_header(h, "alertctx.class_uid", class.format(class_uid));
    with_header(h, "alertctx.score", points.format(score))
}

/// `headers` with one more, a text value.
fn with_header(headers: OwnedHeaders, key: &str, value: &str) -> OwnedHeaders {
    headers.insert(Header {
        key,
        value: Some(value),
    })
}

/// The dead-letter message: original bytes as the value, the rest in headers.
fn dead_letter_record<'a>(
    topic: &'a str,
    d: &'a DeadLetter,
    p: Box<Pending>,
) -> BaseRecord<'a, [u8], [u8], Box<Pending>> {
    BaseRecord::with_opaque_to(topic, p)
        .key(dead_letter_key(d))
        .payload(d.bytes.as_slice())
        .headers(dead_letter_headers(d))
}

/// A dead letter's message key: the input it came from (topic or file), so that one input's
/// dead letters go to one partition.
pub fn dead_letter_key(d: &DeadLetter) -> &[u8] {
    match &d.origin {
        Origin::Kafka { topic, .. } => topic.as_bytes(),
        Origin::File { input, .. } => input.as_bytes(),
    }
}

/// A dead letter's headers: the reason and message, and where a Kafka record came from.
pub fn dead_letter_headers(d: &DeadLetter) -> OwnedHeaders {
    let h = with_header(OwnedHeaders::new(), "alertctx.reason", d.reason);
    let h = with_header(h, "alertctx.message", &d.message);
    let Origin::Kafka {
        topic,
        partition,
        offset,
    } = &d.origin
    else {
        return h;
    };
    let h = with_header(h, "alertctx.source.topic", topic);
    let h = with_header(h, "alertctx.source.partition", &partition.to_string());
    with_header(h, "alertctx.source.offset", &offset.to_string())
}

/// Hand one record to the producer, waiting while its queue is full. `Err` is a permanent
/// refusal (the record is dropped by librdkafka and its opaque with it).
async fn send<K, P>(
    producer: &ThreadedProducer<ProduceCtx>,
    mut rec: BaseRecord<'_, K, P, Box<Pending>>,
) -> Result<(), String>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                rec = back;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err((e, _)) => return Err(format!("producer refused the record: {e}")),
        }
    }
}

/// Commit every owned partition whose committable offset moved forward. Commits are
/// synchronous: one round trip per `commit_interval`, and the result is known before the
/// bookkeeping moves on (an async commit's callback would only arrive on a later poll). The wait
/// for the answer is bounded by `timeout` ([`commit_within`]); an unanswered commit counts as
/// failed and is retried at the next interval.
fn commit(consumer: &StreamConsumer<ConsumeCtx>, shared: &Shared, timeout: Duration) {
    let plan = shared.offsets.lock().expect("offsets lock").commit_plan();
    if plan.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in &plan {
        let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
    }
    match commit_within(consumer, &tpl, timeout) {
        Ok(()) => {
            shared.metrics.commits.with_label_values(&["ok"]).inc();
            let mut offsets = shared.offsets.lock().expect("offsets lock");
            for (t, p, o) in &plan {
                offsets.committed(t, *p, *o);
            }
        }
        Err(e) => {
            shared.metrics.commits.with_label_values(&["failed"]).inc();
            tracing::warn!(%e, ?timeout, "offset commit failed or went unanswered; retried at the next interval");
        }
    }
}

/// A synchronous offset commit that waits at most `timeout` for the coordinator's answer.
///
/// `rd_kafka_commit` in sync mode (`CommitMode::Sync`) waits for its reply without limit; a
/// commit deferred while the coordinator is unknown, or a reply lost in a rebalance, blocks the
/// calling thread for good. This sends the same commit with `rd_kafka_commit_queue` to a queue of
/// its own and polls that queue with the timeout. On timeout the queue is destroyed, which
/// disables it: a late reply is discarded by librdkafka, and the commit itself may still land
/// (it only ever carries offsets behind acknowledged output). A timeout is reported as
/// `ConsumerCommit(OperationTimedOut)`.
pub fn commit_within<C, K>(
    consumer: &K,
    offsets: &TopicPartitionList,
    timeout: Duration,
) -> rdkafka::error::KafkaResult<()>
where
    C: ConsumerContext,
    K: Consumer<C> + ?Sized,
{
    use rdkafka::bindings as rd;
    use rdkafka::types::RDKafkaRespErr;
    let rk = consumer.client().native_ptr();
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: `rk` is the live client `consumer` borrows, `offsets.ptr()` a valid list that
    // librdkafka copies before returning; the queue is created, polled and destroyed here, and
    // the event, when one comes, is destroyed after its error code is read.
    let err = unsafe {
        let queue = rd::rd_kafka_queue_new(rk);
        let mut err =
            rd::rd_kafka_commit_queue(rk, offsets.ptr(), queue, None, std::ptr::null_mut());
        if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            let event = rd::rd_kafka_queue_poll(queue, timeout_ms);
            if event.is_null() {
                err = RDKafkaRespErr::RD_KAFKA_RESP_ERR__TIMED_OUT;
            } else {
                err = rd::rd_kafka_event_error(event);
                rd::rd_kafka_event_destroy(event);
            }
        }
        rd::rd_kafka_queue_destroy(queue);
        err
    };
    if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        Err(KafkaError::ConsumerCommit(err.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::consumer::BaseConsumer;
    use rdkafka::mocking::MockCluster;

    /// (key, value) of every header, in order.
    fn pairs(h: &OwnedHeaders) -> Vec<(String, String)> {
        use rdkafka::message::Headers;
        h.iter()
            .map(|x| {
                let v = String::from_utf8_lossy(x.value.unwrap_or_default());
                (x.key.to_string(), v.into_owned())
            })
            .collect()
    }

    #[test]
    fn ready_now_takes_what_is_ready_and_leaves_what_is_not() {
        assert_eq!(ready_now(async { 7 }), Some(7));
        assert_eq!(ready_now(std::future::pending::<u8>()), None);
        // A future that yields once is not ready on its first poll.
        assert_eq!(ready_now(tokio::task::yield_now()), None);
    }

    #[test]
    fn input_topics_share_one_name_and_series_per_topic() {
        let m = Metrics::new();
        let mut topics = InputTopics::new(&m.input_messages);
        let (a, series) = topics.get("raw.zeek");
        series.inc();
        let (b, series) = topics.get("raw.zeek");
        series.inc();
        topics.get("raw.okta").1.inc();
        assert!(Arc::ptr_eq(&a, &b), "one allocation per topic");
        assert_eq!(topics.known.len(), 2);
        let text = m.encode();
        assert!(
            text.contains("alertctx_input_messages_total{topic=\"raw.zeek\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("alertctx_input_messages_total{topic=\"raw.okta\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn bundle_and_dead_letter_messages_carry_their_headers_and_keys() {
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            pairs(&bundle_headers("zeek", 4001, 87)),
            [
                s("alertctx.source", "zeek"),
                s("alertctx.class_uid", "4001"),
                s("alertctx.score", "87"),
            ]
        );
        let dead = |origin| DeadLetter {
            reason: "too_deep",
            message: "nested deeper than 64".into(),
            origin,
            index: None,
            bytes: b"[[[".to_vec(),
        };
        let from_kafka = dead(Origin::Kafka {
            topic: "raw.edr".into(),
            partition: 3,
            offset: 41,
        });
        assert_eq!(dead_letter_key(&from_kafka), b"raw.edr");
        assert_eq!(
            pairs(&dead_letter_headers(&from_kafka)),
            [
                s("alertctx.reason", "too_deep"),
                s("alertctx.message", "nested deeper than 64"),
                s("alertctx.source.topic", "raw.edr"),
                s("alertctx.source.partition", "3"),
                s("alertctx.source.offset", "41"),
            ]
        );
        let from_file = dead(Origin::File {
            input: "edr.ndjson".into(),
            line: 9,
        });
        assert_eq!(dead_letter_key(&from_file), b"edr.ndjson");
        assert_eq!(pairs(&dead_letter_headers(&from_file)).len(), 2);
    }

    #[test]
    fn fetch_responses_are_capped_at_one_partitions_share_unless_the_operator_says_otherwise() {
        let mut k = KafkaConfig {
            brokers: "127.0.0.1:9".into(),
            group_id: "g".into(),
            topics: vec!["raw".into()],
            output_topic: "out".into(),
            dlq_topic: "dlq".into(),
            max_in_flight: 10,
            commit_interval: "1s".into(),
            drain_timeout: "1s".into(),
            consumer: Default::default(),
            producer: Default::default(),
        };
        // A response holds no more than librdkafka's per-partition share (1 MiB), so a broker
        // that fills responses from one partition still has the partitions of a backlog read
        // side by side (README, Performance: read order and the fetch size).
        let fetch = |k: &KafkaConfig| consumer_config(k).get("fetch.max.bytes").map(str::to_owned);
        let per_partition: u64 = 1_048_576; // librdkafka's `max.partition.fetch.bytes`
        let capped: u64 = fetch(&k).expect("set").parse().expect("a number");
        assert!(capped <= per_partition, "fetch.max.bytes {capped}");
        // Still a valid consumer: librdkafka checks the fetch size against the message size.
        let _: BaseConsumer = consumer_config(&k).create().expect("librdkafka accepts it");
        k.consumer
            .insert("fetch.max.bytes".into(), "16777216".into());
        assert_eq!(
            fetch(&k).as_deref(),
            Some("16777216"),
            "the operator's setting wins"
        );
    }

    fn group_consumer(brokers: &str) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "commit-within")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer")
    }

    fn offset_7() -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("raw", 0, Offset::Offset(7))
            .expect("offset");
        tpl
    }

    #[test]
    fn commit_within_commits_and_returns_the_answer() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("raw", 1, 1).expect("topic");
        let c = group_consumer(&cluster.bootstrap_servers());
        commit_within(&c, &offset_7(), Duration::from_secs(30)).expect("committed");
        let mut ask = TopicPartitionList::new();
        ask.add_partition("raw", 0);
        let got = c
            .committed_offsets(ask, Duration::from_secs(10))
            .expect("committed offsets");
        assert_eq!(
            got.find_partition("raw", 0).map(|e| e.offset()),
            Some(Offset::Offset(7))
        );
    }

    #[test]
    fn commit_within_gives_up_at_its_timeout_when_no_answer_comes() {
        // With the only broker down there is no coordinator: librdkafka defers the commit for
        // up to session.timeout.ms (45 s), and a CommitMode::Sync commit would wait that long,
        // or forever for a reply that is lost. This one returns at its timeout.
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("raw", 1, 1).expect("topic");
        cluster.broker_down(1).expect("broker down");
        let c = group_consumer(&cluster.bootstrap_servers());
        let t0 = Instant::now();
        let e = commit_within(&c, &offset_7(), Duration::from_millis(500)).unwrap_err();
        let took = t0.elapsed();
        assert!(
            matches!(
                e,
                KafkaError::ConsumerCommit(RDKafkaErrorCode::OperationTimedOut)
            ),
            "{e:?}"
        );
        assert!(
            took >= Duration::from_millis(450) && took < Duration::from_secs(5),
            "{took:?}"
        );
        // Back up, so that the consumer's close on drop finds its coordinator.
        cluster.broker_up(1).expect("broker up");
    }
}
