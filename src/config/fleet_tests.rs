//! Tests of `[[fleets]]`: the members a fleet makes and the rules of its keys.

use std::time::Duration;

use super::fleet::MAX_FLEET_NAME;
use super::tests::{FILE, assert_rule, parse_err, parse_ok};
use super::*;

const DNS: &str = "[[fleets]]\nname = \"boxes\"\ndns = \"opencode.ocio.svc.cluster.local:4096\"\n";

#[test]
fn a_fleet_is_read_with_its_source_and_its_members_settings() {
    let text = "[[fleets]]\nname = \"boxes\"\ndns = \"opencode.ocio.svc.cluster.local:4096\"\nrefresh = \"10s\"\npassword_env = \"OPENCODE_SERVER_PASSWORD\"\nmodel = \"anthropic/claude-sonnet-4\"\nopencode_agent = \"build\"\ncapabilities = [\"rust\"]\nmax_concurrent = 2\nworkspace = \"remote\"\nremote_dir = \"/srv/ocio\"\n";
    let config = parse_ok(text);
    let fleet = &config.fleets[0];
    assert_eq!(
        fleet.source(),
        Some(FleetSource::Dns("opencode.ocio.svc.cluster.local:4096"))
    );
    assert_eq!(fleet.refresh_every(), Duration::from_secs(10));
    let member = fleet.member("http://10.42.0.7:4096");
    assert_eq!(member.name.as_str(), "boxes-10.42.0.7-4096");
    assert_eq!(member.url.as_deref(), Some("http://10.42.0.7:4096"));
    assert_eq!(member.max_concurrent, 2);
    assert_eq!(member.capabilities, ["rust"]);
    assert_eq!(member.workspace_mode(), WorkspaceMode::Remote);
    assert_eq!(member.remote_dir.as_deref(), Some("/srv/ocio"));
    assert_eq!(member.opencode_agent.as_deref(), Some("build"));
    assert_eq!(
        config.secret_vars(),
        ["OPENCODE_SERVER_PASSWORD".to_string()]
    );
}

#[test]
fn refresh_defaults_to_thirty_seconds() {
    let config = parse_ok(DNS);
    assert_eq!(config.fleets[0].refresh_every(), Duration::from_secs(30));
    assert_eq!(config.fleets[0].max_concurrent, DEFAULT_MAX_CONCURRENT);
}

#[test]
fn a_members_name_is_stable_per_url_and_always_a_valid_agent_name() {
    let fleet = parse_ok(DNS).fleets.remove(0);
    let name = |url: &str| fleet.member_name(url).to_string();
    assert_eq!(name("http://10.0.0.1:4096"), name("http://10.0.0.1:4096"));
    assert_ne!(name("http://10.0.0.1:4096"), name("http://10.0.0.2:4096"));
    assert_eq!(name("http://[fd00::1]:4096/"), "boxes-fd00--1-4096");
    assert_eq!(name("https://box.example:443"), "boxes-box.example-443");
    // Two servers behind one gateway are two members (hand trial: one name, the second
    // waited for good on "already exists").
    assert_eq!(name("https://gw:443/a"), "boxes-gw-443-a");
    assert_ne!(name("https://gw:443/a"), name("https://gw:443/b"));
    // Paths that would read alike are named apart (second hand trial: `/a/b`, `/a-b` and
    // `/a_b` were one name).
    let alike = [
        name("http://gw:1/a/b"),
        name("http://gw:1/a-b"),
        name("http://gw:1/a_b"),
    ];
    assert_eq!(alike[0], "boxes-gw-1-a-b");
    assert!(
        alike[1] != alike[0] && alike[2] != alike[0] && alike[1] != alike[2],
        "{alike:?}"
    );
    let long = format!("http://{}.example:4096", "a".repeat(80));
    let shortened = name(&long);
    assert!(
        shortened.starts_with("boxes-") && shortened.len() <= 64,
        "{shortened}"
    );
    assert_eq!(shortened, name(&long));
    assert_ne!(shortened, name(&long.replace(":4096", ":4097")));
}

#[test]
fn urls_and_command_are_sources_too() {
    let config = parse_ok(
        "[[fleets]]\nname = \"a\"\nurls = [\"http://x:1\", \"https://y:2\"]\n\n[[fleets]]\nname = \"b\"\ncommand = \"cat members\"\n",
    );
    let urls = ["http://x:1".to_string(), "https://y:2".to_string()];
    assert_eq!(config.fleets[0].source(), Some(FleetSource::Urls(&urls)));
    assert_eq!(
        config.fleets[1].source(),
        Some(FleetSource::Command("cat members"))
    );
}

#[test]
fn a_fleet_without_a_source_is_refused() {
    assert_rule(
        "[[fleets]]\nname = \"boxes\"\n",
        1,
        "fleets[0]",
        "needs exactly one of `urls`, `dns` or `command`",
    );
}

#[test]
fn a_fleet_with_two_sources_is_refused_at_the_second() {
    assert_rule(
        "[[fleets]]\nname = \"boxes\"\nurls = [\"http://a:1\"]\ncommand = \"cat x\"\n",
        4,
        "fleets[0].command",
        "give only one of `urls`, `dns` or `command`",
    );
}

#[test]
fn each_url_must_be_http() {
    assert_rule(
        "[[fleets]]\nname = \"boxes\"\nurls = [\"http://a:1\", \"ftp://b\"]\n",
        3,
        "fleets[0].urls[1]",
        "url `ftp://b` must start with http:// or https://",
    );
    assert_rule(
        "[[fleets]]\nname = \"boxes\"\nurls = []\n",
        3,
        "fleets[0].urls",
        "at least one server",
    );
}

