//! The worker against a real Kafka-compatible broker (nisshi; `scripts/test` installs and
//! starts it): every message ends as a bundle, a folded duplicate or a dead letter; offsets
//! are committed to the end; `/metrics` reports what was sent; and a worker killed with
//! SIGKILL mid-stream loses nothing.
//!
//! Each test runs under a [`Watchdog`] that aborts the process, saying which test and where,
//! if the test runs past [`WATCHDOG_LIMIT`]: a hang in a synchronous librdkafka call would
//! otherwise block the test's own deadlines and hold CI.

mod common;
#[path = "common/mmdb.rs"]
mod mmdb;

use alertctx::metrics::Metrics;
use common::kafka::*;
use common::watchdog::Watchdog;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 4;

/// Past every deadline of the slowest test here (the SIGKILL test: 120 s + 300 s, then reading
/// 100k+ outputs back), on a 2-core machine running the three at once.
const WATCHDOG_LIMIT: Duration = Duration::from_secs(12 * 60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_accounted_for_and_metrics_report_it() {
    let dog = Watchdog::start(
        "every_message_is_accounted_for_and_metrics_report_it",
        WATCHDOG_LIMIT,
    );
    let b = brokers();
    let (raw, out, dlq, group) = fresh_topics(&b, PARTITIONS).await;
    let mut payloads = example_payloads(3);
    payloads.extend(common::public_alerts().into_iter().map(String::into_bytes));
    let n = produce(&b, &raw, &payloads) as f64;
    let listen = free_addr();
    let mut cfg = worker_config(&b, &group, &raw, &out, &dlq, true, &listen);
    // The reference data as deployed, geo on test databases, so that its cache is exported.
    let reference = tempfile::tempdir().unwrap();
    cfg.pipeline.enrichers = Some(mmdb::deployed_enrichers(reference.path()));
    dog.stage(format!(
        "{n} inputs produced; the worker runs until it has consumed and committed them all"
    ));
    let scraped = Arc::new(Mutex::new(String::new()));
    let (s2, l2, b2, g2, r2) = (
        scraped.clone(),
        listen.clone(),
        b.clone(),
        group.clone(),
        raw.clone(),
    );
    let shutdown = async move {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (status, text) = tokio::task::spawn_blocking({
                let l = l2.clone();
                move || http_get(&l, "/metrics")
            })
            .await
            .unwrap();
            assert_eq!(status, 200);
            let consumed = metric_sum(&text, "alertctx_input_messages_total", &[]);
            let in_flight = metric_sum(&text, "alertctx_in_flight_messages", &[]);
            let (b3, g3, r3) = (b2.clone(), g2.clone(), r2.clone());
            let caught_up = tokio::task::spawn_blocking(move || {
                committed(&b3, &g3, &r3, PARTITIONS) == end_offsets(&b3, &r3, PARTITIONS)
            })
            .await
            .unwrap();
            let lag_seen = text.contains("alertctx_consumer_lag_messages{");
            if consumed >= n && in_flight == 0.0 && caught_up && lag_seen {
                assert_eq!(http_get(&l2, "/readyz").0, 200);
                assert_eq!(http_get(&l2, "/healthz").0, 200);
                *s2.lock().unwrap() = http_get(&l2, "/metrics").1;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "worker did not catch up: consumed {consumed} of {n}, in flight {in_flight}"
            );
        }
    };
    let stats = alertctx::worker::run(&cfg, Arc::new(Metrics::new()), shutdown)
        .await
        .unwrap();
    dog.stage("the worker has stopped; checking outputs, metrics and replays");

    // Every produced message was consumed once and ended as exactly one of the three.
    assert_eq!(stats.messages as f64, n);
    let on_topics =
        read_all(&b, &out, PARTITIONS).len() as u64 + read_all(&b, &dlq, PARTITIONS).len() as u64;
    assert_eq!(
        on_topics,
        stats.bundles + stats.dead_letters,
        "every bundle and dead letter is on its topic"
    );
    assert!(
        stats.duplicates > 0,
        "the examples repeat 3 times: repeats are folded"
    );
    assert!(stats.dead_letters >= 3, "the examples hold broken records");
    let covered = coverage(&b, &out, &dlq, PARTITIONS);
    // An input with no output at all must be a folded duplicate (an envelope can be both:
    // some records bundled, some folded).
    let silent = stats.messages - covered.len() as u64;
    assert!(
        silent > 0 && silent <= stats.duplicates,
        "{silent} inputs without output, {} folded duplicates",
        stats.duplicates
    );
    assert!(stats.bundles + stats.duplicates + stats.dead_letters >= stats.messages);

    // The scrape taken while running says the same.
    let text = scraped.lock().unwrap().clone();
    assert_eq!(
        metric_sum(&text, "alertctx_input_messages_total", &[&raw]),
        n
    );
    assert_eq!(
        metric_sum(&text, "alertctx_bundles_total", &[]),
        stats.bundles as f64
    );
    assert_eq!(
        metric_sum(&text, "alertctx_duplicates_folded_total", &[]),
        stats.duplicates as f64
    );
    assert_eq!(
        metric_sum(&text, "alertctx_dead_letters_total", &[]),
        stats.dead_letters as f64
    );
    // The examples' repeats are byte for byte: most are folded by their bytes (not those of
    // envelopes and Zeek blocks, which the window folds after the whole path).
    let exact = metric_sum(&text, "alertctx_exact_repeats_folded_total", &[]);
    assert!(
        exact > 0.0 && exact <= stats.duplicates as f64,
        "{exact} folded by their bytes of {} duplicates",
        stats.duplicates
    );
    // Most alerts were finished on a guess of the window's decision; each is counted once,
    // right or wrong, and there are no more of them than alerts.
    let guessed = metric_sum(&text, "alertctx_dedup_guesses_total", &[]);
    let right = metric_sum(&text, "alertctx_dedup_guesses_total", &["right"]);
    assert!(
        right > 0.0 && guessed <= (stats.bundles + stats.duplicates) as f64,
        "{right} of {guessed} guesses right, {} alerts",
        stats.bundles + stats.duplicates
    );
    assert_eq!(
        metric_sum(&text, "alertctx_records_total", &[]),
        (stats.bundles + stats.duplicates) as f64
    );
    assert_eq!(
        metric_sum(&text, "alertctx_quality_score_count", &[]),
        stats.bundles as f64
    );
    assert_eq!(
        metric_sum(
            &text,
            "alertctx_produced_messages_total",
            &["result=\"ok\""]
        ),
        (stats.bundles + stats.dead_letters) as f64
    );
    assert_eq!(
        metric_sum(&text, "alertctx_end_to_end_latency_seconds_count", &[]),
        (stats.bundles + stats.dead_letters) as f64
    );
    assert!(
        metric_sum(
            &text,
            "alertctx_bundles_total",
            &["source=\"suricata\"", "class=\"2004\""]
        ) > 0.0
    );
    assert!(
        metric_sum(
            &text,
            "alertctx_fields_checked_total",
            &["requirement=\"required\""]
        ) > 0.0
    );
    assert!(
        metric_sum(
            &text,
            "alertctx_source_last_seen_timestamp_seconds",
            &["source=\"suricata\""]
        ) > 1.7e9
    );
    assert!(metric_sum(&text, "alertctx_offset_commits_total", &["result=\"ok\""]) > 0.0);

    // The geo cache: every public address an output bundle names went through it, and each
    // address it holds was a miss once (16,384 entries: nothing was evicted). Alerts made again
    // after a wrong guess of the dedup window looked up again, so the bundles show a lower
    // bound of the lookups, not their number.
    let (mut public, mut addresses) = (0.0, std::collections::HashSet::new());
    for m in read_all(&b, &out, PARTITIONS) {
        let (named, _) = common::geo_lookups(
            &serde_json::from_slice(rdkafka::Message::payload(&m).unwrap()).unwrap(),
        );
        public += named.len() as f64;
        addresses.extend(named);
    }
    let hits = metric_sum(
        &text,
        "alertctx_enrichment_cache_lookups_total",
        &["enricher=\"geo\"", "result=\"hit\""],
    );
    let misses = metric_sum(
        &text,
        "alertctx_enrichment_cache_lookups_total",
        &["enricher=\"geo\"", "result=\"miss\""],
    );
    assert!(
        public >= 4.0,
        "the four public alerts were enriched: {public}"
    );
    assert!(
        hits + misses >= public && misses >= addresses.len() as f64,
        "{hits} hits and {misses} misses for {public} lookups of {} addresses in the bundles",
        addresses.len()
    );
    assert_eq!(
        metric_sum(
            &text,
            "alertctx_enrichment_cache_entries",
            &["enricher=\"geo\""]
        ),
        misses
    );
    assert_eq!(
        metric_sum(
            &text,
            "alertctx_enrichment_cache_capacity",
            &["enricher=\"geo\""]
        ),
        16384.0
    );
    assert!(
        text.contains("alertctx_enrichment_lookup_errors_total{enricher=\"geo\"} 0"),
        "a clean database: no lookup errors, and the series exists"
    );
    assert!(
        text.contains(&format!(
            "alertctx_consumer_lag_messages{{partition=\"0\",topic=\"{raw}\"}}"
        )),
        "consumer lag per partition is exported"
    );

    // Bundles read back from the topic replay from their Kafka coordinates: the message is
    // fetched again and, with the broker timestamp recorded as the reference time, rebuilt
    // byte for byte. Only first occurrences with an event time: the worker's dedup window is
    // not replayed, and a record without a time takes the window's latest time as its own.
    let dir = tempfile::tempdir().unwrap();
    let cfg_file = dir.path().join("worker.toml");
    std::fs::write(&cfg_file, toml::to_string(&cfg).unwrap()).unwrap();
    let bundles: Vec<String> = read_all(&b, &out, PARTITIONS)
        .iter()
        .map(|m| String::from_utf8(rdkafka::Message::payload(m).unwrap().to_vec()).unwrap())
        .filter(|t| t.contains("\"count\":1,"))
        .filter(|t| serde_json::from_str::<serde_json::Value>(t).unwrap()["alert"]["time"].is_i64())
        .collect();
    assert!(bundles.len() > 10);
    let schema = common::SchemaCheck::new();
    for text in &bundles {
        schema.check(&serde_json::from_str(text).unwrap());
    }
    for text in bundles.iter().step_by(5) {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert!(v["provenance"]["input"]["topic"] == raw.as_str());
        assert!(v["provenance"]["reference_time"].as_i64() > Some(1_700_000_000_000));
        let args = alertctx::explain::ExplainArgs {
            config: Some(cfg_file.clone()),
            line: 1,
            inputs: vec![],
            brokers: None,
            bundles: "-".into(),
        };
        let e = alertctx::explain::explain(text, &args).unwrap();
        assert!(e.mismatches.is_empty(), "{:?}", e.mismatches);
        assert_eq!(e.verdict, alertctx::explain::Verdict::Identical, "{text}");
    }
}

