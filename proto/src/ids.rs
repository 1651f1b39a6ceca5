//! Tenant-scoped identifiers. Every id carries its tenant, so nothing can cross tenants by accident:
//! a conversation id of tenant `a` never equals one of tenant `b`, and stream names start with the tenant.
//!
//! Generated ids (conversations, messages) are ULIDs: 128 bits, time-ordered, rendered as 26
//! Crockford base32 characters. External ids (customers, agents, channel message ids) are chosen by
//! the merchant's systems and validated against a conservative character set.

use std::fmt;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// Longest accepted tenant id.
pub const MAX_TENANT_LEN: usize = 64;
/// Longest accepted external id (customer, agent, channel message id).
pub const MAX_EXTERNAL_ID_LEN: usize = 128;

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id was empty.
    #[error("{kind} must not be empty")]
    Empty {
        /// Which id.
        kind: &'static str,
    },
    /// The id was longer than allowed.
    #[error("{kind} is longer than {max} characters")]
    TooLong {
        /// Which id.
        kind: &'static str,
        /// The limit.
        max: usize,
    },
    /// The id contained a character outside its allowed set.
    #[error("{kind} contains the illegal character {character:?}; allowed: {allowed}")]
    IllegalCharacter {
        /// Which id.
        kind: &'static str,
        /// The first offending character.
        character: char,
        /// The allowed set, for the error message.
        allowed: &'static str,
    },
    /// A generated id was not a valid ULID.
    #[error("{kind} is not a valid id: expected 26 base32 characters")]
    Malformed {
        /// Which id.
        kind: &'static str,
    },
}

const TENANT_ALLOWED: &str = "lowercase a-z, 0-9, '-' and '_', starting with a letter or digit";
const EXTERNAL_ALLOWED: &str = "A-Z, a-z, 0-9 and - _ . @ + :";

fn validate_external(kind: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > MAX_EXTERNAL_ID_LEN {
        return Err(IdError::TooLong {
            kind,
            max: MAX_EXTERNAL_ID_LEN,
        });
    }
    let illegal = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+' | ':')));
    match illegal {
        Some(character) => Err(IdError::IllegalCharacter {
            kind,
            character,
            allowed: EXTERNAL_ALLOWED,
        }),
        None => Ok(()),
    }
}

/// A merchant (tenant). Lowercase, subject-safe: it appears in NATS subjects and stream names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TenantId(String);

impl TenantId {
    /// Validates and wraps a tenant id.
    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        let kind = "tenant";
        if value.is_empty() {
            return Err(IdError::Empty { kind });
        }
        if value.len() > MAX_TENANT_LEN {
            return Err(IdError::TooLong {
                kind,
                max: MAX_TENANT_LEN,
            });
        }
        let illegal = value.char_indices().find(|(index, c)| {
            let allowed_anywhere = c.is_ascii_lowercase() || c.is_ascii_digit();
            let allowed_inside = *index > 0 && matches!(c, '-' | '_');
            !(allowed_anywhere || allowed_inside)
        });
        if let Some((_, character)) = illegal {
            return Err(IdError::IllegalCharacter {
                kind,
                character,
                allowed: TENANT_ALLOWED,
            });
        }
        Ok(Self(value))
    }

    /// The tenant id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Serde helper: a ULID stored as its 128-bit integer (16 bytes in bincode, not 26 characters);
/// the matching serializer is the hand-written `Serialize` of each id.
mod ulid_as_u128 {
    use serde::{Deserialize, Deserializer};
    use ulid::Ulid;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Ulid, D::Error> {
        u128::deserialize(deserializer).map(Ulid)
    }
}

