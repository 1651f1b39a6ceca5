//! Silence timers: which conversations have gone quiet, folded from the journaled conversation
//! events (a [`Projection`], so it is rebuilt from the journal at start like the read models).
//!
//! * `silent_after_open`: the customer opened the chat with one message, the bot answered, and the
//!   customer has said nothing since.
//! * `quiet_mid_order`: the bot's latest answer was about buying or an order ([`ORDER_INTENTS`])
//!   and the customer has said nothing since.
//!
//! Each fires once per silence: its trigger id names the conversation, the trigger and how many
//! messages the customer had written (`silence:<conversation>:<trigger>:<n>`), so a node that
//! restarts, or every node of a cluster, deciding the same silence is deduplicated by the
//! customer's proactive record. A silence older than [`FIRE_WINDOW_MS`] past its deadline (a node
//! that was down) is let go rather than answered late. Conversations with a human (queued or
//! assigned) and closed ones are not watched.

use std::collections::HashMap;

use crest_proto::events::ConversationEvent;
use crest_proto::{ConversationId, CustomerId, Envelope, TenantId};

use super::Trigger;
use crate::projections::{Decoded, Projection};

/// Bot intents that mean the customer is in the middle of buying or of an order.
pub const ORDER_INTENTS: [&str; 9] = [
    "order_status",
    "change_order",
    "cancel_order",
    "change_address",
    "payment_issue",
    "payment_methods",
    "delivery_options",
    "stock_availability",
    "coupon_promo",
];

/// How late past its deadline a silence may still fire.
pub const FIRE_WINDOW_MS: u64 = 30 * 60_000;

/// Most conversations watched at once (the longest-silent are let go first beyond it).
pub const WATCH_LIMIT: usize = 100_000;

/// What is known of one watched conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Watched {
    customer: CustomerId,
    customer_messages: u32,
    last_customer_ms: u64,
    bot_answered: bool,
    about_order: bool,
    with_human: bool,
    /// Triggers already handed out for the current silence.
    fired: Vec<&'static str>,
}

/// See the module's documentation.
#[derive(Debug, Default)]
pub struct SilenceWatch {
    conversations: HashMap<ConversationId, Watched>,
}

impl SilenceWatch {
    /// An empty watch.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Conversations watched.
    #[must_use]
    pub fn len(&self) -> usize {
        self.conversations.len()
    }

    /// Whether none is watched.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.conversations.is_empty()
    }

    /// The tenants with watched conversations.
    #[must_use]
    pub fn tenants(&self) -> Vec<TenantId> {
        let mut tenants: Vec<TenantId> = self
            .conversations
            .keys()
            .map(|conversation| conversation.tenant().clone())
            .collect();
        tenants.sort();
        tenants.dedup();
        tenants
    }

    /// The silences due at `now_ms`: `after_ms(tenant, trigger)` is the tenant's delay for a
    /// trigger (`None`: no such rule). Each is handed out once; forget those older than a day.
    pub fn due(
        &mut self,
        now_ms: u64,
        after_ms: &dyn Fn(&TenantId, &str) -> Option<u64>,
    ) -> Vec<Trigger> {
        const DAY_MS: u64 = 24 * 3_600_000;
        self.conversations
            .retain(|_, watched| now_ms.saturating_sub(watched.last_customer_ms) <= DAY_MS);
        let mut due = Vec::new();
        for (conversation, watched) in &mut self.conversations {
            if watched.with_human || !watched.bot_answered {
                continue;
            }
            let mut candidates = Vec::with_capacity(2);
            if watched.customer_messages == 1 {
                candidates.push("silent_after_open");
            }
            if watched.about_order {
                candidates.push("quiet_mid_order");
            }
            for trigger in candidates {
                if watched.fired.contains(&trigger) {
                    continue;
                }
                let Some(after) = after_ms(conversation.tenant(), trigger) else {
                    continue;
                };
                let deadline = watched.last_customer_ms.saturating_add(after);
                if now_ms < deadline {
                    continue;
                }
                watched.fired.push(trigger);
                if now_ms - deadline > FIRE_WINDOW_MS {
                    continue;
                }
                due.push(Trigger {
                    id: format!(
                        "silence:{}:{trigger}:{}",
                        conversation.key(),
                        watched.customer_messages
                    ),
                    kind: trigger.to_owned(),
                    customer: watched.customer.clone(),
                    order: None,
                    at_ms: deadline,
                });
            }
        }
        due
    }

    /// Hands a trigger back (it could not be decided now): it is due again next time.
    pub fn retry(&mut self, trigger: &Trigger) {
        let fired = self
            .conversations
            .iter_mut()
            .find(|(conversation, watched)| {
                watched.customer == trigger.customer
                    && trigger
                        .id
                        .starts_with(&format!("silence:{}:", conversation.key()))
            });
        if let Some((_, watched)) = fired {
            watched.fired.retain(|kind| *kind != trigger.kind);
        }
    }

    fn make_room(&mut self) {
        if self.conversations.len() < WATCH_LIMIT {
            return;
        }
        let oldest = self
            .conversations
            .iter()
            .min_by_key(|(_, watched)| watched.last_customer_ms)
            .map(|(conversation, _)| conversation.clone());
        if let Some(oldest) = oldest {
            self.conversations.remove(&oldest);
        }
    }
}

