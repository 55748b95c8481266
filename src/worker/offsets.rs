//! Which offsets may be committed: pure bookkeeping, no Kafka.
//!
//! For each owned partition a [`PartitionTracker`] records every consumed message that still
//! has outputs (bundles, dead letters) waiting for the broker's acknowledgement. The offset
//! that may be committed is the lowest offset still waiting, or one past the highest offset
//! seen when nothing waits: Kafka's committed offset is "the next message to read", so
//! committing it says every message before it is done. A message whose output failed is
//! never acknowledged, so the committable offset can never pass it.

use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Bookkeeping for one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PartitionTracker {
    /// offset → outputs still waiting for acknowledgement.
    pending: BTreeMap<i64, u32>,
    /// Offsets whose output failed for good.
    failed: BTreeMap<i64, String>,
    /// One past the highest offset seen.
    next: Option<i64>,
    /// The last offset committed (or loaded at assignment).
    committed: Option<i64>,
}

impl PartitionTracker {
    /// A message was consumed and produced `outputs` outputs (0 for a folded duplicate).
    pub fn begin(&mut self, offset: i64, outputs: u32) {
        if outputs > 0 {
            *self.pending.entry(offset).or_default() += outputs;
        }
        self.next = Some(self.next.map_or(offset + 1, |n| n.max(offset + 1)));
    }

    /// One output of the message at `offset` was acknowledged.
    pub fn ack(&mut self, offset: i64) {
        if let Some(n) = self.pending.get_mut(&offset) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.pending.remove(&offset);
            }
        }
    }

    /// An output of the message at `offset` failed for good: it stays pending forever.
    pub fn fail(&mut self, offset: i64, reason: String) {
        self.failed.insert(offset, reason);
    }

    /// Offsets with outputs still waiting.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    pub fn first_failure(&self) -> Option<(i64, &str)> {
        self.failed.iter().next().map(|(o, r)| (*o, r.as_str()))
    }

    /// The offset that may be committed now: the lowest waiting offset, else one past the
    /// highest seen. `None` before any message.
    pub fn committable(&self) -> Option<i64> {
        match self.pending.keys().next() {
            Some(&lowest) => Some(lowest),
            None => self.next,
        }
    }

    /// The offset to commit now if it moves the committed offset forward.
    pub fn to_commit(&self) -> Option<i64> {
        let c = self.committable()?;
        match self.committed {
            Some(done) if done >= c => None,
            _ => Some(c),
        }
    }

    /// The broker accepted a commit of `offset`.
    pub fn committed(&mut self, offset: i64) {
        self.committed = Some(self.committed.map_or(offset, |c| c.max(offset)));
    }
}

/// Trackers for every partition this member owns, by topic and partition.
///
/// Two levels, so that the lookups of every message (`owns`, `get`, and `ack` for every
/// output) take the topic as the `&str` they have: keyed by `(String, i32)` each built an
/// owned key first, three allocations a record under the lock the delivery callback shares.
/// Fx hashing: topic names come from the configuration and the broker's assignment.
#[derive(Debug, Default)]
pub struct Offsets {
    parts: FxHashMap<String, BTreeMap<i32, PartitionTracker>>,
}

impl Offsets {
    /// Partitions were assigned: start tracking them (existing state is kept).
    pub fn assign(&mut self, topic: &str, partition: i32) {
        self.topic_mut(topic).entry(partition).or_default();
    }

    /// Partitions were revoked: stop tracking; returns the final state for a last commit.
    pub fn revoke(&mut self, topic: &str, partition: i32) -> Option<PartitionTracker> {
        let partitions = self.parts.get_mut(topic)?;
        let tracker = partitions.remove(&partition);
        if partitions.is_empty() {
            self.parts.remove(topic);
        }
        tracker
    }

    pub fn owns(&self, topic: &str, partition: i32) -> bool {
        self.parts
            .get(topic)
            .is_some_and(|partitions| partitions.contains_key(&partition))
    }

    /// Tracker for a partition. The worker only asks for partitions it owns (see [`owns`]):
    /// tracking a partition it does not own would let it commit offsets for another member.
    ///
    /// [`owns`]: Offsets::owns
    pub fn get(&mut self, topic: &str, partition: i32) -> &mut PartitionTracker {
        self.topic_mut(topic).entry(partition).or_default()
    }

    pub fn ack(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(t) = self.tracker_mut(topic, partition) {
            t.ack(offset);
        }
    }

    pub fn fail(&mut self, topic: &str, partition: i32, offset: i64, reason: String) {
        if let Some(t) = self.tracker_mut(topic, partition) {
            t.fail(offset, reason);
        }
    }

    /// Every (topic, partition, offset) that may be committed now and moves forward, sorted.
    pub fn commit_plan(&self) -> Vec<(String, i32, i64)> {
        let mut plan: Vec<_> = self
            .trackers()
            .filter_map(|(t, p, tr)| tr.to_commit().map(|o| (t.to_string(), p, o)))
            .collect();
        plan.sort();
        plan
    }

    /// Record a successful commit.
    pub fn committed(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(t) = self.tracker_mut(topic, partition) {
            t.committed(offset);
        }
    }

