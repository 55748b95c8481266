//! End-to-end throughput through a real Kafka-compatible broker: one `alertctx run` worker
//! process, generated records on the raw topic, bundles and dead letters on their topics.
//!
//! Two phases. **Maximum rate**: N records are on the raw topic before the worker starts; from
//! its first consumed message to its last acknowledged output we take events/s, MB/s in
//! (raw bytes) and out (bundle and dead-letter bytes), the worker's CPU seconds per event
//! (user + system of the whole process, librdkafka's threads included, from /proc) and its
//! peak RSS. **Latency**: a fresh worker and topic, records offered at half the measured
//! maximum for a fixed time; latency is each bundle's produce timestamp minus its raw
//! message's timestamp (the provenance `reference_time`), reported as p50/p99.
//!
//! **Kafka floor** (`--floor`): what the Kafka side of the worker costs with no core at all.
//! The bundles and dead letters the pipeline makes of the records are computed first (of the
//! first 50,000 records, reused in turn beyond), then, timed, this process consumes the raw
//! topic with the worker's consumer settings and produces each record's outputs with the
//! worker's producer settings (lz4, idempotence, the same headers), committing every second:
//! its CPU per record is the part of the worker's that no change to the core can remove.
//! The smoke pass runs it too, untimed. `--floor-consume-only` leaves out producing, which
//! splits the floor into its consuming and producing parts. The floor also reports how far
//! from the order they were written in the records were read (record *i* is offset *i*/4 of
//! partition *i* mod 4), which decides how many repeats the worker's exact-repeat memo
//! catches (README, Performance: read order and the fetch size).
//!
//! Run: `scripts/bench-e2e` (starts the broker as `scripts/test` does), or with a broker
//! already listening: `cargo bench --bench e2e -- --records 200000 --latency-secs 20`.
//! With `--bench` absent (`cargo test` runs every target) it makes a small pass with the
//! example reference data and checks that every record is accounted for, nothing timed.

#[path = "common/refdata.rs"]
mod refdata;

/// The worker's allocator (src/main.rs), so that the Kafka floor allocates as the worker does.
#[global_allocator]
static ALLOC: alertctx::alloc::MiMalloc = alertctx::alloc::MiMalloc;

use alertctx::pipeline::Outcome;
use alertctx::worker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{
    BaseRecord, DefaultProducerContext, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 4;

struct Opts {
    bench: bool,
    records: usize,
    latency_secs: u64,
    /// The generator's seed, from --seed (default 1, the corpus the README's figures are of).
    seed: u64,
    /// Records from this file instead of the generator, from --corpus: one per line, taken
    /// again from the start when a phase needs more than the file holds.
    corpus_file: Option<PathBuf>,
    brokers: String,
    /// More worker configuration (TOML appended to the generated file), from --worker-toml.
    worker_extra: String,
    /// The worker binary, from --worker: by default the `alertctx` cargo built with this
    /// benchmark; `scripts/bench-e2e --pgo` passes the profile-guided one, and
    /// `scripts/build-pgo` an instrumented one to take the worker's profile.
    worker_bin: PathBuf,
    /// Also measure the Kafka floor, from --floor.
    floor: bool,
    /// The floor without producing (consuming and committing only), from --floor-consume-only.
    floor_consume_only: bool,
}

fn opts() -> Opts {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let value = |name: &str| arg(name).and_then(|v| v.parse::<usize>().ok());
    let bench = args.iter().any(|a| a == "--bench");
    Opts {
        bench,
        records: value("--records").unwrap_or(if bench { 200_000 } else { 3_000 }),
        latency_secs: value("--latency-secs").unwrap_or(20) as u64,
        seed: value("--seed").unwrap_or(1) as u64,
        corpus_file: arg("--corpus").map(PathBuf::from),
        brokers: std::env::var("ALERTCTX_TEST_BROKERS")
            .unwrap_or_else(|_| "127.0.0.1:19092".into()),
        worker_extra: arg("--worker-toml")
            .map(|p| std::fs::read_to_string(p).expect("--worker-toml: a readable file"))
            .unwrap_or_default(),
        worker_bin: arg("--worker")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_alertctx"))),
        floor: args.iter().any(|a| a.starts_with("--floor")),
        floor_consume_only: args.iter().any(|a| a == "--floor-consume-only"),
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("e2e-{prefix}-{}-{nanos}", std::process::id())
}

fn create_topics(brokers: &str, names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, PARTITIONS, TopicReplication::Fixed(1)))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let res = rt
        .block_on(admin.create_topics(&topics, &AdminOptions::new()))
        .expect("the broker answers (run scripts/bench-e2e, which starts it)");
    for r in res {
        r.unwrap();
    }
}

