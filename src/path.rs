//! Dotted attribute paths over JSON values (`src_endpoint.ip`, `actor.user.name`,
//! `resources.0.uid`), used by every stage that reads the normalized event.

use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cell::Cell;
use std::cmp::Ordering;

/// Read the value at a dotted path. Numeric segments index arrays.
pub fn get<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = value;
    for seg in path.split('.') {
        cur = match cur {
            Value::Object(map) => map.get(seg)?,
            Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Read a path as a string; numbers and booleans are rendered, empty strings are absent.
pub fn get_str(value: &Value, path: &str) -> Option<String> {
    get(value, path).and_then(scalar_text).map(Cow::into_owned)
}

/// The text of a present, non-empty scalar, borrowed where it is a string: what
/// [`get_str`] and [`JPath::text`] give of the value they find.
fn scalar_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) if !s.is_empty() => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        _ => None,
    }
}

/// Whether a path holds a present, non-empty value.
pub fn is_present(value: &Value, path: &str) -> bool {
    holds_value(get(value, path))
}

/// What [`is_present`] says of a value found (or not) at a path.
pub fn holds_value(found: Option<&Value>) -> bool {
    match found {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// A dotted path split once, with its numeric segments parsed once, for reading the same
/// attribute of many normalized alerts (the scorer's class attributes, the deduplicator's key
/// fields): [`get`] and [`is_present`] without the per-call splitting and parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JPath {
    /// Shared, so that what names the attribute it read (an enricher's entity, miss or
    /// lookup) takes a count, not a copy.
    raw: std::sync::Arc<str>,
    steps: Box<[JStep]>,
    /// The first segment's [`top_id`], for [`JPath::get_in`].
    top_id: u32,
}

/// One segment of a [`JPath`]: the key it names in an object and, when it is a number, the
/// index it names in an array.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JStep {
    key: Box<str>,
    index: Option<usize>,
}

impl JPath {
    pub fn new(raw: &str) -> JPath {
        let steps: Box<[JStep]> = raw
            .split('.')
            .map(|s| JStep {
                key: s.into(),
                index: s.parse::<usize>().ok(),
            })
            .collect();
        JPath {
            raw: raw.into(),
            top_id: top_id(&steps[0].key),
            steps,
        }
    }

    /// The path as written.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// [`raw`](JPath::raw), shared.
    pub fn shared_raw(&self) -> &std::sync::Arc<str> {
        &self.raw
    }

    /// [`get`] with the compiled path: the same value for the same path.
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        walk(value, &self.steps)
    }

    /// [`get`](JPath::get) in an alert read through a view: the same value, with the first
    /// segment looked up once a view.
    pub fn get_in<'v>(&self, alert: &AlertView<'v>) -> Option<&'v Value> {
        let (first, rest) = self.steps.split_first()?;
        walk(alert.top(self.top_id, first)?, rest)
    }

    /// [`is_present`] with the compiled path.
    pub fn is_present(&self, value: &Value) -> bool {
        holds_value(self.get(value))
    }

    /// [`get_str`] with the compiled path, borrowed where the value is a string: the text of
    /// a present, non-empty scalar.
    pub fn text<'v>(&self, value: &'v Value) -> Option<Cow<'v, str>> {
        self.get(value).and_then(scalar_text)
    }

    /// [`text`](JPath::text) through a view of the alert.
    pub fn text_in<'v>(&self, alert: &AlertView<'v>) -> Option<Cow<'v, str>> {
        self.get_in(alert).and_then(scalar_text)
    }
}

