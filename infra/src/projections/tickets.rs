//! The ticket board: every tenant's tickets as a read model for listing (`GET …/tickets`), folded
//! from the tickets' own events (`ticket.*`), so a listing never reads ticket streams. Tickets are
//! kept in id order (ULIDs: creation order) with indexes of the tickets linked to each
//! conversation and of the tickets in each status (a listing by status never walks the others).
//!
//! The API answers a ticket's change after the board has it too ([`TicketBoard::wait_for`]), so a
//! client that lists right after a change sees it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crest_actors::persistence::Aggregate;
use crest_actors::ticket::{Ticket, TicketState};
use crest_proto::routing::TicketStatus;
use crest_proto::{ConversationId, Envelope, TenantId, TicketId};

use super::{Decoded, Projection};

/// One tenant's tickets.
#[derive(Debug, Default)]
struct TenantTickets {
    by_id: BTreeMap<TicketId, TicketState>,
    by_conversation: HashMap<ConversationId, BTreeSet<TicketId>>,
    by_status: HashMap<TicketStatus, BTreeSet<TicketId>>,
}

/// Every tenant's tickets.
#[derive(Debug)]
pub struct TicketBoard {
    tenants: HashMap<TenantId, TenantTickets>,
    /// Bumped after every applied event, for readers waiting for one.
    applied: tokio::sync::watch::Sender<u64>,
}

impl Default for TicketBoard {
    fn default() -> Self {
        Self {
            tenants: HashMap::new(),
            applied: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Only tickets in this status.
    pub status: Option<TicketStatus>,
    /// Only tickets linked to this conversation.
    pub conversation: Option<ConversationId>,
}

impl TicketBoard {
    /// An empty board.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The tenant's tickets that match `filter`, newest first, at most `limit`.
    #[must_use]
    pub fn list(
        &self,
        tenant: &TenantId,
        filter: &TicketFilter,
        limit: usize,
    ) -> Vec<(TicketId, Ticket)> {
        let Some(tickets) = self.tenants.get(tenant) else {
            return Vec::new();
        };
        let matches = |ticket: &Ticket| filter.status.is_none_or(|status| ticket.status == status);
        let found = |id: &TicketId| {
            tickets
                .by_id
                .get(id)
                .and_then(|state| state.ticket.as_ref())
                .filter(|ticket| matches(ticket))
                .map(|ticket| (id.clone(), ticket.clone()))
        };
        let ids: Box<dyn Iterator<Item = &TicketId>> = match (&filter.conversation, filter.status) {
            (Some(conversation), _) => Box::new(
                tickets
                    .by_conversation
                    .get(conversation)
                    .into_iter()
                    .flatten()
                    .rev(),
            ),
            (None, Some(status)) => {
                Box::new(tickets.by_status.get(&status).into_iter().flatten().rev())
            }
            (None, None) => Box::new(tickets.by_id.keys().rev()),
        };
        ids.filter_map(found).take(limit).collect()
    }

    /// A ticket as the board knows it, with the last sequence number applied.
    #[must_use]
    pub fn get(&self, id: &TicketId) -> Option<(u64, Ticket)> {
        let state = self.tenants.get(id.tenant())?.by_id.get(id)?;
        Some((state.seq, state.ticket.clone()?))
    }

    fn seq_of(&self, id: &TicketId) -> u64 {
        self.tenants
            .get(id.tenant())
            .and_then(|tickets| tickets.by_id.get(id))
            .map_or(0, |state| state.seq)
    }

    /// Waits (at most `timeout`) until the board has applied event `seq` of `ticket`; true if it
    /// has.
    pub async fn wait_for(
        board: &Arc<Mutex<Self>>,
        ticket: &TicketId,
        seq: u64,
        timeout: Duration,
    ) -> bool {
        let mut applied = {
            let board = board.lock().unwrap_or_else(PoisonError::into_inner);
            if board.seq_of(ticket) >= seq {
                return true;
            }
            board.applied.subscribe()
        };
        let reached = async {
            loop {
                if applied.changed().await.is_err() {
                    return false;
                }
                let board = board.lock().unwrap_or_else(PoisonError::into_inner);
                if board.seq_of(ticket) >= seq {
                    return true;
                }
            }
        };
        tokio::time::timeout(timeout, reached)
            .await
            .unwrap_or(false)
    }
}

impl Projection for TicketBoard {
    fn name(&self) -> &'static str {
        "tickets"
    }

    fn apply(&mut self, envelope: &Envelope, event: &Decoded) {
        let Decoded::Ticket(event) = event else {
            return;
        };
        let Some(id) = envelope.stream.ticket_id() else {
            return;
        };
        let tickets = self.tenants.entry(id.tenant().clone()).or_default();
        let state = tickets.by_id.entry(id.clone()).or_default();
        let before = state.ticket.as_ref().map(|ticket| ticket.status);
        state.apply_event(event, envelope.seq, envelope.timestamp_ms);
        if let Some(ticket) = &state.ticket {
            if before != Some(ticket.status) {
                if let Some(status) = before
                    && let Some(ids) = tickets.by_status.get_mut(&status)
                {
                    ids.remove(&id);
                }
                tickets
                    .by_status
                    .entry(ticket.status)
                    .or_default()
                    .insert(id.clone());
            }
            for conversation in &ticket.conversations {
                tickets
                    .by_conversation
                    .entry(conversation.clone())
                    .or_default()
                    .insert(id.clone());
            }
        }
        self.applied.send_modify(|applied| *applied += 1);
    }
}

#[cfg(test)]
mod tests {
    use crest_proto::StreamId;
    use crest_proto::envelope::EventMeta;
    use crest_proto::ticket::{Linked, Opened, StatusChanged, TicketEvent};

    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::new(name).expect("valid")
    }