macro_rules! generated_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        ///
        /// Encoded as `(tenant, ulid as u128)` by the binary codec; rendered as its 26-character text
        /// in human-readable formats (JSON views), where the tenant is known from context.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
        pub struct $name {
            tenant: TenantId,
            #[serde(deserialize_with = "ulid_as_u128::deserialize")]
            ulid: Ulid,
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                if serializer.is_human_readable() {
                    return serializer.collect_str(self);
                }
                let mut fields = serializer.serialize_struct(stringify!($name), 2)?;
                fields.serialize_field("tenant", &self.tenant)?;
                fields.serialize_field("ulid", &self.ulid.0)?;
                fields.end()
            }
        }

        impl $name {
            /// A new, time-ordered id in `tenant`.
            #[must_use]
            pub fn generate(tenant: &TenantId) -> Self {
                Self { tenant: tenant.clone(), ulid: Ulid::new() }
            }

            /// An id from its parts (used by tests, golden files and decoders).
            #[must_use]
            pub fn from_parts(tenant: TenantId, ulid: u128) -> Self {
                Self { tenant, ulid: Ulid(ulid) }
            }

            /// Parses the 26-character text form within `tenant`.
            pub fn parse(tenant: &TenantId, text: &str) -> Result<Self, IdError> {
                let ulid = Ulid::from_string(text).map_err(|_| IdError::Malformed { kind: $kind })?;
                Ok(Self { tenant: tenant.clone(), ulid })
            }

            /// The owning tenant.
            #[must_use]
            pub fn tenant(&self) -> &TenantId {
                &self.tenant
            }

            /// Milliseconds since the Unix epoch at which the id was generated.
            #[must_use]
            pub fn timestamp_ms(&self) -> u64 {
                self.ulid.timestamp_ms()
            }

            /// The 26-character text form, without the tenant (the API path carries the tenant).
            #[must_use]
            pub fn key(&self) -> String {
                self.ulid.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{}", self.ulid)
            }
        }
    };
}

generated_id!(
    /// One conversation between a customer and the merchant, across channels.
    ConversationId,
    "conversation id"
);
generated_id!(
    /// One message inside a conversation (customer, bot, agent or system).
    MessageId,
    "message id"
);
generated_id!(
    /// An after-sales ticket (return, refund, complaint, callback).
    TicketId,
    "ticket id"
);
generated_id!(
    /// One merge of a customer into another (undone by its id).
    MergeId,
    "merge id"
);

macro_rules! external_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        ///
        /// Encoded as `(tenant, key)` by the binary codec; rendered as the key alone in
        /// human-readable formats (JSON views), where the tenant is known from context.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
        pub struct $name {
            tenant: TenantId,
            key: String,
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                if serializer.is_human_readable() {
                    return serializer.serialize_str(&self.key);
                }
                let mut fields = serializer.serialize_struct(stringify!($name), 2)?;
                fields.serialize_field("tenant", &self.tenant)?;
                fields.serialize_field("key", &self.key)?;
                fields.end()
            }
        }

        impl $name {
            /// Validates `key` and scopes it to `tenant`.
            pub fn new(tenant: &TenantId, key: impl Into<String>) -> Result<Self, IdError> {
                let key = key.into();
                validate_external($kind, &key)?;
                Ok(Self { tenant: tenant.clone(), key })
            }

            /// The owning tenant.
            #[must_use]
            pub fn tenant(&self) -> &TenantId {
                &self.tenant
            }

            /// The merchant's own id, without the tenant.
            #[must_use]
            pub fn key(&self) -> &str {
                &self.key
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.key)
            }
        }
    };
}

external_id!(
    /// A customer of a merchant, as the merchant identifies them.
    CustomerId,
    "customer"
);
external_id!(
    /// A human agent seat.
    AgentId,
    "agent"
);

/// Validates a channel message id (the idempotency key a channel gives each inbound message).
pub fn validate_channel_message_id(value: &str) -> Result<(), IdError> {
    validate_external("message id", value)
}

/// Validates a channel name (`web`, `app`, `wechat`, …): same rules as a tenant id.
pub fn validate_channel(value: &str) -> Result<(), IdError> {
    TenantId::new(value)
        .map(|_| ())
        .map_err(|error| match error {
            IdError::Empty { .. } => IdError::Empty { kind: "channel" },
            IdError::TooLong { max, .. } => IdError::TooLong {
                kind: "channel",
                max,
            },
            IdError::IllegalCharacter {
                character, allowed, ..
            } => IdError::IllegalCharacter {
                kind: "channel",
                character,
                allowed,
            },
            IdError::Malformed { .. } => IdError::Malformed { kind: "channel" },
        })
}

/// The kind of entity a journal stream belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// `conv:<tenant>:<ulid>`
    Conversation,
    /// `cust:<tenant>:<customer>`
    Customer,
    /// `agent:<tenant>:<agent>`
    Agent,
    /// `desk:<tenant>:routing`: the tenant's routing desk (agents, queues, tickets, timers).
    Desk,
    /// `dir:system:<name>`: a node-wide directory (which tenants have a desk).
    Directory,
    /// `ticket:<tenant>:<ulid>`: an after-sales ticket.
    Ticket,
    /// `cred:<tenant>:access`: the tenant's API keys, passwords and login sessions.
    Access,
    /// `audit:<tenant>:log`: the tenant's audit log.
    Audit,
    /// `kb:<tenant>:documents`: the tenant's knowledge-base documents.
    Knowledge,
    /// `chan:<tenant>:config` (the tenant's channel connections) and `chan:<tenant>:out.<name>`
    /// (the durable outbox of one channel).
    Channel,
    /// `pro:<tenant>:rules` (the tenant's proactive rules) and `pro:<tenant>:cust.<customer>` (the
    /// proactive messages decided for one customer, sent or suppressed).
    Proactive,
}

