//! The pattern table: one [`RuleSpec`] per way of writing an entity, compiled once.
//!
//! Patterns run on the width-folded text (see `normalize.rs`), so they only spell ASCII digits and
//! punctuation. A match counts only if it does not continue an ASCII word or number on either side
//! (`x13812345678` is not a phone); `\b` is not used because Chinese characters are word characters
//! for it (`订单号2024…` has no boundary before the digits).

use std::sync::LazyLock;

use regex::{Captures, Regex, RegexSet};

use super::EntityKind;
use super::chinese_numerals::parse_chinese_number;

/// Computes an entity's normalised value from a match, or rejects the match with `None`.
/// Receives the captures and the whole folded text (for look-ahead checks).
pub(crate) type Normalizer = fn(&Captures<'_>, &str) -> Option<String>;

/// One way of writing an entity.
#[derive(Debug)]
pub(crate) struct RuleSpec {
    /// What the rule finds.
    pub(crate) kind: EntityKind,
    /// Overlap resolution: higher wins, then the longer match, then the earlier rule.
    pub(crate) priority: u8,
    /// The regular expression, on folded text.
    pub(crate) pattern: &'static str,
    /// The capture group that is the entity's span (0: the whole match).
    pub(crate) group: usize,
    /// Value normalisation and validation.
    pub(crate) normalize: Normalizer,
}

/// A compiled [`RuleSpec`].
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) spec: &'static RuleSpec,
    pub(crate) regex: Regex,
}

const EMAIL: u8 = 100;
const ADDRESS: u8 = 95;
const TRACKING: u8 = 90;
const SKU: u8 = 85;
const ID_CARD: u8 = 82;
const BANK_CARD: u8 = 81;
const ORDER: u8 = 80;
const MONEY: u8 = 70;
const DATE: u8 = 60;
const PHONE: u8 = 50;
const BARE_BANK_CARD: u8 = 40;
const BARE_ORDER: u8 = 10;

