//! `ocio open SESSION`: take a session over in OpenCode's own terminal UI from the command line.
//! `opencode attach` replaces ocio in this terminal (its exit code is the command's), with the
//! server's password in its environment; `--print` and `--json` only say what that would run.
//! The session comes from the running engine, or from the database when none runs.

use serde_json::json;

use super::database::{say_source, source_name};
use super::output::{print_json, print_text};
use super::{Context, Failure, exit, inspect};
use crate::domain::{Backend, Session};
use crate::opencode::attach::{self, Attach, PASSWORD_VAR, PasswordSource};

pub(crate) fn run(context: &Context, wanted: &str, print: bool, json: bool) -> Result<(), Failure> {
    let (session, source) = super::runtime()?.block_on(async {
        let engine = inspect::from_engine(context).await?;
        let snapshot = engine.as_ref().map(|(_, snapshot)| snapshot);
        let (session, _) = inspect::find_session(context, snapshot, wanted).await?;
        let client = engine.as_ref().map(|(client, _)| client);
        if !json {
            say_source(context, client);
        }
        Ok::<_, Failure>((session, source_name(client)))
    })?;
    let backend = backend(context, &session);
    let attach = Attach::of(&session, backend == Some(Backend::Simulated))
        .map_err(|e| Failure::usage(format!("{e}; nothing to open")))?;
    let password = PasswordSource::of(session.agent.as_ref(), backend.as_ref());
    if json {
        return print_json(&json!({
            "source": source,
            "session": attach.session,
            "url": attach.url,
            "remote_session": attach.remote_session,
            "directory": attach.directory,
            "program": attach::PROGRAM,
            "args": attach.args(),
            "command": password.shell_line(&attach),
            "password_env": password.password_env,
            "managed": password.managed,
        }));
    }
    if print {
        if password.managed && password.password_env.is_none() {
            eprintln!(
                "(the server is managed by ocio: set {PASSWORD_VAR} to its password, which only the ocio hosting the engine knows)"
            );
        }
        return print_text(&password.shell_line(&attach));
    }
    exec(&attach, &password)
}

/// The session's agent as configured (what kind, where its password is); `None` when the
/// config no longer has it.
fn backend(context: &Context, session: &Session) -> Option<Backend> {
    let name = session.agent.as_ref()?;
    context
        .config
        .config
        .agents
        .iter()
        .find(|a| &a.name == name)
        .map(|a| a.to_agent().backend)
}

/// Become `opencode attach`: only returns when that could not be done.
fn exec(attach: &Attach, password: &PasswordSource) -> Result<(), Failure> {
    use std::os::unix::process::CommandExt;
    let Some(program) = attach::find_program(std::env::var_os("PATH").as_deref()) else {
        return Err(Failure::usage(format!(
            "opencode is not on PATH (install it with `{}`); to take the session over, run:\n  {}",
            crate::opencode::INSTALL_OPENCODE,
            password.instead(attach)
        )));
    };
    let secret = password
        .read()
        .map_err(|e| Failure::usage(format!("cannot open session {}: {e}", attach.session)))?;
    tracing::info!(session = %attach.session, program = %program.display(), "exec opencode attach");
    let error = attach.command(&program, secret.as_ref()).exec();
    Err(Failure {
        code: exit::FAILED,
        message: format!("could not run {}: {error}", program.display()),
    })
}
