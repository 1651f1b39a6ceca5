//! The routing hub of a node: finds or starts the desk actor of each tenant and keeps the directory
//! of tenants with a desk (so every desk, with its timers, is recovered at start). Commands reach a
//! desk through it: from HTTP handlers, and from the reactor (the conversation events routing
//! reacts to: handoffs, resolutions, closes, the bot's after-sales flows).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crest_proto::envelope::EventMeta;
use crest_proto::routing::{DeskOpened, DirectoryEvent, Tier};
use crest_proto::{AgentId, CustomerId, StreamId, TenantId};
use ractor::{Actor, ActorRef, ActorStatus};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, oneshot};

use super::actor::{DeskActor, DeskArgs, DeskCommandError, DeskMsg, DeskReply};
use super::decide::{DeskCommand, DeskRejection, DeskSettings};
use super::state::DeskState;
use super::views::{DeskQuery, DeskView, QueueBrief, QueueView, RoutingTableView, SeatView};
use crate::context::EntityContext;
use crate::persistence::{Aggregate, Persistent};
use crate::ports::journal::{JournalError, StorageErrorKind};
use crate::shard::remote::{Ownership, ShardReply, ShardRequest};

/// The shard whose owner runs `tenant`'s desk.
#[must_use]
pub fn desk_shard(tenant: &TenantId) -> u16 {
    crest_proto::slice::shard_of(StreamId::desk(tenant).as_str())
}

/// A desk error where only journal errors can be told (at start).
fn into_journal_error(error: DeskError) -> JournalError {
    match error {
        DeskError::Journal(error) => error,
        other => JournalError::storage(StorageErrorKind::Read, other.to_string()),
    }
}

/// Why a routing request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum DeskError {
    /// The desk refused it.
    #[error(transparent)]
    Rejected(#[from] DeskRejection),
    /// The journal failed; retrying is safe.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The desk is restarting or the node is stopping; retrying is safe.
    #[error("routing unavailable, retry")]
    Unavailable,
}

impl From<DeskCommandError> for DeskError {
    fn from(error: DeskCommandError) -> Self {
        match error {
            DeskCommandError::Rejected(rejection) => Self::Rejected(rejection),
            DeskCommandError::Journal(error) => Self::Journal(error),
        }
    }
}

/// Tenants that have a desk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryState {
    /// Last applied sequence number.
    pub seq: u64,
    /// The tenants.
    pub tenants: BTreeSet<TenantId>,
}

impl Aggregate for DirectoryState {
    type Event = DirectoryEvent;
    const STATE_SCHEMA_VERSION: u16 = 1;
    const KIND: &'static str = "directory";

    fn seq(&self) -> u64 {
        self.seq
    }

    fn apply_event(&mut self, event: &DirectoryEvent, seq: u64, _at_ms: u64) {
        self.seq = seq;
        match event {
            DirectoryEvent::DeskOpened(opened) => {
                self.tenants.insert(opened.tenant.clone());
            }
            // The knowledge-base directory's events; not in the desk directory.
            DirectoryEvent::KbOpened(_) | DirectoryEvent::ChannelsOpened(_) => {}
        }
    }
}

/// Finds desks and feeds them.
///
/// Alone, a node runs every tenant's desk. In a cluster a tenant's desk runs on the node serving
/// the shard of its stream (`desk:<tenant>`): commands, reactions and reads from elsewhere travel
/// to that node, and a node starts the desks of a shard when it is given the shard and stops them
/// when it hands the shard over, so a tenant has one routing authority in the whole cluster.
#[derive(Debug)]
pub struct RoutingHub {
    context: Arc<EntityContext>,
    settings: Arc<DeskSettings>,
    desks: Mutex<HashMap<TenantId, ActorRef<DeskMsg>>>,
    directory: Mutex<Persistent<DirectoryState>>,
    /// `None`: alone, every desk is here.
    cluster: Option<Arc<Ownership>>,
}

