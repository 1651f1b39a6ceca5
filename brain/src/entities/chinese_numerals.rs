//! Chinese numerals (`三百`, `一千二百五十`, `两万五`, `十一`) as integers.

/// The value of a Chinese numeral such as `三百` (300), `一千零五` (1005), `十一` (11), or the
/// colloquial `三百五` (350) and `两万五` (25 000). `None` if `numeral` is empty, holds other
/// characters, or lists digits positionally (`一二三`).
#[must_use]
pub fn parse_chinese_number(numeral: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut section: u64 = 0;
    let mut pending_digit: Option<u64> = None;
    let mut last_unit: u64 = 1;
    let mut previous_was_unit = false;
    let mut zero_seen_after_unit = false;
    let mut any = false;
    for character in numeral.chars() {
        any = true;
        if let Some(digit) = digit_value(character) {
            if pending_digit.is_some() {
                return None;
            }
            if digit == 0 {
                zero_seen_after_unit = true;
                previous_was_unit = false;
                continue;
            }
            pending_digit = Some(digit);
            continue;
        }
        let unit = small_unit_value(character);
        if let Some(unit) = unit {
            let multiplier = pending_digit.take().unwrap_or(1);
            section = section.checked_add(multiplier.checked_mul(unit)?)?;
            last_unit = unit;
            previous_was_unit = true;
            zero_seen_after_unit = false;
            continue;
        }
        match character {
            '万' => {
                let digit = pending_digit.take().unwrap_or(0);
                let base = section.checked_add(digit)?;
                section = if base == 0 {
                    10_000
                } else {
                    base.checked_mul(10_000)?
                };
                last_unit = 10_000;
            }
            '亿' => {
                let digit = pending_digit.take().unwrap_or(0);
                let base = total.checked_add(section)?.checked_add(digit)?;
                total = if base == 0 {
                    100_000_000
                } else {
                    base.checked_mul(100_000_000)?
                };
                section = 0;
                last_unit = 100_000_000;
            }
            _ => return None,
        }
        previous_was_unit = true;
        zero_seen_after_unit = false;
    }
    if !any {
        return None;
    }
    let tail = match pending_digit {
        Some(digit) if previous_was_unit && !zero_seen_after_unit && last_unit >= 100 => {
            digit.checked_mul(last_unit / 10)?
        }
        Some(digit) => digit,
        None => 0,
    };
    total.checked_add(section)?.checked_add(tail)
}

fn digit_value(character: char) -> Option<u64> {
    let value = match character {
        '零' | '〇' => 0,
        '一' => 1,
        '二' | '两' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    };
    Some(value)
}

fn small_unit_value(character: char) -> Option<u64> {
    match character {
        '十' => Some(10),
        '百' => Some(100),
        '千' => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_chinese_number;

    #[test]
    fn numerals() {
        let cases = [
            ("三百", Some(300)),
            ("三", Some(3)),
            ("十", Some(10)),
            ("十一", Some(11)),
            ("二十", Some(20)),
            ("一百零五", Some(105)),
            ("一千二百五十", Some(1250)),
            ("三百五", Some(350)),
            ("两万五", Some(25_000)),
            ("三万五千", Some(35_000)),
            ("一亿二千万", Some(120_000_000)),
            ("一千零五", Some(1005)),
            ("一二三", None),
            ("", None),
            ("三a", None),
        ];
        for (numeral, expected) in cases {
            assert_eq!(parse_chinese_number(numeral), expected, "{numeral}");
        }
    }
}
