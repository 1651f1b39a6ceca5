//! Platform profiles: what a messaging platform allows a merchant's replies, as data.
//!
//! Each platform (WeChat Official Accounts, Douyin, Xiaohongshu, Taobao-style shops, a merchant's
//! own webhook) publishes rules for customer-service replies: how long after the customer's last
//! message a reply may still be sent (the *reply window*), how many replies one customer message
//! allows, a daily cap per customer, how long a text may be, and whether images and cards pass.
//! They live in `profiles.json`, embedded in the binary and checked by [`builtin`] (and by a
//! test), so a new platform is a profile here plus an adapter such as [`super::wechat`].
//!
//! A channel names its profile (`profile`); without one, a `wechat_oa` channel follows
//! `wechat_oa` and every other kind `webhook` (no limits).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::ChannelKind;

/// The embedded profiles.
const PROFILES_JSON: &str = include_str!("profiles.json");

/// The profile that sets no limits.
pub const UNLIMITED: &str = "webhook";

/// What to do with a text longer than a platform allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextOverflow {
    /// Send it in several messages, each within the limit.
    Split,
    /// Send the part that fits, ending with `…`.
    Truncate,
}

/// One platform's rules for replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformProfile {
    /// The profile's name (a channel's `profile`).
    pub name: String,
    /// The platform, and its rules in a sentence.
    pub platform: String,
    /// Seconds after the customer's last message during which replies are allowed (`None`: any
    /// time).
    pub reply_window_s: Option<u64>,
    /// Replies one customer message allows within the window (`None`: no cap).
    pub replies_per_customer_message: Option<u32>,
    /// Messages a customer may receive per day (`None`: no cap).
    pub daily_messages_per_customer: Option<u32>,
    /// Longest text in characters (`None`: no limit).
    pub text_limit_chars: Option<usize>,
    /// Longest text in bytes of UTF-8 (`None`: no limit).
    pub text_limit_bytes: Option<usize>,
    /// What happens to a longer text.
    pub overflow: TextOverflow,
    /// Whether images pass.
    pub images: bool,
    /// Whether cards (links with a picture, product cards) pass.
    pub cards: bool,
}

/// Why a reply may not be sent now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyRefusal {
    /// The reply window closed this many seconds ago.
    WindowClosed {
        /// The window, in seconds.
        window_s: u64,
        /// How long ago the customer last wrote, in seconds.
        since_s: u64,
    },
    /// The replies one customer message allows are used up.
    QuotaUsed {
        /// Replies allowed per customer message.
        allowed: u32,
    },
}

impl std::fmt::Display for ReplyRefusal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WindowClosed { window_s, since_s } => write!(
                formatter,
                "the customer last wrote {} ago; replies are allowed for {} after that",
                hours(*since_s),
                hours(*window_s)
            ),
            Self::QuotaUsed { allowed } => write!(
                formatter,
                "the {allowed} replies one customer message allows are used up"
            ),
        }
    }
}

fn hours(seconds: u64) -> String {
    if seconds >= 3_600 && seconds.is_multiple_of(3_600) {
        format!("{} h", seconds / 3_600)
    } else if seconds >= 3_600 {
        format!("{:.1} h", seconds as f64 / 3_600.0)
    } else {
        format!("{seconds} s")
    }
}

impl PlatformProfile {
    /// Whether a reply may be sent at `now_ms`, the customer having last written at
    /// `last_customer_message_at_ms` and `replies_since` replies having been sent since.
    pub fn reply_allowed(
        &self,
        last_customer_message_at_ms: u64,
        replies_since: u32,
        now_ms: u64,
    ) -> Result<(), ReplyRefusal> {
        if let Some(window_s) = self.reply_window_s {
            let since_s = now_ms.saturating_sub(last_customer_message_at_ms) / 1_000;
            if since_s >= window_s {
                return Err(ReplyRefusal::WindowClosed { window_s, since_s });
            }
        }
        if let Some(allowed) = self.replies_per_customer_message
            && replies_since >= allowed
        {
            return Err(ReplyRefusal::QuotaUsed { allowed });
        }
        Ok(())
    }