/// How often a directory append that lost a race with another node is tried again.
const DIRECTORY_ATTEMPTS: usize = 8;

impl RoutingHub {
    /// Recovers the directory and, alone, every desk in it (re-arming their timers); in a cluster
    /// desks start as their shards are served ([`Self::serve_shard`]).
    pub async fn start(
        context: Arc<EntityContext>,
        settings: DeskSettings,
        cluster: Option<Arc<Ownership>>,
    ) -> Result<Arc<Self>, JournalError> {
        let directory =
            Persistent::<DirectoryState>::recover(StreamId::desk_directory(), &context).await?;
        let tenants = directory.state.tenants.clone();
        let alone = cluster.is_none();
        let hub = Arc::new(Self {
            context,
            settings: Arc::new(settings),
            desks: Mutex::new(HashMap::new()),
            directory: Mutex::new(directory),
            cluster,
        });
        if alone {
            for tenant in tenants {
                hub.desk(&tenant).await.map_err(into_journal_error)?;
            }
        }
        Ok(hub)
    }

    /// Starts the desks of the tenants whose desk stream falls in one of `shards` (this node now
    /// serves them): each recovers from its snapshot and journal and re-arms its timers. The
    /// directory is read once for all of them.
    pub async fn serve_shards(
        &self,
        shards: &std::collections::BTreeSet<u16>,
    ) -> Result<(), DeskError> {
        let tenants = {
            let mut directory = self.directory.lock().await;
            *directory =
                Persistent::<DirectoryState>::recover(StreamId::desk_directory(), &self.context)
                    .await?;
            directory.state.tenants.clone()
        };
        for tenant in tenants {
            // (A shard handed over again meanwhile starts nothing.)
            if shards.contains(&desk_shard(&tenant)) && self.serves(&tenant) {
                self.desk(&tenant).await?;
            }
        }
        Ok(())
    }

    /// Stops the desks of `shard` (handed over or fenced): each finishes the message it is on.
    pub async fn release_shard(&self, shard: u16) {
        let stopping: Vec<ActorRef<DeskMsg>> = {
            let mut desks = self.desks.lock().await;
            let tenants: Vec<TenantId> = desks
                .keys()
                .filter(|tenant| desk_shard(tenant) == shard)
                .cloned()
                .collect();
            tenants
                .iter()
                .filter_map(|tenant| desks.remove(tenant))
                .collect()
        };
        for desk in stopping {
            desk.stop_and_wait(Some("hand-over".to_owned()), None)
                .await
                .ok();
        }
    }

    /// Whether `tenant`'s desk may run on this node now.
    fn serves(&self, tenant: &TenantId) -> bool {
        self.cluster
            .as_ref()
            .is_none_or(|cluster| cluster.epoch(desk_shard(tenant)).is_some())
    }

    /// Whether `tenant` has a desk, as this node (serving the tenant's shard) knows: running here,
    /// or in the directory (which a node reads when it is given shards and which the node serving
    /// a shard itself appends to when a new desk opens there).
    async fn has_desk(&self, tenant: &TenantId) -> bool {
        if self.desks.lock().await.contains_key(tenant) {
            return true;
        }
        self.directory.lock().await.state.tenants.contains(tenant)
    }

    /// The desk of `tenant`, started (and registered in the directory) if needed.
    async fn desk(&self, tenant: &TenantId) -> Result<ActorRef<DeskMsg>, DeskError> {
        if !self.serves(tenant) {
            return Err(DeskError::Unavailable);
        }
        let mut desks = self.desks.lock().await;
        if let Some(desk) = desks.get(tenant)
            && matches!(
                desk.get_status(),
                ActorStatus::Running | ActorStatus::Starting | ActorStatus::Upgrading
            )
        {
            return Ok(desk.clone());
        }
        self.register(tenant).await?;
        let args = DeskArgs {
            tenant: tenant.clone(),
            context: Arc::clone(&self.context),
            settings: Arc::clone(&self.settings),
        };
        let (desk, _) = Actor::spawn(None, DeskActor, args).await.map_err(|error| {
            // A desk's start is its recovery from the journal.
            JournalError::storage(
                StorageErrorKind::Read,
                format!("desk did not start: {error}"),
            )
        })?;
        desks.insert(tenant.clone(), desk.clone());
        Ok(desk)
    }

