//! Fault injection with librdkafka's in-process mock cluster: produce errors, a broker going
//! down and coming back, failing offset commits, and a second member joining mid-stream.
//! After each, every input message must have its output (dedup is off here so every input
//! has at least one), and the group's committed offsets must reach the end of the topic.
//!
//! Each test runs under a [`Watchdog`]: a hang in a synchronous librdkafka call blocks the
//! thread the test's own deadlines run on (the workers and `all_done` share it), so past
//! [`WATCHDOG_LIMIT`] the watchdog aborts the process and says which test hung and where.

#![allow(clippy::await_holding_lock)]

mod common;

use alertctx::metrics::Metrics;
use common::kafka::*;
use common::watchdog::Watchdog;
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 3;

/// One fault test at a time: each runs a mock cluster and one or two workers (a few dozen
/// librdkafka threads), and four of those at once on a 2-core CI machine only measure the
/// scheduler.
/// (Each test has its own runtime, so holding this guard across its awaits blocks only other
/// tests, which is the point: hence the `await_holding_lock` allowance below.)
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How long one fault test may run before its watchdog aborts the process: well past
/// `all_done`'s 240 s deadline plus the checks (a passing test takes well under a minute), and
/// well inside CI's 90 minutes for the four of them.
const WATCHDOG_LIMIT: Duration = Duration::from_secs(8 * 60);

/// Starts the watchdog of a test that holds [`serial`] (so it times only that test, not its
/// wait for the others). Its report: every worker's counters at the time it fires.
fn watchdog(test: &str, workers: &[Arc<Metrics>]) -> Watchdog {
    let dog = Watchdog::start(test, WATCHDOG_LIMIT);
    let workers = workers.to_vec();
    dog.report(move || format!("workers: {:?}", worker_state(&workers)));
    dog
}

/// Each worker's counters, to say where a stalled test stood.
fn worker_state(workers: &[Arc<Metrics>]) -> Vec<String> {
    workers
        .iter()
        .map(|m| {
            let t = m.encode();
            // (+ 0.0: a sum of no samples is -0)
            let v = |name: &str, filters: &[&str]| metric_sum(&t, name, filters) + 0.0;
            format!(
                "consumed {}, in flight {}, produced ok {} failed {}, commits ok {} failed {}",
                v("alertctx_input_messages_total", &[]),
                v("alertctx_in_flight_messages", &[]),
                v("alertctx_produced_messages_total", &["result=\"ok\""]),
                v("alertctx_produced_messages_total", &["result=\"failed\""]),
                v("alertctx_offset_commits_total", &["result=\"ok\""]),
                v("alertctx_offset_commits_total", &["result=\"failed\""]),
            )
        })
        .collect()
}

struct Setup {
    brokers: String,
    raw: String,
    out: String,
    dlq: String,
    group: String,
    inputs: usize,
}

fn setup(
    cluster: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    times: usize,
) -> Setup {
    let brokers = cluster.bootstrap_servers();
    let s = Setup {
        brokers,
        raw: unique("raw"),
        out: unique("out"),
        dlq: unique("dlq"),
        group: unique("g"),
        inputs: 0,
    };
    for t in [&s.raw, &s.out, &s.dlq] {
        cluster.create_topic(t, PARTITIONS, 1).unwrap();
    }
    let inputs = produce(&s.brokers, &s.raw, &example_payloads(times));
    Setup { inputs, ..s }
}

/// (inputs with output, committed offsets, end offsets), for progress and failure reports.
async fn progress(
    s: &Setup,
) -> (
    usize,
    std::collections::BTreeMap<i32, i64>,
    std::collections::BTreeMap<i32, i64>,
) {
    let (b, raw, out, dlq, group) = (
        s.brokers.clone(),
        s.raw.clone(),
        s.out.clone(),
        s.dlq.clone(),
        s.group.clone(),
    );
    tokio::task::spawn_blocking(move || {
        (
            coverage(&b, &out, &dlq, PARTITIONS).len(),
            committed(&b, &group, &raw, PARTITIONS),
            end_offsets(&b, &raw, PARTITIONS),
        )
    })
    .await
    .unwrap()
}