fn producer(brokers: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "200000")
        .create()
        .unwrap()
}

fn send(p: &ThreadedProducer<DefaultProducerContext>, topic: &str, i: usize, payload: &[u8]) {
    loop {
        match p.send(
            BaseRecord::<(), [u8]>::to(topic)
                .payload(payload)
                .partition(i as i32 % PARTITIONS),
        ) {
            Ok(()) => return,
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// `n` records of the corpus, one per message: generated, or read from --corpus.
fn corpus(n: usize, o: &Opts) -> Vec<Vec<u8>> {
    let Some(file) = &o.corpus_file else {
        return alertctx::generate::Generator::new(o.seed)
            .take(n)
            .map(|g| g.line.into_bytes())
            .collect();
    };
    let text = std::fs::read(file).expect("--corpus: a readable file");
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert!(!lines.is_empty(), "--corpus: the file holds no records");
    lines.iter().cycle().take(n).map(|l| l.to_vec()).collect()
}

/// The worker's configuration: the production-size reference data, a window of a million
/// keys, the topics, a fresh group, and `--worker-toml` appended.
fn worker_toml(
    o: &Opts,
    raw: &str,
    out: &str,
    dlq: &str,
    enrichers: &std::path::Path,
    metrics: &str,
) -> String {
    format!(
        "[pipeline]\nenrichers = {:?}\n[dedup]\ncapacity = 1000000\n[metrics]\nlisten = {metrics:?}\n\
         [kafka]\nbrokers = {:?}\ngroup_id = {:?}\ntopics = [{raw:?}]\noutput_topic = {out:?}\ndlq_topic = {dlq:?}\n{}",
        enrichers.to_str().unwrap(),
        o.brokers,
        unique("group"),
        o.worker_extra
    )
}

struct Worker {
    child: Child,
    metrics: String,
    _dir: tempfile::TempDir,
}

impl Worker {
    fn start(o: &Opts, raw: &str, out: &str, dlq: &str, enrichers: &std::path::Path) -> Worker {
        let dir = tempfile::tempdir().unwrap();
        let metrics = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let cfg = dir.path().join("worker.toml");
        std::fs::write(&cfg, worker_toml(o, raw, out, dlq, enrichers, &metrics)).unwrap();
        let child = Command::new(&o.worker_bin)
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap();
        Worker {
            child,
            metrics,
            _dir: dir,
        }
    }

    fn scrape(&self) -> Option<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.metrics).ok()?;
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        Some(buf.split_once("\r\n\r\n")?.1.to_string())
    }

    /// (CPU used, peak RSS in bytes) of the worker process so far.
    fn cpu_and_peak_rss(&self) -> (ProcUse, u64) {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let hwm_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (proc_use(&pid.to_string()), hwm_kb * 1024)
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// What a process has used so far, all its threads.
#[derive(Debug, Clone, Copy, Default)]
struct ProcUse {
    user_secs: f64,
    sys_secs: f64,
    /// Minor page faults: pages the kernel had to map (and zero) on first touch.
    faults: u64,
}

impl std::ops::Sub for ProcUse {
    type Output = ProcUse;
    fn sub(self, earlier: ProcUse) -> ProcUse {
        ProcUse {
            user_secs: self.user_secs - earlier.user_secs,
            sys_secs: self.sys_secs - earlier.sys_secs,
            faults: self.faults - earlier.faults,
        }
    }
}

/// What process `pid` (a number, or `self`) has used so far.
fn proc_use(pid: &str) -> ProcUse {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest: Vec<&str> = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let secs = |i: usize| rest[i].parse::<f64>().unwrap() / clock_ticks();
    ProcUse {
        user_secs: secs(11),
        sys_secs: secs(12),
        faults: rest[7].parse().unwrap(),
    }
}

/// Clock ticks per second for /proc times: `getconf CLK_TCK` (100 on Linux everywhere
/// it matters), asked once.
fn clock_ticks() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn metric(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(filter))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Every message on a topic: (value bytes, timestamp ms).
fn read_topic(brokers: &str, topic: &str) -> Vec<(Vec<u8>, i64)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .create()
        .unwrap();
    let mut out = Vec::new();
    for p in 0..PARTITIONS {
        let (lo, hi) = c
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap();
        if hi <= lo {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Offset(lo))
            .unwrap();
        c.assign(&tpl).unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut next = lo;
        while next < hi && Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(500)) {
                next = m.offset() + 1;
                out.push((
                    m.payload().unwrap_or_default().to_vec(),
                    m.timestamp().to_millis().unwrap_or(0),
                ));
            }
        }
        assert!(next >= hi, "could not read {topic}/{p} to its end");
    }
    out
}