impl StreamKind {
    /// The prefix used in stream names.
    #[must_use]
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Conversation => "conv",
            Self::Customer => "cust",
            Self::Agent => "agent",
            Self::Desk => "desk",
            Self::Directory => "dir",
            Self::Ticket => "ticket",
            Self::Access => "cred",
            Self::Audit => "audit",
            Self::Knowledge => "kb",
            Self::Channel => "chan",
            Self::Proactive => "pro",
        }
    }
}

/// A journal stream (persistence id): `<kind>:<tenant>:<key>`. One writer per stream; events in a
/// stream are numbered 1, 2, 3, … without gaps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamId(String);

impl StreamId {
    /// The stream of a conversation.
    #[must_use]
    pub fn conversation(id: &ConversationId) -> Self {
        Self(format!("conv:{}:{}", id.tenant(), id))
    }

    /// The stream of a customer (their identity and open-conversation pointer).
    #[must_use]
    pub fn customer(id: &CustomerId) -> Self {
        Self(format!("cust:{}:{}", id.tenant(), id.key()))
    }

    /// The stream of an agent seat.
    #[must_use]
    pub fn agent(id: &AgentId) -> Self {
        Self(format!("agent:{}:{}", id.tenant(), id.key()))
    }

    /// The stream of an after-sales ticket.
    #[must_use]
    pub fn ticket(id: &TicketId) -> Self {
        Self(format!("ticket:{}:{}", id.tenant(), id))
    }

    /// The routing desk of `tenant`: its agents, queues, the open tickets' SLA timers.
    #[must_use]
    pub fn desk(tenant: &TenantId) -> Self {
        Self(format!("desk:{tenant}:routing"))
    }

    /// The access stream of `tenant`: its API keys, passwords and login sessions.
    #[must_use]
    pub fn access(tenant: &TenantId) -> Self {
        Self(format!("cred:{tenant}:access"))
    }

    /// The audit log of `tenant`.
    #[must_use]
    pub fn audit(tenant: &TenantId) -> Self {
        Self(format!("audit:{tenant}:log"))
    }

    /// The node-wide directory of tenants that have a routing desk (read at start to re-arm timers).
    #[must_use]
    pub fn desk_directory() -> Self {
        Self("dir:system:desks".to_owned())
    }

    /// The knowledge-base documents of `tenant`.
    #[must_use]
    pub fn knowledge(tenant: &TenantId) -> Self {
        Self(format!("kb:{tenant}:documents"))
    }

    /// The intent examples and model switches of `tenant` (a knowledge stream: what the bot knows).
    #[must_use]
    pub fn intents(tenant: &TenantId) -> Self {
        Self(format!("kb:{tenant}:intents"))
    }

    /// The node-wide directory of tenants that have a knowledge base (read at start to index them).
    #[must_use]
    pub fn knowledge_directory() -> Self {
        Self("dir:system:kb".to_owned())
    }

    /// The channel connections of `tenant` (configured and removed).
    #[must_use]
    pub fn channels(tenant: &TenantId) -> Self {
        Self(format!("chan:{tenant}:config"))
    }

    /// The durable outbox of `tenant`'s channel `name` (a channel name is a valid stream key:
    /// lowercase letters, digits, `-` and `_`).
    #[must_use]
    pub fn channel_outbox(tenant: &TenantId, name: &str) -> Self {
        Self(format!("chan:{tenant}:out.{name}"))
    }

    /// The lead policy of `tenant` (which intents make the bot ask for contact details, and its
    /// words): bot content, like the intents, so it sits beside them.
    #[must_use]
    pub fn lead_policy(tenant: &TenantId) -> Self {
        Self(format!("kb:{tenant}:leads"))
    }

    /// The node-wide directory of tenants that have channel connections (read at start to load
    /// their configurations and outboxes).
    #[must_use]
    pub fn channel_directory() -> Self {
        Self("dir:system:channels".to_owned())
    }