/// Resolves once every input has output and every offset is committed; then stops the workers.
async fn all_done(s: &Setup, stop: Arc<AtomicBool>, workers: &[Arc<Metrics>], dog: &Watchdog) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        dog.stage(format!(
            "workers running; reading back outputs and offsets ({} inputs)",
            s.inputs
        ));
        let (c, com, end) = progress(s).await;
        let done = c == s.inputs && com == end;
        dog.stage(format!(
            "workers running; last seen: {c}/{} inputs have output; committed {com:?}; end {end:?}",
            s.inputs
        ));
        if std::env::var_os("ALERTCTX_TEST_TRACE").is_some() {
            eprintln!(
                "progress: {c}/{} covered; committed {com:?}; end {end:?}",
                s.inputs
            );
        }
        if done || stop.load(Ordering::SeqCst) {
            dog.stage(format!(
                "every input has output and every offset is committed ({} inputs); stop requested, waiting for the workers to drain and leave the group",
                s.inputs
            ));
            stop.store(true, Ordering::SeqCst);
            return;
        }
        // Output the mock cluster has evicted can never be read back: fail now and say why,
        // rather than wait for the deadline.
        let b = s.brokers.clone();
        let topics = [s.raw.clone(), s.out.clone(), s.dlq.clone()];
        tokio::task::spawn_blocking(move || assert_nothing_evicted(&b, &topics))
            .await
            .unwrap();
        if Instant::now() >= deadline {
            // Say where it stands, so a failure on a CI machine can be read without a rerun:
            // outputs the output topics hold against outputs the brokers acknowledged to the
            // workers (fewer held than acknowledged is the broker's loss, not the worker's).
            let (b, out, dlq) = (s.brokers.clone(), s.out.clone(), s.dlq.clone());
            let held: i64 = tokio::task::spawn_blocking(move || {
                [out, dlq]
                    .iter()
                    .flat_map(|t| end_offsets(&b, t, PARTITIONS).into_values())
                    .sum()
            })
            .await
            .unwrap();
            panic!(
                "not everything was processed and committed in time: {c}/{} inputs have output; committed {com:?}, end {end:?}; the output topics hold {held} messages; workers: {:?}",
                s.inputs,
                worker_state(workers)
            );
        }
    }
}

/// The mock cluster keeps only about 5 MB per partition and evicts older data; a test whose
/// output was evicted could not prove anything, so it must say so instead of passing.
fn assert_nothing_evicted(brokers: &str, topics: &[String]) {
    let c: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for t in topics {
        for p in 0..PARTITIONS {
            use rdkafka::consumer::Consumer;
            let (lo, _) = retrying("watermarks", || {
                c.fetch_watermarks(t, p, Duration::from_secs(10))
            });
            assert_eq!(
                lo, 0,
                "the mock cluster evicted data from {t}/{p}: reduce the test's volume"
            );
        }
    }
}

fn check(s: &Setup, label: &str, dog: &Watchdog) -> usize {
    dog.stage(format!(
        "the workers have stopped; checking outputs, committed offsets and re-sends ({label})"
    ));
    assert_nothing_evicted(&s.brokers, &[s.raw.clone(), s.out.clone(), s.dlq.clone()]);
    let cov = coverage(&s.brokers, &s.out, &s.dlq, PARTITIONS);
    assert_eq!(cov.len(), s.inputs, "{label}: every input has its output");
    assert_eq!(
        committed(&s.brokers, &s.group, &s.raw, PARTITIONS),
        end_offsets(&s.brokers, &s.raw, PARTITIONS),
        "{label}: all committed"
    );
    let resent = resent(&s.brokers, &s.out, &s.dlq, PARTITIONS);
    eprintln!(
        "{label}: {} inputs, every one with output; {resent} outputs sent more than once",
        s.inputs
    );
    resent
}

