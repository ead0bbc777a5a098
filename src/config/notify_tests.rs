//! Tests of `[notify]` and the control room's `[ui]` switches: the shape, the defaults, and each
//! broken rule named by its line and key path.

use super::tests::{FILE, assert_rule, parse_err, parse_ok};
use crate::notify::Kind;

#[test]
fn notify_takes_a_command_a_webhook_a_topic_and_kinds() {
    let config = parse_ok(
        "[notify]\ncommand = [\"notify-send\", \"ocio\"]\nwebhook = \"https://ntfy.sh/\"\ntopic = \"builds\"\nevents = [\"waiting\", \"agent_offline\"]\n",
    );
    let notify = &config.notify;
    assert_eq!(
        notify.command.as_deref(),
        Some(&["notify-send".to_string(), "ocio".to_string()][..])
    );
    assert_eq!(notify.webhook.as_deref(), Some("https://ntfy.sh/"));
    assert_eq!(notify.topic.as_deref(), Some("builds"));
    assert_eq!(notify.events, [Kind::Waiting, Kind::AgentOffline]);
}

#[test]
fn by_default_nothing_is_sent_all_kinds_would_be_and_the_room_rings() {
    let config = parse_ok("");
    assert_eq!(config.notify.command, None);
    assert_eq!(config.notify.webhook, None);
    assert_eq!(config.notify.events, Kind::ALL);
    assert!(config.ui.bell && config.ui.desktop_notify);
    let quiet = parse_ok("[ui]\nbell = false\ndesktop_notify = false\n");
    assert!(!quiet.ui.bell && !quiet.ui.desktop_notify);
    let webhook = parse_ok("[notify]\nwebhook = \"http://127.0.0.1:9/hook\"\n");
    assert_eq!(webhook.notify.events, Kind::ALL);
}

#[test]
fn a_bad_notify_value_is_named_by_line_and_key() {
    assert_rule(
        "[notify]\ncommand = []\n",
        2,
        "notify.command",
        "command must name a program",
    );
    assert_rule(
        "[notify]\ncommand = [\"\"]\n",
        2,
        "notify.command",
        "command must name a program",
    );
    assert_rule(
        "[notify]\nwebhook = \"ntfy.sh/x\"\n",
        2,
        "notify.webhook",
        "webhook `ntfy.sh/x` is not a URL",
    );
    assert_rule(
        "[notify]\nwebhook = \"ftp://host/x\"\n",
        2,
        "notify.webhook",
        "is not an http:// or https:// URL",
    );
    assert_rule(
        "[notify]\ncommand = [\"x\"]\ntopic = \"t\"\n",
        3,
        "notify.topic",
        "topic only applies with a webhook",
    );
    assert_rule(
        "[notify]\nwebhook = \"https://ntfy.sh/\"\ntopic = \"a b\"\n",
        3,
        "notify.topic",
        "without spaces or slashes",
    );
    assert_rule(
        "[notify]\ncommand = [\"x\"]\nevents = []\n",
        3,
        "notify.events",
        "nothing would be sent",
    );
    assert_rule(
        "[notify]\nevents = [\"waiting\"]\n",
        1,
        "notify",
        "give `command` or `webhook`",
    );
}

#[test]
fn unknown_notify_kinds_and_keys_are_named() {
    let (line, key, message, display) =
        parse_err("[notify]\ncommand = [\"x\"]\nevents = [\"waiting\", \"plan_done\"]\n");
    assert_eq!(line, Some(3), "{display}");
    assert_eq!(key.as_deref(), Some("notify.events[1]"), "{display}");
    assert!(message.contains("plan_finished"), "{display}");
    assert!(display.starts_with(&format!("config error in {FILE}, line 3")));
    let (line, key, _, display) = parse_err("[notify]\nwebhok = \"https://x/\"\n");
    assert_eq!(line, Some(2), "{display}");
    assert_eq!(key.as_deref(), Some("notify.webhok"), "{display}");
    let (line, key, _, display) = parse_err("[ui]\nbell = \"loud\"\n");
    assert_eq!(line, Some(2), "{display}");
    assert_eq!(key.as_deref(), Some("ui.bell"), "{display}");
}
