//! The desk actor: one per tenant. Runs commands through [`execute`], journals the events, arms the
//! next timer from the state (so timers survive restarts: deadlines are in the events) and tells
//! waiting customers their queue position (journaled notices). What a decision means for a
//! conversation (an assignment, a notice, a refusal) is a desk event; the reactor delivers it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crest_proto::envelope::EventMeta;
use crest_proto::routing::{CustomerNotified, DeskEvent};
use crest_proto::{ConversationId, StreamId, TenantId};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;
use tracing::Instrument;

use super::decide::{
    DeskCommand, DeskRejection, DeskSettings, execute, next_deadline, waiting_order,
};
use super::state::{ChatStage, DeskState};
use crate::context::EntityContext;
use crate::persistence::{Aggregate, Persistent};
use crate::ports::clock::Clock;
use crate::ports::journal::JournalError;

/// How often waiting customers may be told a changed queue position.
const POSITION_NOTICE_INTERVAL_MS: u64 = 15_000;
/// Position notices go to the first this-many waiting chats of a group (the rest see theirs in the
/// API and get a notice when they move up).
const POSITION_NOTICE_LIMIT: usize = 50;

/// What a desk command answers once its events are journaled: the desk's last sequence number if
/// it appended events (`None`: the command changed nothing).
pub type DeskReply = oneshot::Sender<Result<Option<u64>, DeskCommandError>>;

/// Why a desk command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeskCommandError {
    /// The desk refused it.
    #[error(transparent)]
    Rejected(#[from] DeskRejection),
    /// The journal failed; nothing was decided. Retrying is safe.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// A read of the desk's state.
pub type DeskRead = Box<dyn FnOnce(&DeskState, u64) + Send>;

/// Messages of the desk actor.
pub enum DeskMsg {
    /// Run a command and answer once its events are journaled.
    Command(Box<DeskCommand>, DeskReply),
    /// Run the reactions to conversation events (each command with the metadata naming its source
    /// event) and journal all their events in one append. A reaction applied before (delivered
    /// again) or refused is skipped.
    Reactions(Vec<(DeskCommand, EventMeta)>, DeskReply),
    /// Read the state (with the desk's `now`).
    Query(DeskRead),
    /// A timer fired.
    Tick(u64),
}

impl std::fmt::Debug for DeskMsg {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Command(command, _) => write!(formatter, "Command({command:?})"),
            Self::Reactions(commands, _) => {
                write!(formatter, "Reactions({} commands)", commands.len())
            }
            Self::Query(_) => formatter.write_str("Query"),
            Self::Tick(generation) => write!(formatter, "Tick({generation})"),
        }
    }
}

/// Arguments of a desk actor.
#[derive(Debug)]
pub struct DeskArgs {
    /// The tenant.
    pub tenant: TenantId,
    /// Node context (journal, outbox, region).
    pub context: Arc<EntityContext>,
    /// Routing tunables.
    pub settings: Arc<DeskSettings>,
}

/// Live state of a desk actor.
#[derive(Debug)]
pub struct DeskRunning {
    tenant: TenantId,
    context: Arc<EntityContext>,
    settings: Arc<DeskSettings>,
    /// The node's clock (the desk's `now`; timers are armed on tokio's time).
    clock: Arc<dyn Clock>,
    persistent: Persistent<DeskState>,
    timer_generation: u64,
    armed_for: Option<u64>,
    /// Per waiting chat: the position last told and when.
    told: HashMap<ConversationId, (usize, u64)>,
}

/// The desk actor.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeskActor;