/// Follow `steps` down from `cur`.
fn walk<'v>(mut cur: &'v Value, steps: &[JStep]) -> Option<&'v Value> {
    for step in steps {
        cur = match cur {
            Value::Object(map) => map.get(&*step.key)?,
            Value::Array(items) => items.get(step.index?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// The id of a compiled path's first segment: the same for the same text, in the whole
/// process. Paths are compiled when a configuration is loaded, so the table holds the few
/// dozen first segments of its attributes.
fn top_id(key: &str) -> u32 {
    use std::sync::{Mutex, PoisonError};
    static IDS: Mutex<Vec<Box<str>>> = Mutex::new(Vec::new());
    let mut ids = IDS.lock().unwrap_or_else(PoisonError::into_inner);
    let at = match ids.iter().position(|k| **k == *key) {
        Some(at) => at,
        None => {
            ids.push(key.into());
            ids.len() - 1
        }
    };
    u32::try_from(at).expect("fewer than 2^32 path segments")
}

/// A normalized alert read by many compiled paths ([`JPath::get_in`]), which keeps what it
/// found at each first segment: the enrichers read fifteen paths of an alert with the
/// embedded definitions, under five first segments (`src_endpoint`, `dst_endpoint`,
/// `device`, `user`, `actor`), and in the alert's map (a B-tree of about twenty members)
/// each lookup is a search of key comparisons, most of them for a member that is not there.
/// A view answers a first segment it has looked up before by comparing a few integers.
pub struct AlertView<'v> {
    root: &'v Value,
    /// How many of `tops` are filled.
    len: Cell<usize>,
    /// (first segment's id, what the alert holds there).
    tops: [Cell<(u32, Option<&'v Value>)>; VIEW_TOPS],
}

/// First segments a view keeps; beyond them it looks up again.
const VIEW_TOPS: usize = 12;

impl<'v> AlertView<'v> {
    pub fn new(alert: &'v Value) -> AlertView<'v> {
        AlertView {
            root: alert,
            len: Cell::new(0),
            tops: std::array::from_fn(|_| Cell::new((u32::MAX, None))),
        }
    }

    /// The alert itself.
    pub fn value(&self) -> &'v Value {
        self.root
    }

    /// What the alert holds at a path's first segment, `step`, whose id is `id`.
    fn top(&self, id: u32, step: &JStep) -> Option<&'v Value> {
        let len = self.len.get();
        if let Some(kept) = self.tops[..len].iter().find(|t| t.get().0 == id) {
            return kept.get().1;
        }
        let found = walk(self.root, std::slice::from_ref(step));
        if len < VIEW_TOPS {
            self.tops[len].set((id, found));
            self.len.set(len + 1);
        }
        found
    }
}

/// [`get`] with a path compiled by [`CPath`], for conditions over normalized alerts: the same
/// value as `get(value, path.raw())` without splitting the path again. Numeric segments are
/// parsed only where they meet an array, as [`get`] does.
pub fn get_cpath<'v>(value: &'v Value, path: &CPath) -> Option<&'v Value> {
    if path.is_empty() {
        // `""` and `"."`, which CPath reads as the value itself: `get` splits them into one
        // and two empty keys.
        return get(value, path.raw());
    }
    let mut cur = value;
    for i in 0..path.len() {
        let seg = path.segment(i);
        cur = match cur {
            Value::Object(map) => map.get(seg)?,
            Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Write `new` at a dotted path inside `root`, creating objects (and arrays for numeric
/// segments) on the way. An existing non-container on the way is replaced.
pub fn set(root: &mut Map<String, Value>, path: &str, new: Value) {
    set_at(root, &SetPath::new(path), new)
}

/// One step of a [`SetPath`]: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    /// A numeric segment: an index into an array, or (as written) a key into an object.
    Index(usize, String),
}

impl Step {
    /// The segment as an object key, as it was written.
    fn key(&self) -> &str {
        match self {
            Step::Key(k) | Step::Index(_, k) => k,
        }
    }
}

/// A dotted path split and parsed once, for writing the same attribute into many records
/// (the mapping engine's targets): [`set`] without the per-call splitting and parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetPath {
    steps: Vec<Step>,
}

impl SetPath {
    pub fn new(path: &str) -> SetPath {
        let steps = path
            .split('.')
            .map(|s| match s.parse::<usize>() {
                Ok(i) => Step::Index(i, s.to_string()),
                Err(_) => Step::Key(s.to_string()),
            })
            .collect();
        SetPath { steps }
    }
}

/// [`set`] with a compiled path. Keys are copied only when they are new to their object.
pub fn set_at(root: &mut Map<String, Value>, path: &SetPath, new: Value) {
    let Some((first, rest)) = path.steps.split_first() else {
        return;
    };
    // The root is an object: an index at the top is a key there.
    let first_key = first.key();
    if rest.is_empty() {
        root.insert(first_key.to_string(), new);
        return;
    }
    let next_is_index = matches!(rest[0], Step::Index(..));
    if !root.contains_key(first_key) {
        root.insert(first_key.to_string(), empty_container(next_is_index));
    }
    let mut cur = root.get_mut(first_key).expect("inserted above");
    for (n, step) in rest.iter().enumerate() {
        let last = n + 1 == rest.len();
        let next_is_index = rest
            .get(n + 1)
            .is_some_and(|s| matches!(s, Step::Index(..)));
        if !matches!(cur, Value::Object(_) | Value::Array(_)) {
            *cur = empty_container(matches!(step, Step::Index(..)));
        }
        cur = match cur {
            Value::Array(items) => {
                let idx = match step {
                    Step::Index(i, _) => *i,
                    Step::Key(_) => items.len(),
                };
                while items.len() <= idx {
                    items.push(Value::Null);
                }
                if last {
                    items[idx] = new;
                    return;
                }
                if items[idx].is_null() {
                    items[idx] = empty_container(next_is_index);
                }
                &mut items[idx]
            }
            Value::Object(map) => {
                let key = step.key();
                if last {
                    map.insert(key.to_string(), new);
                    return;
                }
                if !map.contains_key(key) {
                    map.insert(key.to_string(), empty_container(next_is_index));
                }
                map.get_mut(key).expect("inserted above")
            }
            _ => unreachable!("replaced by a container above"),
        };
    }
}

/// An object made member by member outside a [`Builder`] (the mapping engine's unmapped
/// walk), to be written whole with [`Builder::insert_object`]: its keys are borrowed until the
/// builder makes its map, and not copied where a spare map holds them already
/// ([`Builder::into_map_reusing`]). A key may come twice; the later member is kept, as
/// inserting them in turn keeps it.
#[derive(Debug)]
pub struct Object<'k>(Members<'k>);

impl<'k> Object<'k> {
    pub fn with_capacity(n: usize) -> Object<'k> {
        Object(Vec::with_capacity(n))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn push(&mut self, key: &'k str, v: Value) {
        self.0.push((Cow::Borrowed(key), Slot::Value(v)));
    }

    pub fn push_object(&mut self, key: &'k str, o: Object<'k>) {
        self.0.push((Cow::Borrowed(key), Slot::Object(o.0)));
    }
}

/// Builds a JSON object from many [`SetPath`] writes, with exactly the result of calling
/// [`set_at`] for each in turn on an empty map, but faster: members are kept in small vectors
/// under keys borrowed from the paths, and each object becomes a sorted `Map` once, at the end
/// ([`Builder::into_map`]). Writing an attribute into nested `BTreeMap`s searched each level
/// several times and allocated every key; building the mapping engine's output this way
/// takes the searches out (34.5k → 28k instructions a record, of which building the maps in
/// one pass is 17k; benches/OPTIMISATIONS.md).
#[derive(Debug, Default)]
pub struct Builder<'k> {
    root: Members<'k>,
}

type Members<'k> = Vec<(Cow<'k, str>, Slot<'k>)>;

#[derive(Debug)]
enum Slot<'k> {
    /// A value as written (which may be a whole object or array).
    Value(Value),
    /// A value written by reference ([`Builder::set_const`]): copied into the map made,
    /// unless the map it is made in holds it already.
    Const(&'k Value),
    Object(Members<'k>),
    Array(Vec<Slot<'k>>),
}

impl<'k> Slot<'k> {
    fn empty(array: bool) -> Slot<'k> {
        if array {
            Slot::Array(Vec::new())
        } else {
            // Room for the members most objects get (an endpoint, a process, a user), so
            // that the vector is not grown, and copied, on the way.
            Slot::Object(Vec::with_capacity(8))
        }
    }

    fn into_value(self) -> Value {
        match self {
            Slot::Value(v) => v,
            Slot::Const(v) => v.clone(),
            Slot::Object(members) => Value::Object(into_map(members)),
            Slot::Array(items) => Value::Array(items.into_iter().map(Slot::into_value).collect()),
        }
    }
}

fn into_map(members: Members<'_>) -> Map<String, Value> {
    map_of(
        members
            .into_iter()
            .map(|(k, s)| (k.into_owned(), s.into_value())),
    )
}

/// The map of `entries`, a later entry replacing an earlier one of the same key (what
/// inserting them one by one gives). A few are inserted one by one: most objects of an alert
/// hold one to three members, and for them sorting a vector and building nodes from it costs
/// more than the insertions' few comparisons. More are sorted (stably, so the last of equal
/// keys is kept: an [`Object`]'s keys may repeat), and `Map` (a BTreeMap) builds its nodes in
/// one pass.
fn map_of(entries: impl ExactSizeIterator<Item = (String, Value)>) -> Map<String, Value> {
    if entries.len() <= FEW_MEMBERS {
        let mut map = Map::new();
        for (k, v) in entries {
            map.insert(k, v);
        }
        map
    } else {
        entries.collect()
    }
}

/// Objects with at most this many members are built by insertion ([`map_of`]).
const FEW_MEMBERS: usize = 4;

/// The member `key` of an object, created by `make` when it is not there yet.
#[inline]
fn member<'a, 'k>(
    m: &'a mut Members<'k>,
    key: &'k str,
    make: impl FnOnce() -> Slot<'k>,
) -> &'a mut Slot<'k> {
    // From the back: rules run in target order, so a write usually goes into the member
    // the previous one opened (keys are unique, so the first match is the only one).
    let i = match m.iter().rposition(|(k, _)| k == key) {
        Some(i) => i,
        None => {
            m.push((Cow::Borrowed(key), make()));
            m.len() - 1
        }
    };
    &mut m[i].1
}

/// Put `slot` at `key`, replacing what was there.
#[inline]
fn put<'k>(m: &mut Members<'k>, key: &'k str, slot: Slot<'k>) {
    match m.iter_mut().rev().find(|(k, _)| k == key) {
        Some((_, old)) => *old = slot,
        None => m.push((Cow::Borrowed(key), slot)),
    }
}

impl<'k> Builder<'k> {
    pub fn new() -> Builder<'k> {
        Builder::default()
    }

    /// With room for `n` top-level members (an alert has about 20: room for them saves
    /// growing the vector, and copying it, three times on the way).
    pub fn with_capacity(n: usize) -> Builder<'k> {
        Builder {
            root: Vec::with_capacity(n),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }

    /// Write `new` at the top-level `key`, replacing what was there.
    pub fn insert(&mut self, key: &'k str, new: Value) {
        put(&mut self.root, key, Slot::Value(new));
    }

    /// Write the object `new` at the top-level `key`, replacing what was there.
    pub fn insert_object(&mut self, key: &'k str, new: Object<'k>) {
        put(&mut self.root, key, Slot::Object(new.0));
    }

    /// [`set_at`] on the object being built.
    pub fn set(&mut self, path: &'k SetPath, new: Value) {
        self.set_slot(path, Slot::Value(new))
    }

    /// [`set`](Builder::set) of a value that outlives the builder (a mapping's product, a
    /// rule's constant), without copying it first: a map built into a spare one that holds an equal
    /// value there keeps that value ([`Builder::into_map_reusing`]); any other map gets a copy.
    pub fn set_const(&mut self, path: &'k SetPath, new: &'k Value) {
        self.set_slot(path, Slot::Const(new))
    }

    fn set_slot(&mut self, path: &'k SetPath, new: Slot<'k>) {
        let Some((first, rest)) = path.steps.split_first() else {
            return;
        };
        if rest.is_empty() {
            return put(&mut self.root, first.key(), new);
        }
        let next_is_index = matches!(rest[0], Step::Index(..));
        let mut cur = member(&mut self.root, first.key(), || Slot::empty(next_is_index));
        for (n, step) in rest.iter().enumerate() {
            let last = n + 1 == rest.len();
            let next_is_index = rest
                .get(n + 1)
                .is_some_and(|s| matches!(s, Step::Index(..)));
            if let Slot::Const(v) = cur {
                // Written into: a value of its own from here on.
                *cur = Slot::Value(v.clone());
            }
            if let Slot::Value(v) = cur {
                // A container written whole is opened up one level to write into it; any
                // other value on the way is replaced, as `set_at` replaces it.
                *cur = match std::mem::take(v) {
                    Value::Object(map) => Slot::Object(
                        map.into_iter()
                            .map(|(k, v)| (Cow::Owned(k), Slot::Value(v)))
                            .collect(),
                    ),
                    Value::Array(items) => {
                        Slot::Array(items.into_iter().map(Slot::Value).collect())
                    }
                    _ => Slot::empty(matches!(step, Step::Index(..))),
                };
            }
            cur = match cur {
                Slot::Array(items) => {
                    let idx = match step {
                        Step::Index(i, _) => *i,
                        Step::Key(_) => items.len(),
                    };
                    while items.len() <= idx {
                        items.push(Slot::Value(Value::Null));
                    }
                    if last {
                        items[idx] = new;
                        return;
                    }
                    if matches!(items[idx], Slot::Value(Value::Null)) {
                        items[idx] = Slot::empty(next_is_index);
                    }
                    &mut items[idx]
                }
                Slot::Object(members) => {
                    if last {
                        return put(members, step.key(), new);
                    }
                    member(members, step.key(), || Slot::empty(next_is_index))
                }
                Slot::Value(_) | Slot::Const(_) => unreachable!("opened up above"),
            };
        }
    }

    /// The object built.
    pub fn into_map(self) -> Map<String, Value> {
        into_map(self.root)
    }

    /// [`into_map`](Builder::into_map), built into `spare`: the same map, but a member whose
    /// key `spare` holds at the same place takes that place, and so `spare`'s node and key's
    /// string, instead of new ones. `leftover` names the keys (parent, key; no parent at the
    /// top) that `spare` may hold beyond the builder's and that the result keeps, as null,
    /// where the builder made the object around them member by member.
    pub fn into_map_reusing(
        self,
        spare: Map<String, Value>,
        leftover: &[(Option<&str>, &str)],
    ) -> Map<String, Value> {
        refill(self.root, spare, Level::Top, leftover)
    }
}

