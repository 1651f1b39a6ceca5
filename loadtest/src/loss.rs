//! Loss accounting: every acknowledged message must appear exactly once in its conversation.
//!
//! After the run every conversation is read back (`GET …/conversations/{id}/events`, paged with
//! `after`); each `conversation.customer_message_received` event names the message in
//! `data.message` (Crest's id, the `message_id` of the acknowledgement) and the channel's id in
//! `data.channel_message_id` (the generator's own id).

use std::collections::{HashMap, HashSet};

use serde::Serialize;

/// The event type of a stored customer message.
pub const CUSTOMER_MESSAGE: &str = "conversation.customer_message_received";

/// One acknowledged message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    /// The conversation it was acknowledged in.
    pub conversation: String,
    /// Crest's message id from the acknowledgement.
    pub message_id: String,
}

/// What the read-back found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LossReport {
    /// Acknowledged messages checked.
    pub checked: u64,
    /// Acknowledged but not in their conversation.
    pub lost: u64,
    /// Acknowledged and stored more than once (each extra copy counts).
    pub duplicated: u64,
    /// Stored messages of this run that were never acknowledged (e.g. a client timeout after
    /// the journal write): not a loss.
    pub stored_unacknowledged: u64,
    /// Conversations read back.
    pub conversations: u64,
    /// Conversations that could not be read completely (their messages are not counted).
    pub unreadable_conversations: u64,
    /// Up to ten lost message ids, for diagnosis.
    pub lost_examples: Vec<String>,
    /// Up to ten duplicated message ids, for diagnosis.
    pub duplicated_examples: Vec<String>,
}

/// The stored customer messages of one conversation: `(message_id, channel_message_id)`.
pub type Stored = Vec<(String, String)>;

/// Extracts the customer messages from one page of `…/events` (its `events` array).
#[must_use]
pub fn customer_messages(events: &[serde_json::Value]) -> Stored {
    events
        .iter()
        .filter(|event| event["type"].as_str() == Some(CUSTOMER_MESSAGE))
        .filter_map(|event| {
            let message = event["data"]["message"].as_str()?;
            let channel_id = event["data"]["channel_message_id"].as_str().unwrap_or("");
            Some((message.to_owned(), channel_id.to_owned()))
        })
        .collect()
}

/// Compares the acknowledged messages with what each conversation holds.
///
/// `stored` maps a conversation to its customer messages, or `None` when it could not be read.
/// `run_prefix` recognises this run's own channel ids among the stored ones.
#[must_use]
pub fn account(
    acked: &[Acked],
    stored: &HashMap<String, Option<Stored>>,
    run_prefix: &str,
) -> LossReport {
    let mut report = LossReport {
        conversations: stored.len() as u64,
        unreadable_conversations: stored.values().filter(|value| value.is_none()).count() as u64,
        ..LossReport::default()
    };
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for messages in stored.values().flatten() {
        for (message, _) in messages {
            *counts.entry(message.as_str()).or_default() += 1;
        }
    }
    let mut acked_ids: HashSet<&str> = HashSet::with_capacity(acked.len());
    for message in acked {
        if !acked_ids.insert(message.message_id.as_str()) {
            // The same id acknowledged twice (never retried here): checked once.
            continue;
        }
        match stored.get(&message.conversation) {
            Some(Some(_)) => {}
            // Unreadable: neither lost nor confirmed.
            Some(None) => continue,
            // Never read back: every message of it is lost.
            None => {}
        }
        report.checked += 1;
        match counts
            .get(message.message_id.as_str())
            .copied()
            .unwrap_or(0)
        {
            0 => {
                report.lost += 1;
                if report.lost_examples.len() < 10 {
                    report.lost_examples.push(message.message_id.clone());
                }
            }
            1 => {}
            copies => {
                report.duplicated += copies - 1;
                if report.duplicated_examples.len() < 10 {
                    report.duplicated_examples.push(message.message_id.clone());
                }
            }
        }
    }
    report.stored_unacknowledged = stored
        .values()
        .flatten()
        .flatten()
        .filter(|(message, channel_id)| {
            channel_id.starts_with(run_prefix) && !acked_ids.contains(message.as_str())
        })
        .count() as u64;
    report
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn acked(conversation: &str, message: &str) -> Acked {
        Acked {
            conversation: conversation.to_owned(),
            message_id: message.to_owned(),
        }
    }

    fn stored(pairs: &[(&str, &str)]) -> Option<Stored> {
        Some(
            pairs
                .iter()
                .map(|(message, channel)| ((*message).to_owned(), (*channel).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn all_present_once_is_no_loss() {
        let acks = vec![acked("c1", "m1"), acked("c1", "m2"), acked("c2", "m3")];
        let map = HashMap::from([
            ("c1".to_owned(), stored(&[("m1", "r-1"), ("m2", "r-2")])),
            ("c2".to_owned(), stored(&[("m3", "r-3")])),
        ]);
        let report = account(&acks, &map, "r-");
        assert_eq!(report.checked, 3);
        assert_eq!(report.lost, 0);
        assert_eq!(report.duplicated, 0);
        assert_eq!(report.stored_unacknowledged, 0);
        assert_eq!(report.conversations, 2);
    }

    #[test]
    fn missing_and_doubled_messages_are_counted() {
        let acks = vec![
            acked("c1", "m1"),
            acked("c1", "m2"),
            acked("c2", "m3"),
            acked("c3", "m4"),
        ];
        let map = HashMap::from([
            // m2 missing; m1 three times (two extra copies); an unacknowledged one of this run
            // and one of another run
            (
                "c1".to_owned(),
                stored(&[
                    ("m1", "r-1"),
                    ("m1", "r-1"),
                    ("m1", "r-1"),
                    ("m9", "r-9"),
                    ("x", "other-1"),
                ]),
            ),
            ("c2".to_owned(), stored(&[("m3", "r-3")])),
            // c3 unreadable: m4 is not checked
            ("c3".to_owned(), None),
        ]);
        let report = account(&acks, &map, "r-");
        assert_eq!(report.checked, 3);
        assert_eq!(report.lost, 1);
        assert_eq!(report.lost_examples, vec!["m2".to_owned()]);
        assert_eq!(report.duplicated, 2);
        assert_eq!(report.duplicated_examples, vec!["m1".to_owned()]);
        assert_eq!(report.stored_unacknowledged, 1);
        assert_eq!(report.unreadable_conversations, 1);
    }

    #[test]
    fn a_conversation_never_read_loses_its_messages() {
        let acks = vec![acked("c1", "m1")];
        let report = account(&acks, &HashMap::new(), "r-");
        assert_eq!(report.lost, 1);
    }

    #[test]
    fn extracts_customer_messages_from_events() {
        let events = vec![
            json!({"seq": 1, "type": "conversation.started", "data": {"conversation": "c"}}),
            json!({"seq": 2, "type": CUSTOMER_MESSAGE, "data": {"message": "m1", "channel_message_id": "r-1"}}),
            json!({"seq": 3, "type": "conversation.bot_replied", "data": {"message": "b1", "in_reply_to": "m1"}}),
        ];
        assert_eq!(
            customer_messages(&events),
            vec![("m1".to_owned(), "r-1".to_owned())]
        );
    }
}