/// Each server has one spelling, so it is one member however a source writes it (hand trial:
/// `http://box:14101` and `http://box:14101/` were two, the second waiting for good on "an
/// agent named ... already exists"), and a password written into a URL is refused before it
/// is shown in a member's name or stored (hand trial: it was both).
#[test]
fn a_member_url_has_one_spelling_and_no_password() {
    assert_eq!(
        member_url("HTTP://Box:4096/").as_deref(),
        Ok("http://box:4096")
    );
    assert_eq!(
        member_url("https://box:443/").as_deref(),
        Ok("https://box:443"),
        "the port as written, so the member's name keeps it (review)"
    );
    assert_eq!(member_url("https://Box/").as_deref(), Ok("https://box"));
    assert_eq!(
        member_url("http://[::1]:4096").as_deref(),
        Ok("http://[::1]:4096")
    );
    assert_eq!(
        member_url(" http://box:1/prefix/ ").as_deref(),
        Ok("http://box:1/prefix")
    );
    let why = member_url("http://ocio:s3cret@box:4096").unwrap_err();
    assert!(
        why.contains("password_env") && !why.contains("s3cret"),
        "{why}"
    );
    assert!(member_url("http://box:4096/?x=1").is_err());
    assert!(member_url("box:4096").unwrap_err().contains("http://"));
    assert_eq!(
        redacted("http://ocio:s3cret@box:4096"),
        "http://ocio:***@box:4096/"
    );
    assert_rule(
        "[[fleets]]\nname = \"boxes\"\nurls = [\"http://ocio:s3cret@a:1\"]\n",
        3,
        "fleets[0].urls[0]",
        "url `http://ocio:***@a:1/` holds a user or password",
    );
    let (_, _, message, _) =
        parse_err("[[fleets]]\nname = \"boxes\"\nurls = [\"http://ocio:s3cret@a:1\"]\n");
    assert!(!message.contains("s3cret"), "{message}");
    assert_rule(
        "[[fleets]]\nname = \"boxes\"\nurls = [\"http://a:1\", \"HTTP://A:1/\"]\n",
        3,
        "fleets[0].urls[1]",
        "is the same server as urls[0] (http://a:1)",
    );
}

#[test]
fn dns_needs_a_host_and_port() {
    for bad in [
        "opencode.svc",
        "http://opencode:4096",
        "opencode:0",
        ":4096",
    ] {
        assert_rule(
            &format!("[[fleets]]\nname = \"boxes\"\ndns = {bad:?}\n"),
            3,
            "fleets[0].dns",
            "must be a name and a port",
        );
    }
}

#[test]
fn an_empty_command_is_refused() {
    assert_rule(
        "[[fleets]]\nname = \"boxes\"\ncommand = \" \"\n",
        3,
        "fleets[0].command",
        "command must not be empty",
    );
}

#[test]
fn refresh_must_be_a_second_or_more() {
    assert_rule(
        &format!("{DNS}refresh = \"100ms\"\n"),
        4,
        "fleets[0].refresh",
        "refresh must be at least 1s",
    );
    assert_rule(
        &format!("{DNS}refresh = \"often\"\n"),
        4,
        "fleets[0].refresh",
        "\"30s\"",
    );
}

#[test]
fn fleet_names_are_unique_among_fleets_and_agents() {
    assert_rule(
        &format!("{DNS}\n{DNS}"),
        6,
        "fleets[1].name",
        "already used by fleets[0]",
    );
    assert_rule(
        &format!("[[agents]]\nname = \"boxes\"\nkind = \"simulated\"\n\n{DNS}"),
        6,
        "fleets[0].name",
        "already used by agents[0]",
    );
    assert_rule(
        &format!(
            "[[fleets]]\nname = \"{}\"\ndns = \"o:1\"\n",
            "f".repeat(MAX_FLEET_NAME + 1)
        ),
        2,
        "fleets[0].name",
        "longer than 40 characters",
    );
}

#[test]
fn member_settings_follow_the_agent_rules_at_the_fleets_keys() {
    assert_rule(
        &format!("{DNS}max_concurrent = 0\n"),
        4,
        "fleets[0].max_concurrent",
        "max_concurrent must be at least 1",
    );
    assert_rule(
        &format!("{DNS}password_env = \"sekrit pass\"\n"),
        4,
        "fleets[0].password_env",
        "password_env is not an environment variable name",
    );
    assert_rule(
        &format!("{DNS}workspace = \"shared\"\nremote_dir = \"/srv\"\n"),
        5,
        "fleets[0].remote_dir",
        "only applies to a remote workspace",
    );
    assert_rule(
        &format!("{DNS}capabilities = [\"a b\"]\n"),
        4,
        "fleets[0].capabilities[0]",
        "capability `a b`",
    );
    assert_rule(
        &format!("{DNS}managed = true\n"),
        4,
        "fleets[0].managed",
        "unknown field `managed`",
    );
}

#[test]
fn ca_cert_is_only_for_https_members() {
    assert_rule(
        &format!("{DNS}ca_cert = \"ca.pem\"\n"),
        4,
        "fleets[0].ca_cert",
        "only applies to members reached over https://",
    );
    parse_ok("[[fleets]]\nname = \"b\"\nurls = [\"https://b:1\"]\nca_cert = \"ca.pem\"\n");
}

#[test]
fn a_bad_fleet_exits_with_the_config_error() {
    let (_, key, _, display) = parse_err("[[fleets]]\nname = \"b\"\ndns = \"x\"\n");
    assert_eq!(key.as_deref(), Some("fleets[0].dns"));
    assert!(
        display.starts_with(&format!("config error in {FILE}, line 3")),
        "{display}"
    );
}