    /// Records in the directory that `tenant` has a desk. Nodes of a cluster share the directory:
    /// an append that lost a race is tried again on the directory as it now is.
    async fn register(&self, tenant: &TenantId) -> Result<(), JournalError> {
        let mut directory = self.directory.lock().await;
        for _ in 0..DIRECTORY_ATTEMPTS {
            if directory.state.tenants.contains(tenant) {
                return Ok(());
            }
            let event = DirectoryEvent::DeskOpened(DeskOpened {
                tenant: tenant.clone(),
            });
            match directory
                .persist(&self.context, &[event], &Default::default())
                .await
            {
                Err(JournalError::Conflict { .. }) if self.cluster.is_some() => {
                    *directory = Persistent::<DirectoryState>::recover(
                        StreamId::desk_directory(),
                        &self.context,
                    )
                    .await?;
                }
                other => return other.map(|_| ()),
            }
        }
        Err(JournalError::storage(
            StorageErrorKind::Write,
            "the desk directory kept changing under its appends",
        ))
    }

    /// Runs a command on `tenant`'s desk; answers once its events are journaled, with the desk's
    /// last sequence number if there were any. What they mean for conversations the reactor
    /// delivers (wait for it with [`crate::reactor::ReactorFeed::watch`]).
    pub async fn command(
        &self,
        tenant: &TenantId,
        command: DeskCommand,
    ) -> Result<Option<u64>, DeskError> {
        let Some(cluster) = &self.cluster else {
            return self.command_here(tenant, command).await;
        };
        let request = ShardRequest::DeskCommand {
            tenant: tenant.clone(),
            command: Box::new(command),
        };
        match cluster
            .route(request, |request| self.serve_here(request))
            .await
        {
            ShardReply::Desk(answer) => answer,
            _ => Err(DeskError::Unavailable),
        }
    }

    async fn command_here(
        &self,
        tenant: &TenantId,
        command: DeskCommand,
    ) -> Result<Option<u64>, DeskError> {
        self.send(tenant, |reply| DeskMsg::Command(Box::new(command), reply))
            .await
    }

    /// Runs a request for a desk of a shard this node serves (from another node, or from
    /// [`Ownership::route`] here).
    pub async fn serve_here(&self, request: ShardRequest) -> ShardReply {
        match request {
            ShardRequest::DeskCommand { tenant, command } => {
                ShardReply::Desk(self.command_here(&tenant, *command).await)
            }
            ShardRequest::DeskReactions { tenant, reactions } => {
                ShardReply::Desk(self.react_here(&tenant, reactions).await)
            }
            ShardRequest::DeskView { tenant, query } => {
                ShardReply::DeskView(self.view_here(&tenant, query).await)
            }
            other => other.unavailable(),
        }
    }

    /// Runs reactions (commands with the metadata naming their source events) on `tenant`'s desk
    /// as one batch: one journal append; reactions applied before or refused are skipped.
    pub async fn react(
        &self,
        tenant: &TenantId,
        reactions: Vec<(DeskCommand, EventMeta)>,
    ) -> Result<Option<u64>, DeskError> {
        let Some(cluster) = &self.cluster else {
            return self.react_here(tenant, reactions).await;
        };
        let request = ShardRequest::DeskReactions {
            tenant: tenant.clone(),
            reactions,
        };
        match cluster
            .route(request, |request| self.serve_here(request))
            .await
        {
            ShardReply::Desk(answer) => answer,
            _ => Err(DeskError::Unavailable),
        }
    }