impl Projection for SilenceWatch {
    fn name(&self) -> &'static str {
        "proactive_silence"
    }

    fn apply(&mut self, envelope: &Envelope, event: &Decoded) {
        let Decoded::Conversation(event) = event else {
            return;
        };
        let Some(conversation) = envelope.stream.conversation_id() else {
            return;
        };
        if let ConversationEvent::Started(started) = event {
            self.make_room();
            self.conversations.insert(
                conversation,
                Watched {
                    customer: started.customer.clone(),
                    customer_messages: 0,
                    last_customer_ms: envelope.timestamp_ms,
                    bot_answered: false,
                    about_order: false,
                    with_human: false,
                    fired: Vec::new(),
                },
            );
            return;
        }
        if matches!(event, ConversationEvent::Closed(_)) {
            self.conversations.remove(&conversation);
            return;
        }
        let Some(watched) = self.conversations.get_mut(&conversation) else {
            return;
        };
        match event {
            ConversationEvent::CustomerMessageReceived(_) => {
                watched.customer_messages = watched.customer_messages.saturating_add(1);
                watched.last_customer_ms = envelope.timestamp_ms;
                watched.bot_answered = false;
                watched.fired.clear();
            }
            ConversationEvent::BotReplied(reply) => {
                watched.bot_answered = true;
                watched.about_order = reply
                    .intent
                    .as_deref()
                    .is_some_and(|intent| ORDER_INTENTS.contains(&intent));
            }
            ConversationEvent::HandoffRequested(_) | ConversationEvent::AgentAssigned(_) => {
                watched.with_human = true;
            }
            ConversationEvent::Resolved(_) | ConversationEvent::HandoffDeclined(_) => {
                watched.with_human = false;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crest_proto::envelope::EventMeta;
    use crest_proto::events::{BotReplied, CustomerMessageReceived, Started};
    use crest_proto::{MessageId, StreamId};

    use super::*;

    const MINUTE: u64 = 60_000;

    struct Script {
        watch: SilenceWatch,
        conversation: ConversationId,
        customer: CustomerId,
        seq: u64,
    }

    impl Script {
        fn new() -> Self {
            let tenant = TenantId::new("shop").expect("tenant");
            Self {
                watch: SilenceWatch::new(),
                conversation: ConversationId::from_parts(tenant.clone(), 7),
                customer: CustomerId::new(&tenant, "c-1").expect("customer"),
                seq: 0,
            }
        }

        fn happen(&mut self, at_ms: u64, event: ConversationEvent) {
            self.seq += 1;
            let envelope = Envelope::wrap(
                &event,
                StreamId::conversation(&self.conversation),
                self.seq,
                at_ms,
                EventMeta::default(),
            )
            .expect("wraps");
            self.watch.apply(&envelope, &Decoded::Conversation(event));
        }

        fn customer_writes(&mut self, at_ms: u64) {
            if self.seq == 0 {
                self.happen(
                    at_ms,
                    ConversationEvent::Started(Started {
                        conversation: self.conversation.clone(),
                        customer: self.customer.clone(),
                        channel: "web".to_owned(),
                    }),
                );
            }
            let tenant = self.conversation.tenant().clone();
            self.happen(
                at_ms,
                ConversationEvent::CustomerMessageReceived(CustomerMessageReceived {
                    message: MessageId::generate(&tenant),
                    channel: "web".to_owned(),
                    channel_message_id: format!("m-{}", self.seq),
                    text: "hi".to_owned(),
                }),
            );
        }

        fn bot_answers(&mut self, at_ms: u64, intent: &str) {
            let tenant = self.conversation.tenant().clone();
            self.happen(
                at_ms,
                ConversationEvent::BotReplied(BotReplied {
                    message: MessageId::generate(&tenant),
                    in_reply_to: MessageId::generate(&tenant),
                    text: "hello".to_owned(),
                    intent: Some(intent.to_owned()),
                    confidence: 0.9,
                    emotion: None,
                    citations: Vec::new(),
                }),
            );
        }

        fn due(&mut self, now_ms: u64) -> Vec<String> {
            self.watch
                .due(now_ms, &|_, trigger| match trigger {
                    "silent_after_open" => Some(5 * MINUTE),
                    "quiet_mid_order" => Some(10 * MINUTE),
                    _ => None,
                })
                .into_iter()
                .map(|trigger| trigger.id)
                .collect()
        }
    }

    #[test]
    fn a_customer_silent_after_opening_is_due_once_after_the_delay() {
        let mut script = Script::new();
        script.customer_writes(0);
        assert!(
            script.due(6 * MINUTE).is_empty(),
            "the bot has not answered"
        );
        script.bot_answers(1_000, "greeting");
        assert!(script.due(5 * MINUTE - 1).is_empty());
        let key = script.conversation.key();
        assert_eq!(
            script.due(5 * MINUTE),
            vec![format!("silence:{key}:silent_after_open:1")]
        );
        assert!(script.due(6 * MINUTE).is_empty(), "once per silence");
        // A second message: no longer a silent opener, and not about an order.
        script.customer_writes(7 * MINUTE);
        script.bot_answers(7 * MINUTE, "greeting");
        assert!(script.due(60 * MINUTE).is_empty());
    }

    #[test]
    fn a_customer_quiet_mid_order_is_due_after_its_delay_each_silence() {
        let mut script = Script::new();
        script.customer_writes(0);
        script.bot_answers(0, "greeting");
        script.customer_writes(MINUTE);
        script.bot_answers(MINUTE, "payment_issue");
        assert!(script.due(10 * MINUTE).is_empty());
        let key = script.conversation.key();
        assert_eq!(
            script.due(11 * MINUTE),
            vec![format!("silence:{key}:quiet_mid_order:2")]
        );
        script.customer_writes(12 * MINUTE);
        script.bot_answers(12 * MINUTE, "payment_methods");
        assert_eq!(
            script.due(22 * MINUTE),
            vec![format!("silence:{key}:quiet_mid_order:3")]
        );
    }

    #[test]
    fn stale_silences_human_chats_and_closed_conversations_do_not_fire() {
        let mut script = Script::new();
        script.customer_writes(0);
        script.bot_answers(0, "order_status");
        // The node was down: far past the deadline, let go.
        assert!(script.due(10 * MINUTE + FIRE_WINDOW_MS + 1).is_empty());

        let mut human = Script::new();
        human.customer_writes(0);
        human.bot_answers(0, "order_status");
        human.happen(
            0,
            ConversationEvent::AgentAssigned(crest_proto::events::AgentAssigned {
                agent: crest_proto::AgentId::new(human.conversation.tenant(), "alice")
                    .expect("agent"),
            }),
        );
        assert!(human.due(20 * MINUTE).is_empty());
        human.happen(
            0,
            ConversationEvent::Closed(crest_proto::events::ClosedV2 {
                reason: "resolved".to_owned(),
                customer: None,
            }),
        );
        assert!(human.watch.is_empty());
    }
}
