//! Taking over a session in OpenCode's own terminal UI: `opencode attach URL --session ID --dir
//! DIR` for the session's remote, with the server's password in the child's environment
//! (`OPENCODE_SERVER_PASSWORD`, which `opencode attach` reads), never on its command line where
//! `ps` would show it. The control room's `o` and `ocio open` both build it here.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::secret::Password;
use crate::domain::{AgentName, Backend, Lifecycle, Session, SessionId};

/// The variable `opencode attach` takes the server's password from.
pub const PASSWORD_VAR: &str = "OPENCODE_SERVER_PASSWORD";

/// The program run, looked up on `PATH`.
pub const PROGRAM: &str = "opencode";

/// What `opencode attach` needs to open one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attach {
    /// The ocio session.
    pub session: SessionId,
    /// The server the session runs on.
    pub url: String,
    /// OpenCode's id of the session (`ses_...`).
    pub remote_session: String,
    /// The directory its tools run in.
    pub directory: PathBuf,
}

/// Why a session cannot be opened in OpenCode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoAttach {
    #[error(
        "session {session} ran on the simulated agent {agent}: there is no OpenCode session to open"
    )]
    Simulated { session: SessionId, agent: String },
    #[error(
        "session {session} has no OpenCode session ({status}): it gets one once it starts on a server"
    )]
    NotStarted { session: SessionId, status: String },
}

impl Attach {
    /// The command for `session`; `simulated` says its agent is the in-process simulator.
    pub fn of(session: &Session, simulated: bool) -> Result<Self, NoAttach> {
        match &session.remote {
            Some(remote) => Ok(Self {
                session: session.id,
                url: remote.server.clone(),
                remote_session: remote.session_id.clone(),
                directory: remote.directory.clone(),
            }),
            None if simulated => Err(NoAttach::Simulated {
                session: session.id,
                agent: session
                    .agent
                    .as_ref()
                    .map_or_else(|| "?".to_string(), |a| a.to_string()),
            }),
            None => Err(NoAttach::NotStarted {
                session: session.id,
                status: session.status.name().to_string(),
            }),
        }
    }

    /// The arguments after the program's name.
    pub fn args(&self) -> Vec<String> {
        vec![
            "attach".into(),
            self.url.clone(),
            "--session".into(),
            self.remote_session.clone(),
            "--dir".into(),
            self.directory.display().to_string(),
        ]
    }

