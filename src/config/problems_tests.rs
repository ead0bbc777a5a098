//! Tests of how a bad config is reported: every problem at once with its line, files it names
//! checked when it is loaded, log levels with did-you-mean, and long values clipped.

use std::path::Path;

use super::tests::FILE;
use super::*;

/// Every line of the error for `text` that names a place in the file.
fn problems(text: &str) -> Vec<String> {
    let err = parse(text, Path::new(FILE)).unwrap_err();
    places(&err.to_string())
}

fn places(display: &str) -> Vec<String> {
    display
        .lines()
        .filter(|line| line.starts_with("config error in "))
        .map(str::to_string)
        .collect()
}

fn load_text(text: &str) -> (tempfile::TempDir, Result<LoadedConfig, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = load(&path, true, Vec::new());
    (dir, loaded)
}

#[test]
fn every_problem_in_the_file_is_reported_at_once() {
    let text = "[engine]\nmax_parallel = 0\n\n[log]\nlevel = \"inof\"\n\n[[agents]]\nname = \"a\"\nurl = \"ftp://x\"\n\n[[agents]]\nname = \"a\"\nkind = \"simulated\"\nfailure_rate = 2.0\n\n[[agents]]\nname = \"c\"\nkind = \"simulated\"\nmodle = \"x/y\"\n";
    let found = problems(text);
    let lines: Vec<&str> = found
        .iter()
        .map(|line| line.split(", column").next().unwrap_or(""))
        .collect();
    let at = |line: usize| format!("config error in {FILE}, line {line}");
    assert_eq!(
        lines,
        [at(2), at(5), at(9), at(12), at(14), at(19)],
        "{found:#?}"
    );
}

#[test]
fn a_log_level_that_is_no_level_is_refused_with_the_levels() {
    let found = problems("[log]\nlevel = \"loud\"\n");
    assert_eq!(found.len(), 1, "{found:#?}");
    let err = parse("[log]\nlevel = \"loud\"\n", Path::new(FILE))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 2") && err.contains("(log.level)"),
        "{err}"
    );
    assert!(
        err.contains("off, error, warn, info, debug, trace"),
        "{err}"
    );
    let err = parse("[log]\nlevel = \"ocio=debug,inof\"\n", Path::new(FILE))
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean \"info\"?"), "{err}");
    for fine in ["info", "WARN", "ocio=debug,warn", "off"] {
        parse(&format!("[log]\nlevel = {fine:?}\n"), Path::new(FILE)).unwrap();
    }
}

#[test]
fn files_the_config_names_are_checked_when_it_is_loaded() {
    let text = "[[agents]]\nname = \"remote\"\nurl = \"https://box:4096\"\nca_cert = \"no-such-ca.pem\"\n\n[[agents]]\nname = \"local\"\nmanaged = true\nopencode_path = \"/no/such/opencode\"\n";
    let (_dir, loaded) = load_text(text);
    let err = loaded.expect_err("missing files are refused").to_string();
    let found = places(&err);
    assert_eq!(found.len(), 2, "{err}");
    assert!(
        found[0].contains("line 4") && found[0].contains("agents[0].ca_cert"),
        "{err}"
    );
    assert!(err.contains("no-such-ca.pem"), "{err}");
    assert!(
        found[1].contains("line 9") && found[1].contains("agents[1].opencode_path"),
        "{err}"
    );
    assert!(err.contains("/no/such/opencode"), "{err}");
}

#[test]
fn files_that_are_there_pass() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), "pem").unwrap();
    let text = "[[agents]]\nname = \"remote\"\nurl = \"https://box:4096\"\nca_cert = \"ca.pem\"\n\n[[agents]]\nname = \"local\"\nmanaged = true\nopencode_path = \"/bin/sh\"\n";
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    load(&path, true, Vec::new()).unwrap();
}

#[test]
fn a_huge_value_is_clipped_in_the_error() {
    let name = "n".repeat(1 << 20);
    let text = format!(
        "[[agents]]\nname = \"{name} \"\nkind = \"simulated\"\n\n[log]\nlevel = \"{name}\"\n"
    );
    let err = parse(&text, Path::new(FILE)).unwrap_err().to_string();
    assert!(err.len() < 2_000, "{} bytes", err.len());
    assert!(err.contains('…'), "{err}");
}

#[test]
fn transcript_cap_and_retention_are_read_and_bad_ones_named() {
    let config = parse(
        "[engine]\ntranscript_cap = \"512KiB\"\ntranscript_retention = \"30d\"\n",
        Path::new(FILE),
    )
    .unwrap();
    assert_eq!(config.engine.transcript_cap, Some(512 * 1024));
    assert_eq!(
        config.engine.transcript_retention,
        Some(jiff::SignedDuration::from_hours(30 * 24))
    );
    let bytes = parse("[engine]\ntranscript_cap = 4096\n", Path::new(FILE)).unwrap();
    assert_eq!(bytes.engine.transcript_cap, Some(4096));
    for (text, names) in [
        (
            "[engine]\ntranscript_cap = \"lots\"\n",
            "size `lots` is not valid",
        ),
        (
            "[engine]\ntranscript_cap = \"12\"\n",
            "transcript_cap must be at least 1KiB",
        ),
        (
            "[engine]\ntranscript_retention = \"soon\"\n",
            "duration `soon` is not valid",
        ),
        (
            "[engine]\ntranscript_retention = \"0s\"\n",
            "transcript_retention must be longer than zero",
        ),
    ] {
        let err = parse(text, Path::new(FILE)).unwrap_err().to_string();
        assert!(err.contains(names), "{text}: {err}");
        assert!(
            places(&err).iter().any(|l| l.contains("line 2")),
            "{text}: {err}"
        );
    }
}
