//! A JSON value deserializer generic over its error type, and the error type the request-body
//! parser uses with it: the failure kind and field come from serde's hooks, never from parsing
//! its messages, and no message repeats a value the client sent.

use std::fmt::{self, Display};
use std::marker::PhantomData;

use serde::de::value::{
    MapAccessDeserializer, MapDeserializer, SeqDeserializer, StringDeserializer,
};
use serde::de::{self, Expected, IntoDeserializer, Unexpected, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::Value;

use llm_settings_domain::error::{is_repeatable, shown};

use crate::error::{redact_literals, FailureKind};

/// Why a body could not be read as the expected type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    pub kind: FailureKind,
    /// The field a `missing field` / `unknown field` failure names.
    pub field: Option<String>,
    pub message: String,
}

impl BodyError {
    fn value(message: String) -> Self {
        Self {
            kind: FailureKind::ValueError,
            field: None,
            message,
        }
    }
}

impl Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BodyError {}

/// What kind of value a client sent, without the value itself.
fn kind_of(unexpected: &Unexpected<'_>) -> &'static str {
    match unexpected {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) => "an integer",
        Unexpected::Float(_) => "a number",
        Unexpected::Char(_) | Unexpected::Str(_) | Unexpected::Bytes(_) => "a string",
        Unexpected::Unit => "null",
        Unexpected::Seq => "a list",
        Unexpected::Map => "an object",
        _ => "another value",
    }
}

fn one_of(names: &'static [&'static str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.len() {
        0 => "no fields".to_owned(),
        _ => format!("one of {}", quoted.join(", ")),
    }
}

impl de::Error for BodyError {
    fn custom<T: Display>(msg: T) -> Self {
        Self::value(redact_literals(&msg.to_string()))
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::value(format!("invalid type: {}, expected {exp}", kind_of(&unexp)))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::value(format!(
            "invalid value: {}, expected {exp}",
            kind_of(&unexp)
        ))
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        Self::value(format!("invalid length {len}, expected {exp}"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::value(format!(
            "unknown variant `{}`, expected {}",
            shown(variant),
            one_of(expected)
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        if !is_repeatable(field) {
            // A key pasted as a field name must not come back in the error.
            return Self {
                kind: FailureKind::ExtraForbidden,
                field: None,
                message: "unknown field (name not shown: it does not look like a field name)"
                    .to_owned(),
            };
        }
        Self {
            kind: FailureKind::ExtraForbidden,
            field: Some(field.to_owned()),
            message: format!("unknown field `{field}`, expected {}", one_of(expected)),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self {
            kind: FailureKind::Missing,
            field: Some(field.to_owned()),
            message: format!("missing field `{field}`"),
        }
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::value(format!("duplicate field `{field}`"))
    }
}

/// Deserializes a parsed JSON value with the error type `E`.
#[derive(Debug)]
pub struct ValueDeserializer<E> {
    value: Value,
    error: PhantomData<E>,
}

impl<E> ValueDeserializer<E> {
    /// A deserializer of `value`.
    pub fn new(value: Value) -> Self {
        Self {
            value,
            error: PhantomData,
        }
    }
}

impl<'de, E: de::Error> IntoDeserializer<'de, E> for ValueDeserializer<E> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

fn entries<E>(
    map: serde_json::Map<String, Value>,
) -> impl Iterator<Item = (String, ValueDeserializer<E>)> {
    map.into_iter().map(|(k, v)| (k, ValueDeserializer::new(v)))
}

impl<'de, E: de::Error> de::Deserializer<'de> for ValueDeserializer<E> {
    type Error = E;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (None, Some(i), _) => visitor.visit_i64(i),
                (None, None, Some(f)) => visitor.visit_f64(f),
                (None, None, None) => Err(E::custom("a number out of range")),
            },
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter().map(ValueDeserializer::new));
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Value::Object(map) => {
                let mut map = MapDeserializer::new(entries(map));
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, E> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, E> {
        match self.value {
            Value::String(s) => visitor.visit_enum(StringDeserializer::<E>::new(s)),
            Value::Object(map) => visitor.visit_enum(MapAccessDeserializer::new(
                MapDeserializer::new(entries(map)),
            )),
            other => Err(E::invalid_type(unexpected(&other), &"a variant name")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_unit()
    }

    /// A struct is read from an object only (serde would also take a list, field by field).
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, E> {
        match self.value {
            Value::Object(_) => self.deserialize_any(visitor),
            other => Err(E::invalid_type(unexpected(&other), &visitor)),
        }
    }

    /// An integer field also takes a number written with a zero fraction (`3.0`), as JSON
    /// Schema's `integer` does.
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match integral(&self.value) {
            Some(i) => visitor.visit_i64(i),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match integral(&self.value) {
            Some(i) => visitor.visit_i64(i),
            None => self.deserialize_any(visitor),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i128 u8 u16 u32 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

/// A number written with a fraction that is zero (`-3.0`, `1e3`), as the integer it is.
fn integral(value: &Value) -> Option<i64> {
    let Value::Number(n) = value else {
        return None;
    };
    if n.is_i64() || n.is_u64() {
        return None;
    }
    let f = n.as_f64()?;
    // 2^63 as f64 is exact; anything at or past it is out of range.
    let limit = 9_223_372_036_854_775_808.0_f64;
    (f.fract() == 0.0 && f >= -limit && f < limit).then_some(f as i64)
}

fn unexpected(value: &Value) -> Unexpected<'static> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(_) => Unexpected::Float(0.0),
        Value::String(_) => Unexpected::Str(""),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        name: String,
        count: Option<u32>,
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Fast,
    }

    fn read(value: Value) -> Result<Body, BodyError> {
        Body::deserialize(ValueDeserializer::<BodyError>::new(value))
    }

    #[test]
    fn kinds_and_fields_come_from_the_hooks() {
        assert_eq!(
            read(json!({"name": "a", "count": 2, "mode": "fast"})).unwrap(),
            Body {
                name: "a".into(),
                count: Some(2),
                mode: Some(Mode::Fast)
            }
        );
        let err = read(json!({})).unwrap_err();
        assert_eq!(
            (err.kind, err.field.as_deref()),
            (FailureKind::Missing, Some("name"))
        );
        let err = read(json!({"name": "a", "colour": 1})).unwrap_err();
        assert_eq!(
            (err.kind, err.field.as_deref()),
            (FailureKind::ExtraForbidden, Some("colour"))
        );
        let err = read(json!({"name": "sk-secret-value-here", "count": "sk-secret"})).unwrap_err();
        assert_eq!(err.kind, FailureKind::ValueError);
        assert!(!err.message.contains("sk-secret"), "{}", err.message);
        let err = read(json!({"name": "a", "mode": "sk-proj-pasted key"})).unwrap_err();
        assert!(!err.message.contains("pasted"), "{}", err.message);
        let err =
            read(json!({"name": "a", "sk-proj-PLANTED0123456789abcdefghijklmnop": 1})).unwrap_err();
        assert!(!err.message.contains("PLANTED") && err.field.is_none());
    }
}
