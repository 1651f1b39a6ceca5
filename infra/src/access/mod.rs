//! Who may call the API: credentials (tenant API keys, login sessions, the operator's token), the
//! tenants' access streams that hold them, and the principal a request acts as.
//!
//! The HTTP side (the permission table and the middleware that enforces it) is in
//! [`crate::http::permissions`].

pub mod audit;
pub mod secret;
pub mod store;
pub mod widget;

use std::sync::Arc;

use crest_proto::access::AccessRole;
use crest_proto::{AgentId, CustomerId, TenantId};

pub use audit::AuditLog;
pub use secret::OperatorToken;
pub use store::{AccessState, AccessStore, Credential};

/// Everything the API needs to check credentials.
#[derive(Debug, Clone)]
pub struct Access {
    /// The tenants' access streams.
    pub store: Arc<AccessStore>,
    /// The operator's token (`None`: no operator credential on this node).
    pub operator: Option<OperatorToken>,
    /// How long a login session lasts.
    pub session_ttl: std::time::Duration,
    /// The tenants' audit logs.
    pub audit: Arc<AuditLog>,
    /// The master keys (widget sessions are signed, and identity secrets derived, with them).
    pub masters: Arc<crate::vault::Keyring>,
}

/// Default lifetime of a login session.
pub const DEFAULT_SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(8 * 3600);

/// The role a request acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The node's operator (not tied to a tenant).
    Operator,
    /// A tenant role from an API key or a session.
    Tenant(AccessRole),
    /// A customer in the widget (one customer's own conversation only).
    Customer,
}

/// Who a request acts as, once its credential is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The operator.
    Operator,
    /// A credential of one tenant.
    Tenant {
        /// The tenant the credential belongs to.
        tenant: TenantId,
        /// Its role.
        role: AccessRole,
        /// The seat it acts as (sessions always; agent keys always; others may).
        agent: Option<AgentId>,
        /// `key:<id>` or `session:<id>`: how audit records name the actor.
        actor: String,
    },
    /// A customer's widget session.
    Customer {
        /// The tenant.
        tenant: TenantId,
        /// The customer, the only one it acts as.
        customer: CustomerId,
        /// Whether the merchant verified the customer.
        verified: bool,
    },
}

impl Principal {
    /// The role.
    #[must_use]
    pub fn role(&self) -> Role {
        match self {
            Self::Operator => Role::Operator,
            Self::Tenant { role, .. } => Role::Tenant(*role),
            Self::Customer { .. } => Role::Customer,
        }
    }

    /// How audit records and issued-by fields name this principal.
    #[must_use]
    pub fn actor(&self) -> String {
        match self {
            Self::Operator => "operator".to_owned(),
            Self::Tenant { actor, .. } => actor.clone(),
            Self::Customer { .. } => "widget".to_owned(),
        }
    }

    /// The seat this principal is bound to, if any.
    #[must_use]
    pub fn agent(&self) -> Option<&AgentId> {
        match self {
            Self::Operator | Self::Customer { .. } => None,
            Self::Tenant { agent, .. } => agent.as_ref(),
        }
    }

    /// Whether the principal may act as `agent`: admins and the operator as anyone; supervisors as
    /// anyone unless bound to a seat of their own; agents only as themselves.
    #[must_use]
    pub fn may_act_as(&self, agent: &AgentId) -> bool {
        match self {
            Self::Operator => true,
            Self::Tenant {
                role: AccessRole::Admin,
                ..
            } => true,
            Self::Tenant {
                role: AccessRole::Supervisor,
                agent: bound,
                ..
            } => bound.as_ref().is_none_or(|own| own == agent),
            Self::Tenant {
                role: AccessRole::Agent,
                agent: bound,
                ..
            } => bound.as_ref() == Some(agent),
            Self::Tenant {
                role: AccessRole::Integration,
                ..
            }
            | Self::Customer { .. } => false,
        }
    }

    /// Whether this is an agent-role principal (limited to its own seat and chats).
    #[must_use]
    pub fn is_agent(&self) -> bool {
        matches!(
            self,
            Self::Tenant {
                role: AccessRole::Agent,
                ..
            }
        )
    }
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
