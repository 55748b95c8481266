//! Find-or-make lookups by a borrowed name: the entry is looked up with the `&str` the caller
//! has, and the name is copied only when the entry is new. For the state the worker keeps per
//! topic, source or enricher on its hot paths (series handles, offset trackers), where building
//! an owned key for every lookup was an allocation a message.

use std::collections::HashMap;
use std::hash::BuildHasher;

/// The entry named `name` in a short list searched in order, made by `make` (which names it)
/// when the list has none. For the series handles kept by topic or enricher name: a worker has
/// a handful of each, and a scan of their names beats hashing one.
pub fn by_name<'l, K: AsRef<str>, V>(
    list: &'l mut Vec<(K, V)>,
    name: &str,
    make: impl FnOnce() -> (K, V),
) -> &'l mut (K, V) {
    let at = match list.iter().position(|(k, _)| k.as_ref() == name) {
        Some(at) => at,
        None => {
            list.push(make());
            list.len() - 1
        }
    };
    &mut list[at]
}

/// The value under `key` in `map`, made by `make` (and the key copied) when there is none.
/// `HashMap::entry` takes an owned key, which would copy the name for every lookup; this hashes
/// it twice when the entry is new, once otherwise.
pub fn by_str<'m, V, S: BuildHasher>(
    map: &'m mut HashMap<String, V, S>,
    key: &str,
    make: impl FnOnce() -> V,
) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), make());
    }
    map.get_mut(key).expect("inserted above")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_name_makes_each_entry_once() {
        let mut list: Vec<(std::sync::Arc<str>, u32)> = Vec::new();
        let mut made = 0;
        for name in [
            "raw.edr", "raw.ids", "raw.edr", "raw.edr", "raw.ids", "raw.fw",
        ] {
            let entry = by_name(&mut list, name, || {
                made += 1;
                (name.into(), 0)
            });
            entry.1 += 1;
        }
        assert_eq!(made, 3, "one entry a name");
        let got: Vec<(&str, u32)> = list.iter().map(|(k, n)| (&**k, *n)).collect();
        assert_eq!(got, vec![("raw.edr", 3), ("raw.ids", 2), ("raw.fw", 1)]);
    }

    #[test]
    fn by_str_makes_each_entry_once() {
        let mut map: rustc_hash::FxHashMap<String, u32> = Default::default();
        let mut made = 0;
        for name in ["raw.edr", "raw.ids", "raw.edr", "raw.edr"] {
            *by_str(&mut map, name, || {
                made += 1;
                0
            }) += 1;
        }
        assert_eq!(made, 2, "one entry a name");
        assert_eq!((map["raw.edr"], map["raw.ids"]), (3, 1));
    }
}
