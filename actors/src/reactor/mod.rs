//! The reactor: the only bridge between entities' streams. It follows every journaled event (fed
//! by the entities as they persist, and after a restart from its own progress in the journal),
//! turns the events that concern another entity into commands ([`react::reaction`]), delivers
//! them, and then records how far it got ([`Cursor::Reacted`]).
//!
//! Delivery is at least once: after a crash the reactor resumes from its last recorded progress,
//! so some reactions are delivered again. Each command carries its source event (`<stream>@<seq>`
//! in the causation id), and each target keeps an [`Inbox`] of the last source event it applied,
//! so a reaction delivered again changes nothing: every decision's effect lands exactly once.
//!
//! It runs beside the outbox, not in its path: publication on the bus never waits for routing.
//! Within a batch, reactions to one tenant's desk go as one command batch (one journal append);
//! each conversation and agent gets its reactions in order, entities in parallel.

pub mod feed;
pub mod inbox;
pub mod react;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crest_proto::commands::ConversationCommand;
use crest_proto::envelope::EventMeta;
use crest_proto::{AgentId, ConversationId, CustomerId, Envelope, StreamId, TenantId, TicketId};

use feed::{Item, Watched};

pub use feed::{ProgressWatch, ReactorFeed, ReactorInput};
pub use inbox::Inbox;
pub use react::{Reaction, reactions};

use crate::agent::AgentCommand;
use crate::conversation::CommandError;
use crate::desk::{DeskCommand, DeskError, RoutingHub};
use crate::ports::journal::{Cursor, EventJournal, JournalError, read_all};
use crate::ports::outbound::{Outbound, OutboundNews, may_be_news, outbound_news};
use crate::shard::ShardRegion;
use crate::shard::recorder::RecordError;
use crate::ticket::TicketCommand;

/// Largest number of queued items handled in one batch.
const MAX_BATCH_ITEMS: usize = 512;
/// Lagging streams read together at recovery.
const RECOVERY_CHUNK: usize = 256;
/// How often the reactor records its progress in the journal. Recording after every batch cost a
/// progress write (and a lagging-marker removal) per stream per batch; coalesced, a conversation
/// answered within the interval costs one. Losing up to this much progress in a crash only means
/// delivering those reactions again, which their targets recognise (their inboxes).
const RECORD_PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// Progress is recorded earlier when this many streams wait for it.
const MAX_UNRECORDED_STREAMS: usize = 8_192;
/// First retry delay after a failed delivery; doubles up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(20);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);

/// Fault injection for tests: the reactor stops as if the process died at a chosen point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReactorFaults {
    /// Stop at the first batch holding an event of this type (`desk.chat_assigned`, …).
    pub halt_at: Option<String>,
    /// Stop after delivering that batch but before recording progress (else: before delivering).
    pub after_delivery: bool,
}

impl ReactorFaults {
    fn halts(&self, envelopes: &[Arc<Envelope>]) -> bool {
        self.halt_at.as_deref().is_some_and(|event_type| {
            envelopes
                .iter()
                .any(|envelope| envelope.event_type == event_type)
        })
    }
}

/// The entities reactions are delivered to.
#[derive(Debug, Clone)]
pub struct Targets {
    /// Conversations, customers and agents.
    pub region: ShardRegion,
    /// Routing desks.
    pub routing: Arc<RoutingHub>,
    /// Retried deliveries, by target kind (`crest_reactor_retries_total`).
    pub retries: prometheus::IntCounterVec,
    /// Where messages to customers leave for their channels (`None`: nowhere).
    pub outbound: Option<Arc<dyn Outbound>>,
}

/// A running reactor.
#[derive(Debug)]
pub struct Reactor {
    task: tokio::task::JoinHandle<()>,
    catch_up: CatchUp,
}

/// Recovers the reactions to chosen streams' events beyond the reactor's recorded progress (see
/// [`Reactor::catch_up`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct CatchUp {
    targets: Targets,
    journal: Arc<dyn EventJournal>,
    watched: Arc<Watched>,
}

impl CatchUp {
    /// Delivers the reactions to the events of the streams `wanted` selects that were journaled
    /// beyond the reactor's recorded progress: what a node that served those streams before (and
    /// crashed, or handed them over before its reactor got there) left undone. Returns the number
    /// of events handled.
    pub async fn run(&self, wanted: impl Fn(&StreamId) -> bool) -> Result<usize, JournalError> {
        recover(self.journal.as_ref(), &self.targets, &self.watched, wanted).await
    }
}