struct Pass {
    events: usize,
    secs: f64,
    bytes_in: u64,
    bytes_out: u64,
    cpu: ProcUse,
    peak_rss: u64,
    bundles: f64,
    duplicates: f64,
    dead: f64,
    dedup_keys: f64,
    /// Of the duplicates, those folded by their bytes without being decoded.
    exact: f64,
    /// Alerts finished on a guess of the dedup window's decision, and the guesses found wrong
    /// (`alertctx_dedup_guesses_total`).
    guessed: f64,
    guessed_wrong: f64,
}

/// The three topics made, and the corpus (`--records` of it) on `raw`, record *i* on
/// partition *i* mod 4: (the records, their bytes).
fn fill(o: &Opts, raw: &str, out: &str, dlq: &str) -> (Vec<Vec<u8>>, u64) {
    create_topics(&o.brokers, &[raw, out, dlq]);
    let records = corpus(o.records, o);
    let bytes_in: u64 = records.iter().map(|r| r.len() as u64).sum();
    let p = producer(&o.brokers);
    for (i, r) in records.iter().enumerate() {
        send(&p, raw, i, r);
    }
    p.flush(Duration::from_secs(300)).unwrap();
    eprintln!(
        "e2e: {} records ({:.1} MB) on {raw}",
        records.len(),
        bytes_in as f64 / 1e6
    );
    (records, bytes_in)
}

/// Phase 1: everything on the topic first, then the worker, timed from first consume to
/// last acknowledgement.
fn max_rate(o: &Opts, enrichers: &std::path::Path) -> Pass {
    let (raw, out, dlq) = (unique("raw"), unique("out"), unique("dlq"));
    let (records, bytes_in) = fill(o, &raw, &out, &dlq);
    let w = Worker::start(o, &raw, &out, &dlq, enrichers);
    let mut t0 = None;
    let mut cpu0 = ProcUse::default();
    let deadline = Instant::now() + Duration::from_secs(1800);
    let (t1, text) = loop {
        assert!(
            Instant::now() < deadline,
            "the worker did not finish in 30 minutes"
        );
        // Every scrape costs the worker about a millisecond of CPU (hundreds of series):
        // scraped every 20 ms, that was 5% of its CPU in this measurement. Every 100 ms it is
        // about 1%, and the end of the pass is known to within 0.1 s.
        std::thread::sleep(Duration::from_millis(if t0.is_some() { 100 } else { 5 }));
        let Some(text) = w.scrape() else { continue };
        let consumed = metric(&text, "alertctx_input_messages_total", "");
        if t0.is_none() && consumed > 0.0 {
            t0 = Some(Instant::now());
            cpu0 = w.cpu_and_peak_rss().0;
        }
        let in_flight = metric(&text, "alertctx_in_flight_messages", "");
        if consumed >= records.len() as f64 && in_flight == 0.0 {
            break (Instant::now(), text);
        }
    };
    let (cpu1, peak_rss) = w.cpu_and_peak_rss();
    w.stop();
    let outputs: u64 = [&out, &dlq]
        .iter()
        .map(|t| {
            read_topic(&o.brokers, t)
                .iter()
                .map(|(v, _)| v.len() as u64)
                .sum::<u64>()
        })
        .sum();
    Pass {
        events: records.len(),
        secs: (t1 - t0.unwrap()).as_secs_f64(),
        bytes_in,
        bytes_out: outputs,
        cpu: cpu1 - cpu0,
        peak_rss,
        bundles: metric(&text, "alertctx_bundles_total", ""),
        duplicates: metric(&text, "alertctx_duplicates_folded_total", ""),
        dead: metric(&text, "alertctx_dead_letters_total", ""),
        dedup_keys: metric(&text, "alertctx_dedup_keys", ""),
        exact: metric(&text, "alertctx_exact_repeats_folded_total", ""),
        guessed: metric(&text, "alertctx_dedup_guesses_total", ""),
        guessed_wrong: metric(&text, "alertctx_dedup_guesses_total", "\"wrong\""),
    }
}