    fn apply(board: &mut TicketBoard, id: &TicketId, seq: u64, event: &TicketEvent) {
        let envelope = Envelope::wrap(
            event,
            StreamId::ticket(id),
            seq,
            1_000 * seq,
            EventMeta::default(),
        )
        .expect("encodes");
        board.apply(&envelope, &Decoded::Ticket(event.clone()));
    }

    fn opened(conversation: Option<ConversationId>) -> TicketEvent {
        TicketEvent::Opened(Opened {
            kind: "refund".to_owned(),
            subject: "refund".to_owned(),
            customer: None,
            conversation,
            assignee: None,
            created_by: "api".to_owned(),
            first_response_due_ms: 10,
            resolution_due_ms: 20,
        })
    }

    #[test]
    fn listings_are_newest_first_filtered_and_never_cross_tenants() {
        let mut board = TicketBoard::new();
        let shop = tenant("shop");
        let conversation = ConversationId::from_parts(shop.clone(), 5);
        let first = TicketId::from_parts(shop.clone(), 1);
        let second = TicketId::from_parts(shop.clone(), 2);
        let other = TicketId::from_parts(tenant("other"), 3);
        apply(&mut board, &first, 1, &opened(None));
        apply(&mut board, &second, 1, &opened(None));
        apply(&mut board, &other, 1, &opened(None));
        let all = board.list(&shop, &TicketFilter::default(), 10);
        let ids: Vec<&TicketId> = all.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, vec![&second, &first]);
        assert_eq!(board.list(&shop, &TicketFilter::default(), 1).len(), 1);

        apply(
            &mut board,
            &first,
            2,
            &TicketEvent::Linked(Linked {
                conversation: conversation.clone(),
            }),
        );
        apply(
            &mut board,
            &second,
            2,
            &TicketEvent::StatusChanged(StatusChanged {
                from: TicketStatus::Open,
                status: TicketStatus::Solved,
                kind: "refund".to_owned(),
                conversations: Vec::new(),
                pending: Vec::new(),
            }),
        );
        let linked = board.list(
            &shop,
            &TicketFilter {
                conversation: Some(conversation),
                ..TicketFilter::default()
            },
            10,
        );
        assert_eq!(linked.len(), 1);
        assert_eq!(linked[0].0, first);
        let solved = board.list(
            &shop,
            &TicketFilter {
                status: Some(TicketStatus::Solved),
                ..TicketFilter::default()
            },
            10,
        );
        assert_eq!(solved.len(), 1);
        assert_eq!(solved[0].0, second);
        // A ticket leaves its old status's index.
        let open = board.list(
            &shop,
            &TicketFilter {
                status: Some(TicketStatus::Open),
                ..TicketFilter::default()
            },
            10,
        );
        let open: Vec<&TicketId> = open.iter().map(|(id, _)| id).collect();
        assert_eq!(open, vec![&first]);
        assert_eq!(board.get(&first).map(|(seq, _)| seq), Some(2));
    }

    #[tokio::test]
    async fn a_reader_waits_until_the_board_has_the_event() {
        let board = Arc::new(Mutex::new(TicketBoard::new()));
        let id = TicketId::from_parts(tenant("shop"), 1);
        let waiting = {
            let board = Arc::clone(&board);
            let id = id.clone();
            tokio::spawn(async move {
                TicketBoard::wait_for(&board, &id, 1, Duration::from_secs(5)).await
            })
        };
        tokio::task::yield_now().await;
        apply(&mut board.lock().expect("lock"), &id, 1, &opened(None));
        assert!(waiting.await.expect("joins"));
        assert!(
            !TicketBoard::wait_for(&board, &id, 2, Duration::from_millis(20)).await,
            "seq 2 never comes"
        );
    }
}
