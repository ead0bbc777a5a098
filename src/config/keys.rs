//! The keys of a config section and the kind of value each takes, read from the section's own
//! `Deserialize` impl: a key added to the struct can be set from the environment with no second
//! list to keep. (Serializing the section instead misses every `Option` key left unset.)

use std::cell::Cell;

use serde::de::value::{Error, StrDeserializer};
use serde::de::{self, DeserializeOwned, DeserializeSeed, Error as _, MapAccess, Visitor};
use serde::forward_to_deserialize_any;

/// What a key's type asks its deserializer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Bool,
    Integer,
    Float,
    /// A string or the name of an enum's variant (durations, sizes, policies, levels).
    Text,
    /// Whatever the value is (an untagged choice, e.g. a size as a number or as text).
    Any,
    /// A table, an array or nothing a single environment value can be.
    Compound,
}

/// Every key of the struct `T` with the kind of value it takes, in the struct's order.
pub(super) fn keys<T: DeserializeOwned>() -> Vec<(&'static str, Kind)> {
    let fields = Cell::new(None);
    let kind = Cell::new(None);
    // The first pass only learns the field names; deserializing is meant to fail.
    let _ = T::deserialize(Section {
        key: None,
        fields: &fields,
        kind: &kind,
    });
    let names: &'static [&'static str] = fields.get().unwrap_or(&[]);
    names
        .iter()
        .map(|&name| {
            kind.set(None);
            let _ = T::deserialize(Section {
                key: Some(name),
                fields: &fields,
                kind: &kind,
            });
            (name, kind.get().unwrap_or(Kind::Compound))
        })
        .collect()
}

/// Stands in for a section: records its field names and, given a key, offers that key alone
/// with a [`Probe`] as its value.
struct Section<'a> {
    key: Option<&'static str>,
    fields: &'a Cell<Option<&'static [&'static str]>>,
    kind: &'a Cell<Option<Kind>>,
}

impl<'de> de::Deserializer<'de> for Section<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.fields.set(Some(fields));
        match self.key {
            Some(key) => visitor.visit_map(OneEntry {
                key: Some(key),
                kind: self.kind,
            }),
            None => Err(Error::custom("fields learnt")),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

struct OneEntry<'a> {
    key: Option<&'static str>,
    kind: &'a Cell<Option<Kind>>,
}

impl<'de> MapAccess<'de> for OneEntry<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.key.take() {
            Some(key) => seed
                .deserialize(StrDeserializer::<Error>::new(key))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(Probe(self.kind))
    }
}

/// A value that records what its type asked for, then fails.
struct Probe<'a>(&'a Cell<Option<Kind>>);

impl Probe<'_> {
    fn found<T>(self, kind: Kind) -> Result<T, Error> {
        self.0.set(Some(kind));
        Err(Error::custom("kind learnt"))
    }
}

/// Methods that only record `kind`, with the signatures `Deserializer` gives them.
macro_rules! record {
    ($kind:expr => $($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, $(_: $arg,)* _: V) -> Result<V::Value, Error> {
            self.found($kind)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = Error;

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // An optional key takes what its inner type takes.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    record!(Kind::Any => deserialize_any());
    record!(Kind::Bool => deserialize_bool());
    record!(Kind::Integer => deserialize_i8(), deserialize_i16(), deserialize_i32(),
        deserialize_i64(), deserialize_i128(), deserialize_u8(), deserialize_u16(),
        deserialize_u32(), deserialize_u64(), deserialize_u128());
    record!(Kind::Float => deserialize_f32(), deserialize_f64());
    record!(Kind::Text => deserialize_char(), deserialize_str(), deserialize_string(),
        deserialize_identifier(),
        deserialize_enum(&'static str, &'static [&'static str]));
    record!(Kind::Compound => deserialize_bytes(), deserialize_byte_buf(), deserialize_unit(),
        deserialize_unit_struct(&'static str), deserialize_seq(), deserialize_tuple(usize),
        deserialize_tuple_struct(&'static str, usize), deserialize_map(),
        deserialize_struct(&'static str, &'static [&'static str]), deserialize_ignored_any());
}