    /// `text` as the platform takes it: one part if it fits; else, by [`Self::overflow`], the
    /// parts each within the limits (cut between characters, preferably after a line break, a
    /// sentence's end or a space near the limit) or the first part ending with `…`.
    #[must_use]
    pub fn parts(&self, text: &str) -> Vec<String> {
        if self.fits(text) {
            return vec![text.to_owned()];
        }
        match self.overflow {
            TextOverflow::Split => {
                let mut parts = Vec::new();
                let mut rest = text;
                while !rest.is_empty() {
                    let cut = self.cut(rest, 0);
                    let (part, after) = rest.split_at(cut);
                    let trimmed = part.trim_end();
                    if !trimmed.is_empty() {
                        parts.push(trimmed.to_owned());
                    }
                    rest = after.trim_start();
                }
                parts
            }
            TextOverflow::Truncate => {
                let ellipsis = '…';
                let cut = self.cut(text, ellipsis.len_utf8());
                let mut part = text[..cut].trim_end().to_owned();
                part.push(ellipsis);
                vec![part]
            }
        }
    }

    fn fits(&self, text: &str) -> bool {
        self.text_limit_bytes
            .is_none_or(|limit| text.len() <= limit)
            && self
                .text_limit_chars
                .is_none_or(|limit| text.chars().count() <= limit)
    }

    /// The byte index where the first part of `text` ends, leaving `reserve_bytes` and one
    /// character of the character limit free (for an ellipsis) when `reserve_bytes > 0`.
    fn cut(&self, text: &str, reserve_bytes: usize) -> usize {
        let char_limit = self
            .text_limit_chars
            .map(|limit| limit.saturating_sub(usize::from(reserve_bytes > 0)).max(1));
        let byte_limit = self
            .text_limit_bytes
            .map(|limit| limit.saturating_sub(reserve_bytes).max(4));
        let mut end = 0;
        for (count, (index, character)) in text.char_indices().enumerate() {
            let next = index + character.len_utf8();
            if char_limit.is_some_and(|limit| count >= limit)
                || byte_limit.is_some_and(|limit| next > limit)
            {
                break;
            }
            end = next;
        }
        if end == text.len() {
            return end;
        }
        // Prefer a natural break in the last quarter of the part.
        let head = &text[..end];
        let natural = head
            .char_indices()
            .rev()
            .take_while(|(index, _)| *index >= end - end / 4)
            .find(|(_, c)| {
                c.is_whitespace() || matches!(c, '。' | '！' | '？' | '；' | '，' | '.' | '!' | '?')
            })
            .map(|(index, c)| index + c.len_utf8());
        // At least one character, so a split always moves on.
        let first = text.chars().next().map_or(0, char::len_utf8);
        natural.unwrap_or(end).max(first)
    }

    fn check(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if !super::name_is_valid(&self.name) {
            reasons.push(format!(
                "{}: the name is not a valid profile name",
                self.name
            ));
        }
        if self.reply_window_s == Some(0) {
            reasons.push(format!(
                "{}: a reply window of 0 s allows nothing",
                self.name
            ));
        }
        if self.replies_per_customer_message == Some(0)
            || self.daily_messages_per_customer == Some(0)
        {
            reasons.push(format!("{}: a quota of 0 allows nothing", self.name));
        }
        if self.text_limit_chars == Some(0) || self.text_limit_bytes.is_some_and(|bytes| bytes < 8)
        {
            reasons.push(format!(
                "{}: a text limit must allow at least one character and an ellipsis",
                self.name
            ));
        }
        reasons
    }
}

