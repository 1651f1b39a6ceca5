//! The cluster member's Prometheus metrics (catalogued in `docs/METRICS.md`, section Cluster).
//!
//! Every series exists from the start, at zero for each known label value, so that a dashboard of a
//! fresh cluster shows zeros rather than "No data".

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Directions of [`ClusterMetrics::shard_moves`].
pub const MOVE_DIRECTIONS: [&str; 3] = ["acquired", "released", "fenced"];
/// Outcomes of [`ClusterMetrics::lease_renewals`].
pub const RENEWAL_OUTCOMES: [&str; 3] = ["ok", "lost", "error"];
/// Outcomes of [`ClusterMetrics::rounds`].
pub const ROUND_OUTCOMES: [&str; 3] = ["written", "unchanged", "failed"];

/// What one member reports about the cluster and its part in it.
#[derive(Debug, Clone)]
pub struct ClusterMetrics {
    /// `crest_cluster_members`: live members in the membership bucket, as this member last read it.
    pub members: IntGauge,
    /// `crest_cluster_shards`: shards in the cluster (fixed for its life).
    pub shards: IntGauge,
    /// `crest_cluster_shards_owned`: shards this member serves now.
    pub shards_owned: IntGauge,
    /// `crest_cluster_shard_moves_total{direction}`: leases this member took (`acquired`), gave
    /// back after a hand-over (`released`), or dropped without giving back: a renewal was lost or
    /// overdue, or giving back after a hand-over failed (`fenced`; the lease runs out).
    pub shard_moves: IntCounterVec,
    /// `crest_cluster_failovers_total`: shards this member took whose previous lease had run out
    /// (its owner stopped renewing) rather than been given back.
    pub failovers: IntCounter,
    /// `crest_cluster_lease_renewals_total{outcome}`: lease renewals (shards and coordinator) by
    /// outcome: `ok`, `lost` (another writer's revision: the lease is gone), `error` (timeout or
    /// unreachable server; tried again).
    pub lease_renewals: IntCounterVec,
    /// `crest_cluster_lease_renewal_seconds`: time of one lease renewal, answered or not.
    pub lease_renewal_seconds: Histogram,
    /// `crest_cluster_coordinator`: 1 while this member holds the coordinator lease, else 0.
    pub coordinator: IntGauge,
    /// `crest_cluster_rounds_total{outcome}`: allocation rounds this member ran as coordinator:
    /// `written` (a new shard map), `unchanged` (the map already fit), `failed` (the map could not
    /// be read or written).
    pub rounds: IntCounterVec,
    /// `crest_cluster_fenced_appends_total`: appends this node refused because it no longer
    /// served the stream's shard (late work of a shard handed over or fenced).
    pub fenced_appends: IntCounter,
}

