//! Kafka helpers for the worker tests: topics, producing, reading outputs back, and the
//! accounting that proves nothing was lost.
#![allow(dead_code)]

use alertctx::config::{Config, KafkaConfig};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The real broker the tests use; `scripts/test` starts it.
pub fn brokers() -> String {
    std::env::var("ALERTCTX_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

/// Run a broker request again (up to five times, half a second apart) while it fails with
/// connection trouble ([`alertctx::worker::consume_errors::is_fatal`] says which errors
/// are not): a busy broker on a 2-core machine must not fail a test that counts messages.
pub fn retrying<T>(what: &str, mut request: impl FnMut() -> rdkafka::error::KafkaResult<T>) -> T {
    let mut attempt = 1;
    loop {
        match request() {
            Ok(v) => return v,
            Err(e) if attempt < 5 && !alertctx::worker::consume_errors::is_fatal(&e) => {
                eprintln!("{what}: {e} (attempt {attempt}; trying again)");
                std::thread::sleep(Duration::from_millis(500));
                attempt += 1;
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    )
}

/// Fresh names for one test's raw, bundle and dead-letter topics and its consumer group, with
/// the three topics created at `partitions` partitions each.
pub async fn fresh_topics(brokers: &str, partitions: i32) -> (String, String, String, String) {
    let (raw, out, dlq, group) = (
        unique("raw"),
        unique("bundles"),
        unique("dlq"),
        unique("group"),
    );
    create_topics(
        brokers,
        &[(&raw, partitions), (&out, partitions), (&dlq, partitions)],
    )
    .await;
    (raw, out, dlq, group)
}

pub async fn create_topics(brokers: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    let res = admin
        .create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await;
    let res = res.unwrap_or_else(|e| panic!("cannot reach the Kafka broker at {brokers} ({e}); run the tests with scripts/test, which starts it"));
    for r in res {
        if let Err((t, e)) = r {
            assert!(
                matches!(e, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists),
                "creating {t}: {e}"
            );
        }
    }
}

/// Produce messages round-robin over the topic's partitions (explicitly: librdkafka's sticky
/// partitioner would put a fast burst of keyless messages on one partition and leave the
/// others empty). Fails the test if any message is not acknowledged; returns how many.
pub fn produce(brokers: &str, topic: &str, messages: &[Vec<u8>]) -> usize {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let meta = retrying("metadata", || {
        p.client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
    });
    let partitions = meta
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len()) as i32;
    assert!(partitions > 0, "topic {topic} has no partitions");
    for (i, m) in messages.iter().enumerate() {
        loop {
            let rec = BaseRecord::<(), [u8]>::to(topic)
                .payload(m.as_slice())
                .partition(i as i32 % partitions);
            match p.send(rec) {
                Ok(()) => break,
                Err((_, _)) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
    p.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(p.in_flight_count(), 0);
    messages.len()
}

/// Every message on a topic, read from the beginning up to the current end.
pub fn read_all(brokers: &str, topic: &str, partitions: i32) -> Vec<OwnedMessage> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in 0..partitions {
        let (lo, hi) = retrying("watermarks", || {
            c.fetch_watermarks(topic, p, Duration::from_secs(10))
        });
        if hi > lo {
            tpl.add_partition_offset(topic, p, Offset::Offset(lo))
                .unwrap();
            ends.insert(p, hi);
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return out;
    }
    c.assign(&tpl).unwrap();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ends
        .iter()
        .any(|(p, hi)| next.get(p).copied().unwrap_or(0) < *hi)
    {
        assert!(Instant::now() < deadline, "timed out reading {topic}");
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                next.insert(m.partition(), m.offset() + 1);
                out.push(m.detach());
            }
            // Connection trouble is waited out (the deadline above still bounds it).
            Some(Err(e)) if !alertctx::worker::consume_errors::is_fatal(&e) => {
                eprintln!("reading {topic}: {e} (waiting it out)")
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out
}

/// Which input (topic, partition, offset) each output message came from.
pub fn input_of(m: &OwnedMessage) -> (String, i32, i64) {
    if let Some(h) = m.headers() {
        let get = |k: &str| {
            h.iter()
                .find(|x| x.key == k)
                .and_then(|x| x.value)
                .map(|v| String::from_utf8_lossy(v).to_string())
        };
        if let Some(t) = get("alertctx.source.topic") {
            return (
                t,
                get("alertctx.source.partition").unwrap().parse().unwrap(),
                get("alertctx.source.offset").unwrap().parse().unwrap(),
            );
        }
    }
    let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
    let i = &v["provenance"]["input"];
    (
        i["topic"].as_str().unwrap().to_string(),
        i["partition"].as_i64().unwrap() as i32,
        i["offset"].as_i64().unwrap(),
    )
}

/// Outputs per input message, over the bundle and dead-letter topics.
pub fn coverage(
    brokers: &str,
    out_topic: &str,
    dlq_topic: &str,
    partitions: i32,
) -> BTreeMap<(String, i32, i64), usize> {
    let mut cov = BTreeMap::new();
    for t in [out_topic, dlq_topic] {
        for m in read_all(brokers, t, partitions) {
            *cov.entry(input_of(&m)).or_default() += 1;
        }
    }
    cov
}

/// Outputs written more than once (at-least-once re-sends): all outputs minus distinct ones.
/// A bundle is identified by its `bundle_id` (a hash of its input coordinates, envelope index
/// and fingerprint), a dead letter by its input coordinates.
pub fn resent(brokers: &str, out_topic: &str, dlq_topic: &str, partitions: i32) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    let mut total = 0;
    for m in read_all(brokers, out_topic, partitions) {
        let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        seen.insert(v["bundle_id"].as_str().unwrap().to_string());
        total += 1;
    }
    for m in read_all(brokers, dlq_topic, partitions) {
        seen.insert(format!("{:?}", input_of(&m)));
        total += 1;
    }
    total - seen.len()
}

/// The (partition → end offset) of a topic.
pub fn end_offsets(brokers: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    (0..partitions)
        .map(|p| {
            (
                p,
                retrying("watermarks", || {
                    c.fetch_watermarks(topic, p, Duration::from_secs(10))
                })
                .1,
            )
        })
        .collect()
}

/// The group's committed offsets for a topic. A partition the group never committed reads 0:
/// nothing on it is done, which is all there is to do on an empty partition.
pub fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = retrying("committed offsets", || {
        c.committed_offsets(tpl.clone(), Duration::from_secs(10))
    });
    got.elements()
        .iter()
        .map(|e| {
            (
                e.partition(),
                match e.offset() {
                    Offset::Offset(o) => o,
                    _ => 0,
                },
            )
        })
        .collect()
}

/// A worker configuration for tests.
pub fn worker_config(
    brokers: &str,
    group: &str,
    raw: &str,
    out: &str,
    dlq: &str,
    dedup: bool,
    listen: &str,
) -> Config {
    if std::env::var_os("ALERTCTX_TEST_TRACE").is_some() {
        // The worker's own log on stderr, to see rebalances and commits when a test stalls.
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter("alertctx=debug")
            .try_init();
    }
    let mut cfg = Config::default();
    cfg.dedup.enabled = dedup;
    cfg.quality.reference_time = "none".into();
    cfg.metrics.listen = listen.to_string();
    cfg.kafka = Some(KafkaConfig {
        brokers: brokers.to_string(),
        group_id: group.to_string(),
        topics: vec![raw.to_string()],
        output_topic: out.to_string(),
        dlq_topic: dlq.to_string(),
        max_in_flight: 5_000,
        commit_interval: "200ms".into(),
        drain_timeout: "10s".into(),
        consumer: [
            ("session.timeout.ms".to_string(), "6000".to_string()),
            ("heartbeat.interval.ms".to_string(), "500".to_string()),
        ]
        .into(),
        producer: Default::default(),
    });
    cfg
}

/// The example telemetry as messages, repeated `times` times.
pub fn example_payloads(times: usize) -> Vec<Vec<u8>> {
    let one: Vec<Vec<u8>> = alertctx::demo::example_messages()
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    (0..times).flat_map(|_| one.clone()).collect()
}

/// A free loopback port for a metrics endpoint.
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// GET a path from an HTTP endpoint; (status, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let status = buf.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Sum of a metric's samples whose line contains every `filters` string.
pub fn metric_sum(text: &str, name: &str, filters: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| filters.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
