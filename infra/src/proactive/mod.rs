//! Proactive service: Crest writes to a customer unasked when the merchant's systems report a
//! commerce event (`order_unpaid`, `order_shipped`, `shipment_delayed`, `refund_completed`), on
//! rules each tenant keeps as data ([`rules::RulesDocument`]).
//!
//! **Rules** live in the stream `pro:<tenant>:rules`, read on demand (a tenant that never set any
//! gets [`rules::RulesDocument::defaults`]); every node reads the same stream, so a cluster agrees.
//!
//! **Decisions**: every trigger is decided once, by its id, and recorded in the customer's stream
//! `pro:<tenant>:cust.<customer>` with the reason, sent or not. The checks, in order:
//! `no_rule` (no rule for the trigger), `no_channel` (no open conversation, or its customer's last
//! channel has no outbound URL), `human_chat_open` (queued for or with an agent), `quiet_hours`
//! (in the tenant's time zone), `daily_limit` (messages already sent this local day); otherwise
//! `rule_matched` and the message is sent.
//!
//! **Single writer**: the record is appended with the sequence number it was decided on, so when
//! two nodes decide for the same customer at once one append fails, re-reads and decides again:
//! the daily cap holds across a cluster without a lock. The record is written before the
//! message: a crash in between leaves a `sent` record whose message a retry with the same id
//! sends (the conversation recognises the message id, so it is never written twice). If the
//! conversation refuses the message (a human took the chat in between), a second record for the
//! same id says so, and the last record of an id is its decision.
//!
//! **Delivery**: the message is a `conversation.proactive_sent` event of the customer's open
//! conversation, so agents see it in the history and the channel outbox delivers it to the
//! customer's last channel like a bot reply.

pub mod metrics;
pub mod rules;
pub mod silence;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crest_actors::conversation::{CommandError, ConversationState, Rejection, Status};
use crest_actors::node::Node;
use crest_actors::ports::journal::{EventJournal, JournalError, read_all};
use crest_proto::commands::ConversationCommand;
use crest_proto::envelope::EventMeta;
use crest_proto::proactive::{
    ProactiveDecided, ProactiveEvent, ProactiveRulesEvent, ProactiveRulesSet,
};
use crest_proto::{CustomerId, MessageId, StreamId, TenantId};

use crate::channels::ChannelStore;
use crate::directory::append_one;
pub use metrics::ProactiveMetrics;
use rules::RulesDocument;

/// Attempts of an append that keeps meeting another writer.
const APPEND_ATTEMPTS: usize = 5;

/// A trigger to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// Its id: the idempotency key.
    pub id: String,
    /// Its kind (a commerce event kind or a silence timer).
    pub kind: String,
    /// The customer.
    pub customer: CustomerId,
    /// The order it is about.
    pub order: Option<String>,
    /// When it happened (ms since the epoch).
    pub at_ms: u64,
}

/// A recorded decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// The record.
    pub record: ProactiveDecided,
    /// When it was recorded (ms since the epoch).
    pub decided_at_ms: u64,
}

/// Why a proactive request failed.
#[derive(Debug, thiserror::Error)]
pub enum ProactiveError {
    /// The rules are invalid, for these reasons.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// Other writers kept changing the stream.
    #[error("the customer's proactive record is being changed elsewhere; retry")]
    Busy,
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The conversation could not be reached; retrying with the same id is safe.
    #[error("the conversation is unavailable; retry with the same id")]
    Unavailable,
}

/// See the module's documentation.
pub struct ProactiveService {
    journal: Arc<dyn EventJournal>,
    node: Arc<Node>,
    channels: Arc<ChannelStore>,
    metrics: ProactiveMetrics,
    /// Each tenant's rules as of the sequence number read.
    rules: Mutex<HashMap<TenantId, (u64, Arc<RulesDocument>)>>,
}

impl std::fmt::Debug for ProactiveService {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ProactiveService")
            .finish_non_exhaustive()
    }
}

impl ProactiveService {
    /// A service deciding through `node`'s actors and delivering through `channels`.
    pub fn new(
        journal: Arc<dyn EventJournal>,
        node: Arc<Node>,
        channels: Arc<ChannelStore>,
        metrics: ProactiveMetrics,
    ) -> Self {
        Self {
            journal,
            node,
            channels,
            metrics,
            rules: Mutex::new(HashMap::new()),
        }
    }

