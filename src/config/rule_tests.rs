//! Tests of the semantic rules: each broken rule names its line and key path.

use super::tests::{FILE, assert_rule, parse_err, parse_ok};
use super::*;

#[test]
fn bad_agent_name_is_rejected() {
    assert_rule(
        "[[agents]]\nname = \"has space\"\nkind = \"simulated\"\n",
        2,
        "agents[0].name",
        "name `has space` is not allowed",
    );
}

#[test]
fn bad_model_matches_the_documented_message() {
    let text = "[[agents]]\nname = \"a\"\nkind = \"simulated\"\n\n[[agents]]\nname = \"b\"\nmodel = \"claude\"\n";
    let err = parse(text, Path::new(FILE)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "config error in {FILE}, line 7, column 9 (agents[1].model): model `claude` is not of the form provider/model (e.g. anthropic/claude-sonnet-4)"
        )
    );
}

#[test]
fn bad_duration_says_how_to_write_one() {
    assert_rule(
        "[[agents]]\nname = \"s\"\nkind = \"simulated\"\nduration = \"forever\"\n",
        4,
        "agents[0].duration",
        "\"30s\"",
    );
}

#[test]
fn duplicate_agent_names_are_rejected_at_the_second() {
    assert_rule(
        "[[agents]]\nname = \"a\"\nkind = \"simulated\"\n[[agents]]\nname = \"a\"\nkind = \"simulated\"\n",
        5,
        "agents[1].name",
        "already used by agents[0]",
    );
}

#[test]
fn opencode_agent_needs_url_or_managed() {
    let text = "[[agents]]\nname = \"a\"\nkind = \"simulated\"\n\n[[agents]]\nname = \"b\"\n";
    assert_rule(
        text,
        5,
        "agents[1]",
        "needs exactly one of `url` or `managed = true`",
    );
    let (_, _, _, display) = parse_err(text);
    assert!(display.contains("\n  hint: add `url"), "{display}");
    assert_rule(
        "[[agents]]\nname = \"b\"\nmanaged = false\n",
        1,
        "agents[0]",
        "needs exactly one",
    );
}

#[test]
fn opencode_agent_cannot_have_url_and_managed() {
    assert_rule(
        "[[agents]]\nname = \"a\"\nurl = \"http://h:1\"\nmanaged = true\n",
        4,
        "agents[0].managed",
        "not both",
    );
}

#[test]
fn url_must_be_http() {
    assert_rule(
        "[[agents]]\nname = \"a\"\nurl = \"127.0.0.1:4096\"\n",
        3,
        "agents[0].url",
        "must start with http:// or https://",
    );
    assert_rule(
        "[[agents]]\nname = \"a\"\nurl = \"https://\"\n",
        3,
        "agents[0].url",
        "must start with",
    );
    parse_ok("[[agents]]\nname = \"a\"\nurl = \"https://box:4096\"\n");
}

#[test]
fn opencode_path_needs_managed() {
    assert_rule(
        "[[agents]]\nname = \"a\"\nurl = \"http://h:1\"\nopencode_path = \"/bin/opencode\"\n",
        4,
        "agents[0].opencode_path",
        "only applies with `managed = true`",
    );
}

/// `linger` is how long a server ocio started waits for the next ocio: it means nothing for a
/// server the user runs, and cannot be negative.
#[test]
fn linger_needs_managed_and_is_not_negative() {
    assert_rule(
        "[[agents]]\nname = \"a\"\nurl = \"http://h:1\"\nlinger = \"10m\"\n",
        4,
        "agents[0].linger",
        "only applies with `managed = true`",
    );
    assert_rule(
        "[[agents]]\nname = \"a\"\nmanaged = true\nlinger = \"-5m\"\n",
        4,
        "agents[0].linger",
        "must not be negative",
    );
    let config = parse_ok("[[agents]]\nname = \"a\"\nmanaged = true\nlinger = \"10m\"\n");
    assert_eq!(
        config.agents[0].linger(),
        std::time::Duration::from_secs(600)
    );
    let config = parse_ok("[[agents]]\nname = \"a\"\nmanaged = true\n");
    assert_eq!(
        config.agents[0].linger(),
        std::time::Duration::from_secs(3600)
    );
}

