//! The rules that turn stored event rows into a stream's history, without any I/O, so that they are
//! tested without a server.
//!
//! Rows are keyed by `(seq, writer_epoch)`: normally one row per sequence number, but a stale owner
//! of a stream (an older shard lease whose append raced the new owner's) can leave a second row at
//! the same `seq` with another epoch. The history of a stream is the longest prefix `1..=head` in
//! which every sequence number has a row and in which the *winning* epoch — the highest epoch among
//! a sequence number's rows — never decreases. Leases only ever hand a stream to a higher epoch, so
//! a row whose best epoch is lower than its predecessor's was written by an owner that had already
//! been replaced: it and everything after it are ignored (and reported) until the current owner
//! writes that sequence number itself. Choosing the highest epoch instead of failing keeps the
//! stream readable (an actor that cannot recover would hold its conversation hostage until an
//! operator repaired the rows); the price, a stale owner's acknowledged append that is discarded,
//! is the documented cost of fencing without Paxos.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use crest_actors::ports::journal::StoredEvent;

/// Events per partition: `bucket = seq / BUCKET_SIZE`.
pub const BUCKET_SIZE: u64 = 10_000;

/// Most events in one append, so that an append is one small single-partition batch (ScyllaDB's
/// guidance: at most about 100 rows per batch) and a stale writer leaves at most this many rows
/// behind the stream's head.
pub const MAX_APPEND_EVENTS: usize = 100;

/// The partition of sequence number `seq` when it is the last event of its append.
#[must_use]
pub fn bucket_of(seq: u64) -> u64 {
    seq / BUCKET_SIZE
}

/// The bucket an append ending at `last_seq` writes all its rows to: the bucket of its last event,
/// so that the append is one single-partition batch even when it crosses a bucket boundary.
#[must_use]
pub fn append_bucket(last_seq: u64) -> u64 {
    bucket_of(last_seq)
}

/// Every bucket that may hold rows of sequence numbers `first..=last`: a row of `seq` is in the
/// bucket of the last event of its append, which is at most `MAX_APPEND_EVENTS - 1` further.
#[must_use]
pub fn buckets_holding(first: u64, last: u64) -> RangeInclusive<u64> {
    let reach = last.saturating_add(MAX_APPEND_EVENTS as u64 - 1);
    bucket_of(first)..=bucket_of(reach)
}

/// One stored row of a sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The writer's epoch.
    pub epoch: i64,
    /// The encoded envelope (empty when only keys were read).
    pub payload: Vec<u8>,
}

/// Rows read from a range of sequence numbers, by sequence number.
pub type Rows = BTreeMap<u64, Vec<Version>>;

/// The version of a sequence number that counts: the highest epoch.
#[must_use]
pub fn winner(versions: &[Version]) -> Option<&Version> {
    versions.iter().max_by_key(|version| version.epoch)
}

/// Why a walk through the rows stopped before its last sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// No row at this sequence number: the stream ends before it.
    End {
        /// The missing sequence number.
        seq: u64,
    },
    /// Rows at this sequence number were written by an epoch older than the one before it: a
    /// replaced owner's late append, ignored.
    Stale {
        /// The sequence number.
        seq: u64,
        /// Its best epoch.
        epoch: i64,
        /// The epoch of the sequence number before it.
        floor: i64,
    },
}

/// A sequence number with rows of more than one epoch (two owners wrote it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The sequence number.
    pub seq: u64,
    /// Every epoch found there, highest (the winner) first.
    pub epochs: Vec<i64>,
}

/// The valid events found by [`walk`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Walk {
    /// Accepted sequence numbers with their winning version, in order.
    pub events: Vec<(u64, Version)>,
    /// The epoch of the last accepted event (or the floor it started from).
    pub floor: i64,
    /// Why it stopped early (`None`: it reached the last sequence number asked for).
    pub stop: Option<Stop>,
    /// Sequence numbers among the accepted ones that had rows of several epochs.
    pub conflicts: Vec<Conflict>,
}