/// Every rule, in tie-breaking order.
pub(crate) static SPECS: &[RuleSpec] = &[
    RuleSpec {
        kind: EntityKind::Email,
        priority: EMAIL,
        pattern: r"(?i)[a-z0-9._%+-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,24}",
        group: 0,
        normalize: email_value,
    },
    // Tracking numbers: carrier prefixes, UPU (EMS international), carrier names, generic words.
    RuleSpec {
        kind: EntityKind::TrackingNumber,
        priority: TRACKING,
        pattern: r"(?i)SF ?\d{12,15}",
        group: 0,
        normalize: compact_upper,
    },
    RuleSpec {
        kind: EntityKind::TrackingNumber,
        priority: TRACKING,
        pattern: r"(?i)(?:YT|ZTO) ?\d{10,15}",
        group: 0,
        normalize: compact_upper,
    },
    RuleSpec {
        kind: EntityKind::TrackingNumber,
        priority: TRACKING,
        pattern: r"(?i)JD[A-Z]{0,2}\d{9,15}",
        group: 0,
        normalize: compact_upper,
    },
    RuleSpec {
        kind: EntityKind::TrackingNumber,
        priority: TRACKING,
        pattern: r"[A-Z]{2}\d{9}[A-Z]{2}",
        group: 0,
        normalize: compact_upper,
    },
    RuleSpec {
        kind: EntityKind::TrackingNumber,
        priority: TRACKING,
        pattern: r"(?i)(?:顺丰|中通|圆通|申通|韵达|京东|邮政|EMS|百世|极兔|德邦)(?:速运|速递|快递|物流|快运)?的?(?:运单|快递|物流)?(?:单号|号码|号)?\s*(?:是|为|:)?\s*([A-Z]{0,4}\d{9,20})",
        group: 1,
        normalize: group_upper,
    },
    RuleSpec {
        kind: EntityKind::TrackingNumber,
        priority: TRACKING,
        pattern: r"(?i)(?:tracking|waybill|shipment|parcel)(?:\s*(?:number|num|no\.?|id|code|#))?\s*(?:is\s|:)?\s*#?\s*([A-Z0-9][A-Z0-9-]{7,29})",
        group: 1,
        normalize: group_upper_with_digit,
    },
    RuleSpec {
        kind: EntityKind::TrackingNumber,
        priority: TRACKING,
        pattern: r"(?i)(?:运单|快递单|物流单|快递|包裹)(?:号码|编号|号)\s*(?:是|为|:)?\s*([A-Z0-9][A-Z0-9-]{7,29})",
        group: 1,
        normalize: group_upper_with_digit,
    },
    // SKUs.
    RuleSpec {
        kind: EntityKind::Sku,
        priority: SKU,
        pattern: r"(?i)SKU[- ]?\d[A-Z0-9-]{1,29}",
        group: 0,
        normalize: compact_upper,
    },
    RuleSpec {
        kind: EntityKind::Sku,
        priority: SKU,
        pattern: r"(?i)(?:sku|商品货号|商品编号|货号)\s*(?:是|为|:|#)?\s*([A-Z0-9][A-Z0-9-]{2,29})",
        group: 1,
        normalize: group_upper_with_digit,
    },
    // Order numbers: after a keyword, with a prefix, or a bare long number (weakest).
    RuleSpec {
        kind: EntityKind::OrderNumber,
        priority: ORDER,
        pattern: r"(?i)order(?:\s*(?:number|num|no\.?|id|#))?\s*(?:is\s|:)?\s*#?\s*([A-Z]{0,4}-?\d{5,24})",
        group: 1,
        normalize: group_upper,
    },
    RuleSpec {
        kind: EntityKind::OrderNumber,
        priority: ORDER,
        pattern: r"(?i)(?:订单|单号)(?:号码|编号|号)?\s*(?:是|为|:)?\s*#?\s*([A-Z]{0,4}-?\d{5,24})",
        group: 1,
        normalize: group_upper,
    },
    RuleSpec {
        kind: EntityKind::OrderNumber,
        priority: ORDER,
        pattern: r"(?i)ORD-?\d{3,24}",
        group: 0,
        normalize: compact_upper,
    },
    RuleSpec {
        kind: EntityKind::OrderNumber,
        priority: ORDER,
        pattern: r"#(\d{6,24})",
        group: 1,
        normalize: group_upper,
    },
    // Money.
    RuleSpec {
        kind: EntityKind::Money,
        priority: MONEY,
        pattern: r"(?i)(US\$|HK\$|RMB|CNY|USD|EUR|¥|\$|€|£)\s*(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?",
        group: 0,
        normalize: money_prefixed,
    },
    RuleSpec {
        kind: EntityKind::Money,
        priority: MONEY,
        pattern: r"(?i)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?\s*(块钱|元|块|人民币|rmb|cny|yuan|dollars?|bucks|usd|美元|美金|刀|欧元|euros?)",
        group: 0,
        normalize: money_suffixed,
    },
    RuleSpec {
        kind: EntityKind::Money,
        priority: MONEY,
        pattern: r"([零〇一二两三四五六七八九十百千万亿]+)(块钱|元|块)",
        group: 0,
        normalize: money_chinese,
    },
    // Dates.
    RuleSpec {
        kind: EntityKind::Date,
        priority: DATE,
        pattern: r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})",
        group: 0,
        normalize: date_ymd,
    },
    RuleSpec {
        kind: EntityKind::Date,
        priority: DATE,
        pattern: r"(?:(\d{4})年)?(\d{1,2})月(\d{1,2})[日号]?",
        group: 0,
        normalize: date_ymd,
    },
    RuleSpec {
        kind: EntityKind::Date,
        priority: DATE,
        pattern: r"([一二三四五六七八九十]{1,3})月([一二三四五六七八九十]{1,3})[日号]",
        group: 0,
        normalize: date_chinese_numerals,
    },
    RuleSpec {
        kind: EntityKind::Date,
        priority: DATE,
        pattern: r"双(十一|11|十二|12)",
        group: 0,
        normalize: date_double,
    },
    RuleSpec {
        kind: EntityKind::Date,
        priority: DATE,
        pattern: r"(618)(?:大促|购物节|活动|年中)",
        group: 1,
        normalize: date_618,
    },
    RuleSpec {
        kind: EntityKind::Date,
        priority: DATE,
        pattern: r"(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?",
        group: 0,
        normalize: date_slash,
    },
    RuleSpec {
        kind: EntityKind::Date,
        priority: DATE,
        pattern: r"(?i)(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?",
        group: 0,
        normalize: date_month_day,
    },
    RuleSpec {
        kind: EntityKind::Date,
        priority: DATE,
        pattern: r"(?i)(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?(?:,?\s+(\d{4}))?",
        group: 0,
        normalize: date_day_month,
    },
    RuleSpec {
        kind: EntityKind::Date,
        priority: DATE,
        pattern: r"(?i)(?:the\s+)?day\s+after\s+tomorrow|(?:the\s+)?day\s+before\s+yesterday|tomorrow|today|tonight|yesterday|this\s+(?:morning|afternoon|evening|weekend|week)|next\s+(?:week|month|weekend|monday|tuesday|wednesday|thursday|friday|saturday|sunday)|last\s+(?:week|month)",
        group: 0,
        normalize: relative_english,
    },
    RuleSpec {
        kind: EntityKind::Date,
        priority: DATE,
        pattern: r"大后天|后天|明天|今天|昨天|前天|今晚|明早|明晚|下周[一二三四五六日天末]?|本周[一二三四五六日天末]?|这周[一二三四五六日天末]?|周末|下个月|这个月|月底|月初",
        group: 0,
        normalize: relative_chinese,
    },
    // Identity documents, bank cards and postal addresses: personal data that is masked, never used.
    RuleSpec {
        kind: EntityKind::IdCard,
        priority: ID_CARD,
        pattern: r"[1-8]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]",
        group: 0,
        normalize: id_card,
    },
    RuleSpec {
        kind: EntityKind::BankCard,
        priority: BANK_CARD,
        pattern: r"(?:62|4\d|5[1-5]|3[47])\d{2}(?:[\s-]\d{4}){3}(?:[\s-]?\d{1,3})?",
        group: 0,
        normalize: bank_card,
    },
    RuleSpec {
        kind: EntityKind::BankCard,
        priority: BANK_CARD,
        pattern: r"(?i)(?:银行卡|信用卡|借记卡|储蓄卡|卡号|card(?:\s*(?:number|num|no\.?|#))?)(?:号码|号)?\s*(?:是|为|:)?\s*(\d[\d\s-]{12,24}\d)",
        group: 1,
        normalize: bank_card_group,
    },
    RuleSpec {
        kind: EntityKind::BankCard,
        priority: BARE_BANK_CARD,
        pattern: r"(?:62|4\d|5[1-5])\d{14,17}",
        group: 0,
        normalize: bank_card,
    },
    RuleSpec {
        kind: EntityKind::Address,
        priority: ADDRESS,
        pattern: r"(?i)(?:收货地址|收件地址|送货地址|配送地址|家庭地址|详细地址|新地址|地址|shipping address|delivery address|address)\s*(?:是|为|改为|改成|换成|:)?\s*([^\s,，。;；!！?？]{4,60})",
        group: 1,
        normalize: address_anchored,
    },
    RuleSpec {
        kind: EntityKind::Address,
        priority: ADDRESS,
        pattern: r"(?:[\p{Han}--[在住是的我家到寄送发往请帮把了和与从]]{1,8}(?:省|自治区|市|区|县|旗|镇|乡))+[\p{Han}\d]{0,12}?(?:路|街|大道|巷|弄|胡同|村)\s*\d{1,5}(?:-\d{1,5})?\s*号(?:\s*[\dA-Za-z]{1,5}\s*(?:号楼|栋|幢|座|单元|楼|层|室|号))*",
        group: 0,
        normalize: whole_text,
    },
    RuleSpec {
        kind: EntityKind::Address,
        priority: ADDRESS,
        pattern: r"\d{1,5}\s+(?:[A-Z][a-z]+\.?\s+){1,4}(?:Street|Avenue|Road|Boulevard|Lane|Drive|Court|Place|Way|St|Ave|Rd|Blvd|Ln|Dr|Ct|Pl)\.?(?:,?\s*(?:Apt|Suite|Unit|#)\.?\s*[\dA-Za-z-]{1,6})?",
        group: 0,
        normalize: whole_text,
    },
    // Phones.
    RuleSpec {
        kind: EntityKind::Phone,
        priority: PHONE,
        pattern: r"(?:\+?86[\s-]?)?1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}",
        group: 0,
        normalize: phone_china_mobile,
    },
    RuleSpec {
        kind: EntityKind::Phone,
        priority: PHONE,
        pattern: r"\+[1-9]\d{0,2}(?:[\s.-]?\(?\d{1,4}\)?){2,6}",
        group: 0,
        normalize: phone_international,
    },
    RuleSpec {
        kind: EntityKind::Phone,
        priority: PHONE,
        pattern: r"\(\d{3}\)\s?\d{3}[\s.-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4}",
        group: 0,
        normalize: phone_digits,
    },
    RuleSpec {
        kind: EntityKind::Phone,
        priority: PHONE,
        pattern: r"0\d{2,3}-\d{7,8}",
        group: 0,
        normalize: compact_upper,
    },
    RuleSpec {
        kind: EntityKind::OrderNumber,
        priority: BARE_ORDER,
        pattern: r"\d{10,24}",
        group: 0,
        normalize: compact_upper,
    },
];