impl Reactor {
    /// Delivers the reactions to every event journaled beyond the reactor's recorded progress (after
    /// a crash), then follows `input`. Returns once recovery is done; the number of events
    /// recovered is logged.
    ///
    /// In a cluster (`recover_all` false) nothing is recovered at start: a node serves no shard
    /// yet, and [`CatchUp::run`] recovers each shard's streams when the node is given it.
    pub async fn start(
        input: ReactorInput,
        targets: Targets,
        journal: Arc<dyn EventJournal>,
        faults: ReactorFaults,
        recover_all: bool,
    ) -> Result<Self, JournalError> {
        if recover_all {
            let recovered = recover(journal.as_ref(), &targets, &input.watched, |_| true).await?;
            if recovered > 0 {
                tracing::info!(
                    recovered,
                    "reactions to events journaled before the last stop delivered"
                );
            }
        }
        let watched = Arc::clone(&input.watched);
        let task = tokio::spawn(follow(input, targets.clone(), Arc::clone(&journal), faults));
        Ok(Self {
            task,
            catch_up: CatchUp {
                targets,
                journal,
                watched,
            },
        })
    }

    /// What recovers chosen streams' reactions (in a cluster: those of shards just taken up).
    #[must_use]
    pub fn catch_up(&self) -> CatchUp {
        self.catch_up.clone()
    }

    /// Stops following (what is left is recovered at the next start).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn recover(
    journal: &dyn EventJournal,
    targets: &Targets,
    watched: &Watched,
    wanted: impl Fn(&StreamId) -> bool,
) -> Result<usize, JournalError> {
    let started = std::time::Instant::now();
    let mut lagging = journal.lagging(Cursor::Reacted).await?;
    lagging.retain(|lagging| wanted(&lagging.stream));
    tracing::info!(
        streams = lagging.len(),
        elapsed_ms = started.elapsed().as_millis(),
        "streams the reactor had not finished"
    );
    let mut recovered = 0;
    for chunk in lagging.chunks(RECOVERY_CHUNK) {
        let mut envelopes = Vec::new();
        for stream in chunk {
            for stored in read_all(journal, &stream.stream, stream.done_seq).await? {
                envelopes.push(Arc::new(stored.envelope()?));
            }
        }
        deliver(targets, &envelopes).await;
        let marks = progress(&envelopes);
        journal.mark_progress(Cursor::Reacted, &marks).await?;
        watched.advance(&marks);
        recovered += envelopes.len();
    }
    Ok(recovered)
}

async fn follow(
    mut input: ReactorInput,
    targets: Targets,
    journal: Arc<dyn EventJournal>,
    faults: ReactorFaults,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH_ITEMS);
    // Progress delivered but not yet recorded in the journal (see `RECORD_PROGRESS_EVERY`).
    let mut unrecorded: HashMap<StreamId, u64> = HashMap::new();
    let mut recorded_at = tokio::time::Instant::now();
    loop {
        let received = tokio::time::timeout(
            RECORD_PROGRESS_EVERY,
            input.items.recv_many(&mut batch, MAX_BATCH_ITEMS),
        )
        .await;
        if received == Ok(0) {
            record(journal.as_ref(), &mut unrecorded).await;
            return;
        }
        let mut envelopes = Vec::new();
        let mut flushes = Vec::new();
        let mut taken = 0;
        for item in batch.drain(..) {
            match item {
                Item::Events(events) => {
                    taken += events.len();
                    // Streams the reactor does not follow never lead to a reaction.
                    envelopes.extend(
                        events
                            .into_iter()
                            .filter(|envelope| Cursor::Reacted.follows(envelope.stream.kind())),
                    );
                }
                Item::Flush(reply) => flushes.push(reply),
            }
        }
        input.depth.sub(i64::try_from(taken).unwrap_or(i64::MAX));
        if !envelopes.is_empty() {
            let halt = faults.halts(&envelopes);
            if halt && !faults.after_delivery {
                tracing::warn!("reactor halted before delivery (fault injection)");
                return;
            }
            deliver(&targets, &envelopes).await;
            if halt {
                tracing::warn!("reactor halted before recording progress (fault injection)");
                return;
            }
            let marks = progress(&envelopes);
            input.watched.advance(&marks);
            for (stream, seq) in marks {
                let done = unrecorded.entry(stream).or_default();
                *done = (*done).max(seq);
            }
        }
        let due = recorded_at.elapsed() >= RECORD_PROGRESS_EVERY
            || unrecorded.len() >= MAX_UNRECORDED_STREAMS;
        if due || !flushes.is_empty() {
            record(journal.as_ref(), &mut unrecorded).await;
            recorded_at = tokio::time::Instant::now();
        }
        for reply in flushes {
            let _ = reply.send(());
        }
    }
}