    /// `tenant`'s rules (the defaults if it never set any) and whether they are the defaults.
    pub async fn rules(
        &self,
        tenant: &TenantId,
    ) -> Result<(Arc<RulesDocument>, bool), JournalError> {
        let stream = StreamId::proactive_rules(tenant);
        let known = self
            .rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .cloned();
        let after = known.as_ref().map_or(0, |(seq, _)| *seq);
        let events = read_all(&*self.journal, &stream, after).await?;
        let mut latest = known;
        for stored in events {
            let envelope = stored.envelope()?;
            let ProactiveRulesEvent::RulesSet(set) = envelope
                .decode_event::<ProactiveRulesEvent>()
                .map_err(|error| JournalError::Codec(error.to_string()))?;
            match serde_json::from_str::<RulesDocument>(&set.rules_json) {
                Ok(document) => latest = Some((envelope.seq, Arc::new(document))),
                Err(error) => {
                    tracing::error!(tenant = %tenant, seq = envelope.seq, %error, "stored proactive rules do not parse");
                }
            }
        }
        let Some((seq, document)) = latest else {
            return Ok((Arc::new(RulesDocument::defaults()), true));
        };
        self.rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant.clone(), (seq, Arc::clone(&document)));
        Ok((document, false))
    }

    /// Replaces `tenant`'s rules with `document`, once valid.
    pub async fn set_rules(
        &self,
        tenant: &TenantId,
        document: &RulesDocument,
        set_by: &str,
    ) -> Result<(), ProactiveError> {
        let problems = document.problems();
        if !problems.is_empty() {
            return Err(ProactiveError::Invalid(problems));
        }
        let rules_json = serde_json::to_string(document)
            .map_err(|error| ProactiveError::Invalid(vec![error.to_string()]))?;
        let event = ProactiveRulesEvent::RulesSet(ProactiveRulesSet {
            rules_json,
            set_by: set_by.to_owned(),
        });
        let stream = StreamId::proactive_rules(tenant);
        for _ in 0..APPEND_ATTEMPTS {
            let expected = self.journal.last_seq(&stream).await?;
            match append_one(&*self.journal, &stream, expected, &event).await {
                Ok(()) => return Ok(()),
                Err(JournalError::Conflict { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(ProactiveError::Busy)
    }

    /// Every decision recorded for `customer`, oldest first (a re-decided id appears twice; the
    /// later record is its decision).
    pub async fn decisions(&self, customer: &CustomerId) -> Result<Vec<Decided>, JournalError> {
        Ok(self.read_records(customer).await?.1)
    }

    /// Decides `trigger` (once per id: a repeated id answers the recorded decision, sending its
    /// message again if it was sent, which the conversation recognises); returns the decision and
    /// whether it was decided before.
    pub async fn decide(&self, trigger: &Trigger) -> Result<(Decided, bool), ProactiveError> {
        let tenant = trigger.customer.tenant().clone();
        let stream = StreamId::proactive(&trigger.customer);
        for _ in 0..APPEND_ATTEMPTS {
            let (seq, records) = self.read_records(&trigger.customer).await?;
            if let Some(known) = records
                .iter()
                .rev()
                .find(|decided| decided.record.id == trigger.id)
            {
                let known = known.clone();
                if known.record.decision == "sent" {
                    let decided = self.deliver(known, &trigger.customer).await?;
                    return Ok((decided, true));
                }
                return Ok((known, true));
            }
            let (rules, _) = self.rules(&tenant).await?;
            let now = self.node.now_ms();
            let (record, text) = self.judge(&rules, &records, trigger, now).await?;
            match append_one(
                &*self.journal,
                &stream,
                seq,
                &ProactiveEvent::Decided(record.clone()),
            )
            .await
            {
                Ok(()) => {}
                Err(JournalError::Conflict { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
            let decided = Decided {
                record,
                decided_at_ms: now,
            };
            let decided = match text {
                Some(text) => self.send(decided, &trigger.customer, text).await?,
                None => decided,
            };
            self.metrics
                .messages
                .with_label_values(&[
                    decided.record.trigger.as_str(),
                    decided.record.decision.as_str(),
                    decided.record.reason.as_str(),
                ])
                .inc();
            return Ok((decided, false));
        }
        Err(ProactiveError::Busy)
    }

    /// The decision for `trigger` now, and the text to send if it is to be sent.
    async fn judge(
        &self,
        rules: &RulesDocument,
        records: &[Decided],
        trigger: &Trigger,
        now_ms: u64,
    ) -> Result<(ProactiveDecided, Option<String>), ProactiveError> {
        let local_day = rules.local_day(now_ms);
        let mut record = ProactiveDecided {
            id: trigger.id.clone(),
            trigger: trigger.kind.clone(),
            order: trigger.order.clone(),
            decision: "suppressed".to_owned(),
            reason: String::new(),
            conversation: None,
            message: None,
            local_day: local_day.clone(),
            occurred_at_ms: trigger.at_ms,
        };
        let suppressed = |mut record: ProactiveDecided, reason: &str| {
            reason.clone_into(&mut record.reason);
            Ok((record, None))
        };
        let Some(rule) = rules.rule_for(&trigger.kind) else {
            return suppressed(record, "no_rule");
        };
        let region = self.node.region();
        let conversation = region
            .open_conversation(&trigger.customer)
            .await
            .map_err(unavailable)?;
        let Some(conversation) = conversation else {
            return suppressed(record, "no_channel");
        };
        record.conversation = Some(conversation.clone());
        if self.channels.reply_channel(&conversation).await?.is_none() {
            return suppressed(record, "no_channel");
        }
        let state = region
            .conversation_state(&conversation)
            .await
            .map_err(unavailable)?;
        let Some(state) = state else {
            return suppressed(record, "no_channel");
        };
        match state.status {
            Status::Queued | Status::Assigned(_) => return suppressed(record, "human_chat_open"),
            Status::New | Status::Closed => return suppressed(record, "no_channel"),
            Status::Bot | Status::Resolved => {}
        }
        if rules.is_quiet(now_ms) {
            return suppressed(record, "quiet_hours");
        }
        let sent_today = sent_on(records, &local_day);
        if sent_today >= u64::from(rules.max_per_customer_per_day) {
            return suppressed(record, "daily_limit");
        }
        let text = text_for(rule, &state, trigger.order.as_deref());
        "sent".clone_into(&mut record.decision);
        "rule_matched".clone_into(&mut record.reason);
        record.message = Some(MessageId::generate(conversation.tenant()));
        Ok((record, Some(text)))
    }

    /// Sends the message of a `sent` record again (a repeated id): the conversation recognises
    /// its message id, so this only completes a send a crash or a timeout interrupted.
    async fn deliver(
        &self,
        decided: Decided,
        customer: &CustomerId,
    ) -> Result<Decided, ProactiveError> {
        let (rules, _) = self.rules(customer.tenant()).await?;
        let Some(rule) = rules.rule_for(&decided.record.trigger) else {
            return Ok(decided);
        };
        let text = rule.text_zh.replace(
            "{order}",
            decided.record.order.as_deref().unwrap_or_default(),
        );
        self.send(decided, customer, text).await
    }

    /// Writes the message of a `sent` record into its conversation; if the conversation refuses
    /// it, records why under the same id.
    async fn send(
        &self,
        decided: Decided,
        customer: &CustomerId,
        text: String,
    ) -> Result<Decided, ProactiveError> {
        let (Some(conversation), Some(message_id)) = (
            decided.record.conversation.clone(),
            decided.record.message.clone(),
        ) else {
            return Ok(decided);
        };
        let command = ConversationCommand::SendProactive {
            message_id,
            text,
            trigger: decided.record.trigger.clone(),
            trigger_id: decided.record.id.clone(),
        };
        let meta = EventMeta {
            causation_id: None,
            correlation_id: None,
            idempotency_key: Some(format!("proactive:{}", decided.record.id)),
        };
        let refused = match self
            .node
            .region()
            .conversation_command(&conversation, command, meta)
            .await
        {
            Ok(_) => return Ok(decided),
            Err(CommandError::Rejected(Rejection::HumanChatOpen)) => "human_chat_open",
            Err(CommandError::Rejected(_)) => "no_channel",
            Err(CommandError::Journal(error)) => return Err(error.into()),
            Err(CommandError::Unavailable) => return Err(ProactiveError::Unavailable),
        };
        let mut record = decided.record;
        "suppressed".clone_into(&mut record.decision);
        refused.clone_into(&mut record.reason);
        record.message = None;
        let stream = StreamId::proactive(customer);
        let event = ProactiveEvent::Decided(record.clone());
        for _ in 0..APPEND_ATTEMPTS {
            let expected = self.journal.last_seq(&stream).await?;
            match append_one(&*self.journal, &stream, expected, &event).await {
                Ok(()) => {
                    return Ok(Decided {
                        record,
                        decided_at_ms: decided.decided_at_ms,
                    });
                }
                Err(JournalError::Conflict { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(ProactiveError::Busy)
    }

    async fn read_records(
        &self,
        customer: &CustomerId,
    ) -> Result<(u64, Vec<Decided>), JournalError> {
        let stream = StreamId::proactive(customer);
        let events = read_all(&*self.journal, &stream, 0).await?;
        let mut seq = 0;
        let mut records = Vec::with_capacity(events.len());
        for stored in events {
            let envelope = stored.envelope()?;
            seq = envelope.seq;
            let ProactiveEvent::Decided(record) = envelope
                .decode_event::<ProactiveEvent>()
                .map_err(|error| JournalError::Codec(error.to_string()))?;
            records.push(Decided {
                record,
                decided_at_ms: envelope.timestamp_ms,
            });
        }
        Ok((seq, records))
    }
}

/// How many ids' final decision is `sent` on `local_day`.
fn sent_on(records: &[Decided], local_day: &str) -> u64 {
    let mut last: HashMap<&str, &ProactiveDecided> = HashMap::new();
    for decided in records {
        last.insert(decided.record.id.as_str(), &decided.record);
    }
    let count = last
        .values()
        .filter(|record| record.decision == "sent" && record.local_day == local_day)
        .count();
    u64::try_from(count).unwrap_or(u64::MAX)
}

/// The rule's text for the customer of `state`: Chinese unless their latest message has no
/// Chinese in it (a customer who has not written yet gets Chinese); `{order}` filled in.
fn text_for(rule: &rules::Rule, state: &ConversationState, order: Option<&str>) -> String {
    let writes_chinese = state
        .messages
        .iter()
        .rev()
        .find(|message| message.role == crest_proto::events::Role::Customer)
        .is_none_or(|message| is_chinese(&message.text));
    let template = if writes_chinese {
        &rule.text_zh
    } else {
        &rule.text_en
    };
    template.replace("{order}", order.unwrap_or_default())
}

/// Whether `text` is written in Chinese (any CJK ideograph).
fn is_chinese(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}'))
}

fn unavailable(error: CommandError) -> ProactiveError {
    match error {
        CommandError::Journal(error) => ProactiveError::Journal(error),
        _ => ProactiveError::Unavailable,
    }
}

/// How often silence timers are checked.
pub const SILENCE_TICK: std::time::Duration = std::time::Duration::from_secs(15);

/// Checks the silence timers every `tick` ([`SILENCE_TICK`] by default) and decides the silences due (see
/// [`silence`]). A trigger that could not be decided (the journal or the conversation was
/// unavailable) is tried again at the next tick; its id keeps it from being decided twice.
pub fn watch_silences(
    service: Arc<ProactiveService>,
    watch: Arc<Mutex<silence::SilenceWatch>>,
    tick: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(tick);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let tenants = watch
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .tenants();
            let mut delays: HashMap<(TenantId, &'static str), u64> = HashMap::new();
            for tenant in tenants {
                let Ok((rules, _)) = service.rules(&tenant).await else {
                    continue;
                };
                for kind in rules::SILENCE_KINDS {
                    if let Some(minutes) = rules.rule_for(kind).and_then(|rule| rule.after_minutes)
                    {
                        delays.insert((tenant.clone(), kind), u64::from(minutes) * 60_000);
                    }
                }
            }
            if delays.is_empty() {
                continue;
            }
            let now = service.node.now_ms();
            let due =
                watch
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .due(now, &|tenant, kind| {
                        rules::SILENCE_KINDS
                            .iter()
                            .find(|known| **known == kind)
                            .and_then(|known| delays.get(&(tenant.clone(), *known)).copied())
                    });
            for trigger in due {
                if let Err(error) = service.decide(&trigger).await {
                    tracing::warn!(trigger = %trigger.kind, %error, "silence timer not decided; retried");
                    watch
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .retry(&trigger);
                }
            }
        }
    })
}