fn write_config(
    dir: &std::path::Path,
    b: &str,
    group: &str,
    raw: &str,
    out: &str,
    dlq: &str,
) -> std::path::PathBuf {
    let path = dir.join("worker.toml");
    std::fs::write(
        &path,
        format!(
            r#"[dedup]
enabled = false

[quality]
reference_time = "none"

[metrics]
listen = ""

[kafka]
brokers = "{b}"
group_id = "{group}"
topics = ["{raw}"]
output_topic = "{out}"
dlq_topic = "{dlq}"
commit_interval = "100ms"
drain_timeout = "10s"
max_in_flight = 2000

[kafka.consumer]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_worker_killed_mid_stream_loses_nothing() {
    let dog = Watchdog::start("a_worker_killed_mid_stream_loses_nothing", WATCHDOG_LIMIT);
    let b = brokers();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (raw, out, dlq, group) = rt.block_on(fresh_topics(&b, PARTITIONS));
    let payloads = example_payloads(400);
    let n = produce(&b, &raw, &payloads);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &b, &group, &raw, &out, &dlq);
    let bin = env!("CARGO_BIN_EXE_alertctx");
    let spawn = || {
        Reaped(
            std::process::Command::new(bin)
                .args(["run", "--config"])
                .arg(&cfg)
                .env("RUST_LOG", "warn")
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let outputs = |b: &str| -> i64 {
        end_offsets(b, &out, PARTITIONS).values().sum::<i64>()
            + end_offsets(b, &dlq, PARTITIONS).values().sum::<i64>()
    };

    // First worker: killed without warning once part of the stream is through.
    dog.stage(format!(
        "{n} inputs produced; the first worker runs until it is killed"
    ));
    let mut first = spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    while outputs(&b) < (n / 10) as i64 {
        assert!(Instant::now() < deadline, "first worker produced nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let at_kill = outputs(&b);
    assert!(
        at_kill < n as i64,
        "the kill must land mid-stream ({at_kill} of {n} outputs already)"
    );

    // Second worker: resumes from the committed offsets.
    dog.stage(format!(
        "the first worker was killed after {at_kill} outputs; the second runs until every input has output"
    ));
    let mut second = spawn();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        // Reading every output back is heavy (100k+ bundles) and competes with the worker for
        // the two cores: count outputs by end offsets, and read them only once there are enough.
        let covered = if outputs(&b) >= n as i64 {
            coverage(&b, &out, &dlq, PARTITIONS).len()
        } else {
            0
        };
        if covered == n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after restart only {covered} of {n} inputs have output ({} outputs)",
            outputs(&b)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    dog.stage("every input has output; the second worker was sent SIGTERM and drains");
    unsafe {
        libc_kill(second.id() as i32, 15);
    }
    let status = second.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM drains and exits cleanly: {status:?}"
    );
    assert_eq!(
        committed(&b, &group, &raw, PARTITIONS),
        end_offsets(&b, &raw, PARTITIONS),
        "after the drain every offset is committed"
    );

    // Nothing lost; at-least-once allows re-sent outputs for what was in flight at the kill.
    let cov = coverage(&b, &out, &dlq, PARTITIONS);
    assert_eq!(cov.len(), n, "every input message has its output");
    let resent = resent(&b, &out, &dlq, PARTITIONS);
    eprintln!("SIGKILL test: {n} inputs, {at_kill} outputs before the kill, {resent} outputs sent twice after restart");
    assert!(
        resent <= n,
        "re-sent outputs are bounded by what was uncommitted"
    );
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joining_mid_stream_loses_nothing_on_the_real_broker() {
    // The mock cluster refuses the commit a revoke makes; a real coordinator takes it. Two
    // members of one group: the second joins while the first is under way, the partitions
    // are split between them (the first member's revoke drains and commits), and every input
    // still ends with its output and its offset committed. Dedup is off, so every input has
    // at least one output to look for.
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let dog = Watchdog::start(
        "a_member_joining_mid_stream_loses_nothing_on_the_real_broker",
        WATCHDOG_LIMIT,
    );
    let b = brokers();
    let (raw, out, dlq, group) = fresh_topics(&b, PARTITIONS).await;
    let first_part = produce(&b, &raw, &example_payloads(20));
    dog.stage(format!(
        "{first_part} inputs produced; the first member runs, the second joins once it is under way"
    ));
    // What is written after the first part, while the second member joins.
    let later = Arc::new(AtomicUsize::new(0));
    let fed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (m1, m2) = (Arc::new(Metrics::new()), Arc::new(Metrics::new()));
    let member = |m: Arc<Metrics>| {
        let cfg = worker_config(&b, &group, &raw, &out, &dlq, false, "");
        let stop = stop.clone();
        async move {
            let shutdown = async move {
                while !stop.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            alertctx::worker::run(&cfg, m, shutdown).await.unwrap()
        }
    };
    let consumed = |m: &Metrics| metric_sum(&m.encode(), "alertctx_input_messages_total", &[]);
    let first_has_started = || async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while consumed(&m1) < (first_part / 10) as f64 {
            assert!(Instant::now() < deadline, "the first member did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    // The second member joins once the first, which holds every partition, has done a part
    // of the topic. (Which of its partitions it has reached by then is up to the fetch
    // order; the mock-cluster test in tests/faults.rs joins mid-batch under load.)
    let second = async {
        first_has_started().await;
        member(m2.clone()).await
    };
    // From the same moment the rest of the topic is written in small chunks, and goes on
    // being written until the second member has consumed something: the join lands while
    // the first member is busy however fast it is, and the second gets work whatever the
    // rebalance takes. (A fixed topic written up front raced the first member.)
    let feed = async {
        first_has_started().await;
        let deadline = Instant::now() + Duration::from_secs(120);
        while consumed(&m2) == 0.0 {
            assert!(
                Instant::now() < deadline,
                "the second member never consumed"
            );
            let (b2, r2) = (b.clone(), raw.clone());
            let k = tokio::task::spawn_blocking(move || produce(&b2, &r2, &example_payloads(1)))
                .await
                .unwrap();
            later.fetch_add(k, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        dog.stage(format!(
            "the second member has consumed; {} inputs in all, waiting until every offset is committed",
            first_part + later.load(Ordering::SeqCst)
        ));
        fed.store(true, Ordering::SeqCst);
    };
    let done = async {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if !fed.load(Ordering::SeqCst) {
                assert!(Instant::now() < deadline, "still writing at the deadline");
                continue;
            }
            let (b2, g2, r2) = (b.clone(), group.clone(), raw.clone());
            let caught_up = tokio::task::spawn_blocking(move || {
                committed(&b2, &g2, &r2, PARTITIONS) == end_offsets(&b2, &r2, PARTITIONS)
            })
            .await
            .unwrap();
            if caught_up {
                dog.stage("every offset committed; stop requested, waiting for both members to drain and leave the group");
                stop.store(true, Ordering::SeqCst);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not caught up: {} + {} of {} consumed",
                consumed(&m1),
                consumed(&m2),
                first_part + later.load(Ordering::SeqCst)
            );
        }
    };
    let (s1, s2, _, _) = tokio::join!(member(m1.clone()), second, feed, done);
    let n = first_part + later.load(Ordering::SeqCst);
    dog.stage("both members have stopped; checking outputs and offsets");
    assert!(
        s1.messages > 0 && s2.messages > 0,
        "both members worked: {s1:?} {s2:?}"
    );
    assert!((s1.messages + s2.messages) as usize >= n);
    // The topic holds exactly what was written (the count below is against the topic, not
    // against what the test believes it wrote), and after both members have drained and left,
    // the group's offsets are at its end.
    let end = end_offsets(&b, &raw, PARTITIONS);
    assert_eq!(
        end.values().sum::<i64>(),
        n as i64,
        "the raw topic holds the {n} inputs written"
    );
    assert_eq!(
        committed(&b, &group, &raw, PARTITIONS),
        end,
        "after both members left every offset is committed"
    );
    let cov = coverage(&b, &out, &dlq, PARTITIONS);
    assert_eq!(cov.len(), n, "every input has its output");
    let again = resent(&b, &out, &dlq, PARTITIONS);
    eprintln!(
        "rebalance on the real broker: {n} inputs, members consumed {} and {}, {again} outputs sent twice",
        s1.messages, s2.messages
    );
    assert!(
        again <= s1.messages as usize,
        "re-sends are bounded by what the first member had done: {again}"
    );
}

/// A worker process that is killed when the test lets go of it, so that a failing assertion
/// does not leave it running (and holding the test's stdout open) after the test has ended.
struct Reaped(std::process::Child);

impl std::ops::Deref for Reaped {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        // For a worker already waited for, neither call does anything.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
