//! State and pure logic of the customer identity stream.

use crest_proto::ConversationId;
use crest_proto::customers::{Identity, IdentityRecorded};
use crest_proto::events::{ConversationEnded, ConversationOpened, CustomerEvent};
use serde::{Deserialize, Serialize};

use crate::persistence::Aggregate;

/// What a customer stream knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerState {
    /// Last applied sequence number.
    pub seq: u64,
    /// The open conversation, if any.
    pub open: Option<ConversationId>,
    /// The most recently ended conversation.
    pub last_ended: Option<ConversationId>,
    /// The customer's identities, each as last recorded, in the order first recorded.
    pub identities: Vec<IdentityRecorded>,
}

impl CustomerState {
    /// Events that open `conversation`, or nothing if one is open already.
    #[must_use]
    pub fn open_conversation(&self, conversation: ConversationId) -> Vec<CustomerEvent> {
        if self.open.is_some() {
            return Vec::new();
        }
        vec![CustomerEvent::ConversationOpened(ConversationOpened {
            conversation,
        })]
    }

    /// Events that record the end of `conversation`, if it is the open one.
    #[must_use]
    pub fn end_conversation(&self, conversation: &ConversationId) -> Vec<CustomerEvent> {
        if self.open.as_ref() != Some(conversation) {
            return Vec::new();
        }
        vec![CustomerEvent::ConversationEnded(ConversationEnded {
            conversation: conversation.clone(),
        })]
    }
}

impl CustomerState {
    /// Events that record `identity` (with its verification), or nothing if it is recorded so.
    #[must_use]
    pub fn record_identity(&self, identity: Identity, verified: bool) -> Vec<CustomerEvent> {
        let known = self
            .identities
            .iter()
            .any(|recorded| recorded.identity == identity && recorded.verified == verified);
        if known {
            return Vec::new();
        }
        vec![CustomerEvent::IdentityRecorded(IdentityRecorded {
            identity,
            verified,
        })]
    }
}

impl Aggregate for CustomerState {
    type Event = CustomerEvent;
    const STATE_SCHEMA_VERSION: u16 = 2;
    const KIND: &'static str = "customer";

    fn seq(&self) -> u64 {
        self.seq
    }

    fn apply_event(&mut self, event: &CustomerEvent, seq: u64, _at_ms: u64) {
        debug_assert_eq!(seq, self.seq + 1);
        self.seq = seq;
        match event {
            CustomerEvent::ConversationOpened(opened) => {
                self.open = Some(opened.conversation.clone())
            }
            CustomerEvent::ConversationEnded(ended) => {
                if self.open.as_ref() == Some(&ended.conversation) {
                    self.open = None;
                }
                self.last_ended = Some(ended.conversation.clone());
            }
            CustomerEvent::IdentityRecorded(recorded) => {
                match self
                    .identities
                    .iter_mut()
                    .find(|known| known.identity == recorded.identity)
                {
                    Some(known) => known.verified = recorded.verified,
                    None => self.identities.push(recorded.clone()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crest_proto::TenantId;

    use super::*;

    #[test]
    fn at_most_one_conversation_is_open() {
        let tenant = TenantId::new("acme").expect("valid");
        let first = ConversationId::from_parts(tenant.clone(), 1);
        let second = ConversationId::from_parts(tenant, 2);
        let mut state = CustomerState::default();
        let events = state.open_conversation(first.clone());
        assert_eq!(events.len(), 1);
        state.apply_event(&events[0], 1, 0);
        assert_eq!(state.open, Some(first.clone()));
        assert!(
            state.open_conversation(second.clone()).is_empty(),
            "a second open is refused"
        );
        assert!(
            state.end_conversation(&second).is_empty(),
            "ending another conversation is moot"
        );
        let ended = state.end_conversation(&first);
        state.apply_event(&ended[0], 2, 0);
        assert_eq!(state.open, None);
        assert_eq!(state.last_ended, Some(first));
        assert_eq!(state.open_conversation(second).len(), 1);
    }

    #[test]
    fn an_identity_is_recorded_once_and_its_verification_follows_the_last_record() {
        use crest_proto::customers::IdentityKind;
        let phone = Identity {
            kind: IdentityKind::Phone,
            channel: None,
            value: "+8613800138000".to_owned(),
        };
        let mut state = CustomerState::default();
        let first = state.record_identity(phone.clone(), false);
        state.apply_event(&first[0], 1, 0);
        assert!(
            state.record_identity(phone.clone(), false).is_empty(),
            "the same record again is moot"
        );
        let verified = state.record_identity(phone.clone(), true);
        state.apply_event(&verified[0], 2, 0);
        assert_eq!(state.identities.len(), 1);
        assert!(state.identities[0].verified);
    }
}
