//! Tests of config loading, parse errors, locating keys and environment overrides, and the
//! helpers the rule tests share.

use std::path::{Path, PathBuf};

use super::locate::{PathPart, key_path, line_column, locate};
use super::*;
use crate::domain::AgentStatus;

pub(super) const FILE: &str = "/home/u/.config/ocio/config.toml";

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn parse_ok(text: &str) -> Config {
    parse(text, Path::new(FILE)).unwrap()
}

/// The error for `text`, as (line, key path, message) plus its display.
pub(super) fn parse_err(text: &str) -> (Option<usize>, Option<String>, String, String) {
    let err = parse(text, Path::new(FILE)).unwrap_err();
    let display = err.to_string();
    match err {
        ConfigError::Invalid { mut problems, .. } => {
            let ConfigProblem {
                at, key, message, ..
            } = problems.remove(0);
            (at.map(|(line, _)| line), key, message, display)
        }
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

pub(super) fn assert_rule(text: &str, line: usize, key: &str, needle: &str) {
    let (at, path, message, display) = parse_err(text);
    assert_eq!(at, Some(line), "{display}");
    assert_eq!(path.as_deref(), Some(key), "{display}");
    assert!(message.contains(needle), "{display}");
    assert!(display.starts_with(&format!("config error in {FILE}, line {line}, column ")));
}

fn write_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const SHAPE: &str = r#"[engine]
max_parallel = 8            # u32, >= 1, default 8

[log]
level = "info"              # default "info"

[[agents]]
name = "local"
kind = "opencode"
url = "http://127.0.0.1:4096"
managed = false
password_env = "OPENCODE_SERVER_PASSWORD"
model = "anthropic/claude-sonnet-4"
opencode_agent = "build"
capabilities = ["code", "rust"]
max_concurrent = 4

[[agents]]
name = "box"
managed = true
opencode_path = "/bin/sh"           # a file that is there: load checks it

[[agents]]
name = "sim"
kind = "simulated"
duration = "30s"
failure_rate = 0.0
seed = 1
"#;

#[test]
fn absent_default_file_means_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load(&dir.path().join("config.toml"), false, no_env()).unwrap();
    assert_eq!(loaded.source, ConfigSource::Defaults);
    assert_eq!(loaded.config, Config::default());
    assert_eq!(loaded.config.engine.max_parallel, 8);
    assert_eq!(loaded.config.log.level, "info");
    assert!(loaded.config.agents.is_empty());
}

#[test]
fn absent_explicit_file_is_an_error_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let err = load(&path, true, no_env()).unwrap_err();
    assert!(matches!(err, ConfigError::Missing { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "config file {} does not exist; create it or drop --config/OCIO_CONFIG",
            path.display()
        )
    );
}

#[test]
fn unreadable_path_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(dir.path(), false, no_env()).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot read config file"));
}

#[test]
fn empty_file_means_defaults_from_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "# nothing yet\n");
    let loaded = load(&path, true, no_env()).unwrap();
    assert_eq!(loaded.source, ConfigSource::File(path));
    assert_eq!(loaded.config, Config::default());
}

#[test]
fn the_documented_shape_parses_exactly() {
    let config = parse_ok(SHAPE);
    assert_eq!(config.engine.max_parallel, 8);
    assert_eq!(config.log.level, "info");
    assert_eq!(config.agents.len(), 3);

    let local = &config.agents[0];
    assert_eq!(local.name.as_str(), "local");
    assert_eq!(local.kind, AgentKind::Opencode);
    assert_eq!(local.url.as_deref(), Some("http://127.0.0.1:4096"));
    assert_eq!(local.managed, Some(false));
    assert_eq!(
        local.password_env.as_deref(),
        Some("OPENCODE_SERVER_PASSWORD")
    );
    assert_eq!(
        local.model.as_ref().map(ToString::to_string).as_deref(),
        Some("anthropic/claude-sonnet-4")
    );
    assert_eq!(local.opencode_agent.as_deref(), Some("build"));
    assert_eq!(local.capabilities, ["code", "rust"]);
    assert_eq!(local.max_concurrent, 4);
    assert_eq!(local.simulation(), None);

    let managed = &config.agents[1];
    assert_eq!(managed.managed, Some(true));
    assert_eq!(managed.opencode_path.as_deref(), Some(Path::new("/bin/sh")));

    let sim = config.agents[2].simulation().unwrap();
    assert_eq!(sim.duration, SignedDuration::from_secs(30));
    assert_eq!(sim.failure_rate, 0.0);
    assert_eq!(sim.seed, 1);
}

