//! Leads: the contact details a pre-sales customer gives the bot, and the rules that make the bot
//! ask for them.
//!
//! A tenant's lead policy lives in the stream `kb:<tenant>:leads` ([`LeadPolicyEvent`]): which
//! intents are pre-sales ones (a customer asking about them is asked for a name and a phone) and
//! what the bot says, in Chinese and English. The slot filling itself is journaled in the
//! conversation's own stream ([`LeadProgressed`], then [`LeadCaptured`]), so it survives restarts
//! and moves with the conversation across a cluster (the conversation actor is its single writer).
//!
//! The same rules as [`crate::events`] hold: a persisted payload struct is never edited.

use serde::{Deserialize, Serialize};

pub use crate::customers::normalise_phone;
use crate::ids::CustomerId;

/// The tenant's lead policy was replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadPolicySet {
    /// Pre-sales intents: a customer message recognised as one of them starts collecting a lead
    /// (empty: the bot never asks).
    pub intents: Vec<String>,
    /// Asking for the name, in Chinese.
    pub ask_name_zh: String,
    /// Asking for the name, in English.
    pub ask_name_en: String,
    /// Asking for the phone, in Chinese.
    pub ask_phone_zh: String,
    /// Asking for the phone, in English.
    pub ask_phone_en: String,
    /// Thanking once both are known, in Chinese.
    pub thanks_zh: String,
    /// Thanking once both are known, in English.
    pub thanks_en: String,
    /// Who set it: `operator`, `key:<id>` or `session:<id>`.
    pub set_by: String,
}

/// Everything that can happen to a tenant's lead policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LeadPolicyEvent {
    /// See [`LeadPolicySet`].
    PolicySet(LeadPolicySet),
}

crate::events::domain_event!(LeadPolicyEvent {
    PolicySet => "lead.policy_set" @ 1,
});

/// The bot is collecting a lead in a conversation: what it knows so far (conversation event,
/// journaled with the bot's reply that asks for what is missing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadProgressed {
    /// The pre-sales intent that started it.
    pub intent: String,
    /// The customer's name, once given.
    pub name: Option<String>,
    /// The customer's phone (normalised: digits with an optional leading `+`), once given.
    pub phone: Option<String>,
}

/// The customer gave a name and a valid phone: a lead for the merchant's CRM (conversation
/// event; the conversation is its stream, the time its envelope's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadCaptured {
    /// The customer.
    pub customer: CustomerId,
    /// The pre-sales intent that started it.
    pub intent: String,
    /// The name.
    pub name: String,
    /// The phone, normalised: `1xxxxxxxxxx` (a mainland mobile) or `+<country><number>`.
    pub phone: String,
    /// The channel of the conversation's latest customer message.
    pub channel: String,
}

/// What the bot's turn changes in a lead, carried by the command that records its reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadUpdate {
    /// The pre-sales intent that started the lead.
    pub intent: String,
    /// The name known after this turn.
    pub name: Option<String>,
    /// The phone known after this turn (normalised).
    pub phone: Option<String>,
}

/// Whether a normalised phone is one a merchant can call back: a mainland China mobile
/// (`1[3-9]` and 9 more digits, optionally written `+86…`, stored without `+86`) or an
/// international number (`+`, a country code not starting with 0, 7 to 15 digits in all, as
/// E.164 allows). Returns the phone as stored.
#[must_use]
pub fn callable_phone(normalised: &str) -> Option<String> {
    let mainland = |digits: &str| {
        digits.len() == 11
            && digits.starts_with('1')
            && matches!(digits.as_bytes().get(1), Some(b'3'..=b'9'))
    };
    if let Some(international) = normalised.strip_prefix('+') {
        if let Some(national) = international.strip_prefix("86")
            && mainland(national)
        {
            return Some(national.to_owned());
        }
        let valid = (7..=15).contains(&international.len())
            && !international.starts_with('0')
            && !international.starts_with("86");
        return valid.then(|| normalised.to_owned());
    }
    mainland(normalised).then(|| normalised.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_mainland_mobiles_or_international() {
        let callable = |text: &str| normalise_phone(text).and_then(|phone| callable_phone(&phone));
        assert_eq!(callable("138 0013 8000").as_deref(), Some("13800138000"));
        assert_eq!(
            callable("+86 139-0000-1111").as_deref(),
            Some("13900001111")
        );
        assert_eq!(
            callable("+44 20 7946 0958").as_deref(),
            Some("+442079460958")
        );
        assert_eq!(callable("12800138000"), None, "12x is no mobile prefix");
        assert_eq!(callable("1380013800"), None, "ten digits");
        assert_eq!(callable("+86 12800138000"), None);
        assert_eq!(callable("+0123456789"), None);
        assert_eq!(callable("+123"), None);
        assert_eq!(callable("phone"), None);
    }
}
