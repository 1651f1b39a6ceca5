//! State and pure logic of the customer identity stream.

use crest_proto::customers::{Identity, IdentityRecorded, MergeInvolved};
use crest_proto::events::{ConversationEnded, ConversationOpened, CustomerEvent};
use crest_proto::{ConversationId, MergeId};
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
    /// True once the customer took part in a merge (its messages' route is then routing's to
    /// say; otherwise they go to its own conversation).
    pub merge_involved: bool,
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

impl CustomerState {
    /// Events that record the customer's first merge, or nothing after that.
    #[must_use]
    pub fn note_merge(&self, merge: MergeId) -> Vec<CustomerEvent> {
        if self.merge_involved {
            return Vec::new();
        }
        vec![CustomerEvent::MergeInvolved(MergeInvolved { merge })]
    }
}

impl Aggregate for CustomerState {
    type Event = CustomerEvent;
    const STATE_SCHEMA_VERSION: u16 = 3;
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
            CustomerEvent::MergeInvolved(_) => self.merge_involved = true,
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
    fn a_customer_is_marked_by_its_first_merge_only() {
        let tenant = TenantId::new("acme").expect("valid");
        let mut state = CustomerState::default();
        assert!(
            !state.merge_involved,
            "a new customer never took part in a merge"
        );
        let first = state.note_merge(MergeId::from_parts(tenant.clone(), 1));
        assert_eq!(first.len(), 1);
        state.apply_event(&first[0], 1, 0);
        assert!(state.merge_involved);
        assert!(
            state.note_merge(MergeId::from_parts(tenant, 2)).is_empty(),
            "later merges change nothing in the customer's stream"
        );
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