#[test]
fn agent_defaults_are_filled_in() {
    let config = parse_ok("[[agents]]\nname = \"s\"\nkind = \"simulated\"\n");
    let agent = &config.agents[0];
    assert_eq!(agent.max_concurrent, 4);
    assert!(agent.capabilities.is_empty());
    let sim = agent.simulation().unwrap();
    assert_eq!(sim.duration, DEFAULT_SIM_DURATION);
    assert_eq!((sim.failure_rate, sim.seed), (0.0, 0));
}

#[test]
fn durations_accept_friendly_and_iso_forms() {
    for (text, secs) in [("30s", 30), ("2m", 120), ("1h 5m", 3900), ("PT30S", 30)] {
        let config = parse_ok(&format!(
            "[[agents]]\nname = \"s\"\nkind = \"simulated\"\nduration = \"{text}\"\n"
        ));
        let sim = config.agents[0].simulation().unwrap();
        assert_eq!(sim.duration, SignedDuration::from_secs(secs), "{text}");
    }
}

#[test]
fn to_agent_builds_the_domain_agent() {
    let config = parse_ok(SHAPE);
    let agents: Vec<_> = config.agents.iter().map(AgentConfig::to_agent).collect();
    let local = &agents[0];
    assert_eq!(
        local.backend,
        Backend::Opencode {
            url: Some("http://127.0.0.1:4096".into()),
            managed: false,
            password_env: Some("OPENCODE_SERVER_PASSWORD".into()),
            linger: None,
        }
    );
    assert_eq!(
        local.model,
        Some("anthropic/claude-sonnet-4".parse().unwrap())
    );
    assert_eq!(local.opencode_agent.as_deref(), Some("build"));
    assert!(local.has_capabilities(&["code".to_string(), "rust".to_string()]));
    assert_eq!(local.max_concurrent, 4);
    assert_eq!(local.status, AgentStatus::Online);
    assert_eq!(local.load, 0);
    assert_eq!(
        agents[1].backend,
        Backend::Opencode {
            url: None,
            managed: true,
            password_env: None,
            linger: Some(3600),
        }
    );
    assert_eq!(agents[2].backend, Backend::Simulated);
}

#[test]
fn unknown_top_level_key_is_reported_with_its_line() {
    let (line, key, message, _) = parse_err("# ocio\nagent = 1\n\n[engine]\nmax_parallel = 2\n");
    assert_eq!(line, Some(2));
    assert_eq!(key.as_deref(), Some("agent"));
    assert!(message.contains("unknown field `agent`"), "{message}");
    assert!(
        message.contains("`agents`"),
        "lists the expected keys: {message}"
    );
}

#[test]
fn unknown_engine_key_is_reported_with_its_line() {
    let (line, key, message, display) = parse_err("[engine]\nmax_parallel = 2\nmax_paralel = 3\n");
    assert_eq!(line, Some(3));
    assert_eq!(key.as_deref(), Some("engine.max_paralel"));
    assert!(message.contains("unknown field `max_paralel`"), "{message}");
    assert!(
        display.contains("line 3, column 1 (engine.max_paralel): unknown field"),
        "{display}"
    );
}