/// The compiled rules. A pattern that fails to compile is logged and skipped (a unit test makes
/// sure none does).
pub(crate) static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    SPECS
        .iter()
        .filter_map(|spec| match Regex::new(spec.pattern) {
            Ok(regex) => Some(Rule { spec, regex }),
            Err(error) => {
                tracing::error!(pattern = spec.pattern, %error, "entity pattern does not compile");
                None
            }
        })
        .collect()
});

/// All the compiled rules' patterns as one set, in the order of [`RULES`]: one pass over a text
/// tells which rules can match at all, so the others are not run (most messages match one or two
/// of the forty-odd rules, and each rule was a pass of its own).
pub(crate) static RULE_SET: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(RULES.iter().map(|rule| rule.spec.pattern)).unwrap_or_else(|error| {
        // Every pattern compiled on its own, so this is only a size limit: match every rule.
        tracing::error!(%error, "entity pattern set does not compile; running every rule");
        RegexSet::empty()
    })
});

/// Whether rule `index` of [`RULES`] can match `text` (`true` when the set is unavailable).
pub(crate) fn may_match(matches: &regex::SetMatches, index: usize) -> bool {
    matches.len() != RULES.len() || matches.matched(index)
}

fn group_text<'a>(captures: &Captures<'a>, index: usize) -> Option<&'a str> {
    captures.get(index).map(|found| found.as_str())
}