impl Actor for DeskActor {
    type Msg = DeskMsg;
    type State = DeskRunning;
    type Arguments = DeskArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let stream = StreamId::desk(&args.tenant);
        let persistent = Persistent::<DeskState>::recover(stream, &args.context).await?;
        let mut running = DeskRunning {
            tenant: args.tenant,
            clock: Arc::clone(&args.context.clock),
            context: args.context,
            settings: args.settings,
            persistent,
            timer_generation: 0,
            armed_for: None,
            told: HashMap::new(),
        };
        for customer in &running.persistent.state.vips {
            running.context.vips.set(customer, true);
        }
        // Decisions journaled before a crash reach their conversations through the reactor, which
        // resumes from its own progress: nothing to re-send here. Timers re-arm from the deadlines.
        // Chats waiting now were told their position before the restart (it is in their
        // conversation): they hear again only when it changes, like any waiting chat.
        running.told = told_at_recovery(&running);
        arm_timer(&myself, &mut running);
        Ok(running)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        running: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let mailbox = || {
            running
                .context
                .metrics
                .mailbox_depth
                .with_label_values(&["desk"])
        };
        let result = match message {
            DeskMsg::Command(command, reply) => {
                mailbox().dec();
                let span = command_span(running, command.name());
                let result = run(running, *command, false).instrument(span).await;
                let failed = matches!(result, Err(DeskCommandError::Journal(_)));
                let _ = reply.send(result);
                failed
            }
            DeskMsg::Reactions(commands, reply) => {
                mailbox().dec();
                let span = command_span(running, "reactions");
                span.record("reactions", commands.len());
                let result = run_reactions(running, commands).instrument(span).await;
                let failed = result.is_err();
                let _ = reply.send(result);
                failed
            }
            DeskMsg::Query(query) => {
                query(&running.persistent.state, running.clock.now_ms());
                return Ok(());
            }
            DeskMsg::Tick(generation) => {
                if generation != running.timer_generation {
                    return Ok(()); // superseded by a later timer
                }
                running.armed_for = None;
                let span = command_span(running, DeskCommand::Tick.name());
                let result = run(running, DeskCommand::Tick, true).instrument(span).await;
                if let Err(error) = &result {
                    tracing::warn!(tenant = %running.tenant, %error, "desk timers not journaled");
                }
                result.is_err()
            }
        };
        if result {
            // Memory is ahead of the journal: stop; the hub restarts the desk and it recovers.
            myself.stop(Some("journal error".to_owned()));
            return Ok(());
        }
        arm_timer(&myself, running);
        Ok(())
    }
}

/// The span of one desk command, timer tick or batch of reactions (`reactions`: how many).
fn command_span(running: &DeskRunning, command: &'static str) -> tracing::Span {
    tracing::info_span!(
        "desk_command",
        tenant = %running.tenant,
        stream = %running.persistent.stream,
        command,
        reactions = tracing::field::Empty,
    )
}

/// Runs one command (or a timer tick), adds the queue-position notices it leads to, and journals
/// all its events in one append.
async fn run(
    running: &mut DeskRunning,
    command: DeskCommand,
    tick: bool,
) -> Result<Option<u64>, DeskCommandError> {
    let now = running.clock.now_ms();
    let expected_seq = running.persistent.state.seq;
    let mut outcome = execute(
        &mut running.persistent.state,
        &running.tenant,
        &running.settings,
        command,
        now,
    )?;
    outcome.events.extend(position_notices(running, tick, now));
    let metas = vec![EventMeta::default(); outcome.events.len()];
    journal(running, expected_seq, &outcome.events, &metas, now).await
}

/// Runs reactions one after the other (each sees the events of the ones before) and journals all
/// their events in one append: one fsync for a whole batch of the reactor. Each event carries its
/// reaction's source, so a reaction delivered again after a crash is recognised (the inbox).
async fn run_reactions(
    running: &mut DeskRunning,
    commands: Vec<(DeskCommand, EventMeta)>,
) -> Result<Option<u64>, DeskCommandError> {
    let now = running.clock.now_ms();
    let expected_seq = running.persistent.state.seq;
    let mut events = Vec::new();
    let mut metas = Vec::new();
    for (command, meta) in commands {
        let source = meta.source();
        if let Some((stream, seq)) = &source
            && running.persistent.state.inbox.applied(stream, *seq)
        {
            continue;
        }
        match execute(
            &mut running.persistent.state,
            &running.tenant,
            &running.settings,
            command,
            now,
        ) {
            Ok(outcome) => {
                if let Some((stream, seq)) = &source
                    && !outcome.events.is_empty()
                {
                    running.persistent.state.inbox.record(stream, *seq, now);
                }
                metas.extend(std::iter::repeat_n(meta, outcome.events.len()));
                events.extend(outcome.events);
            }
            Err(rejection) => {
                tracing::debug!(tenant = %running.tenant, %rejection, "reaction refused by the desk");
            }
        }
    }
    let notices = position_notices(running, false, now);
    metas.extend(std::iter::repeat_n(EventMeta::default(), notices.len()));
    events.extend(notices);
    journal(running, expected_seq, &events, &metas, now).await
}