/// A misspelt key gets the key it was meant to be as a hint, as in plan files (it got only
/// the list of every key).
#[test]
fn a_misspelt_key_names_the_one_meant() {
    let text =
        "[[agents]]\nname = \"a\"\nkind = \"opencode\"\nurl = \"http://x:1\"\nmodle = \"p/m\"\n";
    let hints = |text: &str| match parse(text, Path::new(FILE)).unwrap_err() {
        ConfigError::Invalid { problems, .. } => problems
            .into_iter()
            .filter_map(|p| p.hint)
            .collect::<Vec<_>>(),
        other => panic!("expected an Invalid error, got {other:?}"),
    };
    assert_eq!(hints(text), ["did you mean \"model\"?"]);
    assert!(hints("[engine]\nspeed = 3\n").is_empty());
    let (.., display) = parse_err(text);
    assert!(display.contains("did you mean \"model\"?"), "{display}");
}

#[test]
fn unknown_agent_key_is_reported_with_its_line() {
    let text = "[[agents]]\nname = \"a\"\nkind = \"simulated\"\n\n[[agents]]\nname = \"b\"\nkind = \"simulated\"\nspeed = 3\n";
    let (line, key, message, _) = parse_err(text);
    assert_eq!(line, Some(8));
    assert_eq!(key.as_deref(), Some("agents[1].speed"));
    assert!(message.contains("unknown field `speed`"), "{message}");
}

#[test]
fn wrong_type_is_reported_with_line_and_column() {
    let (line, key, message, display) = parse_err("[engine]\nmax_parallel = \"many\"\n");
    assert_eq!(line, Some(2));
    assert_eq!(key.as_deref(), Some("engine.max_parallel"));
    assert!(message.contains("expected u32"), "{message}");
    assert!(display.contains("line 2, column 16"), "{display}");
    assert!(
        !display.contains('|'),
        "no toml snippet in the message: {display}"
    );
}

#[test]
fn syntax_error_is_reported_with_its_line() {
    let (line, _, message, _) = parse_err("[engine]\nmax_parallel = 2\n[log\n");
    assert_eq!(line, Some(3));
    assert!(!message.is_empty());
}

#[test]
fn missing_agent_name_points_at_the_agent() {
    let (line, key, message, _) = parse_err("[engine]\n\n[[agents]]\nkind = \"simulated\"\n");
    assert_eq!(line, Some(3));
    assert_eq!(key.as_deref(), Some("agents[0]"));
    assert!(message.contains("missing field `name`"), "{message}");
}

#[test]
fn unknown_kind_lists_the_kinds() {
    let (line, key, message, _) = parse_err("[[agents]]\nname = \"a\"\nkind = \"docker\"\n");
    assert_eq!(line, Some(3));
    assert_eq!(key.as_deref(), Some("agents[0].kind"));
    assert!(
        message.contains("`opencode`") && message.contains("`simulated`"),
        "{message}"
    );
}

#[test]
fn env_overrides_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, SHAPE);
    let loaded = load(
        &path,
        false,
        env(&[
            ("OCIO_ENGINE__MAX_PARALLEL", "3"),
            ("OCIO_LOG__LEVEL", "debug"),
            ("PATH", "/bin"),
        ]),
    )
    .unwrap();
    assert_eq!(loaded.config.engine.max_parallel, 3);
    assert_eq!(loaded.config.log.level, "debug");
    assert_eq!(
        loaded.config.agents,
        parse_ok(SHAPE).agents,
        "agents survive"
    );
}

#[test]
fn env_overrides_apply_over_defaults_too() {
    let dir = tempfile::tempdir().unwrap();
    let with_level = |level: &str| {
        load(
            &dir.path().join("absent.toml"),
            false,
            env(&[
                ("OCIO_LOG__LEVEL", level),
                ("OCIO_ENGINE__MAX_PARALLEL", "16"),
            ]),
        )
    };
    // "true" stays text for a string key, which is then checked as a level.
    let text = with_level("true").unwrap_err().to_string();
    assert!(text.contains("log level `true`"), "{text}");
    let loaded = with_level("warn");
    let config = loaded.unwrap().config;
    assert_eq!(config.log.level, "warn");
    assert_eq!(config.engine.max_parallel, 16);
}

