//! What the alert's representation costs, measured before deciding whether to rewrite it.
//!
//! The core holds an alert as `serde_json::Value`: objects are `BTreeMap<String, Value>`, every
//! key and string on the heap. README ("What would close the gap") names that tree as one of
//! the costs a rewrite would take out. This benchmark takes the alerts the core makes of the
//! generated corpus (`--seed 1`, 20,000 records, no enrichment) and puts four representations
//! through what the core does to an alert:
//!
//! - `serde_json`: the core's own;
//! - `by_name`: objects as vectors of members sorted by key, keys and strings of up to 22 bytes
//!   held inline, a member found by binary search on its name;
//! - `by_hash`: the same, each key held with a hash of it, a member found by comparing hashes;
//! - `by_id`: keys as numbers given in name order (as a table of the names the mappings write
//!   could give them at load time), a member found by comparing numbers.
//!
//! Each is built from the borrowed members the mapping engine's builder holds (in reverse
//! order, so that every object is sorted as the builder's are), read at every path of the
//! alert that does not cross an array (more reads than the core's stages make: about 80 an
//! alert), walked string by string, and dropped; `lifecycle` does all of it alert by alert, as
//! the core does. `source` only reads the builder's form, for the part of every figure that is
//! not the representation's.
//!
//! Run: `cargo bench --bench alert_tree`. Figures: README, "What would close the gap".

#[global_allocator]
static ALLOC: alertctx::alloc::MiMalloc = alertctx::alloc::MiMalloc;

use alertctx::config::Config;
use alertctx::decode::framing::frame_all;
use alertctx::decode::Limits;
use alertctx::generate::Generator;
use alertctx::pipeline::{Outcome, Pipeline, RecordContext};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::hint::black_box;

/// A key as the compiled mapping would know it: its name, a hash of it, and its number.
#[derive(Clone, Copy)]
struct Key<'a> {
    name: &'a str,
    hash: u32,
    id: u32,
}

