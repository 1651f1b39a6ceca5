//! Projections: read models and business metrics folded from the journaled events.
//!
//! The [`runner`] consumes events from the bus (in-process or NATS), applies each (stream, seq)
//! exactly once to every projection, fills gaps the bus leaves from the journal, rebuilds everything
//! from the journal at start, and exposes its lag. Projections keep their state in memory.
//!
//! * [`business::BusinessMetrics`]: the business metrics of `docs/METRICS.md`;
//! * [`quality::QualityInspection`]: a score per resolved or closed conversation from rules kept as
//!   data, with the rules that fired;
//! * [`voc::VoiceOfCustomer`]: intent, emotion and SKU-mention trends per tenant, hour by hour;
//! * [`tickets::TicketBoard`]: every tenant's tickets, for listings.

pub mod business;
pub mod cluster;
pub mod quality;
pub mod runner;
pub mod tickets;
pub mod voc;

use crest_proto::Envelope;
use crest_proto::events::ConversationEvent;
use crest_proto::ids::StreamKind;
use crest_proto::routing::DeskEvent;
use crest_proto::ticket::TicketEvent;

/// A fold over journaled events. `apply` sees each (stream, seq) once, each stream in order.
pub trait Projection: Send {
    /// A short name for metrics (`business`, `quality`, `voc`).
    fn name(&self) -> &'static str;
    /// Folds one event (`event` is the envelope's payload, decoded once for every projection).
    fn apply(&mut self, envelope: &Envelope, event: &Decoded);
}

/// An envelope's payload, decoded by the runner once for all projections.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A conversation event.
    Conversation(ConversationEvent),
    /// A routing-desk event.
    Desk(DeskEvent),
    /// A ticket event.
    Ticket(TicketEvent),
    /// Anything else (customer streams, directories) or an undecodable payload.
    Other,
}

impl Decoded {
    /// Decodes `envelope`'s payload by its stream kind.
    #[must_use]
    pub fn of(envelope: &Envelope) -> Self {
        match envelope.stream.kind() {
            StreamKind::Conversation => envelope
                .decode_event::<ConversationEvent>()
                .map_or(Self::Other, Self::Conversation),
            StreamKind::Desk => envelope
                .decode_event::<DeskEvent>()
                .map_or(Self::Other, Self::Desk),
            StreamKind::Ticket => envelope
                .decode_event::<TicketEvent>()
                .map_or(Self::Other, Self::Ticket),
            _ => Self::Other,
        }
    }
}

/// How metrics name tenants: by their id, or all as `all` (bounded cardinality for large
/// deployments; `crest serve --metrics-tenant-label=false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantLabel {
    /// One label value per tenant.
    PerTenant,
    /// Every tenant is `all`.
    Dropped,
}

impl TenantLabel {
    /// The label value for `tenant`.
    #[must_use]
    pub fn value(self, tenant: &str) -> &str {
        match self {
            Self::PerTenant => tenant,
            Self::Dropped => "all",
        }
    }
}