#[test]
fn other_ocio_variables_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load(
        &dir.path().join("absent.toml"),
        false,
        env(&[
            ("OCIO_LOG", "trace"),
            ("OCIO_DB", "/tmp/x.redb"),
            ("OCIO_CONFIG", "/tmp/c.toml"),
            ("NOT_OCIO__X", "1"),
        ]),
    )
    .unwrap();
    assert_eq!(loaded.config, Config::default());
}

fn env_err(pairs: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&dir.path().join("absent.toml"), false, env(pairs)).unwrap_err();
    assert!(matches!(err, ConfigError::Env { .. }), "{err:?}");
    err.to_string()
}

#[test]
fn env_override_with_a_bad_value_names_the_variable() {
    let text = env_err(&[("OCIO_ENGINE__MAX_PARALLEL", "lots")]);
    assert!(
        text.starts_with("environment variable OCIO_ENGINE__MAX_PARALLEL: "),
        "{text}"
    );
    assert!(text.contains("expected u32"), "{text}");
    let text = env_err(&[("OCIO_ENGINE__MAX_PARALLEL", "0")]);
    assert!(
        text.contains("OCIO_ENGINE__MAX_PARALLEL") && text.contains("at least 1"),
        "{text}"
    );
    let text = env_err(&[("OCIO_LOG__LEVEL", "ocio=loud")]);
    assert!(
        text.contains("OCIO_LOG__LEVEL") && text.contains("not a valid filter"),
        "{text}"
    );
}

#[test]
fn env_override_of_an_unknown_key_names_the_variable() {
    let text = env_err(&[("OCIO_ENGINE__MAX_PARALEL", "4")]);
    assert!(
        text.starts_with("environment variable OCIO_ENGINE__MAX_PARALEL: "),
        "{text}"
    );
    assert!(
        text.contains("known keys: approve_inside, approve_outside, max_parallel"),
        "{text}"
    );
    let text = env_err(&[("OCIO_ENGIN__MAX_PARALLEL", "4")]);
    assert!(
        text.contains("OCIO_ENGIN__MAX_PARALLEL") && text.contains("OCIO_ENGINE__<KEY>"),
        "{text}"
    );
    let text = env_err(&[("OCIO_AGENTS__NAME", "x")]);
    assert!(text.contains("`agents` is not a config section"), "{text}");
}

#[test]
fn file_errors_come_before_env_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "[engine]\nmax_parallel = 0\n");
    let err = load(&path, true, env(&[("OCIO_ENGINE__MAX_PARALLEL", "4")])).unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
}

#[test]
fn line_and_column_count_characters() {
    assert_eq!(line_column("ab\ncd", 0), (1, 1));
    assert_eq!(line_column("ab\ncd", 3), (2, 1));
    assert_eq!(line_column("ab\ncd", 4), (2, 2));
    assert_eq!(line_column("é = 1\n", 4), (1, 4));
    assert_eq!(line_column("ab", 99), (1, 3));
}

#[test]
fn locate_falls_back_to_the_deepest_present_part() {
    use PathPart::{Index, Key};
    let text = "[engine]\nmax_parallel = 2\n\n[[agents]]\nname = \"a\"\n";
    assert_eq!(
        locate(text, &[Key("engine"), Key("max_parallel")]),
        Some((2, 16))
    );
    assert_eq!(
        locate(text, &[Key("agents"), Index(0), Key("url")]),
        Some((4, 1))
    );
    assert_eq!(locate(text, &[Key("nothing")]), None);
    assert_eq!(
        key_path(&[Key("agents"), Index(1), Key("capabilities"), Index(0)]),
        "agents[1].capabilities[0]"
    );
}

#[test]
fn budgets_parse_for_the_engine_day_and_each_agent() {
    let config = parse_ok(
        "[engine]\ndaily_budget = { tokens = 2_000_000, cost = 5.0 }\n\n[[agents]]\nname = \"box\"\nkind = \"simulated\"\nbudget = { cost = 2 }\n",
    );
    let daily = config.engine.daily_budget.unwrap();
    assert_eq!((daily.tokens, daily.cost), (Some(2_000_000), Some(5.0)));
    let agent = config.agents[0].to_agent();
    assert_eq!(agent.budget.unwrap().cost, Some(2.0));
}