/// Records the reactor's progress in the journal (one write for every stream).
async fn record(journal: &dyn EventJournal, unrecorded: &mut HashMap<StreamId, u64>) {
    if unrecorded.is_empty() {
        return;
    }
    let marks: Vec<(StreamId, u64)> = unrecorded.drain().collect();
    if let Err(error) = journal.mark_progress(Cursor::Reacted, &marks).await {
        tracing::warn!(streams = marks.len(), %error, "reactor progress not recorded");
    }
}

/// The last sequence number of each stream among `envelopes`.
fn progress(envelopes: &[Arc<Envelope>]) -> Vec<(StreamId, u64)> {
    let mut last: HashMap<&StreamId, u64> = HashMap::new();
    for envelope in envelopes {
        let seq = last.entry(&envelope.stream).or_default();
        *seq = (*seq).max(envelope.seq);
    }
    last.into_iter()
        .map(|(stream, seq)| (stream.clone(), seq))
        .collect()
}

/// Delivers the reactions to `envelopes` (each stream's in order), retrying until each target
/// answers; a target's refusal is final.
async fn deliver(targets: &Targets, envelopes: &[Arc<Envelope>]) {
    let mut desks: BTreeMap<TenantId, Vec<(DeskCommand, EventMeta)>> = BTreeMap::new();
    let mut entities: HashMap<Entity, Vec<(EntityCommand, EventMeta)>> = HashMap::new();
    let mut news = Vec::new();
    for envelope in envelopes {
        if let Some(outbound) = &targets.outbound
            && may_be_news(envelope)
            && envelope
                .stream
                .tenant_id()
                .is_some_and(|tenant| outbound.follows(&tenant))
            && let Some(found) = outbound_news(envelope)
        {
            news.push(found);
        }
        let found = match reactions(envelope) {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(
                    stream = %envelope.stream,
                    seq = envelope.seq,
                    %error,
                    "event does not decode; no reaction"
                );
                continue;
            }
        };
        for reaction in found {
            let meta = EventMeta::caused_by(&envelope.stream, envelope.seq);
            match reaction {
                Reaction::Desk { tenant, command } => {
                    desks.entry(tenant).or_default().push((command, meta));
                }
                Reaction::Conversation {
                    conversation,
                    command,
                } => entities
                    .entry(Entity::Conversation(conversation))
                    .or_default()
                    .push((EntityCommand::Conversation(Box::new(command)), meta)),
                Reaction::Agent { agent, command } => entities
                    .entry(Entity::Agent(agent))
                    .or_default()
                    .push((EntityCommand::Agent(command), meta)),
                Reaction::Ticket { ticket, command } => entities
                    .entry(Entity::Ticket(ticket))
                    .or_default()
                    .push((EntityCommand::Ticket(Box::new(command)), meta)),
                Reaction::CustomerConversationEnded {
                    customer,
                    conversation,
                } => entities
                    .entry(Entity::Customer(customer))
                    .or_default()
                    .push((EntityCommand::ConversationEnded(conversation), meta)),
                Reaction::CustomerMergesChanged { customer, merge } => entities
                    .entry(Entity::Customer(customer))
                    .or_default()
                    .push((EntityCommand::MergesChanged(merge), meta)),
            }
        }
    }
    let to_desks = desks
        .into_iter()
        .map(|(tenant, reactions)| to_desk(targets, tenant, reactions));
    let to_entities = entities
        .into_iter()
        .map(|(entity, commands)| to_entity(targets, entity, commands));
    futures::future::join3(
        futures::future::join_all(to_desks),
        futures::future::join_all(to_entities),
        to_outbound(targets, news),
    )
    .await;
}