/// One output of a record, produced as the worker produces it (its headers and keys).
enum Output {
    Bundle {
        key: String,
        json: String,
        source: String,
        class_uid: u32,
        score: u8,
    },
    Dead(alertctx::pipeline::DeadLetter),
}

/// Counts the producer's acknowledgements.
#[derive(Default)]
struct Acks {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        let n = if r.is_ok() { &self.ok } else { &self.failed };
        n.fetch_add(1, Ordering::Relaxed);
    }
}

/// Records whose outputs are computed (and then reused in turn).
const FLOOR_SAMPLE: usize = 50_000;

/// What the floor measured.
struct Floor {
    cpu: ProcUse,
    secs: f64,
    records: usize,
    outputs: u64,
    /// How far each record was read from its place in the topic's production order (record
    /// *i* went to partition *i* mod 4): the median, the 99th percentile and the largest, in
    /// records. The worker's exact-repeat memo remembers the last 65,536 records read, so a
    /// repeat read further than that from its original is decoded again.
    displacement: [usize; 3],
}

/// Phase 3 (`--floor`): the Kafka side of the worker alone, on this process.
fn kafka_floor(o: &Opts, enrichers: &std::path::Path) -> Floor {
    // glibc's heap as the worker sets it (src/worker/heap.rs), before the floor's clients
    // allocate.
    alertctx::worker::heap::keep_freed_memory();
    let (raw, out, dlq) = (unique("fraw"), unique("fout"), unique("fdlq"));
    let (records, _) = fill(o, &raw, &out, &dlq);
    // The worker's configuration (`--worker-toml` included: a producer setting given there
    // applies here too), and the outputs its pipeline makes of the records.
    let text = worker_toml(o, &raw, &out, &dlq, enrichers, "127.0.0.1:0");
    let cfg = alertctx::config::Config::parse(&text, std::iter::empty()).unwrap();
    let mut pipeline = alertctx::pipeline::Pipeline::from_config(&cfg).unwrap();
    let mut outcomes = Vec::new();
    let outputs: Vec<Vec<Output>> = records
        .iter()
        .take(FLOOR_SAMPLE)
        .enumerate()
        .map(|(i, r)| {
            let origin = alertctx::record::Origin::Kafka {
                topic: raw.as_str().into(),
                partition: i as i32 % PARTITIONS,
                offset: (i / PARTITIONS as usize) as i64,
            };
            let rec = alertctx::decode::framing::frame_message(r, origin);
            pipeline.process(&rec, Default::default(), &mut outcomes);
            outcomes
                .drain(..)
                .filter_map(|oc| match oc {
                    Outcome::Bundle { json, key, report } => Some(Output::Bundle {
                        key,
                        json,
                        source: report.source,
                        class_uid: report.class_uid,
                        score: report.score,
                    }),
                    Outcome::DeadLetter(d) => Some(Output::Dead(d)),
                    Outcome::Duplicate { .. } => None,
                })
                .collect()
        })
        .collect();
    drop(pipeline);

    let kafka = cfg.kafka.as_ref().unwrap();
    let consumer: BaseConsumer = worker::consumer_config(kafka).create().unwrap();
    consumer.subscribe(&[&raw]).unwrap();
    let producer: ThreadedProducer<Acks> = worker::producer_config(kafka)
        .create_with_context(Acks::default())
        .unwrap();
    let (mut consumed, mut produced) = (0usize, 0u64);
    let mut next = [0i64; PARTITIONS as usize];
    let (mut t0, mut cpu0) = (None, ProcUse::default());
    let mut last_commit = Instant::now();
    let mut order: Vec<u32> = Vec::with_capacity(records.len());
    let deadline = Instant::now() + Duration::from_secs(1800);
    while consumed < records.len() {
        assert!(
            Instant::now() < deadline,
            "the floor did not finish in 30 minutes"
        );
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m.unwrap();
        if t0.is_none() {
            t0 = Some(Instant::now());
            cpu0 = proc_use("self");
        }
        let (p, offset) = (m.partition(), m.offset());
        let i = offset as usize * PARTITIONS as usize + p as usize;
        order.push(i as u32);
        let outs = if o.floor_consume_only {
            &[][..]
        } else {
            &outputs[i % outputs.len()][..]
        };
        for out_rec in outs {
            let mut rec = match out_rec {
                Output::Bundle {
                    key,
                    json,
                    source,
                    class_uid,
                    score,
                } => {
                    let rec = BaseRecord::<[u8], [u8]>::to(&out)
                        .payload(json.as_bytes())
                        .headers(worker::bundle_headers(source, *class_uid, *score));
                    if key.is_empty() {
                        rec
                    } else {
                        rec.key(key.as_bytes())
                    }
                }
                Output::Dead(d) => BaseRecord::to(&dlq)
                    .key(worker::dead_letter_key(d))
                    .payload(d.bytes.as_slice())
                    .headers(worker::dead_letter_headers(d)),
            };
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        rec = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            produced += 1;
        }
        consumed += 1;
        next[p as usize] = offset + 1;
        if last_commit.elapsed() >= Duration::from_secs(1) {
            commit(&consumer, &raw, &next);
            last_commit = Instant::now();
        }
    }
    producer.flush(Duration::from_secs(300)).unwrap();
    let acks = producer.context();
    assert_eq!(acks.failed.load(Ordering::Relaxed), 0, "outputs failed");
    assert_eq!(
        acks.ok.load(Ordering::Relaxed),
        produced,
        "outputs unacknowledged"
    );
    commit(&consumer, &raw, &next);
    let secs = t0.unwrap().elapsed().as_secs_f64();
    let cpu = proc_use("self") - cpu0;
    let mut shift: Vec<usize> = order
        .iter()
        .enumerate()
        .map(|(read, &i)| read.abs_diff(i as usize))
        .collect();
    shift.sort_unstable();
    let q = |f: f64| quantile(&shift, f).expect("records were read");
    Floor {
        displacement: [q(0.5), q(0.99), q(1.0)],
        cpu,
        secs,
        records: consumed,
        outputs: produced,
    }
}

