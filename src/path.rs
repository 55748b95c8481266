//! Dotted attribute paths over JSON values (`src_endpoint.ip`, `actor.user.name`,
//! `resources.0.uid`), used by every stage that reads the normalized event.

use serde_json::{Map, Value};

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
    match get(value, path)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether a path holds a present, non-empty value.
pub fn is_present(value: &Value, path: &str) -> bool {
    match get(value, path) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// Write `new` at a dotted path inside `root`, creating objects (and arrays for numeric
/// segments) on the way. An existing non-container on the way is replaced.
pub fn set(root: &mut Map<String, Value>, path: &str, new: Value) {
    let mut segs = path.split('.').peekable();
    let first = segs.next().unwrap_or_default();
    if segs.peek().is_none() {
        root.insert(first.to_string(), new);
        return;
    }
    let mut next_is_index = segs.peek().is_some_and(|s| s.parse::<usize>().is_ok());
    let mut cur = root
        .entry(first.to_string())
        .or_insert_with(|| empty_container(next_is_index));
    while let Some(seg) = segs.next() {
        let last = segs.peek().is_none();
        next_is_index = segs.peek().is_some_and(|s| s.parse::<usize>().is_ok());
        if !matches!(cur, Value::Object(_) | Value::Array(_)) {
            *cur = empty_container(seg.parse::<usize>().is_ok());
        }
        cur = match cur {
            Value::Array(items) => {
                let idx = seg.parse::<usize>().unwrap_or(items.len());
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
                if last {
                    map.insert(seg.to_string(), new);
                    return;
                }
                map.entry(seg.to_string())
                    .or_insert_with(|| empty_container(next_is_index))
            }
            _ => unreachable!("replaced by a container above"),
        };
    }
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

    #[test]
    fn set_replaces_scalars_on_the_way() {
        let mut m = Map::new();
        set(&mut m, "a", json!(1));
        set(&mut m, "a.b", json!(2));
        assert_eq!(Value::Object(m), json!({"a": {"b": 2}}));
    }
}
