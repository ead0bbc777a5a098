//! Typed, time-sortable identifiers (ULIDs) for the entities ocio tracks, and agent names.
//!
//! An id sorts by creation time, is stored as a `u128` key, printed in full as a 26-character
//! ULID, and shown in the UI by its last eight characters (the part that differs between ids
//! created in the same millisecond).

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use ulid::{Generator, Ulid};

/// Characters of the short form shown in tables.
pub(crate) const SHORT_LEN: usize = 8;

/// One process-wide monotonic generator: ids created in the same millisecond still sort in the
/// order they were made.
static GENERATOR: Mutex<Generator> = Mutex::new(Generator::new());

fn next_ulid() -> Ulid {
    let mut generator = GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // The random part only overflows after 2^80 ids in one millisecond; then the id moves on
    // to the next millisecond, still later than every id before it.
    match generator.generate() {
        Ok(id) => id,
        Err(overflow) => overflow.commit_overflow_increment(),
    }
}

/// The text given where an id was expected is not a ULID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a valid {kind} id (expected a 26-character ULID)")]
pub struct IdParseError {
    pub(crate) kind: &'static str,
    pub(crate) text: String,
}

macro_rules! ulid_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Ulid);

        impl $name {
            /// A new id, later than every id this process made before.
            pub fn generate() -> Self {
                Self(next_ulid())
            }

            /// The id made at `millis` since the Unix epoch with the given random part
            /// (deterministic ids for tests and replays).
            pub fn from_parts(millis: u64, random: u128) -> Self {
                Self(Ulid::from_parts(millis, random))
            }

            pub fn from_u128(value: u128) -> Self {
                Self(Ulid(value))
            }

            pub fn as_u128(self) -> u128 {
                self.0.0
            }

            /// Milliseconds since the Unix epoch at which the id was made.
            pub fn millis(self) -> u64 {
                self.0.timestamp_ms()
            }

            /// The form shown in tables: the last eight characters, lower case.
            pub fn short(self) -> String {
                let full = self.0.to_string();
                full[full.len() - SHORT_LEN..].to_ascii_lowercase()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($kind, ":{}"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Ulid::from_string(text.trim()).map(Self).map_err(|_| IdParseError {
                    kind: $kind,
                    text: text.to_string(),
                })
            }
        }
    };
}

ulid_id!(
    /// One orchestrated coding session (one attempt at a task, or an ad-hoc prompt).
    SessionId,
    "session"
);
ulid_id!(
    /// One task of a plan.
    TaskId,
    "task"
);
ulid_id!(
    /// One submitted plan (a task graph).
    PlanId,
    "plan"
);
ulid_id!(
    /// One message the operator sends to a running session (its id on the session's server
    /// is made from it, so sending it again is never a second message).
    MessageId,
    "message"
);

/// The unique name of an agent, as written in the config (`[[agents]] name = "..."`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgentName(String);

/// An agent name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "name `{}` is not allowed: use 1 to 64 letters, digits, `-`, `_` or `.`, starting with a letter or digit",
    crate::text::shown(.0)
)]
pub struct AgentNameError(pub String);

impl AgentName {
    pub(crate) const MAX_LEN: usize = 64;

    pub fn new(name: impl Into<String>) -> Result<Self, AgentNameError> {
        let name = name.into();
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        let starts_well = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if starts_well && name.len() <= Self::MAX_LEN && name.chars().all(valid_char) {
            Ok(Self(name))
        } else {
            Err(AgentNameError(name))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AgentName {
    type Error = AgentNameError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::new(name)
    }
}

impl From<AgentName> for String {
    fn from(name: AgentName) -> String {
        name.0
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "agent:{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_sort_in_creation_order() {
        let ids: Vec<SessionId> = (0..1000).map(|_| SessionId::generate()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn id_round_trips_through_text_and_u128() {
        let id = TaskId::from_parts(1_700_000_000_000, 42);
        assert_eq!(id.to_string().parse::<TaskId>(), Ok(id));
        assert_eq!(TaskId::from_u128(id.as_u128()), id);
        assert_eq!(id.millis(), 1_700_000_000_000);
    }

    #[test]
    fn short_form_is_the_lowercase_tail() {
        let id = SessionId::from_parts(1_700_000_000_000, 0xABCDEF);
        let full = id.to_string();
        assert_eq!(id.short().len(), SHORT_LEN);
        assert!(full.to_ascii_lowercase().ends_with(&id.short()));
    }

    #[test]
    fn bad_id_text_names_the_kind() {
        let err = "nope".parse::<PlanId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`nope` is not a valid plan id (expected a 26-character ULID)"
        );
    }

    #[test]
    fn ids_serialize_as_strings() {
        let id = SessionId::from_parts(1, 2);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<SessionId>(&json).unwrap(), id);
    }

    #[test]
    fn agent_names_are_validated() {
        assert!(AgentName::new("local-1.fast_box").is_ok());
        for bad in ["", "-lead", "has space", "slash/no", &"x".repeat(65)] {
            assert!(AgentName::new(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(serde_json::from_str::<AgentName>("\"bad name\"").is_err());
    }
}
