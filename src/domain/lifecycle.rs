//! The rule every status enum follows: an explicit table of allowed transitions, where a status
//! with no way out is terminal. Sessions, tasks and agents each implement it.

use std::fmt;

/// A status with an explicit transition table.
pub trait Lifecycle: Copy + Eq + fmt::Debug + fmt::Display + 'static {
    /// Every status, in display order.
    const ALL: &'static [Self];

    /// The statuses this one may move to. Empty for a terminal status.
    fn next(self) -> &'static [Self];

    /// The stable name used in storage, JSON and the UI.
    fn name(self) -> &'static str;

    fn is_terminal(self) -> bool {
        self.next().is_empty()
    }

    fn can_become(self, to: Self) -> bool {
        self.next().contains(&to)
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|status| status.name() == name)
    }
}

/// Declares a status enum with its stable names, serde, `Display` and `FromStr` in one place,
/// so the transition table (written by hand in `impl Lifecycle`) is the only thing left.
macro_rules! status_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            const NAMES: &'static [(Self, &'static str)] = &[$((Self::$variant, $text),)+];
            const VARIANTS: &'static [Self] = &[$(Self::$variant,)+];

            fn text(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.text())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::lifecycle::UnknownStatus;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::NAMES
                    .iter()
                    .find(|(_, name)| *name == text)
                    .map(|(status, _)| *status)
                    .ok_or_else(|| $crate::domain::lifecycle::UnknownStatus {
                        kind: stringify!($name),
                        text: text.to_string(),
                        expected: Self::NAMES.iter().map(|(_, name)| *name).collect::<Vec<_>>().join(", "),
                    })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.text())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use status_enum;

/// Text that names no status of the kind expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a {kind}; expected one of: {expected}")]
pub struct UnknownStatus {
    pub(crate) kind: &'static str,
    pub(crate) text: String,
    pub(crate) expected: String,
}
