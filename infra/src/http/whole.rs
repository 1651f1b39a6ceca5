//! Whole numbers in JSON bodies. The contract's `integer` is JSON Schema's, which counts `7.0` as
//! the integer 7; serde's integer types refuse it. Fields the contract calls integers deserialize
//! through these functions: a number with no fractional part in the field's range is accepted,
//! anything else is refused (422 `invalid_fields`) with the reason.

use serde::de::{Deserialize, Deserializer, Error};

fn whole<T: TryFrom<u64>, E: Error>(number: &serde_json::Number) -> Result<T, E> {
    let value = match number.as_u64() {
        Some(value) => value,
        None => match number.as_f64() {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(float)
                if float.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&float) =>
            {
                float as u64
            }
            _ => {
                return Err(E::custom(format!(
                    "invalid value: {number}, expected a whole number of at least 0"
                )));
            }
        },
    };
    T::try_from(value).map_err(|_| E::custom(format!("invalid value: {value} is out of range")))
}

/// A required whole number.
pub fn required<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
    deserializer: D,
) -> Result<T, D::Error> {
    whole(&serde_json::Number::deserialize(deserializer)?)
}

/// An optional whole number (`null` or absent: `None`; use with `#[serde(default)]`).
pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Option::<serde_json::Number>::deserialize(deserializer)?
        .map(|number| whole(&number))
        .transpose()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Body {
        #[serde(deserialize_with = "super::required")]
        score: u8,
        #[serde(default, deserialize_with = "super::optional")]
        capacity: Option<u16>,
    }

    fn parse(text: &str) -> Result<Body, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn whole_numbers_with_or_without_a_fraction_are_accepted() {
        assert_eq!(
            parse(r#"{"score": 5, "capacity": 7.0}"#).ok(),
            Some(Body {
                score: 5,
                capacity: Some(7)
            })
        );
        assert_eq!(
            parse(r#"{"score": 1.0, "capacity": null}"#).ok(),
            Some(Body {
                score: 1,
                capacity: None
            })
        );
        assert_eq!(
            parse(r#"{"score": 2}"#).ok(),
            Some(Body {
                score: 2,
                capacity: None
            })
        );
    }

    #[test]
    fn fractions_negatives_and_out_of_range_values_are_refused() {
        for body in [
            r#"{"score": 1.5}"#,
            r#"{"score": -1}"#,
            r#"{"score": 256}"#,
            r#"{"score": 1, "capacity": 70000}"#,
            r#"{"score": 1e300}"#,
            r#"{"score": "1"}"#,
        ] {
            assert!(parse(body).is_err(), "{body} was accepted");
        }
    }
}
