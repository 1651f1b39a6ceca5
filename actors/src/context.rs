//! What every entity actor on a node shares: ports, settings and the way to conversations.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::brain_pool::BrainPool;
use crate::command::{ConversationGateway, MergeDirectory};
use crate::feed::LiveFeed;
use crate::metrics::RuntimeMetrics;
use crate::outbox::Outbox;
use crate::ports::clock::{Clock, SystemClock};
use crate::ports::journal::EventJournal;
use crate::reactor::feed::ReactorFeed;

/// Tunables of entity actors.
#[derive(Debug, Clone)]
pub struct EntitySettings {
    /// Take a snapshot after this many events since the last one.
    pub snapshot_every: u64,
    /// Passivate an actor idle for this long.
    pub idle_timeout: Duration,
    /// How often an actor checks whether it is idle.
    pub idle_check_interval: Duration,
    /// How many past messages the brain sees.
    pub brain_history: usize,
}

impl Default for EntitySettings {
    fn default() -> Self {
        Self {
            snapshot_every: 64,
            idle_timeout: Duration::from_secs(120),
            idle_check_interval: Duration::from_secs(15),
            brain_history: 10,
        }
    }
}

/// Shared by every entity actor of a node.
#[derive(Debug)]
pub struct EntityContext {
    /// The journal.
    pub journal: Arc<dyn EventJournal>,
    /// Publication of journaled events.
    pub outbox: Outbox,
    /// The reactor, which carries journaled events to the entities they concern.
    pub reactor: ReactorFeed,
    /// Live subscribers on this node.
    pub feed: LiveFeed,
    /// The brain's worker pool.
    pub brain: BrainPool,
    /// Tunables.
    pub settings: EntitySettings,
    /// The time of events and timers.
    pub clock: Arc<dyn Clock>,
    /// Metrics.
    pub metrics: RuntimeMetrics,
    /// Where commands to conversations go (the shard region), set once the shards are spawned.
    pub conversations: OnceLock<Arc<dyn ConversationGateway>>,
    /// VIP customers of every tenant on this node, kept by the routing desks.
    pub vips: VipRegistry,
    /// Where merged customers' messages go (the routing desks), set once the desks are started.
    pub merges: OnceLock<Arc<dyn MergeDirectory>>,
    /// The tenants' lead policies (kept by the node from the journal).
    pub leads: Arc<crate::conversation::leads::LeadPolicies>,
}

/// The VIP customers the routing desks know, readable by conversations without asking a desk.
#[derive(Debug, Default)]
pub struct VipRegistry(std::sync::RwLock<std::collections::HashSet<crest_proto::CustomerId>>);

impl VipRegistry {
    /// True if `customer` is a VIP.
    #[must_use]
    pub fn contains(&self, customer: &crest_proto::CustomerId) -> bool {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(customer)
    }

    /// Records a customer's tier.
    pub fn set(&self, customer: &crest_proto::CustomerId, vip: bool) {
        let mut vips = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if vip {
            vips.insert(customer.clone());
        } else {
            vips.remove(customer);
        }
    }
}

impl std::fmt::Debug for dyn EventJournal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("EventJournal")
    }
}

impl EntityContext {
    /// Where commands to conversations go. Set before any entity actor runs.
    #[must_use]
    pub fn conversations(&self) -> &dyn ConversationGateway {
        self.conversations
            .get()
            .map(AsRef::as_ref)
            .unwrap_or_else(|| unreachable!("the gateway is set before entity actors are spawned"))
    }

    /// Where merged customers' messages go; `None` until the routing desks are started.
    #[must_use]
    pub fn merges(&self) -> Option<&dyn MergeDirectory> {
        self.merges.get().map(AsRef::as_ref)
    }
}

/// Milliseconds since the Unix epoch, on the wall clock. Entity actors read
/// [`EntityContext::clock`] instead (pausable in tests).
#[must_use]
pub fn now_ms() -> u64 {
    SystemClock.now_ms()
}