/// Walks the rows from `first` to `last`, accepting each sequence number whose winning epoch is at
/// least the one before it (`floor` for `first`; `i64::MIN` at the start of a stream), at most
/// `limit` of them.
#[must_use]
pub fn walk(rows: &Rows, first: u64, last: u64, floor: i64, limit: usize) -> Walk {
    let mut walk = Walk {
        floor,
        ..Walk::default()
    };
    if first > last {
        return walk;
    }
    for seq in first..=last {
        if walk.events.len() >= limit {
            return walk;
        }
        let Some(best) = rows.get(&seq).and_then(|versions| winner(versions)) else {
            walk.stop = Some(Stop::End { seq });
            return walk;
        };
        if best.epoch < walk.floor {
            walk.stop = Some(Stop::Stale {
                seq,
                epoch: best.epoch,
                floor: walk.floor,
            });
            return walk;
        }
        if let Some(versions) = rows.get(&seq).filter(|versions| versions.len() > 1) {
            let mut epochs: Vec<i64> = versions.iter().map(|version| version.epoch).collect();
            epochs.sort_unstable_by(|a, b| b.cmp(a));
            walk.conflicts.push(Conflict { seq, epochs });
        }
        walk.floor = best.epoch;
        walk.events.push((seq, best.clone()));
    }
    walk
}

/// The epoch a walk starting right after `seq` must not go below: the winning epoch at `seq`
/// (`i64::MIN` when `seq` is 0, the start of every stream). `None` if `seq` has no row, that is
/// `seq` is beyond the stream's end.
#[must_use]
pub fn floor_at(rows: &Rows, seq: u64) -> Option<i64> {
    if seq == 0 {
        return Some(i64::MIN);
    }
    rows.get(&seq)
        .and_then(|versions| winner(versions))
        .map(|version| version.epoch)
}

/// What an append must do, decided from the rows of `expected..=expected + events.len()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendCheck {
    /// The stream ends at `expected`: write the events.
    Write,
    /// The same events are already the stream's history there (a retried append).
    AlreadyStored,
    /// The stream does not end at `expected` (it is shorter, or other events follow).
    Conflict,
    /// A writer with a higher epoch than ours has written at or after `expected`: our shard lease
    /// is stale, so we must not write.
    Fenced {
        /// The highest epoch found.
        newer_epoch: i64,
    },
}

/// Decides an append of `events` (numbered `expected + 1 ..`) by a writer of `epoch`, from the rows
/// of sequence numbers `expected..=expected + events.len()` read at QUORUM.
#[must_use]
pub fn check_append(rows: &Rows, expected: u64, events: &[StoredEvent], epoch: i64) -> AppendCheck {
    let newest = rows
        .values()
        .flatten()
        .map(|version| version.epoch)
        .max()
        .unwrap_or(i64::MIN);
    let Some(floor) = floor_at(rows, expected) else {
        // Nothing at `expected`: the stream is shorter than the writer believes.
        return AppendCheck::Conflict;
    };
    let last = expected.saturating_add(events.len() as u64);
    let walk = walk(rows, expected.saturating_add(1), last, floor, events.len());
    if walk.events.is_empty() {
        // Nothing valid follows `expected`: it is the stream's head (rows of a stale epoch after it
        // are outvoted by ours, since ours is at least the floor).
        if floor > epoch {
            return AppendCheck::Fenced { newer_epoch: floor };
        }
        return AppendCheck::Write;
    }
    let identical = walk.events.len() == events.len()
        && walk
            .events
            .iter()
            .zip(events)
            .all(|((_, version), event)| version.payload == event.bytes);
    if identical {
        return AppendCheck::AlreadyStored;
    }
    if newest > epoch {
        return AppendCheck::Fenced {
            newer_epoch: newest,
        };
    }
    AppendCheck::Conflict
}