/// Journals events already applied to the state and keeps the node's VIP registry in step.
/// Returns the desk's last sequence number if there were events.
async fn journal(
    running: &mut DeskRunning,
    expected_seq: u64,
    events: &[DeskEvent],
    metas: &[EventMeta],
    now: u64,
) -> Result<Option<u64>, DeskCommandError> {
    if events.is_empty() {
        return Ok(None);
    }
    running
        .persistent
        .persist_applied(&running.context, expected_seq, events, metas, now)
        .await?;
    for event in events {
        if let DeskEvent::CustomerTierSet(set) = event {
            let vip = set.tier == crest_proto::routing::Tier::Vip;
            running.context.vips.set(&set.customer, vip);
        }
    }
    Ok(Some(running.persistent.state.seq))
}

/// Schedules a tick at the next deadline (and, while chats wait, at the next position notice).
fn arm_timer(myself: &ActorRef<DeskMsg>, running: &mut DeskRunning) {
    let state = &running.persistent.state;
    let mut due = next_deadline(state);
    let anyone_waiting = state
        .chats
        .values()
        .any(|chat| chat.stage == super::state::ChatStage::Waiting);
    if anyone_waiting {
        let notice_due = running.clock.now_ms() + POSITION_NOTICE_INTERVAL_MS;
        due = Some(due.map_or(notice_due, |due| due.min(notice_due)));
    }
    let Some(due) = due else {
        running.armed_for = None;
        return;
    };
    if running.armed_for.is_some_and(|armed| armed <= due) {
        return; // an earlier tick is coming; it re-arms
    }
    running.timer_generation += 1;
    running.armed_for = Some(due);
    let generation = running.timer_generation;
    let delay = Duration::from_millis(due.saturating_sub(running.clock.now_ms()));
    myself.send_after(delay, move || DeskMsg::Tick(generation));
}

/// Queue-position notices, journaled as [`DeskEvent::CustomerNotified`] (applied to the state here):
/// after a command, to chats that just started waiting (their first notice, at once); on a timer
/// tick, to every waiting chat whose position changed (at most one per chat every
/// [`POSITION_NOTICE_INTERVAL_MS`]), the first [`POSITION_NOTICE_LIMIT`] of each group.
fn position_notices(running: &mut DeskRunning, tick: bool, now: u64) -> Vec<DeskEvent> {
    let notices = if tick {
        notices_on_tick(running)
    } else {
        notices_for_newcomers(running)
    };
    let state = &mut running.persistent.state;
    notices
        .into_iter()
        .map(|notice| {
            let event = DeskEvent::CustomerNotified(notice);
            let seq = state.seq + 1;
            state.apply_event(&event, seq, now);
            event
        })
        .collect()
}

fn notices_for_newcomers(running: &mut DeskRunning) -> Vec<CustomerNotified> {
    let now = running.clock.now_ms();
    let state = &running.persistent.state;
    let mut notices = Vec::new();
    let newcomers: Vec<&ConversationId> = state
        .chats
        .iter()
        .filter(|(conversation, chat)| {
            chat.stage == ChatStage::Waiting && !running.told.contains_key(*conversation)
        })
        .map(|(conversation, _)| conversation)
        .collect();
    let mut told = Vec::with_capacity(newcomers.len());
    for conversation in newcomers {
        // One pass, no sort: the position is one more than the chats served before this one.
        let position = waiting_position(state, conversation, now, &running.settings);
        told.push((conversation.clone(), (position, now)));
        if position <= POSITION_NOTICE_LIMIT {
            notices.push(position_notice(state, conversation, position));
        }
    }
    running.told.extend(told);
    notices
}

