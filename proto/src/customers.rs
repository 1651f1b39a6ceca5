//! One customer across channels: the identities a customer is known by (a channel's own id, a
//! phone, an email, a platform's union id, an order) and the merges of one customer into another.
//!
//! Identities are events of the customer's own stream; merges are events of the tenant's routing
//! desk, the one authority that sees every merge of the tenant (so two merges can never form a
//! loop) and that routing asks where a customer's messages go.

use serde::{Deserialize, Serialize};

use crate::ids::{CustomerId, MergeId};

/// What an identity is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// A channel's own id of the customer (a WeChat openid, a shop's buyer id); names its channel.
    Channel,
    /// A phone number.
    Phone,
    /// An email address.
    Email,
    /// A platform's id across its apps (a WeChat union id).
    UnionId,
    /// An order the customer owns, as the merchant's systems say.
    Order,
}

impl IdentityKind {
    /// The lowercase name used in the API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Channel => "channel",
            Self::Phone => "phone",
            Self::Email => "email",
            Self::UnionId => "union_id",
            Self::Order => "order",
        }
    }

    /// Whether the merchant can vouch for this kind of identity with `verified` (a code sent to a
    /// phone or an email); the other kinds come from a platform or the merchant's own systems.
    #[must_use]
    pub fn can_be_verified(self) -> bool {
        matches!(self, Self::Phone | Self::Email)
    }
}

/// One identity of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identity {
    /// What it is.
    pub kind: IdentityKind,
    /// The channel of a [`IdentityKind::Channel`] identity (`wechat`, `taobao`, …); `None` otherwise.
    pub channel: Option<String>,
    /// The value: the external id, the phone number (digits and a leading `+`), the email
    /// address (lowercase), the union id or the order id.
    pub value: String,
}

/// An identity was recorded for the customer (again, when its verification changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRecorded {
    /// The identity.
    pub identity: Identity,
    /// True if the merchant verified it (a code sent to the phone or email and typed back).
    pub verified: bool,
}

/// The customer took part in a merge, on either side (customer event, recorded when the merge
/// or its undo reaches the customer's actor). A customer stream without it never took part in
/// one, so a new actor of that customer routes its messages to its own conversation without
/// asking routing — a customer's first message after a restart or a shard's move must not wait
/// for the routing desk of its tenant, which may be moving too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeInvolved {
    /// The merge, or the undo's merge, that reached the customer first.
    pub merge: MergeId,
}

/// What proves two customers are one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// A phone number both customers have as a verified identity.
    VerifiedPhone,
    /// An order both customers own.
    SharedOrder,
}

impl EvidenceKind {
    /// The lowercase name used in the API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifiedPhone => "verified_phone",
            Self::SharedOrder => "shared_order",
        }
    }
}

/// The evidence a merge was made on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeEvidence {
    /// What kind.
    pub kind: EvidenceKind,
    /// The phone number or the order id.
    pub value: String,
}

/// Customer `from` was merged into `into` (desk event): messages from `from` go to `into`'s open
/// conversation, and `into`'s history shows `from`'s conversations, until the merge is undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomersMerged {
    /// The merge.
    pub merge: MergeId,
    /// The customer merged away.
    pub from: CustomerId,
    /// The customer that remains.
    pub into: CustomerId,
    /// Why, in the words of whoever merged.
    pub reason: String,
    /// What proved them one person.
    pub evidence: MergeEvidence,
    /// Who merged them (`role:id` of the credential).
    pub by: String,
}

/// A merge was undone (desk event): both customers are separate again. Names both customers, so
/// the reaction (the merged-away customer routes its own messages again) needs nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerMergeUndone {
    /// The merge undone.
    pub merge: MergeId,
    /// The customer that was merged away.
    pub from: CustomerId,
    /// The customer it was merged into.
    pub into: CustomerId,
    /// Who undid it.
    pub by: String,
}

/// A phone as digits with an optional leading `+` (spaces, dashes and brackets dropped), 5 to 20
/// digits; `None`: not a phone at all. Identities and leads store phones this way.
#[must_use]
pub fn normalise_phone(text: &str) -> Option<String> {
    let (plus, rest) = match text.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", text),
    };
    let mut digits = String::with_capacity(rest.len() + 1);
    digits.push_str(plus);
    for character in rest.chars() {
        match character {
            '0'..='9' => digits.push(character),
            ' ' | '-' | '(' | ')' => {}
            _ => return None,
        }
    }
    let count = digits.len() - plus.len();
    (5..=20).contains(&count).then_some(digits)
}
