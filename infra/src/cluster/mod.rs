//! Cluster membership and shard ownership over NATS JetStream key-value buckets.
//!
//! Three buckets (names prefixed by [`ClusterConfig::prefix`]):
//! - `<prefix>_members`: `node.<name>` → [`MemberRecord`] (address, load, the shards it serves),
//!   written every [`ClusterConfig::heartbeat_every`]; the bucket's age limit removes a member that
//!   stopped writing, so membership is the set of live keys.
//! - `<prefix>_leases`: `shard.<n>` → the owner's name, and `coordinator`. A lease is taken with
//!   `create` (fails while another holds it), renewed with `update(revision)` and given back with
//!   `delete(revision)`; the bucket's age limit ([`ClusterConfig::lease_ttl`]) ends the lease of an
//!   owner that stopped renewing. The revision at acquisition is the shard's writer epoch: it only
//!   grows, so a later owner always writes with a higher epoch than an earlier one.
//! - `<prefix>_assignment`: `desired` → [`DesiredMap`], the coordinator's map of where each shard
//!   should be. Members converge on it: they take the leases the map gives them once free, and hand
//!   over the shards it moves away.
//!
//! Self-fencing: an owner counts a lease from the moment it *sent* the renewal that the server
//! accepted; if no renewal succeeded for half the lease's lifetime it stops serving the shard (the
//! [`ShardHost::fence`] call) — before the server can let anyone else take it.
//!
//! What serving a shard means is the [`ShardHost`]'s business; this module only decides when.
//!
//! Telemetry: [`ClusterMetrics`] (members, shards owned, moves, failovers, lease renewals and their
//! latency, the coordinator, allocation rounds). A failover is told from a hand-over by what the
//! shard's lease key holds when it is taken: a lease given back leaves a delete entry; a lease that
//! ran out leaves a marker where the server writes one (the leases bucket asks for limit markers,
//! kept four lease lifetimes; a replicated bucket on nats-server 2.15 was seen without them) or
//! else nothing at all, which after some member was seen serving the shard means the same.

mod allocation;
mod fenced;
mod link;
pub(crate) mod member;
pub mod metrics;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::allocation::{Candidate, Round, allocate, move_budget};
pub use self::fenced::FencedJournal;
pub use self::link::{NatsShardLink, NodeHost};
pub use self::member::Cluster;
pub use self::metrics::ClusterMetrics;

/// How a member joins.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This node's name: unique in the cluster, letters, digits, `-` and `_`.
    pub node: String,
    /// The node's HTTP address as others reach it.
    pub url: String,
    /// Prefix of the buckets (`crest` by default): clusters sharing a NATS system use different ones.
    pub prefix: String,
    /// Replicas of the buckets (1 on a single NATS server, 3 on a NATS cluster).
    pub replicas: usize,
    /// Number of shards (fixed for the life of a cluster).
    pub shards: u16,
    /// A lease ends this long after its last renewal.
    pub lease_ttl: Duration,
    /// How often leases are renewed.
    pub renew_every: Duration,
    /// A member leaves the membership this long after its last heartbeat.
    pub member_ttl: Duration,
    /// How often a member writes its heartbeat.
    pub heartbeat_every: Duration,
    /// How often the coordinator recomputes the map.
    pub round_every: Duration,
    /// How often a member looks at the map and the leases it waits for.
    pub tick: Duration,
}

impl ClusterConfig {
    /// Defaults for `node` reachable at `url`: leases of 6 s renewed every 1.5 s, heartbeats every
    /// second (members expire after 5 s), a coordinator round every 2 s. A killed node's shards are
    /// owned again some 7 s after its last renewal.
    #[must_use]
    pub fn new(node: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            url: url.into(),
            prefix: "crest".to_owned(),
            replicas: 1,
            shards: crest_proto::slice::SHARD_COUNT,
            lease_ttl: Duration::from_secs(6),
            renew_every: Duration::from_millis(1500),
            member_ttl: Duration::from_secs(5),
            heartbeat_every: Duration::from_secs(1),
            round_every: Duration::from_secs(2),
            tick: Duration::from_millis(200),
        }
    }

    /// How long an owner serves without a successful renewal: half the lease's lifetime.
    #[must_use]
    pub fn fence_after(&self) -> Duration {
        self.lease_ttl / 2
    }
}

