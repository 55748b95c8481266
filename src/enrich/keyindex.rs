//! A compact string → row index for the reference tables (assets, users).
//!
//! A `HashMap<String, usize>` spends a 32-byte slot and a separate heap allocation on every
//! key; a directory of 100k users indexed six ways paid about 800 bytes a row for it. Here the
//! keys of one index live end to end in a single string block, and the hash table holds
//! 12-byte slots (block offset, length, row). The hash is computed on lookup and on insert
//! only, never stored; comparing a candidate reads its bytes from the block.
//!
//! Rows are `u32`: a table of more than four billion rows is not a reference table.

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use std::hash::BuildHasher;

/// The row a key points at, or [`KeyIndex::AMBIGUOUS`].
pub type RowId = u32;

#[derive(Default)]
pub struct KeyIndex {
    keys: String,
    table: HashTable<Slot>,
}

#[derive(Clone, Copy)]
struct Slot {
    start: u32,
    len: u32,
    row: RowId,
}

impl KeyIndex {
    /// A row id that means "several rows claim this key, so it names none of them".
    pub const AMBIGUOUS: RowId = RowId::MAX;

    fn hash(key: &str) -> u64 {
        FxBuildHasher.hash_one(key)
    }

    fn key_of<'a>(keys: &'a str, s: &Slot) -> &'a str {
        &keys[s.start as usize..(s.start + s.len) as usize]
    }

    /// The row stored under `key` (possibly [`KeyIndex::AMBIGUOUS`]).
    pub fn get_raw(&self, key: &str) -> Option<RowId> {
        let keys = &self.keys;
        self.table
            .find(Self::hash(key), |s| Self::key_of(keys, s) == key)
            .map(|s| s.row)
    }

    /// The row `key` names; `None` when absent or ambiguous.
    pub fn get(&self, key: &str) -> Option<usize> {
        self.get_raw(key)
            .filter(|&r| r != Self::AMBIGUOUS)
            .map(|r| r as usize)
    }

    /// Whether `key` is present at all (ambiguous keys included).
    pub fn contains(&self, key: &str) -> bool {
        self.get_raw(key).is_some()
    }

    /// Store `row` under `key` unless the key is taken; `Err(owner)` gives the row that holds
    /// it. Panics when the block would pass 4 GiB (see the module doc).
    pub fn insert_first(&mut self, key: &str, row: usize) -> Result<(), RowId> {
        self.upsert(key, row, |_, _| {})
    }

    /// Store `row` under `key` if absent; otherwise call `on_taken` with the stored row (to
    /// change it, e.g. to [`KeyIndex::AMBIGUOUS`]) and return `Err` with the row it held.
    pub fn upsert(
        &mut self,
        key: &str,
        row: usize,
        on_taken: impl FnOnce(&mut RowId, RowId),
    ) -> Result<(), RowId> {
        let row = RowId::try_from(row)
            .ok()
            .filter(|&r| r != Self::AMBIGUOUS)
            .expect("reference table of more than 4 billion rows");
        let hash = Self::hash(key);
        let keys = &self.keys;
        if let Some(slot) = self.table.find_mut(hash, |s| Self::key_of(keys, s) == key) {
            let held = slot.row;
            on_taken(&mut slot.row, row);
            return Err(held);
        }
        let start = u32::try_from(self.keys.len()).expect("key block over 4 GiB");
        let len = u32::try_from(key.len()).expect("key over 4 GiB");
        start.checked_add(len).expect("key block over 4 GiB");
        self.keys.push_str(key);
        let keys = &self.keys;
        self.table
            .insert_unique(hash, Slot { start, len, row }, |s| {
                Self::hash(Self::key_of(keys, s))
            });
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Release the growth slack of the key block and the table once loading is done.
    pub fn shrink_to_fit(&mut self) {
        self.keys.shrink_to_fit();
        let keys = &self.keys;
        self.table
            .shrink_to_fit(|s| Self::hash(Self::key_of(keys, s)));
    }

    /// Heap bytes held (for the sizing figures and their test).
    pub fn heap_bytes(&self) -> usize {
        self.keys.capacity() + self.table.capacity() * (std::mem::size_of::<Slot>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_claim_wins_and_reports_the_owner() {
        let mut ix = KeyIndex::default();
        assert_eq!(ix.insert_first("alice", 0), Ok(()));
        assert_eq!(ix.insert_first("bob", 1), Ok(()));
        assert_eq!(ix.insert_first("alice", 2), Err(0));
        assert_eq!(ix.get("alice"), Some(0));
        assert_eq!(ix.get("bob"), Some(1));
        assert_eq!(ix.get("carol"), None);
        assert_eq!(ix.get("alic"), None, "a prefix of a key is not the key");
        assert_eq!(ix.len(), 2);
    }

    #[test]
    fn ambiguous_keys_are_present_but_name_no_row() {
        let mut ix = KeyIndex::default();
        let mark = |slot: &mut RowId, new: RowId| {
            if *slot != new {
                *slot = KeyIndex::AMBIGUOUS
            }
        };
        ix.upsert("jdoe", 3, mark).unwrap();
        assert_eq!(ix.upsert("jdoe", 3, mark), Err(3), "same row again");
        assert_eq!(ix.get("jdoe"), Some(3));
        assert_eq!(ix.upsert("jdoe", 7, mark), Err(3));
        assert_eq!(ix.get("jdoe"), None);
        assert!(ix.contains("jdoe"));
        assert_eq!(ix.get_raw("jdoe"), Some(KeyIndex::AMBIGUOUS));
    }

    #[test]
    fn many_keys_survive_growth_and_shrinking() {
        let mut ix = KeyIndex::default();
        for i in 0..50_000 {
            ix.insert_first(&format!("user{i}@corp.example"), i)
                .unwrap();
        }
        ix.shrink_to_fit();
        for i in (0..50_000).step_by(997) {
            assert_eq!(ix.get(&format!("user{i}@corp.example")), Some(i));
        }
        assert_eq!(ix.get("user50000@corp.example"), None);
        assert_eq!(ix.get(""), None);
        // 12-byte slots plus control bytes at ≤ 2x slack, plus ~21 key bytes each.
        assert!(
            ix.heap_bytes() < 50_000 * (21 + 2 * 13),
            "{}",
            ix.heap_bytes()
        );
    }
}