/// The builder's form: members under borrowed keys.
enum Src<'a> {
    Leaf(&'a Value),
    Obj(Vec<(Key<'a>, Src<'a>)>),
    Arr(Vec<Src<'a>>),
}

/// What each representation does.
trait Repr {
    type Alert;
    fn build(s: &Src<'_>) -> Self::Alert;
    fn found(a: &Self::Alert, path: &[Key<'_>]) -> bool;
    /// Every string, key and scalar visited.
    fn strings(a: &Self::Alert) -> usize;
}

struct SerdeJson;

impl Repr for SerdeJson {
    type Alert = Value;
    fn build(s: &Src<'_>) -> Value {
        match s {
            Src::Leaf(v) => (*v).clone(),
            Src::Obj(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.name.to_string(), Self::build(v)))
                    .collect::<Map<String, Value>>(),
            ),
            Src::Arr(a) => Value::Array(a.iter().map(Self::build).collect()),
        }
    }
    fn found(a: &Value, path: &[Key<'_>]) -> bool {
        let mut cur = a;
        for k in path {
            match cur.as_object().and_then(|m| m.get(k.name)) {
                Some(v) => cur = v,
                None => return false,
            }
        }
        true
    }
    fn strings(a: &Value) -> usize {
        match a {
            Value::String(s) => s.len(),
            Value::Array(items) => items.iter().map(Self::strings).sum(),
            Value::Object(m) => m.iter().map(|(k, v)| k.len() + Self::strings(v)).sum(),
            Value::Bool(b) => *b as usize,
            Value::Number(n) => n.is_f64() as usize,
            Value::Null => 0,
        }
    }
}

/// A string of up to 22 bytes in place, a longer one on the heap: 24 bytes either way.
enum Text {
    Inline(u8, [u8; 22]),
    Heap(Box<str>),
}

impl Text {
    fn new(s: &str) -> Text {
        if s.len() <= 22 {
            let mut b = [0u8; 22];
            b[..s.len()].copy_from_slice(s.as_bytes());
            Text::Inline(s.len() as u8, b)
        } else {
            Text::Heap(s.into())
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // SAFETY: the first `n` bytes were copied whole from a `&str` (`Text::new`).
            Text::Inline(n, b) => unsafe { std::str::from_utf8_unchecked(&b[..*n as usize]) },
            Text::Heap(s) => s,
        }
    }
}

/// An alert of sorted member vectors, keys held as `K`.
enum Flat<K> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Text),
    Arr(Vec<Flat<K>>),
    Obj(Vec<(K, Flat<K>)>),
}

/// How a flat alert holds, orders and finds its keys.
trait FlatKey: Sized {
    fn new(k: &Key<'_>) -> Self;
    /// Members in name order.
    fn sort(members: &mut [(Self, Flat<Self>)]);
    fn find<'m>(members: &'m [(Self, Flat<Self>)], k: &Key<'_>) -> Option<&'m Flat<Self>>;
    fn len(&self) -> usize;
}

struct ByName(Text);

impl FlatKey for ByName {
    fn new(k: &Key<'_>) -> Self {
        ByName(Text::new(k.name))
    }
    fn sort(members: &mut [(Self, Flat<Self>)]) {
        members.sort_unstable_by(|a, b| a.0 .0.as_str().cmp(b.0 .0.as_str()));
    }
    fn find<'m>(members: &'m [(Self, Flat<Self>)], k: &Key<'_>) -> Option<&'m Flat<Self>> {
        let i = members
            .binary_search_by(|(x, _)| x.0.as_str().cmp(k.name))
            .ok()?;
        Some(&members[i].1)
    }
    fn len(&self) -> usize {
        self.0.as_str().len()
    }
}

struct ByHash(u32, Text);

impl FlatKey for ByHash {
    fn new(k: &Key<'_>) -> Self {
        ByHash(k.hash, Text::new(k.name))
    }
    fn sort(members: &mut [(Self, Flat<Self>)]) {
        members.sort_unstable_by(|a, b| a.0 .1.as_str().cmp(b.0 .1.as_str()));
    }
    fn find<'m>(members: &'m [(Self, Flat<Self>)], k: &Key<'_>) -> Option<&'m Flat<Self>> {
        members
            .iter()
            .find(|(x, _)| x.0 == k.hash && x.1.as_str() == k.name)
            .map(|(_, v)| v)
    }
    fn len(&self) -> usize {
        self.1.as_str().len()
    }
}

/// A key's number; the name is in the table (here, its length stands for reading it).
struct ById(u32, u32);

impl FlatKey for ById {
    fn new(k: &Key<'_>) -> Self {
        ById(k.id, k.name.len() as u32)
    }
    fn sort(members: &mut [(Self, Flat<Self>)]) {
        members.sort_unstable_by_key(|(k, _)| k.0);
    }
    fn find<'m>(members: &'m [(Self, Flat<Self>)], k: &Key<'_>) -> Option<&'m Flat<Self>> {
        members.iter().find(|(x, _)| x.0 == k.id).map(|(_, v)| v)
    }
    fn len(&self) -> usize {
        self.1 as usize
    }
}

impl<K: FlatKey> Repr for K {
    type Alert = Flat<K>;
    fn build(s: &Src<'_>) -> Flat<K> {
        match s {
            Src::Leaf(v) => match v {
                Value::Null => Flat::Null,
                Value::Bool(b) => Flat::Bool(*b),
                Value::Number(n) => Flat::Num(n.clone()),
                Value::String(s) => Flat::Str(Text::new(s)),
                _ => unreachable!("containers are Src::Obj and Src::Arr"),
            },
            Src::Obj(m) => {
                let mut members: Vec<(K, Flat<K>)> =
                    m.iter().map(|(k, v)| (K::new(k), Self::build(v))).collect();
                K::sort(&mut members);
                Flat::Obj(members)
            }
            Src::Arr(a) => Flat::Arr(a.iter().map(Self::build).collect()),
        }
    }
    fn found(a: &Flat<K>, path: &[Key<'_>]) -> bool {
        let mut cur = a;
        for k in path {
            let Flat::Obj(m) = cur else { return false };
            match K::find(m, k) {
                Some(v) => cur = v,
                None => return false,
            }
        }
        true
    }
    fn strings(a: &Flat<K>) -> usize {
        match a {
            Flat::Str(s) => s.as_str().len(),
            Flat::Arr(items) => items.iter().map(Self::strings).sum(),
            Flat::Obj(m) => m.iter().map(|(k, v)| k.len() + Self::strings(v)).sum(),
            Flat::Bool(b) => *b as usize,
            Flat::Num(n) => n.is_f64() as usize,
            Flat::Null => 0,
        }
    }
}

/// The alerts the core makes of the corpus.
fn alerts() -> Vec<Value> {
    let mut text = String::new();
    for r in Generator::new(1).take(20_000) {
        text.push_str(&r.line);
        text.push('\n');
    }
    let mut cfg = Config::default();
    cfg.quality.reference_time = "none".into();
    let mut pipeline = Pipeline::from_config(&cfg).expect("the default configuration loads");
    let mut out = Vec::new();
    let framed = frame_all("bench", text.as_bytes(), Limits::default());
    pipeline.process_batch(framed, 1, RecordContext::default(), &mut out);
    out.into_iter()
        .filter_map(|o| match o {
            Outcome::Bundle { json, .. } => {
                let mut bundle: Value = serde_json::from_str(&json).expect("a bundle is JSON");
                Some(bundle["alert"].take())
            }
            _ => None,
        })
        .collect()
}

/// Every key name of `v`, for the table of numbers.
fn names<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                out.push(k);
                names(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| names(i, out)),
        _ => {}
    }
}

struct Keys<'a>(HashMap<&'a str, u32>);

