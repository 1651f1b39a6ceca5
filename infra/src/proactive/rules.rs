//! A tenant's proactive rules: the document `GET/PUT /v1/tenants/{t}/proactive-rules` exchange,
//! its validation, the defaults of a tenant that never set any, and the quiet-hours arithmetic in
//! the tenant's time zone.

use chrono::{Datelike, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Commerce events a merchant's systems report (`POST …/commerce-events`).
pub const COMMERCE_KINDS: [&str; 4] = [
    "order_unpaid",
    "order_shipped",
    "shipment_delayed",
    "refund_completed",
];

/// Silence timers: a customer who opened a chat and said nothing, or went quiet mid-order.
pub const SILENCE_KINDS: [&str; 2] = ["silent_after_open", "quiet_mid_order"];

/// Most proactive messages per customer per day a tenant may allow (a higher cap is spam).
pub const MAX_PER_DAY_LIMIT: u32 = 20;

/// Most rules in a document.
pub const MAX_RULES: usize = 32;

/// Longest rule text, in characters (at most 4000 bytes of UTF-8, within a message's 4096).
pub const MAX_RULE_TEXT_CHARS: usize = 1000;

/// Accepted silence delays, in minutes (a day at most: a silence timer is about this chat).
pub const AFTER_MINUTES_RANGE: std::ops::RangeInclusive<u32> = 1..=1440;

/// Longest time zone name.
const MAX_TIMEZONE_LEN: usize = 64;

/// The quiet hours: from `from` (inclusive) to `to` (exclusive), local time; `from` later than
/// `to` spans midnight (22:00 to 08:00); equal times mean no quiet hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// Start, `HH:MM` (24-hour clock).
    #[schema(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "22:00")]
    pub from: String,
    /// End, `HH:MM` (24-hour clock).
    #[schema(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "08:00")]
    pub to: String,
}

/// One rule: what to send on a trigger, in Chinese and in English.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The trigger: a commerce event kind or a silence timer.
    #[schema(
        pattern = r"^(order_unpaid|order_shipped|shipment_delayed|refund_completed|silent_after_open|quiet_mid_order)$",
        example = "shipment_delayed"
    )]
    pub on: String,
    /// The text for a customer who writes Chinese (1-1000 characters, no control characters but
    /// line breaks and tabs; `{order}` is replaced by the order's id).
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub text_zh: String,
    /// The text for a customer who writes English (same limits).
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub text_en: String,
    /// For a silence timer only, and required there: minutes of silence before it fires (1-1440).
    #[schema(minimum = 1, maximum = 1440)]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::http::whole::optional"
    )]
    pub after_minutes: Option<u32>,
}

/// A tenant's proactive rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesDocument {
    /// The IANA time zone quiet hours and days are counted in.
    #[schema(min_length = 1, max_length = 64, example = "Asia/Shanghai")]
    pub timezone: String,
    /// When nothing proactive is sent (`null`: any time).
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
    /// At most this many proactive messages per customer per local day (1-20).
    #[schema(minimum = 1, maximum = 20)]
    #[serde(deserialize_with = "crate::http::whole::required")]
    pub max_per_customer_per_day: u32,
    /// The rules; at most one per trigger (0-32).
    #[schema(max_items = 32)]
    pub rules: Vec<Rule>,
}

