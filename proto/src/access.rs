//! Access to a tenant (stream `cred:<tenant>:access`): API keys issued and revoked, agents' and
//! supervisors' passwords, and the login sessions they open.
//!
//! No secret is ever stored: an API key or a session token is kept as the SHA-256 of its text (the
//! text itself has 256 bits of randomness, so the digest cannot be reversed), a password as its
//! argon2id hash in PHC form. The same rules as [`crate::events`] hold: a persisted payload struct
//! is never edited.

use serde::{Deserialize, Serialize};

use crate::ids::AgentId;

/// What a credential may do in its tenant (see the permission table of the HTTP API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessRole {
    /// Everything in the tenant, keys included.
    Admin,
    /// Agents' work plus routing, queues, reports and taking chats over.
    Supervisor,
    /// Their own seat and their own chats.
    Agent,
    /// A merchant's system: posts customer messages, reads conversations and tickets.
    Integration,
}

impl AccessRole {
    /// The role's name in the API (`admin`, `supervisor`, `agent`, `integration`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Supervisor => "supervisor",
            Self::Agent => "agent",
            Self::Integration => "integration",
        }
    }
}

/// An API key was issued. The key's text was shown once to whoever asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyIssued {
    /// The key's public id (what listing shows and revoking names).
    pub key_id: String,
    /// What the key may do.
    pub role: AccessRole,
    /// The agent the key acts as (agent and supervisor keys may name one).
    pub agent: Option<AgentId>,
    /// A label chosen by whoever created it.
    pub name: Option<String>,
    /// SHA-256 of the key's text.
    pub key_hash: Vec<u8>,
    /// Who issued it: `operator` or `key:<id>`.
    pub issued_by: String,
}

/// An API key was revoked: it authenticates nothing from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRevoked {
    /// The key's id.
    pub key_id: String,
    /// Who revoked it.
    pub revoked_by: String,
}

/// An agent's or supervisor's password was set (sessions opened before are closed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordSet {
    /// The seat.
    pub agent: AgentId,
    /// The role a login with this password gets (`agent` or `supervisor`).
    pub role: AccessRole,
    /// The argon2id hash in PHC string form.
    pub password_hash: String,
    /// Who set it.
    pub set_by: String,
}

/// The tenant's customer widget was configured: its public website token, the web origins that
/// may embed it, and whether customers must be verified by the merchant's HMAC of their user id.
/// The identity secret is never stored: it is derived from the master key `master_id` and `salt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetConfigured {
    /// The public website token that pages embed (`cw.<tenant>.<random>`).
    pub website_token: String,
    /// Origins (`https://shop.example`) whose pages may open widget sessions; empty: any.
    pub origins: Vec<String>,
    /// Whether a session needs the merchant's HMAC of the customer's user id.
    pub identity_required: bool,
    /// Random bytes the identity secret is derived with (new ones rotate it).
    pub salt: Vec<u8>,
    /// The master key the identity secret is derived from.
    pub master_id: u32,
    /// Who configured it.
    pub configured_by: String,
}

/// An agent or supervisor logged in with their password and got a session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOpened {
    /// The session's public id.
    pub session_id: String,
    /// The seat that logged in.
    pub agent: AgentId,
    /// The session's role.
    pub role: AccessRole,
    /// SHA-256 of the session token's text.
    pub token_hash: Vec<u8>,
    /// When the token stops working, in milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

/// Everything that can happen to a tenant's access stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AccessEvent {
    /// See [`KeyIssued`].
    KeyIssued(KeyIssued),
    /// See [`KeyRevoked`].
    KeyRevoked(KeyRevoked),
    /// See [`PasswordSet`].
    PasswordSet(PasswordSet),
    /// See [`SessionOpened`].
    SessionOpened(SessionOpened),
    /// See [`WidgetConfigured`].
    WidgetConfigured(WidgetConfigured),
}

crate::events::domain_event!(AccessEvent {
    KeyIssued => "access.key_issued" @ 1,
    KeyRevoked => "access.key_revoked" @ 1,
    PasswordSet => "access.password_set" @ 1,
    SessionOpened => "access.session_opened" @ 1,
    WidgetConfigured => "access.widget_configured" @ 1,
});