/// Where an object [`refill`] builds is: which of `leftover`'s keys it may keep.
#[derive(Clone, Copy)]
enum Level<'p> {
    Top,
    Under(&'p str),
    Deeper,
}

impl Level<'_> {
    /// Whether `leftover` names `key` of an object at this level.
    fn keeps(self, leftover: &[(Option<&str>, &str)], key: &str) -> bool {
        let parent = match self {
            Level::Top => None,
            Level::Under(p) => Some(p),
            Level::Deeper => return false,
        };
        leftover.contains(&(parent, key))
    }
}

/// The map of `members`, made in `spare`: a member whose key `spare` holds takes its place
/// (and its node, and its key's string), one it does not hold is inserted, and a key of
/// `spare`'s that no member has is removed, unless `leftover` names it for this level (then
/// it is kept, as null).
fn refill(
    mut members: Members<'_>,
    mut spare: Map<String, Value>,
    level: Level<'_>,
    leftover: &[(Option<&str>, &str)],
) -> Map<String, Value> {
    if spare.len() > 64 || members.len() > 64 {
        // More than the marks below hold.
        return into_map(members);
    }
    // Stable: of equal keys (an [`Object`]'s may repeat), the later is inserted after the
    // earlier below, and so kept, as `map_of` keeps it.
    members.sort_by(|a, b| a.0.cmp(&b.0));
    // Both in key order: the next member against the spare's key `i`. Each member is moved
    // out once, where it goes, so that nothing is left of the vector to drop but its block;
    // one whose key the spare does not hold waits in `missing` (rare: the shape changed).
    let mut incoming = members.into_iter();
    let mut missing: Members<'_> = Vec::new();
    let mut removed = 0u64;
    for (i, (k, v)) in spare.iter_mut().enumerate() {
        loop {
            match incoming
                .as_slice()
                .first()
                .map(|(m, _)| m.as_ref().cmp(k.as_str()))
            {
                Some(Ordering::Less) => missing.extend(incoming.next()),
                Some(Ordering::Equal) => {
                    let (_, slot) = incoming.next().expect("compared");
                    match (slot, v) {
                        (Slot::Object(members), Value::Object(old)) => {
                            let child = match level {
                                Level::Top => Level::Under(k),
                                _ => Level::Deeper,
                            };
                            let kept = std::mem::take(old);
                            // The empty map taken's place is overwritten, not dropped: it
                            // holds nothing to free, and dropping it cost 0.5k instructions
                            // a record.
                            std::mem::forget(std::mem::replace(
                                old,
                                refill(members, kept, child, leftover),
                            ));
                        }
                        (Slot::Value(new), v) => *v = new,
                        (Slot::Const(c), v) => {
                            // Unless the spare holds it already (the previous alert's
                            // product, or the same constant).
                            if *v != *c {
                                *v = c.clone();
                            }
                        }
                        (slot, v) => *v = slot.into_value(),
                    }
                    break;
                }
                _ if level.keeps(leftover, k) => {
                    *v = Value::Null;
                    break;
                }
                _ => {
                    removed |= 1 << i;
                    break;
                }
            }
        }
    }
    if removed != 0 {
        let mut i = 0;
        spare.retain(|_, _| {
            i += 1;
            removed >> (i - 1) & 1 == 0
        });
    }
    for (k, slot) in missing.into_iter().chain(incoming) {
        spare.insert(k.into_owned(), slot.into_value());
    }
    spare
}