/// A member's load, reported with its heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// Entity actors resident in memory.
    pub resident: u64,
    /// Messages waiting in entity mailboxes.
    pub mailbox: u64,
    /// CPU used by the process since the last heartbeat (1.0 = one core).
    pub cpu: f64,
}

impl Load {
    /// One number to compare members by when their shard counts tie.
    #[must_use]
    pub fn weight(&self) -> f64 {
        self.resident as f64 + self.mailbox as f64 * 10.0 + self.cpu * 1000.0
    }
}

/// What a member writes in the membership bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// The member's name.
    pub name: String,
    /// Its HTTP address.
    pub url: String,
    /// Its load.
    pub load: Load,
    /// The shards it serves.
    pub shards: Vec<u16>,
}

/// The coordinator's map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredMap {
    /// The round that wrote it.
    pub round: u64,
    /// The coordinator that wrote it.
    pub coordinator: String,
    /// The desired owner of each shard.
    pub shards: Vec<Option<String>>,
}

/// The cluster as a member sees it (`GET /v1/cluster`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    /// The member answering.
    pub node: String,
    /// The live members, by name.
    pub members: Vec<MemberView>,
    /// Shards in the cluster.
    pub shards_total: u16,
    /// Shards some live member serves.
    pub shards_owned: u16,
    /// The coordinator's name, if there is one.
    pub coordinator: Option<String>,
}

/// One live member in a [`ClusterView`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberView {
    /// Its name.
    pub name: String,
    /// Its HTTP address.
    pub url: String,
    /// How many shards it serves.
    pub shards: u16,
    /// Its load.
    pub load: Load,
}

/// What a member does with the shards the cluster gives it.
#[async_trait::async_trait]
pub trait ShardHost: Send + Sync + 'static {
    /// Starts serving `shard`; every journal append of it carries `epoch`.
    async fn serve(&self, shard: u16, epoch: u64);

    /// Hands `shard` over: stop taking its commands, finish those in flight, passivate its
    /// entities, make everything written durable. The lease is given back when this returns.
    async fn hand_over(&self, shard: u16);

    /// Stops serving `shard` at once: its lease may be lost (self-fencing).
    async fn fence(&self, shard: u16);

    /// This member's load now.
    fn load(&self) -> Load;
}

/// Whether a member should take traffic (`GET /readyz` in cluster mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// A member, and every shard of the cluster has a live owner.
    Ready,
    /// Not (yet, or no longer) in the membership.
    NotMember,
    /// Some shards have no live owner (a start, or a failover under way).
    ShardsUnowned {
        /// Shards some live member serves.
        owned: u16,
        /// Shards in the cluster.
        total: u16,
    },
    /// The membership could not be read lately.
    Unknown,
}

impl Readiness {
    /// Whether traffic is welcome.
    #[must_use]
    pub fn is_ready(self) -> bool {
        self == Self::Ready
    }
}

impl std::fmt::Display for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ready => f.write_str("ready"),
            Self::NotMember => f.write_str("not a cluster member yet"),
            Self::ShardsUnowned { owned, total } => {
                write!(f, "{owned} of {total} shards owned")
            }
            Self::Unknown => f.write_str("cluster membership not read lately"),
        }
    }
}

/// Why joining or reading the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The node's name cannot be a key.
    #[error("node name {0:?} must be letters, digits, '-' or '_'")]
    BadName(String),
    /// A bucket could not be created or opened.
    #[error("cluster bucket {bucket}: {message}")]
    Bucket {
        /// The bucket.
        bucket: String,
        /// The underlying error.
        message: String,
    },
    /// Reading the buckets failed.
    #[error("reading the cluster state: {0}")]
    Read(String),
    /// The metrics could not be registered.
    #[error("cluster metrics: {0}")]
    Metrics(String),
}