/// The last sequence number of the history found in `rows`, which hold `from..=to` where `from` is
/// known to be in the history (or 0). `None` if `from` has no row: the caller must look further
/// back.
#[must_use]
pub fn head_in(rows: &Rows, from: u64, to: u64) -> Option<u64> {
    let floor = floor_at(rows, from)?;
    let walk = walk(rows, from.saturating_add(1), to, floor, usize::MAX);
    Some(walk.events.last().map_or(from, |(seq, _)| *seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(epoch: i64, payload: &str) -> Version {
        Version {
            epoch,
            payload: payload.as_bytes().to_vec(),
        }
    }

    fn rows(entries: &[(u64, i64, &str)]) -> Rows {
        let mut rows = Rows::new();
        for (seq, epoch, payload) in entries {
            rows.entry(*seq).or_default().push(version(*epoch, payload));
        }
        rows
    }

    fn events(entries: &[(u64, &str)]) -> Vec<StoredEvent> {
        entries
            .iter()
            .map(|(seq, payload)| StoredEvent {
                seq: *seq,
                bytes: payload.as_bytes().to_vec(),
            })
            .collect()
    }

    fn seqs(walk: &Walk) -> Vec<u64> {
        walk.events.iter().map(|(seq, _)| *seq).collect()
    }

    #[test]
    fn buckets_follow_the_last_event_of_an_append() {
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(9_999), 0);
        assert_eq!(bucket_of(10_000), 1);
        // An append of 9 998..=10 001 is stored whole in bucket 1.
        assert_eq!(append_bucket(10_001), 1);
        // Its first event is therefore found by looking at buckets 0 and 1.
        assert_eq!(buckets_holding(9_998, 9_998), 0..=1);
        assert_eq!(buckets_holding(1, 1_000), 0..=0);
        assert_eq!(buckets_holding(19_950, 20_050), 1..=2);
        assert_eq!(
            buckets_holding(u64::MAX - 1, u64::MAX),
            bucket_of(u64::MAX - 1)..=bucket_of(u64::MAX)
        );
    }

    #[test]
    fn a_clean_stream_is_read_in_order_up_to_its_end() {
        let rows = rows(&[(1, 0, "a"), (2, 0, "b"), (3, 0, "c")]);
        let walk = walk(&rows, 1, 10, i64::MIN, 100);
        assert_eq!(seqs(&walk), vec![1, 2, 3]);
        assert_eq!(walk.stop, Some(Stop::End { seq: 4 }));
        assert!(walk.conflicts.is_empty());
        assert_eq!(seqs(&super::walk(&rows, 2, 10, 0, 1)), vec![2], "limit");
    }

    #[test]
    fn the_highest_epoch_wins_a_sequence_number_and_the_conflict_is_reported() {
        // A replaced owner (epoch 1) and the new one (epoch 2) both wrote seq 2.
        let rows = rows(&[(1, 1, "a"), (2, 1, "stale"), (2, 2, "new"), (3, 2, "c")]);
        let walk = walk(&rows, 1, 3, i64::MIN, 100);
        assert_eq!(seqs(&walk), vec![1, 2, 3]);
        assert_eq!(walk.events[1].1.payload, b"new");
        assert_eq!(
            walk.conflicts,
            vec![Conflict {
                seq: 2,
                epochs: vec![2, 1]
            }]
        );
        assert_eq!(walk.stop, None);
    }

    #[test]
    fn a_stale_owner_tail_after_the_new_owner_is_ignored() {
        // Epoch 2 wrote seq 2 only; the stale epoch 1 raced with a longer append 2..=4.
        let rows = rows(&[
            (1, 1, "a"),
            (2, 1, "x"),
            (2, 2, "b"),
            (3, 1, "y"),
            (4, 1, "z"),
        ]);
        let walk = walk(&rows, 1, 4, i64::MIN, 100);
        assert_eq!(seqs(&walk), vec![1, 2]);
        assert_eq!(
            walk.stop,
            Some(Stop::Stale {
                seq: 3,
                epoch: 1,
                floor: 2
            })
        );
        assert_eq!(head_in(&rows, 0, 4), Some(2));
        assert_eq!(head_in(&rows, 1, 4), Some(2));
        // A read that starts after seq 2 takes its floor from seq 2 and sees nothing either.
        let floor = floor_at(&rows, 2).expect("seq 2 is stored");
        assert!(super::walk(&rows, 3, 4, floor, 100).events.is_empty());
    }

    #[test]
    fn the_head_is_unknown_when_the_starting_point_is_missing() {
        let rows = rows(&[(5, 0, "e")]);
        assert_eq!(head_in(&rows, 4, 9), None);
        assert_eq!(head_in(&rows, 5, 9), Some(5));
        assert_eq!(head_in(&Rows::new(), 0, 9), Some(0));
    }

    #[test]
    fn an_append_at_the_head_writes() {
        let stored = rows(&[(1, 0, "a"), (2, 0, "b")]);
        assert_eq!(
            check_append(&stored, 2, &events(&[(3, "c")]), 0),
            AppendCheck::Write
        );
        assert_eq!(
            check_append(&Rows::new(), 0, &events(&[(1, "a")]), 0),
            AppendCheck::Write
        );
    }

    #[test]
    fn a_retried_append_is_recognised_byte_for_byte() {
        let stored = rows(&[(1, 0, "a"), (2, 0, "b"), (3, 0, "c")]);
        assert_eq!(
            check_append(&stored, 0, &events(&[(1, "a"), (2, "b")]), 0),
            AppendCheck::AlreadyStored
        );
        assert_eq!(
            check_append(&stored, 0, &events(&[(1, "a"), (2, "B")]), 0),
            AppendCheck::Conflict
        );
        // Stored events that are only a prefix of the append are a conflict, not a retry.
        let short = rows(&[(1, 0, "a")]);
        assert_eq!(
            check_append(&short, 0, &events(&[(1, "a"), (2, "b")]), 0),
            AppendCheck::Conflict
        );
    }

    #[test]
    fn a_wrong_expected_sequence_number_conflicts() {
        let stored = rows(&[(1, 0, "a"), (2, 0, "b")]);
        assert_eq!(
            check_append(&stored, 1, &events(&[(2, "x")]), 0),
            AppendCheck::Conflict,
            "behind the head"
        );
        assert_eq!(
            check_append(&Rows::new(), 5, &events(&[(6, "x")]), 0),
            AppendCheck::Conflict,
            "beyond the head"
        );
    }

    #[test]
    fn a_stale_writer_is_fenced_once_a_newer_epoch_wrote() {
        // The new owner (epoch 3) wrote seq 2; the old one (epoch 2) still believes seq 1 is last.
        let stored = rows(&[(1, 2, "a"), (2, 3, "b")]);
        assert_eq!(
            check_append(&stored, 1, &events(&[(2, "x")]), 2),
            AppendCheck::Fenced { newer_epoch: 3 }
        );
        // Or it wrote seq 2 too, in a race, and now appends seq 3 after it.
        let raced = rows(&[(1, 2, "a"), (2, 2, "x"), (2, 3, "b")]);
        assert_eq!(
            check_append(&raced, 2, &events(&[(3, "y")]), 2),
            AppendCheck::Fenced { newer_epoch: 3 }
        );
        // The new owner itself appends normally after the race.
        assert_eq!(
            check_append(&raced, 2, &events(&[(3, "c")]), 3),
            AppendCheck::Write
        );
    }

    #[test]
    fn the_new_owner_writes_over_a_stale_tail() {
        // Epoch 2 wrote seq 2; stale epoch 1 left seq 2 and 3. The head is 2, and epoch 2 may
        // append seq 3: its row outvotes the stale one.
        let stored = rows(&[(1, 1, "a"), (2, 1, "x"), (2, 2, "b"), (3, 1, "y")]);
        assert_eq!(
            check_append(&stored, 2, &events(&[(3, "c")]), 2),
            AppendCheck::Write
        );
        let mut after = stored.clone();
        after.entry(3).or_default().push(version(2, "c"));
        let walk = walk(&after, 1, 3, i64::MIN, 10);
        assert_eq!(seqs(&walk), vec![1, 2, 3]);
        assert_eq!(walk.events[2].1.payload, b"c");
    }

    #[test]
    fn a_handover_to_a_higher_epoch_is_normal() {
        let stored = rows(&[(1, 0, "a"), (2, 0, "b")]);
        assert_eq!(
            check_append(&stored, 2, &events(&[(3, "c")]), 7),
            AppendCheck::Write
        );
        let mut after = stored;
        after.entry(3).or_default().push(version(7, "c"));
        let walk = walk(&after, 1, 3, i64::MIN, 10);
        assert_eq!(seqs(&walk), vec![1, 2, 3]);
        assert!(walk.conflicts.is_empty());
    }
}