/// Commit the next offsets of `raw`'s partitions, as the worker does on its interval.
fn commit(c: &BaseConsumer, raw: &str, next: &[i64]) {
    let mut tpl = TopicPartitionList::new();
    for (p, &n) in next.iter().enumerate() {
        if n > 0 {
            tpl.add_partition_offset(raw, p as i32, Offset::Offset(n))
                .unwrap();
        }
    }
    if tpl.count() > 0 {
        c.commit(&tpl, CommitMode::Async).unwrap();
    }
}

/// Phase 2: records offered at `rate` per second for `secs`; (p50, p99, bundles) of
/// bundle produce time minus raw message time, in ms.
fn latency(o: &Opts, enrichers: &std::path::Path, rate: f64, secs: u64) -> (i64, i64, usize) {
    let (raw, out, dlq) = (unique("lraw"), unique("lout"), unique("ldlq"));
    create_topics(&o.brokers, &[&raw, &out, &dlq]);
    let w = Worker::start(o, &raw, &out, &dlq, enrichers);
    // Ready: partitions assigned.
    let ready = Instant::now() + Duration::from_secs(60);
    while w
        .scrape()
        .is_none_or(|t| metric(&t, "alertctx_assigned_partitions", "") < 1.0)
    {
        assert!(
            Instant::now() < ready,
            "the worker did not get its partitions"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let p = producer(&o.brokers);
    let n = (rate * secs as f64) as usize;
    let records = corpus(n, o);
    let start = Instant::now();
    for (i, r) in records.iter().enumerate() {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        send(&p, &raw, i, r);
    }
    p.flush(Duration::from_secs(60)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while w.scrape().is_none_or(|t| {
        metric(&t, "alertctx_input_messages_total", "") < n as f64
            || metric(&t, "alertctx_in_flight_messages", "") > 0.0
    }) {
        assert!(Instant::now() < deadline, "the worker did not catch up");
        std::thread::sleep(Duration::from_millis(50));
    }
    w.stop();
    let mut lat: Vec<i64> = read_topic(&o.brokers, &out)
        .iter()
        .filter_map(|(v, ts)| {
            let b: serde_json::Value = serde_json::from_slice(v).ok()?;
            Some(ts - b["provenance"]["reference_time"].as_i64()?)
        })
        .collect();
    lat.sort_unstable();
    let q = |f: f64| quantile(&lat, f).unwrap_or(-1);
    (q(0.50), q(0.99), lat.len())
}

/// The value at fraction `f` (0 to 1) of `sorted`, nearest rank; `None` when it is empty.
fn quantile<T: Copy>(sorted: &[T], f: f64) -> Option<T> {
    let at = (sorted.len().saturating_sub(1) as f64 * f).round() as usize;
    sorted.get(at).copied()
}

fn main() {
    let o = opts();
    let enrichers: PathBuf = if o.bench {
        refdata::bench_data()
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("enrichers")
    };
    let m = max_rate(&o, &enrichers);
    // Every record is a bundle, a folded repeat or a dead letter (the generator writes no
    // broken records, and an envelope counts once per record it holds).
    assert!(
        m.bundles + m.duplicates + m.dead >= m.events as f64,
        "records unaccounted for: {} + {} + {} < {}",
        m.bundles,
        m.duplicates,
        m.dead,
        m.events
    );
    assert!(m.duplicates > 0.0 && m.bundles > 0.0);
    let rate = m.events as f64 / m.secs;
    let us = |s: f64| s / m.events as f64 * 1e6;
    let worker_us = us(m.cpu.user_secs + m.cpu.sys_secs);
    println!(
        "e2e max rate: {} events in {:.2} s = {:.0} events/s; in {:.1} MB/s, out {:.1} MB/s; worker CPU {:.1} µs/event (user {:.1}, system {:.1}; {:.2} page faults/event); peak RSS {:.0} MiB ({} dedup keys); {} duplicates, {} of them exact repeats folded by their bytes; {} alerts finished on a guess of the dedup decision, {} guessed wrong",
        m.events,
        m.secs,
        rate,
        m.bytes_in as f64 / 1e6 / m.secs,
        m.bytes_out as f64 / 1e6 / m.secs,
        worker_us,
        us(m.cpu.user_secs),
        us(m.cpu.sys_secs),
        m.cpu.faults as f64 / m.events as f64,
        m.peak_rss as f64 / (1 << 20) as f64,
        m.dedup_keys,
        m.duplicates,
        m.exact,
        m.guessed,
        m.guessed_wrong
    );
    // The smoke pass (`cargo test`) runs the floor too, so that it keeps working.
    if o.floor || !o.bench {
        let f = kafka_floor(&o, &enrichers);
        let per = |s: f64| s / f.records as f64 * 1e6;
        println!(
            "e2e Kafka floor (no core): {} events, {} outputs in {:.2} s = {:.0} events/s; CPU {:.1} µs/event (user {:.1}, system {:.1}; {:.2} page faults/event); the worker's {:.1} µs less this is its core's; records read out of production order by p50 {}, p99 {}, max {}",
            f.records,
            f.outputs,
            f.secs,
            f.records as f64 / f.secs,
            per(f.cpu.user_secs + f.cpu.sys_secs),
            per(f.cpu.user_secs),
            per(f.cpu.sys_secs),
            f.cpu.faults as f64 / f.records as f64,
            worker_us,
            f.displacement[0],
            f.displacement[1],
            f.displacement[2],
        );
    }
    if o.bench {
        let (p50, p99, n) = latency(&o, &enrichers, rate / 2.0, o.latency_secs);
        println!(
            "e2e latency at {:.0} events/s offered ({} s, {n} bundles): p50 {p50} ms, p99 {p99} ms",
            rate / 2.0,
            o.latency_secs
        );
    }
}