    /// Messages with outputs still waiting, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.trackers().map(|(_, _, t)| t.in_flight()).sum()
    }

    /// The first permanent failure, if any.
    pub fn failure(&self) -> Option<(String, i32, i64, String)> {
        self.trackers()
            .filter_map(|(t, p, tr)| {
                tr.first_failure()
                    .map(|(o, r)| (t.to_string(), p, o, r.to_string()))
            })
            .min()
    }

    pub fn partitions(&self) -> Vec<(String, i32)> {
        let mut v: Vec<_> = self
            .trackers()
            .map(|(t, p, _)| (t.to_string(), p))
            .collect();
        v.sort();
        v
    }

    /// Every (topic, partition, tracker).
    fn trackers(&self) -> impl Iterator<Item = (&str, i32, &PartitionTracker)> {
        self.parts.iter().flat_map(|(topic, partitions)| {
            partitions
                .iter()
                .map(move |(p, tracker)| (topic.as_str(), *p, tracker))
        })
    }

    fn tracker_mut(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionTracker> {
        self.parts.get_mut(topic)?.get_mut(&partition)
    }

    /// The partitions of `topic`, made empty if it had none; the name is copied only then.
    fn topic_mut(&mut self, topic: &str) -> &mut BTreeMap<i32, PartitionTracker> {
        crate::keyed::by_str(&mut self.parts, topic, BTreeMap::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_behind_acknowledged_output() {
        let mut t = PartitionTracker::default();
        assert_eq!(t.committable(), None);
        t.begin(10, 1);
        t.begin(11, 0); // a folded duplicate: nothing to wait for
        t.begin(12, 2); // an envelope: two bundles
        assert_eq!(t.committable(), Some(10));
        t.ack(12);
        assert_eq!(
            t.committable(),
            Some(10),
            "12 still has one output waiting, and 10 too"
        );
        t.ack(10);
        assert_eq!(t.committable(), Some(12));
        t.ack(12);
        assert_eq!(
            t.committable(),
            Some(13),
            "all done: commit the next offset to read"
        );
    }

    #[test]
    fn a_failed_output_pins_the_offset() {
        let mut t = PartitionTracker::default();
        t.begin(5, 1);
        t.begin(6, 1);
        t.fail(5, "message timed out".into());
        t.ack(6);
        assert_eq!(t.committable(), Some(5), "never past the failed message");
        assert_eq!(t.first_failure(), Some((5, "message timed out")));
    }

    #[test]
    fn commit_plan_moves_forward_only_for_owned_partitions() {
        let mut o = Offsets::default();
        o.assign("raw", 0);
        o.assign("raw", 1);
        o.get("raw", 0).begin(100, 1);
        o.get("raw", 1).begin(7, 0);
        assert_eq!(
            o.commit_plan(),
            vec![("raw".into(), 0, 100), ("raw".into(), 1, 8)]
        );
        o.committed("raw", 0, 100);
        o.committed("raw", 1, 8);
        assert_eq!(o.commit_plan(), vec![], "nothing new to commit");
        o.ack("raw", 0, 100);
        assert_eq!(o.commit_plan(), vec![("raw".into(), 0, 101)]);
        let last = o.revoke("raw", 0).unwrap();
        assert_eq!(
            last.to_commit(),
            Some(101),
            "the revoke handler commits this"
        );
        assert!(!o.owns("raw", 0));
        assert_eq!(
            o.commit_plan(),
            vec![],
            "revoked partitions are never committed again"
        );
        o.ack("raw", 0, 100); // a late acknowledgement for a revoked partition is ignored
        assert_eq!(o.in_flight(), 0);
    }

    #[test]
    fn topics_and_partitions_are_kept_apart() {
        let mut o = Offsets::default();
        o.assign("raw.edr", 0);
        o.assign("raw.ids", 0);
        o.assign("raw.ids", 3);
        assert!(o.owns("raw.ids", 3));
        assert!(!o.owns("raw.edr", 3), "partition 3 is the other topic's");
        assert!(!o.owns("raw", 0));
        o.get("raw.edr", 0).begin(40, 1);
        o.get("raw.ids", 0).begin(9, 2);
        o.ack("raw.ids", 0, 40); // another topic's offset: nothing to acknowledge here
        assert_eq!(o.in_flight(), 2);
        o.fail("raw.ids", 0, 9, "rejected".into());
        assert_eq!(
            o.failure(),
            Some(("raw.ids".into(), 0, 9, "rejected".into()))
        );
        assert_eq!(
            o.partitions(),
            vec![
                ("raw.edr".into(), 0),
                ("raw.ids".into(), 0),
                ("raw.ids".into(), 3)
            ]
        );
        assert!(o.revoke("raw.ids", 3).is_some());
        assert!(o.revoke("raw.ids", 3).is_none(), "revoked once");
        assert!(o.revoke("raw.ids", 0).is_some());
        assert_eq!(o.partitions(), vec![("raw.edr".into(), 0)]);
        assert_eq!(
            o.commit_plan(),
            vec![("raw.edr".into(), 0, 40)],
            "up to 40, which still waits"
        );
        o.ack("raw.edr", 0, 40);
        assert_eq!(o.commit_plan(), vec![("raw.edr".into(), 0, 41)]);
    }

    #[test]
    fn out_of_order_acks() {
        let mut t = PartitionTracker::default();
        for off in 0..5 {
            t.begin(off, 1);
        }
        for off in [4, 2, 3, 1] {
            t.ack(off);
            assert_eq!(t.committable(), Some(0));
        }
        t.ack(0);
        assert_eq!(t.committable(), Some(5));
    }
}