    async fn react_here(
        &self,
        tenant: &TenantId,
        reactions: Vec<(DeskCommand, EventMeta)>,
    ) -> Result<Option<u64>, DeskError> {
        self.send(tenant, |reply| DeskMsg::Reactions(reactions, reply))
            .await
    }

    async fn send(
        &self,
        tenant: &TenantId,
        message: impl FnOnce(DeskReply) -> DeskMsg,
    ) -> Result<Option<u64>, DeskError> {
        let desk = self.desk(tenant).await?;
        let (reply, answer) = oneshot::channel();
        let mailbox = self
            .context
            .metrics
            .mailbox_depth
            .with_label_values(&["desk"]);
        mailbox.inc();
        if desk.cast(message(reply)).is_err() {
            mailbox.dec();
            return Err(DeskError::Unavailable);
        }
        Ok(answer.await.map_err(|_| DeskError::Unavailable)??)
    }

    /// Answers a named read of `tenant`'s desk. The desk answers it where it runs: in a cluster,
    /// a desk served elsewhere gets the query and sends back the answer alone.
    pub async fn view(&self, tenant: &TenantId, query: DeskQuery) -> Result<DeskView, DeskError> {
        let Some(cluster) = &self.cluster else {
            return self.view_here(tenant, query).await;
        };
        if self.serves(tenant) {
            return self.view_here(tenant, query).await;
        }
        let request = ShardRequest::DeskView {
            tenant: tenant.clone(),
            query,
        };
        match cluster
            .route(request, |request| self.serve_here(request))
            .await
        {
            ShardReply::DeskView(answer) => answer,
            _ => Err(DeskError::Unavailable),
        }
    }