impl RulesDocument {
    /// The rules of a tenant that never set any: Shanghai time, quiet from 22:00 to 08:00, three a
    /// day, a message for each commerce event (a merchant turns them off by setting rules).
    /// Silence timers are off until a tenant names a delay for them.
    #[must_use]
    pub fn defaults() -> Self {
        let rule = |on: &str, zh: &str, en: &str| Rule {
            on: on.to_owned(),
            text_zh: zh.to_owned(),
            text_en: en.to_owned(),
            after_minutes: None,
        };
        Self {
            timezone: "Asia/Shanghai".to_owned(),
            quiet_hours: Some(QuietHours {
                from: "22:00".to_owned(),
                to: "08:00".to_owned(),
            }),
            max_per_customer_per_day: 3,
            rules: vec![
                rule(
                    "order_unpaid",
                    "您的订单 {order} 还未付款，需要帮忙吗？",
                    "Your order {order} is not paid yet. Can we help?",
                ),
                rule(
                    "order_shipped",
                    "您的订单 {order} 已发货，请留意物流信息。",
                    "Your order {order} has shipped; watch for the tracking updates.",
                ),
                rule(
                    "shipment_delayed",
                    "抱歉，您的订单 {order} 物流有所延误，我们正在跟进。",
                    "Sorry, the delivery of your order {order} is delayed; we are following it up.",
                ),
                rule(
                    "refund_completed",
                    "您的订单 {order} 退款已完成，请注意查收。",
                    "The refund for your order {order} is complete.",
                ),
            ],
        }
    }

