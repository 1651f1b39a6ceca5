//! A node: the shards, the outbox and the brain pool wired together, with start-up recovery and an
//! orderly shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crest_proto::slice::{SHARD_COUNT, shard_of};
use ractor::{Actor, ActorRef};

use crate::brain_pool::BrainPool;
use crate::context::{EntityContext, EntitySettings};
use crate::desk::{DeskSettings, RoutingHub};
use crate::feed::LiveFeed;
use crate::metrics::RuntimeMetrics;
use crate::outbox::{Outbox, republish_unpublished, republish_unpublished_where};
use crate::ports::brain::Brain;
use crate::ports::bus::EventBus;
use crate::ports::clock::{Clock, TokioClock};
use crate::ports::journal::{EventJournal, JournalError};
use crate::reactor::feed::ReactorFeed;
use crate::reactor::{CatchUp, Reactor, ReactorFaults, Targets};
use crate::shard::remote::{Ownership, ShardReply, ShardRequest};
use crate::shard::{ShardActor, ShardMsg, ShardRegion};

/// Longest wait at shutdown for the entity actors of one shard to stop.
const ACTOR_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Longest wait at shutdown for the outbox to publish what it holds (and for the reactor to
/// deliver what it holds).
const OUTBOX_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How a node is built.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Entity tunables.
    pub entities: EntitySettings,
    /// Brain worker threads.
    pub brain_threads: usize,
    /// Routing tunables.
    pub routing: DeskSettings,
    /// Fault injection into the reactor (tests only; none by default).
    pub reactor_faults: ReactorFaults,
    /// This node's name, under which agents' live connections are counted (`local` by default).
    pub name: String,
    /// The time of events and timers (by default the wall time at start advanced by tokio's
    /// clock, so that tests can pause it).
    pub clock: Arc<dyn Clock>,
    /// In a cluster: which shards this node serves and the link to the others (`None`: alone,
    /// serving every shard).
    pub cluster: Option<Arc<Ownership>>,
    /// In a cluster: where live subscribers follow streams whose entities run on other nodes.
    pub remote_events: Option<Arc<dyn crate::feed::RemoteEvents>>,
    /// Where the bot's and agents' messages leave for customers' channels (`None`: nowhere).
    pub outbound: Option<Arc<dyn crate::ports::Outbound>>,
    /// The tenants' lead policies: the node's owner keeps them from the journal, conversations
    /// ask by them (give both the same one).
    pub lead_policies: Arc<crate::conversation::leads::LeadPolicies>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            entities: EntitySettings::default(),
            brain_threads: 1,
            routing: DeskSettings::default(),
            reactor_faults: ReactorFaults::default(),
            name: "local".to_owned(),
            clock: Arc::new(TokioClock::start()),
            cluster: None,
            remote_events: None,
            outbound: None,
            lead_policies: Arc::default(),
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A shard actor did not start.
    #[error("shard failed to start: {0}")]
    Spawn(#[from] ractor::SpawnErr),
    /// The brain threads did not start.
    #[error("brain pool failed to start: {0}")]
    Threads(#[from] std::io::Error),
    /// Recovery failed.
    #[error("recovery failed: {0}")]
    Journal(#[from] JournalError),
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    region: ShardRegion,
    routing: Arc<RoutingHub>,
    context: Arc<EntityContext>,
    shards: Vec<(ActorRef<ShardMsg>, tokio::task::JoinHandle<()>)>,
    outbox_task: tokio::task::JoinHandle<()>,
    reactor: Reactor,
    ready: Arc<AtomicBool>,
    connections_node: String,
    /// Where messages leave for customers' channels (its outboxes run on their shards' owners).
    outbound: Option<Arc<dyn crate::ports::Outbound>>,
    /// In a cluster: shards just given to this node, whose desks, reactions and publications are
    /// taken up by the task below.
    taken_up: Option<(
        tokio::sync::mpsc::UnboundedSender<u16>,
        tokio::task::JoinHandle<()>,
    )>,
}

/// Shards given within this long are taken up together (one scan of the journal's progress).
const TAKE_UP_GATHER: std::time::Duration = std::time::Duration::from_millis(200);
/// First pause before trying a failed take-up again; doubles up to 5 s.
const TAKE_UP_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

impl Node {
    /// Starts all shards of a single node and republishes events a previous run journaled but did not
    /// publish. The node is ready when this returns.
    pub async fn start(
        journal: Arc<dyn EventJournal>,
        bus: Arc<dyn EventBus>,
        brain: Arc<dyn Brain>,
        registry: &prometheus::Registry,
        config: NodeConfig,
    ) -> Result<Self, NodeError> {
        let metrics = RuntimeMetrics::new(registry);
        let (outbox, outbox_task) =
            Outbox::start(Arc::clone(&bus), Arc::clone(&journal), metrics.clone());
        let (reactor_feed, reactor_input) = ReactorFeed::channel(metrics.reactor_depth.clone());
        let context = Arc::new(EntityContext {
            journal,
            outbox,
            reactor: reactor_feed,
            feed: config
                .remote_events
                .clone()
                .map_or_else(LiveFeed::default, LiveFeed::with_remote),
            brain: BrainPool::start(&brain, config.brain_threads, metrics.clone())?,
            settings: config.entities,
            clock: config.clock,
            metrics,
            conversations: OnceLock::new(),
            vips: crate::context::VipRegistry::default(),
            merges: OnceLock::new(),
            leads: Arc::clone(&config.lead_policies),
        });
        let mut shards = Vec::with_capacity(usize::from(SHARD_COUNT));
        for index in 0..SHARD_COUNT {
            let (shard, handle) =
                Actor::spawn(None, ShardActor, (index, Arc::clone(&context))).await?;
            shards.push((shard, handle));
        }
        let actors: Vec<ActorRef<ShardMsg>> =
            shards.iter().map(|(shard, _)| shard.clone()).collect();
        let clustered = config.cluster.is_some();
        let region = match config.cluster.clone() {
            Some(ownership) => ShardRegion::clustered(actors, ownership),
            None => ShardRegion::new(actors),
        };
        let gateway: Arc<dyn crate::command::ConversationGateway> = Arc::new(region.clone());
        if context.conversations.set(gateway).is_err() {
            unreachable!("the gateway is set once, here");
        }
        // Routing desks recover (re-arming their timers); then the reactor delivers what a previous
        // run journaled but did not carry to its targets, and follows from there.
        let started = std::time::Instant::now();
        let routing =
            RoutingHub::start(Arc::clone(&context), config.routing, config.cluster).await?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis(),
            "routing desks recovered"
        );
        let merges: Arc<dyn crate::command::MergeDirectory> =
            Arc::new(crate::desk::hub::MergeLookup(Arc::downgrade(&routing)));
        if context.merges.set(merges).is_err() {
            unreachable!("the merge directory is set once, here");
        }
        let targets = Targets {
            region: region.clone(),
            routing: Arc::clone(&routing),
            retries: context.metrics.reactor_retries.clone(),
            outbound: config.outbound.clone(),
        };
        let reactor = Reactor::start(
            reactor_input,
            targets,
            Arc::clone(&context.journal),
            config.reactor_faults,
            !clustered,
        )
        .await?;
        let started = std::time::Instant::now();
        // In a cluster a node serves no shard yet: each shard's unpublished events are taken up
        // when the node is given the shard (`serve_shard`).
        let republished = if clustered {
            0
        } else {
            republish_unpublished(context.journal.as_ref(), bus.as_ref(), &context.metrics).await?
        };
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis(),
            republished,
            "unpublished events checked"
        );
        if republished > 0 {
            tracing::info!(
                republished,
                "republished events journaled before the last stop"
            );
        }
        let taken_up = clustered.then(|| {
            let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
            let task = tokio::spawn(take_up_shards(
                receiver,
                Arc::clone(&routing),
                reactor.catch_up(),
                Arc::clone(&context),
                Arc::clone(&bus),
            ));
            (sender, task)
        });
        Ok(Self {
            outbound: config.outbound.clone(),
            taken_up,
            region,
            routing,
            context,
            shards,
            outbox_task,
            reactor,
            ready: Arc::new(AtomicBool::new(true)),
            // Agents' connections are counted per run of the node: `<name>@<run id>`.
            connections_node: format!("{}@{}", config.name, ulid_run_id()),
        })
    }

    /// The region to send commands through.
    #[must_use]
    pub fn region(&self) -> &ShardRegion {
        &self.region
    }

    /// Routing: agents, queues, tickets.
    #[must_use]
    pub fn routing(&self) -> &Arc<RoutingHub> {
        &self.routing
    }

    /// The name under which this run of the node counts agents' live connections
    /// (`<node name>@<run id>`).
    #[must_use]
    pub fn connections_node(&self) -> &str {
        &self.connections_node
    }

    /// The reactor's feed: wait there for the reactions to a command's events to be delivered.
    #[must_use]
    pub fn reactor(&self) -> &ReactorFeed {
        &self.context.reactor
    }

    /// Live event subscriptions.
    #[must_use]
    pub fn feed(&self) -> &LiveFeed {
        &self.context.feed
    }

    /// Now on the node's clock (ms since the epoch), the time of its events and timers.
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        self.context.clock.now_ms()
    }

    /// The node's runtime metrics.
    #[must_use]
    pub fn metrics(&self) -> &RuntimeMetrics {
        &self.context.metrics
    }

    /// The journal.
    #[must_use]
    pub fn journal(&self) -> &Arc<dyn EventJournal> {
        &self.context.journal
    }

    /// True once start-up recovery is done and until shutdown begins.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Runs a request another node sent for a shard this node serves.
    pub async fn serve_request(&self, request: ShardRequest) -> ShardReply {
        match request {
            ShardRequest::DeskCommand { .. }
            | ShardRequest::DeskReactions { .. }
            | ShardRequest::DeskView { .. } => self.routing.serve_here(request).await,
            ShardRequest::Outbox {
                tenant,
                channel,
                op,
            } => {
                let Some(outbound) = &self.outbound else {
                    return ShardReply::Outbox(Err(crate::command::CommandError::Unavailable));
                };
                ShardReply::Outbox(outbound.outbox(&tenant, &channel, op).await.map_err(
                    |error| {
                        tracing::debug!(%tenant, channel, %error, "outbox operation not taken here");
                        crate::command::CommandError::Unavailable
                    },
                ))
            }
            other => self.region.serve_here(other).await,
        }
    }

    /// Starts serving `shard` (in a cluster), writing with `epoch`: its requests run here from now
    /// on; its desks start, and what the previous owner journaled but did not carry to its targets
    /// or publish is taken up in the background.
    pub fn serve_shard(&self, shard: u16, epoch: u64) {
        let Some(ownership) = self.region.ownership() else {
            return;
        };
        ownership.serve(shard, epoch);
        if let Some((taken_up, _)) = &self.taken_up {
            let _ = taken_up.send(shard);
        }
        if let Some(outbound) = &self.outbound {
            outbound.shard_served(shard);
        }
    }

    /// Hands `shard` over to another node: its requests go to the next owner from now on; the
    /// requests it had taken finish; its entities stop (passivate); everything they wrote is
    /// published and durable. (In a cluster; alone, a node never hands a shard over.)
    pub async fn hand_over_shard(&self, shard: u16) {
        let Some(ownership) = self.region.ownership() else {
            return;
        };
        ownership.drain(shard);
        self.routing.release_shard(shard).await;
        self.stop_shard_entities(shard).await;
        self.drain_outbox().await;
        if let Some(outbound) = &self.outbound {
            outbound.shard_released(shard).await;
        }
        if let Err(error) = self.context.journal.flush().await {
            tracing::warn!(shard, %error, "journal not flushed at hand-over");
        }
        ownership.release(shard);
    }

    /// Stops serving `shard` at once (its lease may be lost): its requests go elsewhere and its
    /// entities stop.
    pub async fn fence_shard(&self, shard: u16) {
        let Some(ownership) = self.region.ownership() else {
            return;
        };
        ownership.release(shard);
        if let Some(outbound) = &self.outbound {
            outbound.shard_released(shard).await;
        }
        self.routing.release_shard(shard).await;
        self.stop_shard_entities(shard).await;
    }

    /// Lets the shard actor finish what its mailbox holds, then stops its entity actors (each
    /// finishes the message it is on).
    async fn stop_shard_entities(&self, shard: u16) {
        let Some((actor, _)) = self.shards.get(usize::from(shard)) else {
            return;
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        if actor.cast(ShardMsg::CountLive(reply)).is_ok() {
            let _ = answer.await;
        }
        actor
            .stop_children_and_wait(Some("hand-over".to_owned()), Some(ACTOR_STOP_TIMEOUT))
            .await;
    }

    /// Waits (bounded) for the outbox to publish what it holds and for the reactor to deliver what
    /// it holds. A bus that is down must not hold the shutdown forever: what is not published (or
    /// reacted to) now is journaled and taken up again at the next start.
    async fn drain_outbox(&self) {
        if tokio::time::timeout(OUTBOX_DRAIN_TIMEOUT, self.context.reactor.flush())
            .await
            .is_err()
        {
            tracing::warn!("reactor not drained at shutdown; it resumes at the next start");
        }
        if tokio::time::timeout(OUTBOX_DRAIN_TIMEOUT, self.context.outbox.flush())
            .await
            .is_err()
        {
            tracing::warn!(
                "outbox not drained at shutdown; unpublished events will be republished at the next start"
            );
        }
    }

    /// Stops the shards (their actors finish the message they are on), publishes what the outbox
    /// holds and flushes the journal.
    pub async fn shutdown(mut self) -> Result<(), JournalError> {
        self.ready.store(false, Ordering::Release);
        if let Some((_, task)) = self.taken_up.take() {
            task.abort();
            let _ = task.await;
        }
        // Hand what the reactor holds to its targets and what the outbox holds to the bus while
        // entities still run; then stop entity actors (each finishes the message it is on) and the shards.
        self.drain_outbox().await;
        for (shard, _) in &self.shards {
            shard
                .stop_children_and_wait(Some("shutdown".to_owned()), Some(ACTOR_STOP_TIMEOUT))
                .await;
        }
        for (shard, _) in &self.shards {
            shard.stop(Some("shutdown".to_owned()));
        }
        let shards = std::mem::take(&mut self.shards);
        for (_, handle) in shards {
            let _ = handle.await;
        }
        self.drain_outbox().await;
        self.reactor.stop().await;
        self.routing.stop().await;
        self.context.journal.flush().await?;
        // Wait for the outbox task to be gone, so nothing holds the journal after this returns.
        self.outbox_task.abort();
        let _ = self.outbox_task.await;
        Ok(())
    }
}

/// Takes up the shards a cluster gives this node: starts their desks, delivers the reactions and
/// publishes the events their previous owner journaled but did not get to. Shards given close
/// together are taken up together; a failure is tried again (everything here is idempotent).
async fn take_up_shards(
    mut given: tokio::sync::mpsc::UnboundedReceiver<u16>,
    routing: Arc<RoutingHub>,
    reactions: CatchUp,
    context: Arc<EntityContext>,
    bus: Arc<dyn EventBus>,
) {
    while let Some(first) = given.recv().await {
        let mut shards = std::collections::BTreeSet::from([first]);
        tokio::time::sleep(TAKE_UP_GATHER).await;
        while let Ok(shard) = given.try_recv() {
            shards.insert(shard);
        }
        let started = std::time::Instant::now();
        let wanted = |stream: &crest_proto::StreamId| shards.contains(&shard_of(stream.as_str()));
        let mut pause = TAKE_UP_RETRY;
        loop {
            let failed = routing
                .serve_shards(&shards)
                .await
                .err()
                .map(|error| error.to_string());
            let reacted = reactions.run(wanted).await;
            let published = republish_unpublished_where(
                context.journal.as_ref(),
                bus.as_ref(),
                &context.metrics,
                wanted,
            )
            .await;
            match (reacted, published, failed) {
                (Ok(reacted), Ok(published), None) => {
                    tracing::info!(
                        shards = shards.len(),
                        reacted,
                        published,
                        elapsed_ms = started.elapsed().as_millis(),
                        "shards taken up"
                    );
                    break;
                }
                (reacted, published, failed) => {
                    tracing::warn!(
                        shards = shards.len(),
                        reactions = ?reacted.err(),
                        publication = ?published.err(),
                        desks = ?failed,
                        retry_in_ms = pause.as_millis(),
                        "shards not fully taken up"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
    }
}

/// A new id for this run of the node (time-ordered, unique).
fn ulid_run_id() -> String {
    ulid::Ulid::new().to_string()
}
