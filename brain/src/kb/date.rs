//! A calendar date without time zone (`YYYY-MM-DD`), enough for effective windows of documents.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A proleptic Gregorian calendar date, ordered chronologically.
///
/// Field order matters: the derived `Ord` compares year, then month, then day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

/// Why a text is not a valid `YYYY-MM-DD` date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// The text is not shaped like `YYYY-MM-DD`.
    #[error("expected a date as YYYY-MM-DD, got {0:?}")]
    Format(String),
    /// The month or the day does not exist in the calendar.
    #[error("no such calendar day: {0:?}")]
    OutOfRange(String),
}

impl Date {
    /// The first representable day, 0001-01-01.
    pub const MIN: Date = Date {
        year: 1,
        month: 1,
        day: 1,
    };

    /// The last representable day, 9999-12-31.
    pub const MAX: Date = Date {
        year: 9999,
        month: 12,
        day: 31,
    };

    /// Builds a date, checking that the day exists (leap years included). Years 1 to 9999.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Date, DateError> {
        let in_range = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        if !in_range {
            return Err(DateError::OutOfRange(format!(
                "{year:04}-{month:02}-{day:02}"
            )));
        }
        Ok(Date { year, month, day })
    }

    /// The year (1 to 9999).
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month (1 to 12).
    pub fn month(self) -> u8 {
        self.month
    }

    /// The day of the month (1 to 31).
    pub fn day(self) -> u8 {
        self.day
    }

    /// A monotonic integer key `YYYYMMDD`, used to index dates as `u64`.
    pub fn ordinal_key(self) -> u64 {
        u64::from(self.year) * 10_000 + u64::from(self.month) * 100 + u64::from(self.day)
    }
}

fn is_leap_year(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    /// Parses a strict `YYYY-MM-DD` date; `None` if it is malformed or the day does not exist.
    #[must_use]
    pub fn parse(text: &str) -> Option<Date> {
        text.parse().ok()
    }
}

impl FromStr for Date {
    type Err = DateError;

    fn from_str(text: &str) -> Result<Date, DateError> {
        let bytes = text.as_bytes();
        let shaped = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes
                .iter()
                .enumerate()
                .all(|(index, byte)| index == 4 || index == 7 || byte.is_ascii_digit());
        if !shaped {
            return Err(DateError::Format(text.to_string()));
        }
        let number = |range: std::ops::Range<usize>| -> Result<u16, DateError> {
            text[range]
                .parse::<u16>()
                .map_err(|_| DateError::Format(text.to_string()))
        };
        let year = number(0..4)?;
        let month =
            u8::try_from(number(5..7)?).map_err(|_| DateError::OutOfRange(text.to_string()))?;
        let day =
            u8::try_from(number(8..10)?).map_err(|_| DateError::OutOfRange(text.to_string()))?;
        Date::new(year, month, day).map_err(|_| DateError::OutOfRange(text.to_string()))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{:04}-{:02}-{:02}",
            self.year, self.month, self.day
        )
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        let date: Date = "2026-10-20".parse().expect("valid date");
        assert_eq!((date.year(), date.month(), date.day()), (2026, 10, 20));
        assert_eq!(date.to_string(), "2026-10-20");
        assert_eq!(date.ordinal_key(), 20_261_020);
    }

    #[test]
    fn rejects_bad_shapes_and_impossible_days() {
        for bad in [
            "2026-1-20",
            "20261020",
            "2026/10/20",
            "2026-10-2x",
            " 2026-10-20",
            "",
        ] {
            assert!(
                matches!(bad.parse::<Date>(), Err(DateError::Format(_))),
                "{bad}"
            );
        }
        for impossible in [
            "2026-13-01",
            "2026-00-10",
            "2026-02-29",
            "2026-04-31",
            "0000-01-01",
        ] {
            assert!(
                matches!(impossible.parse::<Date>(), Err(DateError::OutOfRange(_))),
                "{impossible}"
            );
        }
        assert!("2024-02-29".parse::<Date>().is_ok());
        assert!("2000-02-29".parse::<Date>().is_ok());
        assert!("1900-02-29".parse::<Date>().is_err());
    }

    #[test]
    fn orders_chronologically() {
        let earlier: Date = "2026-10-31".parse().expect("valid date");
        let later: Date = "2026-11-01".parse().expect("valid date");
        assert!(earlier < later);
        assert!(earlier.ordinal_key() < later.ordinal_key());
    }

    #[test]
    fn serde_uses_the_text_form() {
        let date: Date = serde_json::from_str("\"2026-11-11\"").expect("valid date");
        assert_eq!(
            serde_json::to_string(&date).expect("serializable"),
            "\"2026-11-11\""
        );
        assert!(serde_json::from_str::<Date>("\"2026-11-31\"").is_err());
    }
}