fn notices_on_tick(running: &mut DeskRunning) -> Vec<CustomerNotified> {
    let now = running.clock.now_ms();
    let state = &running.persistent.state;
    let mut notices = Vec::new();
    let mut still_waiting = HashMap::new();
    for group in state.group_names() {
        let order = waiting_order(state, &group, now, &running.settings);
        for (index, (conversation, _)) in order.into_iter().enumerate() {
            let position = index + 1;
            let told = running.told.get(&conversation).copied();
            let due = index < POSITION_NOTICE_LIMIT
                && told.is_none_or(|(told_position, at)| {
                    told_position != position && now >= at + POSITION_NOTICE_INTERVAL_MS
                });
            if due {
                notices.push(position_notice(state, &conversation, position));
                still_waiting.insert(conversation, (position, now));
            } else {
                still_waiting.insert(conversation, told.unwrap_or((position, now)));
            }
        }
    }
    running.told = still_waiting;
    notices
}

/// Queue positions as they stand when the desk recovers, counted as told now.
fn told_at_recovery(running: &DeskRunning) -> HashMap<ConversationId, (usize, u64)> {
    let now = running.context.clock.now_ms();
    let state = &running.persistent.state;
    let mut told = HashMap::new();
    for group in state.group_names() {
        let order = waiting_order(state, &group, now, &running.settings);
        for (index, (conversation, _)) in order.into_iter().enumerate() {
            told.insert(conversation, (index + 1, now));
        }
    }
    told
}

/// The 1-based queue position of a waiting chat (the order of [`waiting_order`]).
fn waiting_position(
    state: &DeskState,
    conversation: &ConversationId,
    now_ms: u64,
    settings: &DeskSettings,
) -> usize {
    let Some(chat) = state.chats.get(conversation) else {
        return 0;
    };
    let effective = |candidate: &super::state::Chat| {
        #[allow(clippy::cast_precision_loss)]
        let waited_s = now_ms.saturating_sub(candidate.waiting_since_ms) as f64 / 1000.0;
        f64::from(candidate.priority) + waited_s * settings.aging_points_per_s
    };
    let mine = (effective(chat), chat.waiting_since_ms, conversation);
    1 + state
        .chats
        .iter()
        .filter(|(other, candidate)| {
            *other != conversation
                && candidate.stage == ChatStage::Waiting
                && candidate.group == chat.group
                && {
                    let theirs = (effective(candidate), candidate.waiting_since_ms, *other);
                    theirs.0 > mine.0
                        || (theirs.0 == mine.0 && (theirs.1, theirs.2) < (mine.1, mine.2))
                }
        })
        .count()
}

fn position_notice(
    state: &DeskState,
    conversation: &ConversationId,
    position: usize,
) -> CustomerNotified {
    let chat = state.chats.get(conversation);
    let english = chat.and_then(|chat| chat.summary.language.as_deref()) == Some("en");
    let group = chat.map_or("", |chat| chat.group.as_str());
    let online_capacity: u64 = state
        .agents
        .values()
        .filter(|seat| {
            seat.status == crest_proto::routing::Presence::Online
                && seat.groups.iter().any(|g| g == group)
        })
        .map(|seat| u64::from(seat.capacity.max(1)))
        .sum();
    let minutes = estimated_wait_s(position, online_capacity, state.avg_handle_s)
        .div_ceil(60)
        .max(1);
    let text = match (english, online_capacity > 0) {
        (true, true) => format!(
            "You are number {position} in the queue for a human agent. Estimated wait: about {minutes} min."
        ),
        (true, false) => format!(
            "You are number {position} in the queue for a human agent. No agent is online yet; you will be connected as soon as one signs in."
        ),
        (false, true) => {
            format!("您正在排队等待人工客服，当前排在第 {position} 位，预计等待约 {minutes} 分钟。")
        }
        (false, false) => format!(
            "您正在排队等待人工客服，当前排在第 {position} 位。暂时没有客服在线，客服上线后会第一时间为您接入。"
        ),
    };
    CustomerNotified {
        conversation: conversation.clone(),
        text,
    }
}

/// Estimated wait of the chat at `position`: the chats ahead are served `online_capacity` at a
/// time, each taking the average handle time.
#[must_use]
pub fn estimated_wait_s(position: usize, online_capacity: u64, avg_handle_s: f64) -> u64 {
    if online_capacity == 0 {
        return 0;
    }
    let rounds = (position as u64).div_ceil(online_capacity);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let seconds = (rounds as f64 * avg_handle_s).round() as u64;
    seconds
}