    /// The proactive rules of `tenant`.
    #[must_use]
    pub fn proactive_rules(tenant: &TenantId) -> Self {
        Self(format!("pro:{tenant}:rules"))
    }

    /// The proactive decisions of a customer (the `cust.` prefix keeps a customer named `rules`
    /// apart from the rules stream).
    #[must_use]
    pub fn proactive(id: &CustomerId) -> Self {
        Self(format!("pro:{}:cust.{}", id.tenant(), id.key()))
    }

    /// Parses a stream name, checking its kind and tenant.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let mut parts = text.splitn(3, ':');
        let kind = parts.next().unwrap_or_default();
        let tenant = parts.next().ok_or(IdError::Malformed { kind: "stream" })?;
        let key = parts.next().ok_or(IdError::Malformed { kind: "stream" })?;
        if !matches!(
            kind,
            "conv"
                | "cust"
                | "agent"
                | "desk"
                | "dir"
                | "ticket"
                | "cred"
                | "audit"
                | "kb"
                | "chan"
                | "pro"
        ) {
            return Err(IdError::Malformed { kind: "stream" });
        }
        TenantId::new(tenant)?;
        validate_external("stream key", key)?;
        Ok(Self(text.to_owned()))
    }

    /// The stream name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The kind of entity.
    #[must_use]
    pub fn kind(&self) -> StreamKind {
        match self.0.split(':').next() {
            Some("conv") => StreamKind::Conversation,
            Some("cust") => StreamKind::Customer,
            Some("desk") => StreamKind::Desk,
            Some("dir") => StreamKind::Directory,
            Some("ticket") => StreamKind::Ticket,
            Some("cred") => StreamKind::Access,
            Some("audit") => StreamKind::Audit,
            Some("kb") => StreamKind::Knowledge,
            Some("chan") => StreamKind::Channel,
            Some("pro") => StreamKind::Proactive,
            _ => StreamKind::Agent,
        }
    }

    /// The tenant the stream belongs to.
    #[must_use]
    pub fn tenant(&self) -> &str {
        self.0.split(':').nth(1).unwrap_or_default()
    }

    /// The tenant as an id (`None` for node-wide streams such as `dir:system:desks`, whose tenant
    /// part is a valid id too, so only a malformed name gives `None`).
    #[must_use]
    pub fn tenant_id(&self) -> Option<TenantId> {
        TenantId::new(self.tenant()).ok()
    }

    /// The key after `<kind>:<tenant>:`.
    #[must_use]
    pub fn key(&self) -> &str {
        self.0.splitn(3, ':').nth(2).unwrap_or_default()
    }

    /// The conversation of a `conv:` stream.
    #[must_use]
    pub fn conversation_id(&self) -> Option<ConversationId> {
        if self.kind() != StreamKind::Conversation {
            return None;
        }
        ConversationId::parse(&self.tenant_id()?, self.key()).ok()
    }

    /// The customer of a `cust:` stream.
    #[must_use]
    pub fn customer_id(&self) -> Option<CustomerId> {
        if self.kind() != StreamKind::Customer {
            return None;
        }
        CustomerId::new(&self.tenant_id()?, self.key()).ok()
    }

    /// The agent of an `agent:` stream.
    #[must_use]
    pub fn agent_id(&self) -> Option<AgentId> {
        if self.kind() != StreamKind::Agent {
            return None;
        }
        AgentId::new(&self.tenant_id()?, self.key()).ok()
    }

    /// The ticket of a `ticket:` stream.
    #[must_use]
    pub fn ticket_id(&self) -> Option<TicketId> {
        if self.kind() != StreamKind::Ticket {
            return None;
        }
        TicketId::parse(&self.tenant_id()?, self.key()).ok()
    }

    /// The slice (0..1024) of this stream.
    #[must_use]
    pub fn slice(&self) -> u16 {
        crate::slice::slice_of(&self.0)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::new(name).expect("valid tenant")
    }

    #[test]
    fn streams_give_back_the_ids_they_were_made_of() {
        let shop = tenant("shop");
        let conversation = ConversationId::generate(&shop);
        let customer = CustomerId::new(&shop, "c-1").expect("valid");
        let agent = AgentId::new(&shop, "alice").expect("valid");
        let stream = StreamId::conversation(&conversation);
        assert_eq!(stream.conversation_id(), Some(conversation.clone()));
        assert_eq!(
            stream.customer_id(),
            None,
            "a conversation stream is not a customer's"
        );
        assert_eq!(StreamId::customer(&customer).customer_id(), Some(customer));
        assert_eq!(StreamId::agent(&agent).agent_id(), Some(agent));
        let ticket = TicketId::generate(&shop);
        let stream = StreamId::ticket(&ticket);
        assert_eq!(stream.kind(), StreamKind::Ticket);
        assert_eq!(StreamId::parse(stream.as_str()), Ok(stream.clone()));
        assert_eq!(stream.ticket_id(), Some(ticket));
        assert_eq!(stream.agent_id(), None, "a ticket stream is not an agent's");
        for (stream, kind) in [
            (StreamId::access(&shop), StreamKind::Access),
            (StreamId::audit(&shop), StreamKind::Audit),
            (StreamId::knowledge(&shop), StreamKind::Knowledge),
            (StreamId::channels(&shop), StreamKind::Channel),
            (
                StreamId::channel_outbox(&shop, "wx-main"),
                StreamKind::Channel,
            ),
        ] {
            assert_eq!(stream.kind(), kind);
            assert_eq!(StreamId::parse(stream.as_str()), Ok(stream.clone()));
            assert_eq!(stream.tenant_id(), Some(shop.clone()));
            assert!(stream.as_str().starts_with(kind.prefix()));
        }
        assert_eq!(StreamId::desk(&shop).tenant_id(), Some(shop));
        assert_eq!(StreamId::desk_directory().key(), "desks");
    }

    #[test]
    fn tenant_ids_are_validated() {
        assert!(TenantId::new("acme-shop_1").is_ok());
        assert_eq!(TenantId::new(""), Err(IdError::Empty { kind: "tenant" }));
        assert!(matches!(
            TenantId::new("Acme"),
            Err(IdError::IllegalCharacter { character: 'A', .. })
        ));
        assert!(matches!(
            TenantId::new("a.b"),
            Err(IdError::IllegalCharacter { character: '.', .. })
        ));
        assert!(matches!(
            TenantId::new("-a"),
            Err(IdError::IllegalCharacter { character: '-', .. })
        ));
        assert!(matches!(
            TenantId::new("a".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn external_ids_are_validated_and_scoped() {
        let acme = tenant("acme");
        let other = tenant("other");
        let customer = CustomerId::new(&acme, "c-123@shop.example").expect("valid");
        assert_eq!(customer.key(), "c-123@shop.example");
        assert_ne!(
            customer,
            CustomerId::new(&other, "c-123@shop.example").expect("valid")
        );
        assert!(matches!(
            CustomerId::new(&acme, "c 1"),
            Err(IdError::IllegalCharacter { character: ' ', .. })
        ));
        assert!(matches!(
            CustomerId::new(&acme, "c/1"),
            Err(IdError::IllegalCharacter { .. })
        ));
        assert!(matches!(
            CustomerId::new(&acme, ""),
            Err(IdError::Empty { .. })
        ));
        assert!(matches!(
            CustomerId::new(&acme, "x".repeat(129)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn generated_ids_are_time_ordered_and_round_trip() {
        let acme = tenant("acme");
        let first = ConversationId::generate(&acme);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = ConversationId::generate(&acme);
        assert!(first < second);
        let parsed = ConversationId::parse(&acme, &first.key()).expect("round trip");
        assert_eq!(parsed, first);
        assert!(ConversationId::parse(&acme, "not-a-ulid").is_err());
        let in_other_tenant =
            ConversationId::parse(&tenant("other"), &first.key()).expect("parses");
        assert_ne!(in_other_tenant, first);
    }

    #[test]
    fn stream_names_carry_kind_and_tenant() {
        let acme = tenant("acme");
        let conversation = ConversationId::from_parts(acme.clone(), 7);
        let stream = StreamId::conversation(&conversation);
        assert_eq!(stream.as_str(), "conv:acme:00000000000000000000000007");
        assert_eq!(stream.kind(), StreamKind::Conversation);
        assert_eq!(stream.tenant(), "acme");
        let customer = StreamId::customer(&CustomerId::new(&acme, "c-1").expect("valid"));
        assert_eq!(customer.as_str(), "cust:acme:c-1");
        assert_eq!(StreamId::parse("cust:acme:c-1").expect("parses"), customer);
        assert!(StreamId::parse("nope:acme:c-1").is_err());
        assert!(StreamId::parse("cust:ACME:c-1").is_err());
    }
}
