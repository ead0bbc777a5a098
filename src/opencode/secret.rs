//! The server password: generated for managed servers or read from the variable an agent names.
//! It never shows up in `Debug`, `Display`, logs, errors or exports; only `expose` reveals it, for
//! the one place that needs it (the `Authorization` header and a managed server's environment).

use std::fmt;

/// A server password. Cloning is fine; printing is not possible.
#[derive(Clone, PartialEq, Eq)]
pub struct Password {
    secret: String,
    /// The variable it was read from (an agent's `password_env`), to name when it is refused.
    from: Option<String>,
}

/// Why a password could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error(
        "the environment variable {var} that password_env names is not set\nhint: export {var}=<the server's OPENCODE_SERVER_PASSWORD>, or remove password_env if the server has no password"
    )]
    Unset { var: String },
    #[error(
        "the environment variable {var} is set but empty\nhint: put the server's password in it"
    )]
    Empty { var: String },
    #[error("could not get random bytes for a server password: {0}")]
    Random(String),
}

impl Password {
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
            from: None,
        }
    }

    /// 32 random bytes, hex encoded: for a managed server, fresh at every start.
    pub fn generate() -> Result<Self, PasswordError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| PasswordError::Random(e.to_string()))?;
        Ok(Self::new(
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        ))
    }

    /// Read from the variable `var` (an agent's `password_env`).
    pub(crate) fn from_env(var: &str) -> Result<Self, PasswordError> {
        match std::env::var(var) {
            Ok(v) if v.is_empty() => Err(PasswordError::Empty { var: var.into() }),
            Ok(v) => Ok(Self {
                secret: v,
                from: Some(var.to_string()),
            }),
            Err(_) => Err(PasswordError::Unset { var: var.into() }),
        }
    }

    /// The secret itself. Call sites are few and reviewed: auth header, child environment.
    pub fn expose(&self) -> &str {
        &self.secret
    }

    /// The environment variable it was read from, if it was.
    pub(crate) fn variable(&self) -> Option<&str> {
        self.from.as_deref()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let p = Password::new("hunter2");
        assert!(!format!("{p:?} {p} {:?}", Some(&p)).contains("hunter2"));
        assert_eq!(p.expose(), "hunter2");
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = Password::generate().unwrap();
        let b = Password::generate().unwrap();
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn a_password_read_from_a_variable_knows_its_name() {
        let read = Password::from_env("PATH").unwrap();
        assert_eq!(read.variable(), Some("PATH"));
        assert_eq!(Password::new("x").variable(), None);
        assert_eq!(Password::generate().unwrap().variable(), None);
    }

    #[test]
    fn missing_variable_says_what_to_do() {
        let err = Password::from_env("OCIO_TEST_SURELY_UNSET_VAR").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("OCIO_TEST_SURELY_UNSET_VAR") && msg.contains("hint:"),
            "{msg}"
        );
    }
}