impl<'a> Keys<'a> {
    fn key(&self, name: &'a str) -> Key<'a> {
        Key {
            name,
            hash: alertctx::path::key_hash(name) as u32,
            id: self.0[name],
        }
    }

    fn src(&self, v: &'a Value) -> Src<'a> {
        match v {
            Value::Object(m) => Src::Obj(
                m.iter()
                    .rev()
                    .map(|(k, child)| (self.key(k), self.src(child)))
                    .collect(),
            ),
            Value::Array(items) => Src::Arr(items.iter().map(|i| self.src(i)).collect()),
            leaf => Src::Leaf(leaf),
        }
    }

    /// Every path of `v` to an object member that crosses no array.
    fn paths(&self, v: &'a Value, at: &mut Vec<Key<'a>>, out: &mut Vec<Vec<Key<'a>>>) {
        if let Value::Object(m) = v {
            for (k, child) in m {
                at.push(self.key(k));
                out.push(at.clone());
                self.paths(child, at, out);
                at.pop();
            }
        }
    }
}

fn source_len(s: &Src<'_>) -> usize {
    match s {
        Src::Leaf(v) => v.as_str().map_or(1, str::len),
        Src::Obj(m) => m.iter().map(|(k, v)| k.name.len() + source_len(v)).sum(),
        Src::Arr(a) => a.iter().map(source_len).sum(),
    }
}

fn bench_repr<R: Repr>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    srcs: &[Src<'_>],
    reads: &[Vec<Vec<Key<'_>>>],
) {
    g.bench_function(format!("{name}/lifecycle"), |b| {
        b.iter(|| {
            for (s, paths) in srcs.iter().zip(reads) {
                let a = R::build(s);
                black_box(R::strings(&a));
                for p in paths {
                    black_box(R::found(&a, p));
                }
            }
        })
    });
    g.bench_function(format!("{name}/build_drop"), |b| {
        b.iter(|| srcs.iter().for_each(|s| drop(black_box(R::build(s)))))
    });
    let built: Vec<R::Alert> = srcs.iter().map(R::build).collect();
    g.bench_function(format!("{name}/read_every_path"), |b| {
        b.iter(|| {
            for (a, paths) in built.iter().zip(reads) {
                for p in paths {
                    black_box(R::found(a, p));
                }
            }
        })
    });
    g.bench_function(format!("{name}/walk_strings"), |b| {
        b.iter(|| built.iter().map(R::strings).sum::<usize>())
    });
    g.bench_function(format!("{name}/drop"), |b| {
        b.iter_batched(
            || srcs.iter().map(R::build).collect::<Vec<_>>(),
            drop,
            BatchSize::LargeInput,
        )
    });
}

fn bench(c: &mut Criterion) {
    let alerts = alerts();
    let mut all = Vec::new();
    alerts.iter().for_each(|a| names(a, &mut all));
    all.sort_unstable();
    all.dedup();
    let keys = Keys(
        all.iter()
            .enumerate()
            .map(|(i, k)| (*k, i as u32))
            .collect(),
    );
    let srcs: Vec<Src<'_>> = alerts.iter().map(|a| keys.src(a)).collect();
    let reads: Vec<Vec<Vec<Key<'_>>>> = alerts
        .iter()
        .map(|a| {
            let mut out = Vec::new();
            keys.paths(a, &mut Vec::new(), &mut out);
            out
        })
        .collect();

    let mut g = c.benchmark_group("alert_tree");
    g.throughput(Throughput::Elements(alerts.len() as u64));
    g.bench_function("source", |b| {
        b.iter(|| srcs.iter().map(source_len).sum::<usize>())
    });
    bench_repr::<SerdeJson>(&mut g, "serde_json", &srcs, &reads);
    bench_repr::<ByName>(&mut g, "by_name", &srcs, &reads);
    bench_repr::<ByHash>(&mut g, "by_hash", &srcs, &reads);
    bench_repr::<ById>(&mut g, "by_id", &srcs, &reads);
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