impl ClusterMetrics {
    /// The cluster metrics, registered in `registry` (every label value at zero).
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            members: IntGauge::new(
                "crest_cluster_members",
                "Live cluster members, as this member last read the membership.",
            )?,
            shards: IntGauge::new("crest_cluster_shards", "Shards in the cluster.")?,
            shards_owned: IntGauge::new(
                "crest_cluster_shards_owned",
                "Shards this member serves.",
            )?,
            shard_moves: IntCounterVec::new(
                Opts::new(
                    "crest_cluster_shard_moves_total",
                    "Shard leases taken (acquired), given back after a hand-over (released) or \
                     dropped without giving back (fenced) by this member.",
                ),
                &["direction"],
            )?,
            failovers: IntCounter::new(
                "crest_cluster_failovers_total",
                "Shards this member took over from a lease that ran out.",
            )?,
            lease_renewals: IntCounterVec::new(
                Opts::new(
                    "crest_cluster_lease_renewals_total",
                    "Lease renewals by outcome (ok, lost, error).",
                ),
                &["outcome"],
            )?,
            lease_renewal_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "crest_cluster_lease_renewal_seconds",
                    "Duration of one lease renewal.",
                )
                .buckets(vec![
                    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ]),
            )?,
            coordinator: IntGauge::new(
                "crest_cluster_coordinator",
                "1 while this member holds the coordinator lease.",
            )?,
            rounds: IntCounterVec::new(
                Opts::new(
                    "crest_cluster_rounds_total",
                    "Allocation rounds run as coordinator, by outcome (written, unchanged, failed).",
                ),
                &["outcome"],
            )?,
            fenced_appends: IntCounter::new(
                "crest_cluster_fenced_appends_total",
                "Appends refused because this node no longer served the stream's shard.",
            )?,
        };
        for direction in MOVE_DIRECTIONS {
            metrics.shard_moves.with_label_values(&[direction]);
        }
        for outcome in RENEWAL_OUTCOMES {
            metrics.lease_renewals.with_label_values(&[outcome]);
        }
        for outcome in ROUND_OUTCOMES {
            metrics.rounds.with_label_values(&[outcome]);
        }
        registry.register(Box::new(metrics.members.clone()))?;
        registry.register(Box::new(metrics.shards.clone()))?;
        registry.register(Box::new(metrics.shards_owned.clone()))?;
        registry.register(Box::new(metrics.shard_moves.clone()))?;
        registry.register(Box::new(metrics.failovers.clone()))?;
        registry.register(Box::new(metrics.lease_renewals.clone()))?;
        registry.register(Box::new(metrics.lease_renewal_seconds.clone()))?;
        registry.register(Box::new(metrics.coordinator.clone()))?;
        registry.register(Box::new(metrics.rounds.clone()))?;
        registry.register(Box::new(metrics.fenced_appends.clone()))?;
        Ok(metrics)
    }

    /// Metrics kept in a registry of their own (read through the fields, exposed nowhere).
    pub fn unregistered() -> Result<Self, prometheus::Error> {
        Self::new(&Registry::new())
    }

    /// Shard leases moved in `direction` (one of [`MOVE_DIRECTIONS`]) so far.
    #[must_use]
    pub fn moves(&self, direction: &str) -> u64 {
        debug_assert!(MOVE_DIRECTIONS.contains(&direction), "{direction}");
        self.shard_moves.with_label_values(&[direction]).get()
    }

    /// Lease renewals with `outcome` (one of [`RENEWAL_OUTCOMES`]) so far.
    #[must_use]
    pub fn renewals(&self, outcome: &str) -> u64 {
        debug_assert!(RENEWAL_OUTCOMES.contains(&outcome), "{outcome}");
        self.lease_renewals.with_label_values(&[outcome]).get()
    }

    /// Coordinator rounds with `outcome` (one of [`ROUND_OUTCOMES`]) so far.
    #[must_use]
    pub fn rounds_with(&self, outcome: &str) -> u64 {
        debug_assert!(ROUND_OUTCOMES.contains(&outcome), "{outcome}");
        self.rounds.with_label_values(&[outcome]).get()
    }

    pub(super) fn moved(&self, direction: &str, shards: usize) {
        debug_assert!(MOVE_DIRECTIONS.contains(&direction), "{direction}");
        self.shard_moves
            .with_label_values(&[direction])
            .inc_by(shards as u64);
    }

    pub(super) fn renewed(&self, outcome: &str, took: std::time::Duration) {
        debug_assert!(RENEWAL_OUTCOMES.contains(&outcome), "{outcome}");
        self.lease_renewals.with_label_values(&[outcome]).inc();
        self.lease_renewal_seconds.observe(took.as_secs_f64());
    }

    pub(super) fn round(&self, outcome: &str) {
        debug_assert!(ROUND_OUTCOMES.contains(&outcome), "{outcome}");
        self.rounds.with_label_values(&[outcome]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::ClusterMetrics;

    #[test]
    fn every_series_is_exposed_at_zero_from_the_start() {
        let registry = prometheus::Registry::new();
        let _metrics = ClusterMetrics::new(&registry).expect("registers");
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&registry.gather(), &mut text)
            .expect("encodes");
        for series in [
            "crest_cluster_members 0",
            "crest_cluster_shards 0",
            "crest_cluster_shards_owned 0",
            "crest_cluster_shard_moves_total{direction=\"acquired\"} 0",
            "crest_cluster_shard_moves_total{direction=\"released\"} 0",
            "crest_cluster_shard_moves_total{direction=\"fenced\"} 0",
            "crest_cluster_failovers_total 0",
            "crest_cluster_lease_renewals_total{outcome=\"ok\"} 0",
            "crest_cluster_lease_renewals_total{outcome=\"lost\"} 0",
            "crest_cluster_lease_renewals_total{outcome=\"error\"} 0",
            "crest_cluster_lease_renewal_seconds_count 0",
            "crest_cluster_coordinator 0",
            "crest_cluster_rounds_total{outcome=\"written\"} 0",
            "crest_cluster_rounds_total{outcome=\"unchanged\"} 0",
            "crest_cluster_rounds_total{outcome=\"failed\"} 0",
        ] {
            assert!(
                text.lines().any(|line| line == series),
                "{series} missing from\n{text}"
            );
        }
    }

    #[test]
    fn two_members_in_one_process_keep_their_own_counts() {
        let first = ClusterMetrics::unregistered().expect("registers");
        let second = ClusterMetrics::unregistered().expect("registers");
        first.moved("acquired", 3);
        first.renewed("ok", std::time::Duration::from_millis(2));
        assert_eq!(first.moves("acquired"), 3);
        assert_eq!(second.moves("acquired"), 0);
        assert_eq!(first.renewals("ok"), 1);
        assert_eq!(first.lease_renewal_seconds.get_sample_count(), 1);
        assert_eq!(second.renewals("ok"), 0);
    }
}