/// Hands the outbound news to the port, retrying until it accepts them (it makes them durable:
/// progress is recorded only after this returns).
async fn to_outbound(targets: &Targets, news: Vec<OutboundNews>) {
    let Some(outbound) = &targets.outbound else {
        return;
    };
    if news.is_empty() {
        return;
    }
    let mut delay = FIRST_RETRY_DELAY;
    loop {
        match outbound.news(news.clone()).await {
            Ok(()) => return,
            Err(error) => {
                targets.retries.with_label_values(&["outbound"]).inc();
                tracing::warn!(news = news.len(), %error, retry_in_ms = delay.as_millis(), "outbound news not accepted");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}

/// An entity hosted by the shards that reactions go to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Entity {
    Conversation(ConversationId),
    Agent(AgentId),
    Customer(CustomerId),
    Ticket(TicketId),
}

impl Entity {
    fn kind(&self) -> &'static str {
        match self {
            Self::Conversation(_) => "conversation",
            Self::Agent(_) => "agent",
            Self::Customer(_) => "customer",
            Self::Ticket(_) => "ticket",
        }
    }
}

/// A command for an [`Entity`].
#[derive(Debug, Clone)]
enum EntityCommand {
    Conversation(Box<ConversationCommand>),
    Agent(AgentCommand),
    Ticket(Box<TicketCommand>),
    ConversationEnded(ConversationId),
    MergesChanged(crest_proto::MergeId),
}

/// How a delivery ended: done, refused for good (the reaction is moot), or to be retried.
enum Delivered {
    Done,
    Refused(String),
    Retry(String),
}

impl From<Result<(), CommandError>> for Delivered {
    fn from(result: Result<(), CommandError>) -> Self {
        match result {
            Ok(()) => Self::Done,
            Err(CommandError::Rejected(rejection)) => Self::Refused(rejection.to_string()),
            Err(error) => Self::Retry(error.to_string()),
        }
    }
}

impl<A, R: std::fmt::Debug> From<Result<A, RecordError<R>>> for Delivered {
    fn from(result: Result<A, RecordError<R>>) -> Self {
        match result {
            Ok(_) => Self::Done,
            Err(RecordError::Rejected(rejection)) => Self::Refused(format!("{rejection:?}")),
            Err(error) => Self::Retry(error.to_string()),
        }
    }
}

async fn to_desk(targets: &Targets, tenant: TenantId, reactions: Vec<(DeskCommand, EventMeta)>) {
    let mut delay = FIRST_RETRY_DELAY;
    loop {
        match targets.routing.react(&tenant, reactions.clone()).await {
            Ok(_) => return,
            Err(DeskError::Rejected(rejection)) => {
                tracing::debug!(%tenant, %rejection, "reactions refused by the desk");
                return;
            }
            Err(error) => {
                targets.retries.with_label_values(&["desk"]).inc();
                tracing::warn!(%tenant, %error, retry_in_ms = delay.as_millis(), "reactions not delivered to the desk");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}

async fn to_entity(targets: &Targets, entity: Entity, commands: Vec<(EntityCommand, EventMeta)>) {
    let region = &targets.region;
    for (command, meta) in commands {
        let mut delay = FIRST_RETRY_DELAY;
        loop {
            let delivered: Delivered = match (&entity, &command) {
                (Entity::Conversation(conversation), EntityCommand::Conversation(command)) => {
                    region
                        .conversation_command(conversation, (**command).clone(), meta.clone())
                        .await
                        .map(|_| ())
                        .into()
                }
                (Entity::Customer(customer), EntityCommand::ConversationEnded(conversation)) => {
                    region
                        .end_customer_conversation(customer, conversation)
                        .await
                        .into()
                }
                (Entity::Customer(customer), EntityCommand::MergesChanged(merge)) => {
                    region.customer_merges_changed(customer, merge).await.into()
                }
                (Entity::Agent(agent), EntityCommand::Agent(command)) => region
                    .agent_command(agent, command.clone(), meta.clone())
                    .await
                    .into(),
                (Entity::Ticket(ticket), EntityCommand::Ticket(command)) => region
                    .ticket_command(ticket, (**command).clone(), meta.clone())
                    .await
                    .into(),
                _ => unreachable!("commands are grouped by the entity they are for"),
            };
            match delivered {
                Delivered::Done => break,
                Delivered::Refused(rejection) => {
                    // The entity moved on (a closed conversation, say): the reaction is moot.
                    tracing::debug!(?entity, %rejection, "reaction refused");
                    break;
                }
                Delivered::Retry(error) => {
                    targets.retries.with_label_values(&[entity.kind()]).inc();
                    tracing::warn!(?entity, %error, retry_in_ms = delay.as_millis(), "reaction not delivered");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_RETRY_DELAY);
                }
            }
        }
    }
}