    /// Every reason the document cannot be stored (empty: it can).
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.timezone.len() > MAX_TIMEZONE_LEN || self.timezone.parse::<Tz>().is_err() {
            reasons.push(format!(
                "timezone '{}' is not an IANA time zone (such as Asia/Shanghai)",
                self.timezone
                    .chars()
                    .take(MAX_TIMEZONE_LEN)
                    .collect::<String>()
            ));
        }
        if let Some(quiet) = &self.quiet_hours {
            for (field, value) in [("from", &quiet.from), ("to", &quiet.to)] {
                if parse_hh_mm(value).is_none() {
                    reasons.push(format!(
                        "quiet_hours.{field} must be HH:MM (00:00 to 23:59)"
                    ));
                }
            }
        }
        if !(1..=MAX_PER_DAY_LIMIT).contains(&self.max_per_customer_per_day) {
            reasons.push(format!(
                "max_per_customer_per_day must be 1 to {MAX_PER_DAY_LIMIT}"
            ));
        }
        if self.rules.len() > MAX_RULES {
            reasons.push(format!("at most {MAX_RULES} rules"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let silence = SILENCE_KINDS.contains(&rule.on.as_str());
            if !silence && !COMMERCE_KINDS.contains(&rule.on.as_str()) {
                reasons.push(format!(
                    "rules[{index}].on must be one of {}",
                    COMMERCE_KINDS
                        .iter()
                        .chain(SILENCE_KINDS.iter())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            } else if !seen.insert(rule.on.as_str()) {
                reasons.push(format!("rules[{index}]: a second rule for {}", rule.on));
            }
            for (field, text) in [("text_zh", &rule.text_zh), ("text_en", &rule.text_en)] {
                if let Some(reason) = text_problem(text) {
                    reasons.push(format!("rules[{index}].{field} {reason}"));
                }
            }
            match (silence, rule.after_minutes) {
                (true, None) => reasons.push(format!(
                    "rules[{index}].after_minutes is required for {}",
                    rule.on
                )),
                (true, Some(minutes)) if !AFTER_MINUTES_RANGE.contains(&minutes) => {
                    reasons.push(format!(
                        "rules[{index}].after_minutes must be {} to {}",
                        AFTER_MINUTES_RANGE.start(),
                        AFTER_MINUTES_RANGE.end()
                    ));
                }
                (false, Some(_)) => reasons.push(format!(
                    "rules[{index}].after_minutes is only for silence timers"
                )),
                _ => {}
            }
        }
        reasons
    }

    /// The rule for `trigger`, if any.
    #[must_use]
    pub fn rule_for(&self, trigger: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.on == trigger)
    }

    /// The time zone (Shanghai if the stored name no longer parses, which validation prevents).
    #[must_use]
    pub fn zone(&self) -> Tz {
        self.timezone.parse().unwrap_or(chrono_tz::Asia::Shanghai)
    }

    /// Whether `at_ms` (ms since the epoch) falls in the quiet hours, in the tenant's zone.
    #[must_use]
    pub fn is_quiet(&self, at_ms: u64) -> bool {
        let Some(quiet) = &self.quiet_hours else {
            return false;
        };
        let (Some(from), Some(to)) = (parse_hh_mm(&quiet.from), parse_hh_mm(&quiet.to)) else {
            return false;
        };
        in_window(local_minute_of_day(self.zone(), at_ms), from, to)
    }

    /// The local day of `at_ms` in the tenant's zone, `YYYY-MM-DD`: what the daily cap counts.
    #[must_use]
    pub fn local_day(&self, at_ms: u64) -> String {
        let local = self.zone().timestamp_millis_opt(millis(at_ms)).single();
        local.map_or_else(String::new, |time| {
            format!("{:04}-{:02}-{:02}", time.year(), time.month(), time.day())
        })
    }
}

fn millis(at_ms: u64) -> i64 {
    i64::try_from(at_ms).unwrap_or(i64::MAX)
}

fn text_problem(text: &str) -> Option<&'static str> {
    if text.trim().is_empty() {
        return Some("must contain at least one visible character");
    }
    if text.chars().count() > MAX_RULE_TEXT_CHARS {
        return Some("is longer than 1000 characters");
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Some("must not contain control characters");
    }
    None
}

/// Minutes after local midnight of `HH:MM`.
#[must_use]
pub fn parse_hh_mm(text: &str) -> Option<u32> {
    let bytes = text.as_bytes();
    if bytes.len() != 5 || bytes[2] != b':' {
        return None;
    }
    let time = NaiveTime::parse_from_str(text, "%H:%M").ok()?;
    Some(time.hour() * 60 + time.minute())
}

/// Minutes after local midnight of `at_ms` in `zone`.
#[must_use]
pub fn local_minute_of_day(zone: Tz, at_ms: u64) -> u32 {
    zone.timestamp_millis_opt(millis(at_ms))
        .single()
        .map_or(0, |time| time.hour() * 60 + time.minute())
}

/// Whether `minute` lies in `[from, to)`, the window wrapping past midnight when `from > to`.
#[must_use]
pub fn in_window(minute: u32, from: u32, to: u32) -> bool {
    match from.cmp(&to) {
        std::cmp::Ordering::Less => (from..to).contains(&minute),
        std::cmp::Ordering::Greater => minute >= from || minute < to,
        std::cmp::Ordering::Equal => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-11 00:00:00 UTC, in ms.
    const NOV_11_UTC_MS: u64 = 1_794_355_200_000;
    const HOUR_MS: u64 = 3_600_000;

    fn with_quiet(timezone: &str, from: &str, to: &str) -> RulesDocument {
        RulesDocument {
            timezone: timezone.to_owned(),
            quiet_hours: Some(QuietHours {
                from: from.to_owned(),
                to: to.to_owned(),
            }),
            ..RulesDocument::defaults()
        }
    }

    #[test]
    fn the_utc_anchor_is_midnight() {
        let zone: Tz = "UTC".parse().expect("utc");
        assert_eq!(local_minute_of_day(zone, NOV_11_UTC_MS), 0);
        assert_eq!(
            RulesDocument {
                timezone: "UTC".to_owned(),
                ..RulesDocument::defaults()
            }
            .local_day(NOV_11_UTC_MS),
            "2026-11-11"
        );
    }

    #[test]
    fn a_window_across_midnight_covers_both_sides() {
        let (from, to) = (22 * 60, 8 * 60);
        assert!(in_window(22 * 60, from, to));
        assert!(in_window(23 * 60 + 59, from, to));
        assert!(in_window(0, from, to));
        assert!(in_window(7 * 60 + 59, from, to));
        assert!(!in_window(8 * 60, from, to), "the end is exclusive");
        assert!(!in_window(12 * 60, from, to));
        assert!(!in_window(21 * 60 + 59, from, to));
    }

    #[test]
    fn a_window_within_a_day_and_an_empty_one() {
        assert!(in_window(13 * 60, 12 * 60, 14 * 60));
        assert!(!in_window(14 * 60, 12 * 60, 14 * 60));
        assert!(!in_window(11 * 60, 12 * 60, 14 * 60));
        assert!(
            !in_window(9 * 60, 9 * 60, 9 * 60),
            "equal ends: no quiet hours"
        );
    }

    #[test]
    fn quiet_hours_are_counted_in_the_tenant_zone() {
        // 15:00 UTC is 23:00 in Shanghai (UTC+8, no daylight saving) but 10:00 in New York (EST
        // in November) and 15:00 in London.
        let at = NOV_11_UTC_MS + 15 * HOUR_MS;
        assert!(with_quiet("Asia/Shanghai", "22:00", "08:00").is_quiet(at));
        assert!(!with_quiet("America/New_York", "22:00", "08:00").is_quiet(at));
        assert!(!with_quiet("Europe/London", "22:00", "08:00").is_quiet(at));
        // 01:00 UTC is 09:00 in Shanghai: the quiet hours ended.
        assert!(!with_quiet("Asia/Shanghai", "22:00", "08:00").is_quiet(NOV_11_UTC_MS + HOUR_MS));
        // 23:30 UTC on the 10th is 07:30 on the 11th in Shanghai: still quiet.
        assert!(
            with_quiet("Asia/Shanghai", "22:00", "08:00").is_quiet(NOV_11_UTC_MS - HOUR_MS / 2)
        );
        let no_quiet = RulesDocument {
            quiet_hours: None,
            ..RulesDocument::defaults()
        };
        assert!(!no_quiet.is_quiet(at));
    }

    #[test]
    fn days_are_local_days() {
        let shanghai = with_quiet("Asia/Shanghai", "22:00", "08:00");
        // 17:00 UTC on the 11th is 01:00 on the 12th in Shanghai.
        assert_eq!(
            shanghai.local_day(NOV_11_UTC_MS + 17 * HOUR_MS),
            "2026-11-12"
        );
        assert_eq!(
            shanghai.local_day(NOV_11_UTC_MS + 15 * HOUR_MS),
            "2026-11-11"
        );
        let new_york = with_quiet("America/New_York", "22:00", "08:00");
        assert_eq!(
            new_york.local_day(NOV_11_UTC_MS + 2 * HOUR_MS),
            "2026-11-10"
        );
    }

    #[test]
    fn hh_mm_is_strict() {
        assert_eq!(parse_hh_mm("22:00"), Some(1320));
        assert_eq!(parse_hh_mm("00:00"), Some(0));
        assert_eq!(parse_hh_mm("23:59"), Some(1439));
        for bad in ["24:00", "7:00", "07:60", "0700", "07:00:00", "ab:cd", ""] {
            assert_eq!(parse_hh_mm(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_defaults_are_valid_and_bad_documents_list_every_reason() {
        assert!(RulesDocument::defaults().problems().is_empty());
        let bad = RulesDocument {
            timezone: "Mars/Olympus".to_owned(),
            quiet_hours: Some(QuietHours {
                from: "25:00".to_owned(),
                to: "8".to_owned(),
            }),
            max_per_customer_per_day: 0,
            rules: vec![
                Rule {
                    on: "birthday".to_owned(),
                    text_zh: " ".to_owned(),
                    text_en: "hi".to_owned(),
                    after_minutes: None,
                },
                Rule {
                    on: "silent_after_open".to_owned(),
                    text_zh: "在吗？".to_owned(),
                    text_en: "Still there?".to_owned(),
                    after_minutes: None,
                },
                Rule {
                    on: "order_shipped".to_owned(),
                    text_zh: "已发货".to_owned(),
                    text_en: "Shipped".to_owned(),
                    after_minutes: Some(5),
                },
            ],
        };
        let reasons = bad.problems();
        assert_eq!(reasons.len(), 8, "{reasons:?}");
        let duplicate = RulesDocument {
            rules: vec![
                RulesDocument::defaults().rules[0].clone(),
                RulesDocument::defaults().rules[0].clone(),
            ],
            ..RulesDocument::defaults()
        };
        assert_eq!(duplicate.problems().len(), 1);
    }
}
