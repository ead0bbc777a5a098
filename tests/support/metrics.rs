//! Checks a Prometheus text exposition page: parsed here line by line (every sample belongs to
//! a family declared with HELP and TYPE, labels are well quoted, values are numbers, histogram
//! buckets are cumulative), and by `promtool check metrics` when promtool is installed (Debian
//! package `prometheus`).

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// One sample: name, labels, value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// Parse the page; panics naming the first bad line.
pub fn parse(page: &str) -> Vec<Sample> {
    let mut kinds: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                kinds.insert(name.into(), kind.into()).is_none(),
                "declared twice: {line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let sample = sample(line);
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| sample.0.strip_suffix(s))
            .filter(|base| kinds.get(*base).is_some_and(|k| k == "histogram"))
            .unwrap_or(&sample.0)
            .to_string();
        assert!(kinds.contains_key(&family), "no TYPE before: {line}");
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

/// Parse, and run promtool over the page when it is installed.
pub fn check(page: &str) {
    assert!(!parse(page).is_empty());
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
