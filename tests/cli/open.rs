//! `ocio open SESSION`: the `opencode attach` command for a session, printed (`--print`,
//! `--json`) or run in this terminal with the password in its environment only, from the
//! database or through a running engine; exit 2 naming why for a session it cannot open.

use std::os::unix::fs::PermissionsExt;

use jiff::Timestamp;
use ocio::domain::{AgentName, RemoteSession, Session, SessionId, SessionKind, SessionStatus};
use ocio::store::{Batch, Store, StoreOptions};

use super::support::home::{Home, stderr, stdout};

const CONFIG: &str = "[[agents]]\nname = \"far\"\nurl = \"http://127.0.0.1:9\"\npassword_env = \"FAR_PASSWORD\"\n\n[[agents]]\nname = \"sim\"\nkind = \"simulated\"\n";

const ATTACH: &str = "opencode attach http://127.0.0.1:9 --session ses_far1 --dir '/work/the tree'";

/// A completed session on `agent`, on the server when `remote`.
fn seed(home: &Home, agent: &str, remote: bool) -> SessionId {
    let store = Store::open(&home.db(), StoreOptions::default()).unwrap();
    let mut session = Session::new(
        SessionId::generate(),
        "p/t #1",
        SessionKind::Code,
        Timestamp::now(),
    );
    session.agent = Some(AgentName::new(agent).unwrap());
    if remote {
        session.remote = Some(
            serde_json::from_value::<RemoteSession>(serde_json::json!({
                "server": "http://127.0.0.1:9",
                "session_id": "ses_far1",
                "directory": "/work/the tree",
            }))
            .unwrap(),
        );
    }
    let mut batch = Batch::new();
    for to in [
        SessionStatus::Queued,
        SessionStatus::Starting,
        SessionStatus::Running,
        SessionStatus::Completed,
    ] {
        batch.append_event(&session.transition(to, "seed", Timestamp::now()).unwrap());
    }
    batch.put_session(&session);
    store.commit_blocking(batch).unwrap();
    store.close_blocking();
    session.id
}

#[test]
fn open_prints_the_attach_command_and_refuses_what_it_cannot_open() {
    let home = Home::new();
    home.write_config(CONFIG);
    let far = seed(&home, "far", true);
    let sim = seed(&home, "sim", false);
    let short = far.short();

    let out = home.ocio(&["open", &short, "--print"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("OPENCODE_SERVER_PASSWORD=\"$FAR_PASSWORD\" {ATTACH}")
    );
    assert!(
        stderr(&out).contains("read from the database"),
        "{}",
        stderr(&out)
    );

    let json = home.json(&["open", &far.to_string(), "--json"]);
    assert_eq!(json["source"], "database", "{json}");
    assert_eq!(json["url"], "http://127.0.0.1:9");
    assert_eq!(json["remote_session"], "ses_far1");
    assert_eq!(json["directory"], "/work/the tree");
    assert_eq!(json["password_env"], "FAR_PASSWORD");
    assert_eq!(
        json["args"],
        serde_json::json!([
            "attach",
            "http://127.0.0.1:9",
            "--session",
            "ses_far1",
            "--dir",
            "/work/the tree"
        ])
    );

    let out = home.ocio(&["open", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no session or task matches `nope`"),
        "{}",
        stderr(&out)
    );
    let out = home.ocio(&["open", &sim.short()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("ran on the simulated agent sim: there is no OpenCode session to open"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

/// Without `--print`, `opencode attach` runs in ocio's place: a stand-in on PATH records its
/// arguments and environment, and its exit code is ocio's. Without one, ocio says what to run.
#[test]
fn open_runs_opencode_attach_with_the_password_in_its_environment_only() {
    let home = Home::new();
    home.write_config(CONFIG);
    let far = seed(&home, "far", true);
    let bin = home.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = home.path("record");
    std::fs::write(
        bin.join("opencode"),
        format!(
            "#!/bin/sh\n{{ for a in \"$@\"; do echo \"arg=$a\"; done; echo \"pw=$OPENCODE_SERVER_PASSWORD\"; }} > '{}'\nexit 7\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("opencode"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = home
        .command(&["open", &far.short()])
        .env("PATH", &path)
        .env("FAR_PASSWORD", "hunter2-far")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "opencode's exit code: {}",
        stderr(&out)
    );
    let seen = std::fs::read_to_string(&record).unwrap();
    assert_eq!(
        seen,
        "arg=attach\narg=http://127.0.0.1:9\narg=--session\narg=ses_far1\narg=--dir\narg=/work/the tree\npw=hunter2-far\n"
    );

    // The variable unset: refused, naming it.
    let out = home
        .command(&["open", &far.short()])
        .env("PATH", &path)
        .env_remove("FAR_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("FAR_PASSWORD"), "{}", stderr(&out));

    // No opencode on PATH: what to run instead, the password left to its variable.
    let out = home
        .command(&["open", &far.short()])
        .env("PATH", home.path("nothing-here"))
        .env("FAR_PASSWORD", "hunter2-far")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("opencode is not on PATH"), "{err}");
    assert!(err.contains(ocio::opencode::INSTALL_OPENCODE), "{err}");
    assert!(err.contains(ATTACH) && !err.contains("hunter2"), "{err}");
}

/// With an engine running, `ocio open` asks it (and the engine's copy names the same server).
#[test]
fn open_works_through_a_running_engine() {
    let home = Home::new();
    home.write_config(CONFIG);
    let far = seed(&home, "far", true);
    let mut command = home.command(&["--headless"]);
    command.env("FAR_PASSWORD", "hunter2-far");
    let engine = super::support::home::Engine::spawn(command);
    let json = home.json(&["open", &far.short(), "--json"]);
    assert_eq!(json["source"], "engine", "{json}");
    assert_eq!(json["remote_session"], "ses_far1", "{json}");
    engine.stop("TERM");
}