fn email_value(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    group_text(captures, 0).map(str::to_lowercase)
}

fn compact_upper(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    let whole = group_text(captures, 0)?;
    Some(
        whole
            .chars()
            .filter(|character| !character.is_whitespace())
            .collect::<String>()
            .to_uppercase(),
    )
}

fn group_upper(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    group_text(captures, 1).map(str::to_uppercase)
}

fn group_upper_with_digit(captures: &Captures<'_>, folded: &str) -> Option<String> {
    let value = group_upper(captures, folded)?;
    value
        .chars()
        .any(|character| character.is_ascii_digit())
        .then_some(value)
}

fn digits_of(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
}

/// A resident identity number (GB 11643): 17 digits and an ISO 7064 MOD 11-2 check character.
fn id_card(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    let value = group_text(captures, 0)?.to_uppercase();
    let bytes = value.as_bytes();
    if bytes.len() != 18 {
        return None;
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECKS: &[u8; 11] = b"10X98765432";
    let sum: u32 = bytes[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    (CHECKS[(sum % 11) as usize] == bytes[17]).then_some(value)
}

/// Whether `digits` (ASCII digits only) pass the Luhn check every payment card number carries.
fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(index, digit)| {
            let value = u32::from(digit - b'0');
            if index % 2 == 1 {
                let doubled = value * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                value
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn card_number(text: &str) -> Option<String> {
    let digits = digits_of(text);
    ((15..=19).contains(&digits.len()) && luhn(&digits)).then_some(digits)
}

fn bank_card(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    card_number(group_text(captures, 0)?)
}

fn bank_card_group(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    card_number(group_text(captures, 1)?)
}

fn whole_text(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    group_text(captures, 0).map(str::to_owned)
}

/// What follows an address keyword is an address only if it names a place (`地址填错了` does not).
fn address_anchored(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    const PLACE_MARKS: &[char] = &[
        '省', '市', '区', '县', '镇', '乡', '村', '路', '街', '巷', '弄', '号', '栋', '幢', '室',
    ];
    let value = group_text(captures, 1)?;
    let names_a_place = value.contains(PLACE_MARKS)
        || (value.chars().any(|character| character.is_ascii_digit())
            && value.chars().any(char::is_alphabetic));
    names_a_place.then(|| value.to_owned())
}

fn phone_china_mobile(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    let digits = digits_of(group_text(captures, 0)?);
    match digits.len() {
        11 => Some(digits),
        13 => digits.strip_prefix("86").map(str::to_owned),
        _ => None,
    }
}

fn phone_international(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    let digits = digits_of(group_text(captures, 0)?);
    (8..=15)
        .contains(&digits.len())
        .then(|| format!("+{digits}"))
}

fn phone_digits(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    Some(digits_of(group_text(captures, 0)?))
}

/// `"CNY 1299.00"`: currency code, a space, the amount with two decimals and no separators.
fn money_value(currency: &str, integer: &str, fraction: Option<&str>) -> Option<String> {
    let integer_digits: String = integer.chars().filter(|c| *c != ',').collect();
    let integer_value: u64 = integer_digits.parse().ok()?;
    let cents = match fraction {
        Some(fraction) if fraction.len() == 1 => format!("{fraction}0"),
        Some(fraction) => fraction.to_owned(),
        None => "00".to_owned(),
    };
    Some(format!("{currency} {integer_value}.{cents}"))
}

fn currency_code(symbol_or_unit: &str) -> Option<&'static str> {
    let lowered = symbol_or_unit.to_lowercase();
    let code = match lowered.as_str() {
        "¥" | "rmb" | "cny" | "元" | "块" | "块钱" | "人民币" | "yuan" => "CNY",
        "$" | "us$" | "usd" | "dollar" | "dollars" | "bucks" | "美元" | "美金" | "刀" => "USD",
        "hk$" => "HKD",
        "€" | "eur" | "euro" | "euros" | "欧元" => "EUR",
        "£" => "GBP",
        _ => return None,
    };
    Some(code)
}

fn money_prefixed(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    let currency = currency_code(group_text(captures, 1)?)?;
    money_value(currency, group_text(captures, 2)?, group_text(captures, 3))
}

/// `块` is also a measure word (`3块蛋糕`, three pieces of cake): it counts as money only at the
/// end of a clause or before a sentence particle.
fn block_is_money(captures: &Captures<'_>, folded: &str, unit_group: usize) -> bool {
    let Some(unit) = captures.get(unit_group) else {
        return false;
    };
    if unit.as_str() != "块" {
        return true;
    }
    match folded[unit.end()..].chars().next() {
        None => true,
        Some(next) => {
            !('\u{4e00}'..='\u{9fff}').contains(&next) || "吧吗呢啊了的钱左右".contains(next)
        }
    }
}

fn money_suffixed(captures: &Captures<'_>, folded: &str) -> Option<String> {
    if !block_is_money(captures, folded, 3) {
        return None;
    }
    let currency = currency_code(group_text(captures, 3)?)?;
    money_value(currency, group_text(captures, 1)?, group_text(captures, 2))
}

fn money_chinese(captures: &Captures<'_>, folded: &str) -> Option<String> {
    if !block_is_money(captures, folded, 2) {
        return None;
    }
    let amount = parse_chinese_number(group_text(captures, 1)?)?;
    let currency = currency_code(group_text(captures, 2)?)?;
    Some(format!("{currency} {amount}.00"))
}

/// `"2026-11-11"` with a year, `"--11-11"` (ISO 8601 month-day) without one.
fn date_value(year: Option<u32>, month: u32, day: u32) -> Option<String> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    match year {
        Some(year) if (1900..=2200).contains(&year) => {
            Some(format!("{year:04}-{month:02}-{day:02}"))
        }
        Some(_) => None,
        None => Some(format!("--{month:02}-{day:02}")),
    }
}

fn number_group(captures: &Captures<'_>, index: usize) -> Option<u32> {
    group_text(captures, index)?.parse().ok()
}

fn date_ymd(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    let year = match group_text(captures, 1) {
        Some(year) => Some(year.parse().ok()?),
        None => None,
    };
    date_value(year, number_group(captures, 2)?, number_group(captures, 3)?)
}

fn date_chinese_numerals(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    let month = u32::try_from(parse_chinese_number(group_text(captures, 1)?)?).ok()?;
    let day = u32::try_from(parse_chinese_number(group_text(captures, 2)?)?).ok()?;
    date_value(None, month, day)
}

fn date_double(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    match group_text(captures, 1)? {
        "十一" | "11" => Some("--11-11".to_owned()),
        "十二" | "12" => Some("--12-12".to_owned()),
        _ => None,
    }
}

fn date_618(_captures: &Captures<'_>, _folded: &str) -> Option<String> {
    Some("--06-18".to_owned())
}

/// `11/11` is month/day; `25/12` (first part over 12) is read as day/month.
fn date_slash(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    let first = number_group(captures, 1)?;
    let second = number_group(captures, 2)?;
    let year = match group_text(captures, 3) {
        Some(year) if year.len() == 2 => Some(2000 + year.parse::<u32>().ok()?),
        Some(year) => Some(year.parse().ok()?),
        None => None,
    };
    let (month, day) = if first > 12 {
        (second, first)
    } else {
        (first, second)
    };
    date_value(year, month, day)
}

fn month_number(name: &str) -> Option<u32> {
    let lowered = name.to_lowercase();
    let prefix = lowered.get(..3)?;
    let month = match prefix {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    Some(month)
}

fn date_month_day(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    let month = month_number(group_text(captures, 1)?)?;
    date_value(number_group(captures, 3), month, number_group(captures, 2)?)
}

fn date_day_month(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    let month = month_number(group_text(captures, 2)?)?;
    date_value(number_group(captures, 3), month, number_group(captures, 1)?)
}

fn relative_english(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    let whole = group_text(captures, 0)?;
    Some(
        whole
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase(),
    )
}

fn relative_chinese(captures: &Captures<'_>, _folded: &str) -> Option<String> {
    group_text(captures, 0).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::{RULE_SET, RULES, SPECS};

    #[test]
    fn the_rule_set_holds_every_rule_in_order() {
        assert_eq!(RULE_SET.len(), RULES.len());
        for (set_pattern, rule) in RULE_SET.patterns().iter().zip(RULES.iter()) {
            assert_eq!(set_pattern, rule.spec.pattern);
        }
    }

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(RULES.len(), SPECS.len());
    }
}
