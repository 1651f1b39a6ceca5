//! The routing hub of a node: finds or starts the desk actor of each tenant and keeps the directory
//! of tenants with a desk (so every desk, with its timers, is recovered at start). Commands reach a
//! desk through it: from HTTP handlers, and from the reactor (the conversation events routing
//! reacts to: handoffs, resolutions, closes, the bot's after-sales flows).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crest_proto::envelope::EventMeta;
use crest_proto::routing::{DeskOpened, DirectoryEvent};
use crest_proto::{StreamId, TenantId};
use ractor::{Actor, ActorRef, ActorStatus};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, oneshot};

use super::actor::{DeskActor, DeskArgs, DeskCommandError, DeskMsg, DeskReply};
use super::decide::{DeskCommand, DeskRejection, DeskSettings};
use super::state::DeskState;
use crate::context::EntityContext;
use crate::persistence::{Aggregate, Persistent};
use crate::ports::journal::{JournalError, StorageErrorKind};

/// Why a routing request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
        }
    }
}

/// Finds desks and feeds them.
#[derive(Debug)]
pub struct RoutingHub {
    context: Arc<EntityContext>,
    settings: Arc<DeskSettings>,
    desks: Mutex<HashMap<TenantId, ActorRef<DeskMsg>>>,
    directory: Mutex<Persistent<DirectoryState>>,
}

impl RoutingHub {
    /// Recovers the directory and every desk in it (re-arming their timers).
    pub async fn start(
        context: Arc<EntityContext>,
        settings: DeskSettings,
    ) -> Result<Arc<Self>, JournalError> {
        let directory =
            Persistent::<DirectoryState>::recover(StreamId::desk_directory(), &context).await?;
        let tenants = directory.state.tenants.clone();
        let hub = Arc::new(Self {
            context,
            settings: Arc::new(settings),
            desks: Mutex::new(HashMap::new()),
            directory: Mutex::new(directory),
        });
        for tenant in tenants {
            hub.desk(&tenant).await?;
        }
        Ok(hub)
    }

    /// The desk of `tenant`, started (and registered in the directory) if needed.
    async fn desk(&self, tenant: &TenantId) -> Result<ActorRef<DeskMsg>, JournalError> {
        let mut desks = self.desks.lock().await;
        if let Some(desk) = desks.get(tenant)
            && matches!(
                desk.get_status(),
                ActorStatus::Running | ActorStatus::Starting | ActorStatus::Upgrading
            )
        {
            return Ok(desk.clone());
        }
        {
            let mut directory = self.directory.lock().await;
            if !directory.state.tenants.contains(tenant) {
                let event = DirectoryEvent::DeskOpened(DeskOpened {
                    tenant: tenant.clone(),
                });
                directory
                    .persist(&self.context, &[event], &Default::default())
                    .await?;
            }
        }
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

    /// Runs a command on `tenant`'s desk; answers once its events are journaled, with the desk's
    /// last sequence number if there were any. What they mean for conversations the reactor
    /// delivers (wait for it with [`crate::reactor::ReactorFeed::watch`]).
    pub async fn command(
        &self,
        tenant: &TenantId,
        command: DeskCommand,
    ) -> Result<Option<u64>, DeskError> {
        self.send(tenant, |reply| DeskMsg::Command(Box::new(command), reply))
            .await
    }

    /// Runs reactions (commands with the metadata naming their source events) on `tenant`'s desk
    /// as one batch: one journal append; reactions applied before or refused are skipped.
    pub async fn react(
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

    /// Reads `tenant`'s desk: `read(state, now_ms)`.
    pub async fn query<T: Send + 'static>(
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
