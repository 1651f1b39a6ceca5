//! The audit log of a tenant (stream `audit:<tenant>:log`): who did what sensitive thing, when.
//! Key issues and revocations, password changes, logins (and refused ones), changes of routing,
//! queues, seats and customer tiers, and later PII reveals and erasures each append one record.
//!
//! The same rules as [`crate::events`] hold: a persisted payload struct is never edited.

use serde::{Deserialize, Serialize};

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// What happened, e.g. `api_key.issued`, `login.refused`, `routing_table.set`.
    pub action: String,
    /// Who did it: `operator`, `key:<id>`, `session:<id>`, or `anonymous` for a refused login.
    pub actor: String,
    /// What it was done to, e.g. `key:<id>`, `agent:<id>`, `queue:<group>`.
    pub target: String,
    /// A short description of the change (never a secret).
    pub detail: String,
}

/// Everything that can happen to an audit stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuditEvent {
    /// See [`Recorded`].
    Recorded(Recorded),
}

crate::events::domain_event!(AuditEvent {
    Recorded => "audit.recorded" @ 1,
});
