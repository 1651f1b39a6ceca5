//! Request bodies are JSON objects. serde's derived `Deserialize` for a struct also accepts a JSON
//! array of its fields in order (`[null, null]` as `{"a": null, "b": null}`), which the contract
//! does not allow and nobody means: [`Object`] accepts only a JSON object, at the top of a body
//! and for nested structures alike.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A `T` read only from a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Object)
            }
        }

        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::Object;

    #[derive(Debug, serde::Deserialize, PartialEq, Eq)]
    struct Pair {
        a: Option<u32>,
        b: Option<u32>,
    }

    #[test]
    fn an_object_is_read_as_the_struct() {
        let Object(pair) = serde_json::from_str::<Object<Pair>>(r#"{"a": 1}"#).expect("an object");
        assert_eq!(
            pair,
            Pair {
                a: Some(1),
                b: None
            }
        );
    }

    #[test]
    fn an_array_of_the_fields_is_refused() {
        // The plain derive takes it ...
        assert!(serde_json::from_str::<Pair>("[null, null]").is_ok());
        // ... the wrapper does not, and says what it wanted.
        let error = serde_json::from_str::<Object<Pair>>("[null, null]").expect_err("an array");
        assert!(error.to_string().contains("a JSON object"), "{error}");
    }

    #[test]
    fn a_nested_object_only_field_refuses_an_array() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            inner: Option<Object<Pair>>,
        }
        assert!(serde_json::from_str::<Outer>(r#"{"inner": {"b": 2}}"#).is_ok());
        assert!(serde_json::from_str::<Outer>(r#"{"inner": null}"#).is_ok());
        assert!(serde_json::from_str::<Outer>(r#"{"inner": [1, 2]}"#).is_err());
    }
}