#[test]
fn password_env_must_name_a_variable() {
    assert_rule(
        "[[agents]]\nname = \"a\"\nmanaged = true\npassword_env = \"hunter2!\"\n",
        4,
        "agents[0].password_env",
        "not an environment variable name",
    );
}

#[test]
fn password_env_error_never_echoes_the_value() {
    let (_, _, _, display) =
        parse_err("[[agents]]\nname = \"a\"\nmanaged = true\npassword_env = \"hunter2!\"\n");
    assert!(!display.contains("hunter2"), "{display}");
    assert!(
        display.contains("\n  hint: never put the password"),
        "{display}"
    );
}

#[test]
fn simulated_only_keys_are_rejected_on_opencode_agents() {
    for (key, value) in [
        ("duration", "\"5s\""),
        ("failure_rate", "0.5"),
        ("seed", "3"),
    ] {
        assert_rule(
            &format!("[[agents]]\nname = \"a\"\nmanaged = true\n{key} = {value}\n"),
            4,
            &format!("agents[0].{key}"),
            "only applies to simulated agents",
        );
    }
}

#[test]
fn opencode_only_keys_are_rejected_on_simulated_agents() {
    for (key, value) in [
        ("url", "\"http://h:1\""),
        ("managed", "false"),
        ("opencode_path", "\"/bin/opencode\""),
        ("password_env", "\"PW\""),
    ] {
        assert_rule(
            &format!("[[agents]]\nname = \"s\"\nkind = \"simulated\"\n{key} = {value}\n"),
            4,
            &format!("agents[0].{key}"),
            "only applies to opencode agents",
        );
    }
}

#[test]
fn failure_rate_must_be_a_probability() {
    for bad in ["1.5", "-0.1", "nan"] {
        assert_rule(
            &format!("[[agents]]\nname = \"s\"\nkind = \"simulated\"\nfailure_rate = {bad}\n"),
            4,
            "agents[0].failure_rate",
            "use a number from 0.0 to 1.0",
        );
    }
    parse_ok("[[agents]]\nname = \"s\"\nkind = \"simulated\"\nfailure_rate = 1.0\n");
}

#[test]
fn duration_must_be_positive() {
    for bad in ["0s", "-5s"] {
        assert_rule(
            &format!("[[agents]]\nname = \"s\"\nkind = \"simulated\"\nduration = \"{bad}\"\n"),
            4,
            "agents[0].duration",
            "must be longer than zero",
        );
    }
    let (_, _, message, _) =
        parse_err("[[agents]]\nname = \"s\"\nkind = \"simulated\"\nduration = \"-5s\"\n");
    assert!(message.contains("not -5s"), "shown as written: {message}");
}

#[test]
fn max_parallel_must_be_at_least_one() {
    assert_rule(
        "[engine]\nmax_parallel = 0\n",
        2,
        "engine.max_parallel",
        "at least 1",
    );
}

#[test]
fn max_worktrees_must_be_at_least_one() {
    assert_rule(
        "[engine]\nmax_worktrees = 0\n",
        2,
        "engine.max_worktrees",
        "at least 1",
    );
}

#[test]
fn max_concurrent_must_be_at_least_one() {
    assert_rule(
        "[[agents]]\nname = \"s\"\nkind = \"simulated\"\nmax_concurrent = 0\n",
        4,
        "agents[0].max_concurrent",
        "at least 1",
    );
}

#[test]
fn capabilities_must_be_single_words() {
    assert_rule(
        "[[agents]]\nname = \"s\"\nkind = \"simulated\"\ncapabilities = [\"code\",\n  \"big rust\"]\n",
        5,
        "agents[0].capabilities[1]",
        "capability `big rust`",
    );
    assert_rule(
        "[[agents]]\nname = \"s\"\nkind = \"simulated\"\ncapabilities = [\"\"]\n",
        4,
        "agents[0].capabilities[0]",
        "non-empty",
    );
}

#[test]
fn empty_opencode_agent_is_rejected() {
    assert_rule(
        "[[agents]]\nname = \"s\"\nkind = \"simulated\"\nopencode_agent = \"\"\n",
        4,
        "agents[0].opencode_agent",
        "must not be empty",
    );
}