async fn run_worker(
    s: &Setup,
    stop: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
) -> alertctx::worker::RunStats {
    let cfg = worker_config(&s.brokers, &s.group, &s.raw, &s.out, &s.dlq, false, "");
    let shutdown = async move {
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    alertctx::worker::run(&cfg, metrics, shutdown)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_errors_are_retried_and_nothing_is_lost() {
    let _serial = serial();
    let m = Arc::new(Metrics::new());
    let dog = watchdog(
        "produce_errors_are_retried_and_nothing_is_lost",
        std::slice::from_ref(&m),
    );
    dog.stage("setting up the mock cluster and producing the inputs");
    let cluster = MockCluster::new(1).unwrap();
    let s = setup(&cluster, 8);
    dog.stage(format!(
        "{} inputs produced; the worker is starting",
        s.inputs
    ));
    // The next produce requests fail with retriable errors; librdkafka retries idempotently.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (stats, _) = tokio::join!(
        run_worker(&s, stop.clone(), m.clone()),
        all_done(&s, stop.clone(), std::slice::from_ref(&m), &dog)
    );
    assert_eq!(stats.messages as usize, s.inputs);
    assert_eq!(
        check(&s, "produce errors", &dog),
        0,
        "the idempotent producer's retries reach the topic once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_then_up_loses_nothing() {
    let _serial = serial();
    let m = Arc::new(Metrics::new());
    let dog = watchdog(
        "broker_down_then_up_loses_nothing",
        std::slice::from_ref(&m),
    );
    dog.stage("setting up the mock cluster and producing the inputs");
    let cluster = MockCluster::new(1).unwrap();
    let s = setup(&cluster, 12);
    dog.stage(format!(
        "{} inputs produced; the worker is starting",
        s.inputs
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let outage = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        cluster.broker_down(1).unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster.broker_up(1).unwrap();
    };
    let (stats, _, _) = tokio::join!(
        run_worker(&s, stop.clone(), m.clone()),
        all_done(&s, stop.clone(), std::slice::from_ref(&m), &dog),
        outage
    );
    assert!(
        stats.messages as usize >= s.inputs,
        "every input consumed (some perhaps twice)"
    );
    check(&s, "broker down then up", &dog);
    // The outage was reported by the clients and counted, by librdkafka's error name.
    let text = m.encode();
    assert!(
        metric_sum(&text, "alertctx_kafka_client_errors_total", &[]) > 0.0,
        "no client error counted during a 3 s outage"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("alertctx_kafka_client_errors_total{")
                && (l.contains("Transport") || l.contains("AllBrokersDown"))),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_commits_are_retried() {
    let _serial = serial();
    let m = Arc::new(Metrics::new());
    let dog = watchdog("failed_commits_are_retried", std::slice::from_ref(&m));
    dog.stage("setting up the mock cluster and producing the inputs");
    let cluster = MockCluster::new(1).unwrap();
    let s = setup(&cluster, 8);
    dog.stage(format!(
        "{} inputs produced; the worker is starting",
        s.inputs
    ));
    cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (stats, _) = tokio::join!(
        run_worker(&s, stop.clone(), m.clone()),
        all_done(&s, stop.clone(), std::slice::from_ref(&m), &dog)
    );
    assert_eq!(stats.messages as usize, s.inputs);
    assert_eq!(
        check(&s, "commit failures", &dog),
        0,
        "a failed commit re-sends nothing while the member keeps its partitions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_mid_stream_loses_nothing() {
    let _serial = serial();
    let (m1, m2) = (Arc::new(Metrics::new()), Arc::new(Metrics::new()));
    let both = [m1.clone(), m2.clone()];
    let dog = watchdog("a_rebalance_mid_stream_loses_nothing", &both);
    dog.stage("setting up the mock cluster and producing the inputs");
    let cluster = MockCluster::new(1).unwrap();
    // Smaller than the others: the mock coordinator refuses the commit on revoke (a real one
    // accepts it), so the next owner re-sends what the first had done, and under load a few
    // rebalances in a row can re-send the topic twice over. That must still fit in the mock's
    // 5 MB per partition.
    let s = setup(&cluster, 6);
    dog.stage(format!(
        "{} inputs produced; the first member is starting, the second joins 300 ms later",
        s.inputs
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let second = async {
        // Join once the first member is under way: its partitions are revoked mid-batch.
        tokio::time::sleep(Duration::from_millis(300)).await;
        run_worker(&s, stop.clone(), m2.clone()).await
    };
    let (a, b, _) = tokio::join!(
        run_worker(&s, stop.clone(), m1.clone()),
        second,
        all_done(&s, stop.clone(), &both, &dog)
    );
    assert!(
        a.messages > 0 && b.messages > 0,
        "both members worked: {a:?} {b:?}"
    );
    assert!((a.messages + b.messages) as usize >= s.inputs);
    check(&s, "rebalance mid-stream", &dog);
}