/// Every known profile, by name.
#[derive(Debug, Clone)]
pub struct Profiles {
    by_name: BTreeMap<String, PlatformProfile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilesFile {
    profiles: Vec<PlatformProfile>,
}

impl Profiles {
    /// Parses and checks a profiles file: every profile sane, names unique, [`UNLIMITED`] and
    /// `wechat_oa` present.
    pub fn parse(json: &str) -> Result<Self, String> {
        let file: ProfilesFile =
            serde_json::from_str(json).map_err(|error| format!("profiles: {error}"))?;
        let mut by_name = BTreeMap::new();
        let mut reasons = Vec::new();
        for profile in file.profiles {
            reasons.extend(profile.check());
            if let Some(twice) = by_name.insert(profile.name.clone(), profile) {
                reasons.push(format!("{}: named twice", twice.name));
            }
        }
        for needed in [UNLIMITED, "wechat_oa"] {
            if !by_name.contains_key(needed) {
                reasons.push(format!("{needed}: missing"));
            }
        }
        if let Some(unlimited) = by_name.get(UNLIMITED)
            && (unlimited.reply_window_s.is_some()
                || unlimited.replies_per_customer_message.is_some()
                || unlimited.daily_messages_per_customer.is_some())
        {
            reasons.push(format!("{UNLIMITED}: must set no limits"));
        }
        if reasons.is_empty() {
            Ok(Self { by_name })
        } else {
            Err(reasons.join("; "))
        }
    }

    /// The profile `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&PlatformProfile> {
        self.by_name.get(name)
    }

    /// Every profile, by name.
    pub fn all(&self) -> impl Iterator<Item = &PlatformProfile> {
        self.by_name.values()
    }

    /// The profiles' names, sorted, comma-separated (for error messages).
    #[must_use]
    pub fn names(&self) -> String {
        self.by_name
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The profile a channel of `kind` follows: `profile` if it names a known one, else its
    /// kind's default (`wechat_oa` for WeChat, [`UNLIMITED`] for the others).
    #[must_use]
    pub fn for_channel(&self, kind: ChannelKind, profile: Option<&str>) -> &PlatformProfile {
        let default = match kind {
            ChannelKind::WechatOa => "wechat_oa",
            ChannelKind::Webhook | ChannelKind::Widget | ChannelKind::Crm => UNLIMITED,
        };
        profile
            .and_then(|name| self.by_name.get(name))
            .or_else(|| self.by_name.get(default))
            .unwrap_or_else(|| &UNLIMITED_PROFILE)
    }
}

static UNLIMITED_PROFILE: LazyLock<PlatformProfile> = LazyLock::new(|| PlatformProfile {
    name: UNLIMITED.to_owned(),
    platform: "no platform rules".to_owned(),
    reply_window_s: None,
    replies_per_customer_message: None,
    daily_messages_per_customer: None,
    text_limit_chars: None,
    text_limit_bytes: None,
    overflow: TextOverflow::Split,
    images: true,
    cards: true,
});

static BUILTIN: LazyLock<Profiles> = LazyLock::new(|| match Profiles::parse(PROFILES_JSON) {
    Ok(profiles) => profiles,
    Err(reason) => {
        // The embedded file is checked by a test; a build that ships a bad one cannot start.
        tracing::error!(%reason, "the embedded platform profiles are invalid");
        panic!("the embedded platform profiles are invalid: {reason}");
    }
});

/// The profiles embedded in the binary (checked on first use; [`super::ChannelStore::new`] uses
/// them, so a node with a bad file does not start).
#[must_use]
pub fn builtin() -> &'static Profiles {
    &BUILTIN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_profiles_parse_and_are_sane() {
        let profiles = Profiles::parse(PROFILES_JSON).expect("the embedded profiles are valid");
        for name in ["webhook", "wechat_oa", "douyin", "xiaohongshu", "taobao"] {
            assert!(profiles.get(name).is_some(), "{name} is missing");
        }
        let wechat = profiles.get("wechat_oa").expect("wechat_oa");
        assert_eq!(wechat.reply_window_s, Some(48 * 3_600));
        assert_eq!(wechat.text_limit_bytes, Some(2_048));
        let unlimited = profiles.get("webhook").expect("webhook");
        assert_eq!(unlimited.parts(&"字".repeat(10_000)).len(), 1);
        assert_eq!(
            profiles.names(),
            "douyin, taobao, webhook, wechat_oa, xiaohongshu"
        );
        assert_eq!(builtin().names(), profiles.names());
    }