#[test]
fn log_level_must_be_a_filter() {
    assert_rule(
        "[log]\nlevel = \"ocio=loud\"\n",
        2,
        "log.level",
        "not a valid filter",
    );
    assert_rule("[log]\nlevel = \"\"\n", 2, "log.level", "must not be empty");
    parse_ok("[log]\nlevel = \"ocio=debug,warn\"\n");
}

#[test]
fn inline_agent_tables_are_located_too() {
    assert_rule(
        "agents = [\n  { name = \"s\", kind = \"simulated\" },\n  { name = \"t\", kind = \"simulated\", seed = 1, max_concurrent = 0 },\n]\n",
        3,
        "agents[1].max_concurrent",
        "at least 1",
    );
}

#[test]
fn approvals_take_once_always_reject_or_ask() {
    let config = crate::config::parse(
        "[engine]\napprove_outside = \"ask\"\n",
        std::path::Path::new("c.toml"),
    )
    .unwrap();
    assert_eq!(config.engine.approve_outside, crate::config::Approval::Ask);
    assert_eq!(config.engine.approve_inside, crate::config::Approval::Once);
    let err = crate::config::parse(
        "[engine]\napprove_inside = \"sure\"\n",
        std::path::Path::new("c.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("line 2") && err.contains("approve_inside"),
        "{err}"
    );
}

#[test]
fn worktree_cleanup_takes_keep_remove_merged_or_remove_all() {
    use crate::domain::task::CleanupPolicy;
    let config = crate::config::parse("", std::path::Path::new("c.toml")).unwrap();
    assert_eq!(config.engine.worktree_cleanup, CleanupPolicy::RemoveMerged);
    let config = crate::config::parse(
        "[engine]\nworktree_cleanup = \"keep\"\n",
        std::path::Path::new("c.toml"),
    )
    .unwrap();
    assert_eq!(config.engine.worktree_cleanup, CleanupPolicy::Keep);
    let err = crate::config::parse(
        "[engine]\nworktree_cleanup = \"all\"\n",
        std::path::Path::new("c.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("line 2") && err.contains("worktree_cleanup") && err.contains("remove-all"),
        "{err}"
    );
}

#[test]
fn a_remote_workspace_is_for_a_server_elsewhere_and_its_directory_absolute() {
    let (line, key, message, _) =
        parse_err("[[agents]]\nname = \"a\"\nmanaged = true\nworkspace = \"remote\"\n");
    assert_eq!(line, Some(4));
    assert_eq!(key.as_deref(), Some("agents[0].workspace"));
    assert!(
        message.contains("managed server runs on this machine"),
        "{message}"
    );
    let (line, key, message, _) = parse_err(
        "[[agents]]\nname = \"a\"\nurl = \"http://box:4096\"\nremote_dir = \"work/ocio\"\n",
    );
    assert_eq!(line, Some(4));
    assert_eq!(key.as_deref(), Some("agents[0].remote_dir"));
    assert!(message.contains("absolute path"), "{message}");
    let (_, key, message, _) = parse_err(
        "[[agents]]\nname = \"a\"\nurl = \"http://box:4096\"\nworkspace = \"shared\"\nremote_dir = \"/srv\"\n",
    );
    assert_eq!(key.as_deref(), Some("agents[0].remote_dir"));
    assert!(
        message.contains("only applies to a remote workspace"),
        "{message}"
    );
    let (_, key, _, display) =
        parse_err("[[agents]]\nname = \"a\"\nurl = \"http://box:4096\"\nworkspace = \"far\"\n");
    assert_eq!(key.as_deref(), Some("agents[0].workspace"), "{display}");
    let config = parse_ok(
        "[[agents]]\nname = \"a\"\nurl = \"http://box:4096\"\nworkspace = \"remote\"\nremote_dir = \"/srv/ocio\"\n",
    );
    assert_eq!(config.agents[0].workspace_mode(), WorkspaceMode::Remote);
    let config = parse_ok("[[agents]]\nname = \"a\"\nurl = \"http://box:4096\"\n");
    assert_eq!(config.agents[0].workspace_mode(), WorkspaceMode::Auto);
}