    /// The seat of `agent` (`None`: no such agent).
    pub async fn seat(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Option<SeatView>, DeskError> {
        match self.view(tenant, DeskQuery::Seat(agent.clone())).await? {
            DeskView::Seat(seat) => Ok(seat.map(|seat| *seat)),
            _ => Err(DeskError::Unavailable),
        }
    }

    /// The queue of `group`.
    pub async fn queue(&self, tenant: &TenantId, group: &str) -> Result<QueueView, DeskError> {
        match self
            .view(tenant, DeskQuery::Queue(group.to_owned()))
            .await?
        {
            DeskView::Queue(queue) => Ok(*queue),
            _ => Err(DeskError::Unavailable),
        }
    }

    /// Every seat, by agent id.
    pub async fn seats(&self, tenant: &TenantId) -> Result<Vec<(AgentId, SeatView)>, DeskError> {
        match self.view(tenant, DeskQuery::Seats).await? {
            DeskView::Seats(seats) => Ok(seats),
            _ => Err(DeskError::Unavailable),
        }
    }

    /// Every known group's queue in brief.
    pub async fn queues(&self, tenant: &TenantId) -> Result<Vec<QueueBrief>, DeskError> {
        match self.view(tenant, DeskQuery::Queues).await? {
            DeskView::Queues(queues) => Ok(queues),
            _ => Err(DeskError::Unavailable),
        }
    }

    /// The intent → group table.
    pub async fn routing_table(&self, tenant: &TenantId) -> Result<RoutingTableView, DeskError> {
        match self.view(tenant, DeskQuery::RoutingTable).await? {
            DeskView::RoutingTable(table) => Ok(table),
            _ => Err(DeskError::Unavailable),
        }
    }

    /// The tier of `customer`.
    pub async fn tier(&self, tenant: &TenantId, customer: &CustomerId) -> Result<Tier, DeskError> {
        match self.view(tenant, DeskQuery::Tier(customer.clone())).await? {
            DeskView::Tier(tier) => Ok(tier),
            _ => Err(DeskError::Unavailable),
        }
    }

    /// The customer `customer` is merged into now, if any.
    pub async fn merged_into(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<CustomerId>, DeskError> {
        let query = DeskQuery::MergedInto(customer.clone());
        match self.view(customer.tenant(), query).await? {
            DeskView::MergedInto(into) => Ok(into),
            _ => Err(DeskError::Unavailable),
        }
    }

    /// Every customer merged into `customer`, directly or through others.
    pub async fn absorbed_customers(
        &self,
        customer: &CustomerId,
    ) -> Result<Vec<CustomerId>, DeskError> {
        match self
            .view(customer.tenant(), DeskQuery::Absorbed(customer.clone()))
            .await?
        {
            DeskView::Customers(customers) => Ok(customers),
            _ => Err(DeskError::Unavailable),
        }
    }

    /// One merge of customers of `tenant` (`None`: no such merge).
    pub async fn merge(
        &self,
        tenant: &TenantId,
        merge: &crest_proto::MergeId,
    ) -> Result<Option<crate::customer::merges::MergeRecord>, DeskError> {
        match self.view(tenant, DeskQuery::Merge(merge.clone())).await? {
            DeskView::Merge(record) => Ok(record),
            _ => Err(DeskError::Unavailable),
        }
    }

    async fn view_here(&self, tenant: &TenantId, query: DeskQuery) -> Result<DeskView, DeskError> {
        // A tenant without a desk has no merges: a customer's first message asks, and must not
        // open a desk (and a directory entry) for every tenant that ever received one.
        if let Some(answer) = query.answer_without_desk()
            && self.serves(tenant)
            && !self.has_desk(tenant).await
        {
            return Ok(answer);
        }
        let settings = Arc::clone(&self.settings);
        self.query_here(tenant, move |state, now| {
            query.answer(state, now, &settings)
        })
        .await
    }

    /// Reads the desk of `tenant` on this node: `read(state, now_ms)`, in the desk actor (tests and
    /// in-process callers; other nodes ask with [`Self::view`]). Unavailable when the desk runs
    /// on another node.
    pub async fn query<T: Send + 'static>(
        &self,
        tenant: &TenantId,
        read: impl FnOnce(&DeskState, u64) -> T + Send + 'static,
    ) -> Result<T, DeskError> {
        self.query_here(tenant, read).await
    }

    async fn query_here<T: Send + 'static>(
        &self,
        tenant: &TenantId,
        read: impl FnOnce(&DeskState, u64) -> T + Send + 'static,
    ) -> Result<T, DeskError> {
        let desk = self.desk(tenant).await?;
        let (reply, answer) = oneshot::channel();
        desk.cast(DeskMsg::Query(Box::new(move |state, now| {
            let _ = reply.send(read(state, now));
        })))
        .map_err(|_| DeskError::Unavailable)?;
        answer.await.map_err(|_| DeskError::Unavailable)
    }

    /// The routing settings.
    #[must_use]
    pub fn settings(&self) -> &DeskSettings {
        &self.settings
    }

    /// Stops every desk (at shutdown).
    pub async fn stop(&self) {
        let desks: Vec<ActorRef<DeskMsg>> = self
            .desks
            .lock()
            .await
            .drain()
            .map(|(_, desk)| desk)
            .collect();
        for desk in desks {
            desk.stop_and_wait(Some("shutdown".to_owned()), None)
                .await
                .ok();
        }
    }
}

/// The routing desks as the customers' [`crate::command::MergeDirectory`]. Weak: the hub holds
/// the entity context that holds this, and a cycle would keep the journal open after the node
/// stopped.
#[derive(Debug, Clone)]
pub struct MergeLookup(pub std::sync::Weak<RoutingHub>);

#[async_trait::async_trait]
impl crate::command::MergeDirectory for MergeLookup {
    async fn merged_into(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<CustomerId>, crate::command::CommandError> {
        let Some(hub) = self.0.upgrade() else {
            return Err(crate::command::CommandError::Unavailable);
        };
        hub.merged_into(customer)
            .await
            .map_err(|error| match error {
                DeskError::Journal(error) => crate::command::CommandError::Journal(error),
                _ => crate::command::CommandError::Unavailable,
            })
    }
}