#[test]
fn bad_budgets_name_the_line_and_key() {
    let (line, key, message, display) =
        parse_err("[engine]\nmax_parallel = 2\ndaily_budget = { tokens = 0 }\n");
    assert_eq!(line, Some(3), "{display}");
    assert_eq!(key.as_deref(), Some("engine.daily_budget"), "{display}");
    assert!(message.contains("at least 1"), "{display}");
    let (line, _, message, display) =
        parse_err("[[agents]]\nname = \"box\"\nkind = \"simulated\"\nbudget = { cost = -1.0 }\n");
    assert_eq!(line, Some(4), "{display}");
    assert!(message.contains("positive"), "{display}");
    let (_, _, message, display) = parse_err("[engine]\ndaily_budget = { dollars = 3 }\n");
    assert!(message.contains("dollars"), "{display}");
}

/// Every scalar key of `[engine]` can be set from the environment, those unset in the file
/// (and so absent from its serialized form) too.
#[test]
fn env_overrides_reach_every_scalar_engine_key() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load(
        &dir.path().join("absent.toml"),
        false,
        env(&[
            ("OCIO_ENGINE__QUESTION_TIMEOUT", "5m"),
            ("OCIO_ENGINE__MAX_WORKTREES", "3"),
            ("OCIO_ENGINE__TRANSCRIPT_CAP", "1MiB"),
            ("OCIO_ENGINE__TRANSCRIPT_RETENTION", "30d"),
            ("OCIO_ENGINE__QUESTIONS", "deny"),
            ("OCIO_ENGINE__WORKTREE_CLEANUP", "keep"),
        ]),
    )
    .unwrap();
    let engine = &loaded.config.engine;
    assert_eq!(engine.question_timeout, Some(SignedDuration::from_mins(5)));
    assert_eq!(engine.max_worktrees, Some(3));
    assert_eq!(engine.transcript_cap, Some(1024 * 1024));
    assert_eq!(
        engine.transcript_retention,
        Some(SignedDuration::from_hours(30 * 24))
    );
    let text = env_err(&[("OCIO_ENGINE__MAX_WORKTREES", "many")]);
    assert!(
        text.starts_with("environment variable OCIO_ENGINE__MAX_WORKTREES: "),
        "{text}"
    );
    assert!(text.contains("a whole number"), "{text}");
    let text = env_err(&[("OCIO_ENGINE__QUESTION_TIMEOUT", "soon")]);
    assert!(
        text.contains("OCIO_ENGINE__QUESTION_TIMEOUT") && text.contains("\"30s\""),
        "{text}"
    );
    // A table is not a scalar key, set or not.
    let text = env_err(&[("OCIO_ENGINE__DAILY_BUDGET", "5")]);
    assert!(text.contains("no key `daily_budget`"), "{text}");
    assert!(text.contains("question_timeout"), "{text}");
}

/// The keys the environment can set are read from the section's type: all of `[engine]`'s,
/// `daily_budget` (a table) aside, however they are written.
#[test]
fn the_keys_of_a_section_come_from_its_type() {
    use super::keys::{Kind, keys};
    let engine = keys::<EngineConfig>();
    let kind = |name: &str| engine.iter().find(|(n, _)| *n == name).map(|(_, k)| *k);
    assert_eq!(engine.len(), 10, "{engine:?}");
    assert_eq!(kind("max_parallel"), Some(Kind::Integer));
    assert_eq!(kind("max_worktrees"), Some(Kind::Integer));
    assert_eq!(kind("question_timeout"), Some(Kind::Text));
    assert_eq!(kind("questions"), Some(Kind::Text));
    assert_eq!(kind("transcript_cap"), Some(Kind::Any));
    assert_eq!(kind("daily_budget"), Some(Kind::Compound));
    assert_eq!(keys::<LogConfig>(), [("level", Kind::Text)]);
}