fn empty_container(array: bool) -> Value {
    if array {
        Value::Array(Vec::new())
    } else {
        Value::Object(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_and_get_nested_paths() {
        let mut m = Map::new();
        set(&mut m, "src_endpoint.ip", json!("10.0.0.1"));
        set(&mut m, "src_endpoint.port", json!(443));
        set(&mut m, "resources.0.uid", json!("r1"));
        set(&mut m, "resources.1.uid", json!("r2"));
        set(&mut m, "time", json!(5));
        let v = Value::Object(m);
        assert_eq!(get_str(&v, "src_endpoint.ip").as_deref(), Some("10.0.0.1"));
        assert_eq!(get_str(&v, "src_endpoint.port").as_deref(), Some("443"));
        assert_eq!(get_str(&v, "resources.1.uid").as_deref(), Some("r2"));
        assert_eq!(get(&v, "resources.2"), None);
        assert!(is_present(&v, "time"));
        assert!(!is_present(&v, "nope.deeper"));
    }

    /// Built by insertion (a few entries) or sorted in one pass (more), a repeated key keeps
    /// its last value, as inserting the entries one by one would.
    #[test]
    fn map_of_keeps_the_last_of_a_repeated_key() {
        for n in [2, FEW_MEMBERS, FEW_MEMBERS + 1, 40] {
            let mut entries: Vec<(String, Value)> = (0..n)
                .map(|i| (format!("k{:02}", n - i), json!(i)))
                .collect();
            entries.insert(1, ("k01".to_string(), json!("first")));
            let mut expect = Map::new();
            for (k, v) in entries.clone() {
                expect.insert(k, v);
            }
            let got = map_of(entries.into_iter());
            assert_eq!(got, expect, "{n} entries");
            assert_eq!(got["k01"], json!(n - 1), "{n} entries");
        }
    }

    #[test]
    fn numeric_segments_keep_their_spelling_as_object_keys() {
        let mut m = Map::new();
        set(&mut m, "a.b", json!(1));
        set(&mut m, "a.007", json!(2));
        set(&mut m, "list.0.x", json!(3));
        set(&mut m, "list.2", json!(4));
        assert_eq!(
            Value::Object(m),
            json!({"a": {"b": 1, "007": 2}, "list": [{"x": 3}, null, 4]})
        );
    }

    /// A document with the cases compiled getters must agree with [`get`] on.
    fn sample() -> Value {
        json!({
            "a": {"b": 1, "007": "seven", "": {"": "empty keys"}},
            "list": [{"x": 3}, null, "", [], {}, false, 0],
            "": 5,
            "s": "",
            "n": null,
        })
    }

    const PATHS: &[&str] = &[
        "a",
        "a.b",
        "a.007",
        "a.b.c",
        "a.",
        "a..",
        "",
        ".",
        "..",
        "list",
        "list.0.x",
        "list.1",
        "list.2",
        "list.3",
        "list.4",
        "list.5",
        "list.6",
        "list.7",
        "list.x",
        "list.-1",
        "list.+0",
        "list.00.x",
        "s",
        "n",
        "n.x",
        "missing",
        "missing.deeper",
    ];

    #[test]
    fn compiled_paths_read_what_get_reads() {
        let v = sample();
        for p in PATHS {
            assert_eq!(JPath::new(p).get(&v), get(&v, p), "JPath {p:?}");
            assert_eq!(JPath::new(p).raw(), *p);
            assert_eq!(get_cpath(&v, &CPath::new(p)), get(&v, p), "CPath {p:?}");
            assert_eq!(JPath::new(p).is_present(&v), is_present(&v, p), "{p:?}");
            assert_eq!(
                JPath::new(p).text(&v).map(|t| t.into_owned()),
                get_str(&v, p),
                "text {p:?}"
            );
        }
    }

    #[test]
    fn a_view_reads_what_get_reads_in_any_order_and_past_what_it_keeps() {
        let v = sample();
        let paths: Vec<JPath> = PATHS.iter().map(|p| JPath::new(p)).collect();
        // Each path twice, forwards and backwards, through one view: the second reading of a
        // first segment comes from what the view kept, found or absent.
        let view = AlertView::new(&v);
        for p in paths.iter().chain(paths.iter().rev()) {
            assert_eq!(p.get_in(&view), p.get(&v), "{:?}", p.raw());
            assert_eq!(p.text_in(&view), p.text(&v), "{:?}", p.raw());
        }
        // More first segments than a view keeps: the ones past it are looked up each time.
        let wide: Value = (0..VIEW_TOPS + 5)
            .map(|i| (format!("k{i}"), serde_json::json!({ "v": i })))
            .collect::<Map<_, _>>()
            .into();
        let view = AlertView::new(&wide);
        for round in 0..2 {
            for i in (0..VIEW_TOPS + 6).rev() {
                let p = JPath::new(&format!("k{i}.v"));
                let want = (i < VIEW_TOPS + 5).then(|| serde_json::json!(i));
                assert_eq!(p.get_in(&view).cloned(), want, "k{i}, round {round}");
            }
        }
        // The alert itself when it is not an object.
        let list = serde_json::json!([{"a": 1}]);
        assert_eq!(
            JPath::new("0.a").get_in(&AlertView::new(&list)),
            Some(&serde_json::json!(1))
        );
        assert_eq!(AlertView::new(&list).value(), &list);
    }

    #[test]
    fn compiled_paths_index_arrays_and_treat_empty_values_as_absent() {
        let v = sample();
        let p = |s: &str| JPath::new(s);
        assert_eq!(p("list.0.x").get(&v), Some(&json!(3)));
        assert_eq!(
            p("list.00.x").get(&v),
            Some(&json!(3)),
            "as `get` parses it"
        );
        assert_eq!(
            p("a.007").get(&v),
            Some(&json!("seven")),
            "a key in an object"
        );
        assert_eq!(p("list.x").get(&v), None, "not an index");
        assert_eq!(p("list.7").get(&v), None, "past the end");
        assert_eq!(p("a.b.c").get(&v), None, "under a scalar");
        assert_eq!(p("").get(&v), Some(&json!(5)), "one empty key");
        assert_eq!(p("a..").get(&v), Some(&json!("empty keys")));
        for absent in [
            "s",
            "n",
            "list.1",
            "list.2",
            "list.3",
            "list.4",
            "missing.deeper",
        ] {
            assert!(!p(absent).is_present(&v), "{absent}");
        }
        for present in ["a", "a.b", "list", "list.5", "list.6"] {
            assert!(p(present).is_present(&v), "{present}");
        }
    }

    #[test]
    fn templates_split_at_placeholders() {
        use TemplatePart::{Field, Lit};
        assert_eq!(
            template_parts("{dom}\\{user}!"),
            Some(vec![
                Field(CPath::new("dom")),
                Lit("\\".into()),
                Field(CPath::new("user")),
                Lit("!".into()),
            ])
        );
        assert_eq!(template_parts("plain"), Some(vec![Lit("plain".into())]));
        assert_eq!(template_parts(""), Some(vec![]));
        assert_eq!(template_parts("a:{x"), None, "unclosed");
    }

    #[test]
    fn the_builder_writes_what_set_at_writes() {
        // Every order of a set of writes that overlap: objects and arrays written whole and
        // then written into, scalars replaced by containers and back, indices and appends.
        let writes: Vec<(&str, Value)> = vec![
            ("a.b", json!(1)),
            ("a", json!({"x": {"y": 1}, "b": 0})),
            ("a.x.z", json!(2)),
            ("a.b.c", json!(3)),
            ("l.1.x", json!(4)),
            ("l", json!([5, {"k": 6}])),
            ("l.1.k", json!(7)),
            ("l.3", json!(8)),
            ("l.x", json!(9)),
            ("s", json!("scalar")),
            ("s.t", json!(10)),
            ("007.x", json!(11)),
            ("a.007", json!(12)),
            ("n", json!(null)),
            ("n.0", json!(13)),
        ];
        let paths: Vec<SetPath> = writes.iter().map(|(p, _)| SetPath::new(p)).collect();
        let mut order: Vec<usize> = (0..writes.len()).collect();
        let mut rng = 7u64;
        for _ in 0..300 {
            for i in (1..order.len()).rev() {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                order.swap(i, (rng >> 33) as usize % (i + 1));
            }
            let take = 1 + (rng >> 20) as usize % order.len();
            let (mut expect, mut b) = (Map::new(), Builder::new());
            for &i in &order[..take] {
                set_at(&mut expect, &paths[i], writes[i].1.clone());
                // Every other write by reference, some of them written into afterwards.
                if i % 2 == 0 {
                    b.set(&paths[i], writes[i].1.clone());
                } else {
                    b.set_const(&paths[i], &writes[i].1);
                }
            }
            b.insert("top", json!(0));
            expect.insert("top".into(), json!(0));
            assert_eq!(b.into_map(), expect, "writes {:?}", &order[..take]);
        }
    }

    #[test]
    fn a_map_built_into_a_spare_is_the_map_built_anew() {
        // Random sets of overlapping writes, each built anew and into the map the previous
        // set made (its keys partly the same, partly not), with leftovers beside them at the
        // levels that keep them and at one that does not, and a member object whose key
        // repeats (the later one kept).
        let writes: Vec<(&str, Value)> = vec![
            ("a.b", json!(1)),
            ("a", json!({"x": {"y": 1}, "b": 0})),
            ("a.x.z", json!("two")),
            ("a.b.c", json!(3)),
            ("l.1.x", json!(4)),
            ("l", json!([5, {"k": 6}])),
            ("s", json!("scalar")),
            ("s.t", json!(10)),
            ("m.n.o", json!("deep")),
            ("m.n.p", json!(12)),
            ("m.q", json!(null)),
            ("c", json!("cap")),
        ];
        let leftover: &[(Option<&str>, &str)] = &[(None, "c"), (None, "v"), (Some("a"), "v")];
        let paths: Vec<SetPath> = writes.iter().map(|(p, _)| SetPath::new(p)).collect();
        // Writes by value or by reference (`set_const`), which the spare keeps where it
        // holds an equal value and replaces where it does not.
        let build = |order: &[usize], repeat: bool, by_ref: usize| {
            let mut b = Builder::new();
            for &i in order {
                if (i + by_ref) % 2 == 0 {
                    b.set(&paths[i], writes[i].1.clone());
                } else {
                    b.set_const(&paths[i], &writes[i].1);
                }
            }
            if repeat {
                let mut o = Object::with_capacity(3);
                o.push("k", json!(1));
                o.push("j", json!({"deep": true}));
                o.push("k", json!(2));
                b.insert_object("u", o);
            }
            b
        };
        let mut order: Vec<usize> = (0..writes.len()).collect();
        let mut rng = 11u64;
        let mut next = || {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            rng >> 33
        };
        let mut spare = Map::new();
        let mut reused = 0;
        for round in 0..400 {
            for i in (1..order.len()).rev() {
                order.swap(i, next() as usize % (i + 1));
            }
            let take = 1 + next() as usize % order.len();
            let repeat = round % 3 == 0;
            // What the spare holds beyond this set's keys: leftovers, at the top and under
            // `a`, and the same key deeper (not a leftover there: removed).
            if round % 2 == 0 {
                spare.insert("v".into(), json!("left"));
                if let Some(Value::Object(a)) = spare.get_mut("a") {
                    a.insert("v".into(), json!("left"));
                }
                if let Some(Value::Object(m)) = spare.get_mut("m") {
                    m.insert("v".into(), json!("removed"));
                }
            }
            // A value of the spare's that differs from the one written (as a sanitised one
            // may), where the write may be by reference.
            if round % 5 == 0 {
                if let Some(s @ Value::String(_)) = spare.get_mut("s") {
                    *s = json!("changed");
                }
                if let Some(Value::Object(a)) = spare.get_mut("a") {
                    a.insert("x".into(), json!({"y": "changed"}));
                }
            }
            let by_ref = round % 3;
            let expect = build(&order[..take], repeat, by_ref).into_map();
            let had_v = spare.contains_key("v");
            reused += usize::from(!spare.is_empty());
            let got = build(&order[..take], repeat, by_ref).into_map_reusing(spare, leftover);
            // A leftover is kept, as null, where the object around it is built member by
            // member (the top always; `a` unless it was written whole): the same map but for
            // those nulls.
            let without_leftovers = |m: &Map<String, Value>| {
                let mut m = m.clone();
                for k in ["v", "c"] {
                    if m.get(k).is_some_and(Value::is_null) {
                        m.remove(k);
                    }
                }
                if let Some(Value::Object(a)) = m.get_mut("a") {
                    if a.get("v").is_some_and(Value::is_null) {
                        a.remove("v");
                    }
                }
                m
            };
            assert_eq!(
                without_leftovers(&got),
                without_leftovers(&expect),
                "writes {:?}",
                &order[..take]
            );
            assert_eq!(
                got.get("v"),
                had_v.then_some(&Value::Null),
                "the top's leftover"
            );
            if repeat {
                assert_eq!(got["u"]["k"], json!(2), "the later of a repeated key");
            }
            spare = got;
        }
        assert!(reused > 300, "built into a spare {reused} times");
    }

    #[test]
    fn a_spare_too_large_to_mark_is_left_for_a_new_map() {
        let spare: Map<String, Value> = (0..100).map(|i| (format!("k{i:03}"), json!(i))).collect();
        let paths: Vec<SetPath> = (0..70).map(|i| SetPath::new(&format!("k{i:03}"))).collect();
        let mut b = Builder::new();
        let mut expect = Map::new();
        for (i, p) in paths.iter().enumerate() {
            b.set(p, json!(-(i as i64)));
            expect.insert(format!("k{i:03}"), json!(-(i as i64)));
        }
        assert_eq!(b.into_map_reusing(spare, &[]), expect);
    }

    #[test]
    fn set_replaces_scalars_on_the_way() {
        let mut m = Map::new();
        set(&mut m, "a", json!(1));
        set(&mut m, "a.b", json!(2));
        assert_eq!(Value::Object(m), json!({"a": {"b": 2}}));
    }
}

/// A source path compiled for lookups in decoded records, where a key may itself contain
/// dots (`id.orig_h` in Zeek TSV, `@timestamp`): at each level the longest run of segments
/// that names a key is tried after the single segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CPath {
    raw: String,
    /// `joins[i][k]` is segments `i..=i+k` joined with dots.
    joins: Vec<Vec<String>>,
    /// [`key_hash`] of each of the first segment's candidate keys (`joins[0]`), for looking
    /// them up in an indexed record (`normalize::value::Record`).
    top_hashes: Vec<u64>,
}

/// The hash an indexed record files its top-level keys under (FxHash: a few instructions for
/// a short key).
pub fn key_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(key)
}