    #[test]
    fn bad_profiles_are_refused_with_reasons() {
        let bad = r#"{"profiles": [
            {"name": "webhook", "platform": "x", "reply_window_s": 60, "replies_per_customer_message": null,
             "daily_messages_per_customer": null, "text_limit_chars": 0, "text_limit_bytes": null,
             "overflow": "split", "images": true, "cards": true}
        ]}"#;
        let reason = Profiles::parse(bad).expect_err("refused");
        assert!(reason.contains("wechat_oa: missing"), "{reason}");
        assert!(reason.contains("webhook: must set no limits"), "{reason}");
        assert!(reason.contains("at least one character"), "{reason}");
        assert!(Profiles::parse(r#"{"profiles": [], "extra": 1}"#).is_err());
    }

    #[test]
    fn the_default_profile_follows_the_kind() {
        let profiles = builtin();
        assert_eq!(
            profiles.for_channel(ChannelKind::WechatOa, None).name,
            "wechat_oa"
        );
        assert_eq!(
            profiles.for_channel(ChannelKind::Webhook, None).name,
            "webhook"
        );
        assert_eq!(
            profiles
                .for_channel(ChannelKind::Webhook, Some("douyin"))
                .name,
            "douyin"
        );
    }

    #[test]
    fn the_reply_window_and_quota_are_enforced() {
        let wechat = builtin().get("wechat_oa").expect("wechat_oa").clone();
        let customer_wrote = 1_700_000_000_000;
        let hour = 3_600_000;
        assert_eq!(
            wechat.reply_allowed(customer_wrote, 0, customer_wrote + 47 * hour),
            Ok(())
        );
        assert_eq!(
            wechat.reply_allowed(customer_wrote, 0, customer_wrote + 48 * hour),
            Err(ReplyRefusal::WindowClosed {
                window_s: 172_800,
                since_s: 172_800
            })
        );
        assert_eq!(
            wechat.reply_allowed(customer_wrote, 5, customer_wrote + hour),
            Err(ReplyRefusal::QuotaUsed { allowed: 5 })
        );
        let unlimited = builtin().get("webhook").expect("webhook");
        assert_eq!(unlimited.reply_allowed(0, 1_000, u64::MAX / 2), Ok(()));
    }

    #[test]
    fn long_texts_split_by_characters_within_both_limits() {
        let wechat = builtin().get("wechat_oa").expect("wechat_oa").clone();
        // 1,000 CJK characters: 3,000 bytes; each part at most 600 characters and 2,048 bytes.
        let text = "订单已发货请注意查收".repeat(100);
        let parts = wechat.parts(&text);
        assert!(parts.len() >= 2, "{}", parts.len());
        for part in &parts {
            assert!(part.chars().count() <= 600, "{}", part.chars().count());
            assert!(part.len() <= 2_048, "{}", part.len());
        }
        assert_eq!(parts.concat(), text, "nothing lost, nothing added");
        // Emoji are 4 bytes: never cut inside one.
        let emoji = "🙂".repeat(700);
        let parts = wechat.parts(&emoji);
        assert_eq!(parts.concat(), emoji);
        assert!(parts.iter().all(|part| part.len() <= 2_048));
        // A short text is one part, untouched.
        assert_eq!(wechat.parts("你好"), vec!["你好".to_owned()]);
    }

    #[test]
    fn a_split_prefers_a_natural_break() {
        let profile = PlatformProfile {
            text_limit_chars: Some(20),
            ..builtin().get("webhook").expect("webhook").clone()
        };
        let parts = profile.parts("first sentence here. second sentence is longer");
        assert_eq!(parts[0], "first sentence here.");
        assert_eq!(
            parts.join(" "),
            "first sentence here. second sentence is longer"
        );
    }

    #[test]
    fn truncation_ends_with_an_ellipsis_within_the_limit() {
        let xiaohongshu = builtin().get("xiaohongshu").expect("xiaohongshu");
        let text = "好".repeat(1_000);
        let parts = xiaohongshu.parts(&text);
        assert_eq!(parts.len(), 1);
        assert!(parts[0].ends_with('…'));
        assert_eq!(parts[0].chars().count(), 300);
    }
}
