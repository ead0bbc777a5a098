//! Checks an OpenMetrics text page: parsed here line by line (every sample belongs to a family
//! declared with HELP and TYPE, counters' samples end in `_total`, labels are well quoted, values
//! are numbers, histogram buckets are cumulative, `# EOF` ends it), and by `promtool check
//! metrics` when promtool is installed (Debian package `prometheus`). promtool reads the
//! Prometheus text format only, which names a counter's family by its `_total` sample, so it is
//! given the page with those family names (the mapping Prometheus makes when it scrapes) and
//! without `# EOF`.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// One sample: name, labels, value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// Parse the page; panics naming the first bad line.
pub fn parse(page: &str) -> Vec<Sample> {
    let mut kinds: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    let body = page
        .strip_suffix("# EOF\n")
        .unwrap_or_else(|| panic!("no `# EOF` at the end:\n{page}"));
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                kinds.insert(name.into(), kind.into()).is_none(),
                "declared twice: {line}"
            );
            continue;
        }
        assert!(!line.is_empty(), "an empty line");
        if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        let sample = sample(line);
        let suffixed = |suffixes: &[&str], kind: &str| {
            suffixes
                .iter()
                .find_map(|s| sample.0.strip_suffix(s))
                .filter(|base| kinds.get(*base).is_some_and(|k| k == kind))
        };
        let family = suffixed(&["_bucket", "_sum", "_count"], "histogram")
            .or_else(|| suffixed(&["_total", "_created"], "counter"))
            .unwrap_or(&sample.0)
            .to_string();
        let kind = kinds.get(&family);
        assert!(kind.is_some(), "no TYPE before: {line}");
        assert!(
            kind.is_some_and(|k| k != "counter") || family != sample.0,
            "a counter's sample without `_total`: {line}"
        );
        samples.push(sample);
    }
    check_buckets(&samples);
    samples
}

fn sample(line: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value: {line}"));
    let name = &line[..name_end];
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.starts_with(|c: char| c.is_ascii_digit()),
        "bad name: {line}"
    );
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut i = 0;
        loop {
            let here = &body[i..];
            if let Some(after) = here.strip_prefix('}') {
                rest = after;
                break;
            }
            if here.starts_with(',') {
                i += 1;
                continue;
            }
            let eq = here
                .find("=\"")
                .unwrap_or_else(|| panic!("bad label: {line}"));
            let key = here[..eq].to_string();
            i += eq + 2;
            let mut value = String::new();
            let mut chars = body[i..].char_indices();
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c @ ('\\' | '"'))) => value.push(c),
                        other => panic!("bad escape {other:?}: {line}"),
                    },
                    Some((j, '"')) => {
                        i += j + 1;
                        break;
                    }
                    Some((_, c)) => value.push(c),
                    None => panic!("unterminated label value: {line}"),
                }
            }
            labels.push((key, value));
        }
    }
    let value = rest.trim();
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
    };
    (name.to_string(), labels, value)
}

/// Every histogram's buckets only grow, and `+Inf` equals `_count`.
fn check_buckets(samples: &[Sample]) {
    let mut last: HashMap<String, f64> = HashMap::new();
    for (name, labels, value) in samples {
        let Some(base) = name.strip_suffix("_bucket") else {
            continue;
        };
        let others: Vec<_> = labels.iter().filter(|(k, _)| k != "le").collect();
        let key = format!("{base}{others:?}");
        let before = last.insert(key.clone(), *value).unwrap_or(0.0);
        assert!(*value >= before, "buckets of {key} shrink");
        if labels.iter().any(|(k, v)| k == "le" && v == "+Inf") {
            let count = samples
                .iter()
                .find(|(n, l, _)| {
                    *n == format!("{base}_count") && l.iter().collect::<Vec<_>>() == others
                })
                .map(|s| s.2);
            assert_eq!(count, Some(*value), "+Inf bucket of {key} is not its count");
        }
    }
}

/// The page as the Prometheus text format (version 0.0.4) names it: a counter family takes
/// its samples' `_total` name, and there is no `# EOF`.
fn as_prometheus_text(page: &str) -> String {
    let counters: Vec<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::new();
    for line in page.lines().filter(|l| *l != "# EOF") {
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, after) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {after}"))
        });
        text.push_str(renamed.as_deref().unwrap_or(line));
        text.push('\n');
    }
    text
}

/// Parse, and run promtool over the page when it is installed.
pub fn check(page: &str) {
    assert!(!parse(page).is_empty());
    let page = &as_prometheus_text(page);
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!(
            "promtool is not installed (Debian package `prometheus`); checked by the parser only"
        );
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{page}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
