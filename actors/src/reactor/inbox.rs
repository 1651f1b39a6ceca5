//! The inbox of an entity that receives reactions: per source stream, the last source event whose
//! reaction it applied. The reactor delivers at least once (after a crash it resumes from its last
//! recorded progress), and each source stream's reactions in order, so "seq at or below the last
//! one applied" recognises every reaction delivered again: together they make delivery exactly once.
//!
//! The inbox lives in the entity's state (and snapshots) and is rebuilt from the causation ids of
//! the entity's own events on recovery: a reaction's events carry `<source stream>@<seq>`.

use std::collections::BTreeMap;

use crest_proto::StreamId;
use serde::{Deserialize, Serialize};

/// How long a source is remembered after its last reaction, for inboxes that forget
/// ([`Inbox::forgetting_after`]). The reactor records its progress after every batch, so a
/// reaction is delivered again only within moments of the first time; a day is a wide margin.
pub const DEFAULT_RETENTION_MS: u64 = 24 * 3600 * 1000;

/// Sweeps for forgotten sources run at most once per this many recordings.
const SWEEP_EVERY: u32 = 1024;

/// Last applied source event per source stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbox {
    /// Source stream → (last applied seq, when it was applied, ms since the epoch).
    last: BTreeMap<StreamId, (u64, u64)>,
    /// Forget sources idle for longer than this (`0`: never forget).
    retention_ms: u64,
    /// Recordings since the last sweep.
    since_sweep: u32,
}

impl Inbox {
    /// An inbox that remembers every source (an entity with few sources, e.g. a conversation whose
    /// only source is its tenant's desk).
    #[must_use]
    pub fn remembering() -> Self {
        Self::default()
    }

    /// An inbox that forgets a source `retention_ms` after its last reaction (an entity with
    /// unboundedly many sources, e.g. a desk hearing from every conversation).
    #[must_use]
    pub fn forgetting_after(retention_ms: u64) -> Self {
        Self {
            retention_ms,
            ..Self::default()
        }
    }

    /// True if the reaction to event `seq` of `source` was applied already.
    #[must_use]
    pub fn applied(&self, source: &StreamId, seq: u64) -> bool {
        self.last
            .get(source)
            .is_some_and(|(applied, _)| seq <= *applied)
    }

    /// Records that the reaction to event `seq` of `source` was applied at `at_ms`.
    pub fn record(&mut self, source: &StreamId, seq: u64, at_ms: u64) {
        let entry = self.last.entry(source.clone()).or_insert((0, at_ms));
        entry.0 = entry.0.max(seq);
        entry.1 = entry.1.max(at_ms);
        if self.retention_ms == 0 {
            return;
        }
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY {
            self.since_sweep = 0;
            let horizon = at_ms.saturating_sub(self.retention_ms);
            self.last.retain(|_, (_, last_ms)| *last_ms >= horizon);
        }
    }

    /// Number of sources remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// True if no source is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(n: u32) -> StreamId {
        StreamId::parse(&format!("conv:shop:{n:026}")).expect("valid stream")
    }

    #[test]
    fn a_reaction_at_or_below_the_last_applied_is_recognised() {
        let mut inbox = Inbox::remembering();
        assert!(!inbox.applied(&stream(1), 1));
        inbox.record(&stream(1), 5, 100);
        assert!(inbox.applied(&stream(1), 5));
        assert!(inbox.applied(&stream(1), 3));
        assert!(!inbox.applied(&stream(1), 6));
        assert!(!inbox.applied(&stream(2), 1), "sources are independent");
        inbox.record(&stream(1), 4, 200);
        assert!(inbox.applied(&stream(1), 5), "never moves back");
    }

    #[test]
    fn a_forgetting_inbox_drops_idle_sources_and_keeps_recent_ones() {
        let mut inbox = Inbox::forgetting_after(1_000);
        inbox.record(&stream(0), 1, 0);
        for n in 1..=SWEEP_EVERY {
            inbox.record(&stream(n), 1, 5_000);
        }
        assert!(
            !inbox.applied(&stream(0), 1),
            "idle past retention: forgotten"
        );
        assert!(inbox.applied(&stream(1), 1));
        assert_eq!(inbox.len(), SWEEP_EVERY as usize);
        let mut remembering = Inbox::remembering();
        remembering.record(&stream(0), 1, 0);
        for n in 1..=SWEEP_EVERY {
            remembering.record(&stream(n), 1, u64::MAX / 2);
        }
        assert!(remembering.applied(&stream(0), 1));
    }
}