    /// The command as a shell would take it (without the password), to show or copy.
    pub fn shown(&self) -> String {
        std::iter::once(PROGRAM.to_string())
            .chain(self.args().iter().map(|a| shell_word(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The command to run `program` with, inheriting this process's terminal. The password,
    /// when there is one, goes into the environment only.
    pub fn command(&self, program: &Path, password: Option<&Password>) -> std::process::Command {
        let mut command = std::process::Command::new(program);
        command.args(self.args());
        if let Some(password) = password {
            command.env(PASSWORD_VAR, password.expose());
        }
        command
    }
}

/// Where the password of a session's server is: the variable its agent names, or (a managed
/// server) only in the process that started it. Never the password itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PasswordSource {
    pub agent: Option<AgentName>,
    /// The agent's `password_env`.
    pub password_env: Option<String>,
    /// The agent's server is one ocio started, with a password made for it.
    pub managed: bool,
}

impl PasswordSource {
    /// For a session on `agent`, configured with `backend` (unknown: no password).
    pub fn of(agent: Option<&AgentName>, backend: Option<&Backend>) -> Self {
        let (password_env, managed) = match backend {
            Some(Backend::Opencode {
                password_env,
                managed,
                ..
            }) => (password_env.clone(), *managed),
            _ => (None, false),
        };
        Self {
            agent: agent.cloned(),
            password_env,
            managed,
        }
    }

    /// The password from this process's environment: `Ok(None)` when the server has none.
    pub fn read(&self) -> Result<Option<Password>, String> {
        match (&self.password_env, self.managed) {
            (Some(var), _) => Password::from_env(var).map(Some).map_err(|e| e.to_string()),
            (None, true) => Err(format!(
                "agent {}'s server is managed by the ocio that hosts the engine, and only that process knows its password: take the session over from a control room that hosts the engine (`ocio` run as the host, not attached to one; o in its detail)",
                self.agent
                    .as_ref()
                    .map_or_else(|| "?".to_string(), |a| a.to_string())
            )),
            (None, false) => Ok(None),
        }
    }

    /// `attach` as a shell command, the password taken from the agent's variable.
    pub fn shell_line(&self, attach: &Attach) -> String {
        match &self.password_env {
            Some(var) => format!("{PASSWORD_VAR}=\"${var}\" {}", attach.shown()),
            None => attach.shown(),
        }
    }

    /// What to run instead, for a person: [`Self::shell_line`], and where the password of a
    /// managed server is.
    pub fn instead(&self, attach: &Attach) -> String {
        let line = self.shell_line(attach);
        if self.managed && self.password_env.is_none() {
            format!(
                "{line} (with {PASSWORD_VAR} set to the managed server's password, which only the ocio hosting the engine knows)"
            )
        } else {
            line
        }
    }
}

/// `opencode` on `path` (the value of `PATH`): the first executable file of that name.
pub fn find_program(path: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(PROGRAM))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `text` as one shell word: as it is when that is safe, else in single quotes.
fn shell_word(text: &str) -> String {
    let safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if safe {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::{RemoteSession, SessionKind, SessionStatus};

    fn session(remote: bool) -> Session {
        let mut s = Session::new(
            SessionId::generate(),
            "p/t #1",
            SessionKind::Code,
            jiff::Timestamp::now(),
        );
        s.agent = Some(crate::domain::AgentName::new("box").unwrap());
        if remote {
            s.remote = Some(RemoteSession {
                server: "http://127.0.0.1:4096".into(),
                session_id: "ses_abc".into(),
                directory: "/tmp/work tree/it's".into(),
            });
        }
        s
    }

    #[test]
    fn the_command_names_server_session_and_directory_and_never_the_password() {
        let attach = Attach::of(&session(true), false).unwrap();
        assert_eq!(
            attach.shown(),
            r"opencode attach http://127.0.0.1:4096 --session ses_abc --dir '/tmp/work tree/it'\''s'"
        );
        let password = Password::new("hunter2");
        let command = attach.command(Path::new("/bin/opencode"), Some(&password));
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(args.len(), 6);
        assert!(
            args.iter()
                .all(|a| !a.to_string_lossy().contains("hunter2"))
        );
        let env: Vec<_> = command.get_envs().collect();
        assert_eq!(
            env,
            vec![(OsStr::new(PASSWORD_VAR), Some(OsStr::new("hunter2")))]
        );
        assert_eq!(
            attach
                .command(Path::new("/bin/opencode"), None)
                .get_envs()
                .count(),
            0
        );
    }

    #[test]
    fn the_password_is_named_by_its_variable_never_written_out() {
        let attach = Attach::of(&session(true), false).unwrap();
        let agent = crate::domain::AgentName::new("box").unwrap();
        let url = |password_env: Option<&str>, managed| Backend::Opencode {
            url: None,
            managed,
            password_env: password_env.map(Into::into),
            linger: None,
        };
        let env = PasswordSource::of(Some(&agent), Some(&url(Some("BOX_PW"), false)));
        assert!(
            env.instead(&attach)
                .starts_with("OPENCODE_SERVER_PASSWORD=\"$BOX_PW\" opencode attach ")
        );
        let unset = env.read().unwrap_err();
        assert!(unset.contains("BOX_PW"), "{unset}");
        let managed = PasswordSource::of(Some(&agent), Some(&url(None, true)));
        assert_eq!(managed.shell_line(&attach), attach.shown());
        assert!(
            managed
                .instead(&attach)
                .contains("managed server's password")
        );
        assert!(
            managed
                .read()
                .unwrap_err()
                .contains("agent box's server is managed")
        );
        let open = PasswordSource::of(Some(&agent), Some(&url(None, false)));
        assert_eq!(open.read().unwrap(), None);
        assert_eq!(open.instead(&attach), attach.shown());
    }

    #[test]
    fn a_session_without_a_remote_says_why() {
        let s = session(false);
        let simulated = Attach::of(&s, true).unwrap_err().to_string();
        assert!(simulated.contains("simulated agent box"), "{simulated}");
        let pending = Attach::of(&s, false).unwrap_err().to_string();
        assert!(
            pending.contains(SessionStatus::Pending.name()) && pending.contains("once it starts"),
            "{pending}"
        );
    }

    #[test]
    fn the_program_is_an_executable_file_on_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (plain, bin) = (dir.path().join("plain"), dir.path().join("bin"));
        for d in [&plain, &bin] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join(PROGRAM), "#!/bin/sh\n").unwrap();
        }
        let exe = bin.join(PROGRAM);
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([&plain, &bin]).unwrap();
        assert_eq!(find_program(Some(&path)), Some(exe));
        let path = std::env::join_paths([&plain]).unwrap();
        assert_eq!(find_program(Some(&path)), None);
        assert_eq!(find_program(None), None);
    }
}