impl CPath {
    pub fn new(raw: &str) -> CPath {
        let segs: Vec<&str> = if raw.is_empty() || raw == "." {
            Vec::new()
        } else {
            raw.split('.').collect()
        };
        let joins: Vec<Vec<String>> = (0..segs.len())
            .map(|i| (i..segs.len()).map(|j| segs[i..=j].join(".")).collect())
            .collect();
        let top_hashes = joins
            .first()
            .map_or_else(Vec::new, |keys| keys.iter().map(|k| key_hash(k)).collect());
        CPath {
            raw: raw.to_string(),
            joins,
            top_hashes,
        }
    }

    /// The path as written.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Number of segments (0 for `.`, the value itself).
    pub fn len(&self) -> usize {
        self.joins.len()
    }

    pub fn is_empty(&self) -> bool {
        self.joins.is_empty()
    }

    /// Segment `i` on its own.
    pub fn segment(&self, i: usize) -> &str {
        &self.joins[i][0]
    }

    /// Candidate keys at segment `i`: the single segment first, then longer dotted runs,
    /// each with the index of the next segment.
    pub fn keys_at(&self, i: usize) -> impl Iterator<Item = (&str, usize)> {
        self.joins[i]
            .iter()
            .enumerate()
            .map(move |(k, s)| (s.as_str(), i + k + 1))
    }

    /// The candidate keys of [`keys_at(0)`](CPath::keys_at) and their [`key_hash`]es, in
    /// the same order (key `k` is followed by segment `k + 1`). Empty for `.`.
    pub fn top_keys(&self) -> (&[String], &[u64]) {
        (
            self.joins.first().map_or(&[], Vec::as_slice),
            &self.top_hashes,
        )
    }
}

/// One piece of a `{path}` template: a mapping rule's `template`, a tag rule's tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    Lit(String),
    Field(CPath),
}

/// A template split at its `{path}` placeholders (empty literal runs left out); `None` when a
/// `{` has no `}` after it.
pub fn template_parts(t: &str) -> Option<Vec<TemplatePart>> {
    let mut parts = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(TemplatePart::Lit(rest[..open].to_string()));
        }
        let close = rest[open..].find('}')? + open;
        parts.push(TemplatePart::Field(CPath::new(&rest[open + 1..close])));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Lit(rest.to_string()));
    }
    Some(parts)
}
