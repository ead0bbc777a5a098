//! The Prometheus text exposition format (version 0.0.4), written by hand: metric families
//! with HELP and TYPE lines, escaped label values, and cumulative histograms.

use std::fmt::Write;

/// Fixed-bucket histogram of seconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Upper bounds for durations from a second to a few hours.
pub const DURATION_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, value: f64) {
        let value = value.max(0.0);
        for (bound, count) in self.bounds.iter().zip(&mut self.counts) {
            if value <= *bound {
                *count += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }
}

/// A page of metrics being written.
#[derive(Default)]
pub struct Page {
    text: String,
}

impl Page {
    /// Start a family: `kind` is `counter`, `gauge` or `histogram`.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.text, " {}", number(value));
    }

    /// A whole family of one gauge or counter with one sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], histogram: &Histogram) {
        let bucket = format!("{name}_bucket");
        for (bound, count) in histogram.bounds.iter().zip(&histogram.counts) {
            self.text.push_str(&bucket);
            self.labels(labels, Some(&number(*bound)));
            let _ = writeln!(self.text, " {count}");
        }
        self.text.push_str(&bucket);
        self.labels(labels, Some("+Inf"));
        let _ = writeln!(self.text, " {}", histogram.count);
        self.sample(&format!("{name}_sum"), labels, histogram.sum);
        self.sample(&format!("{name}_count"), labels, histogram.count as f64);
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.text.push('{');
        let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
        for (i, (key, value)) in all.enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            let value = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(self.text, "{key}=\"{value}\"");
        }
        self.text.push('}');
    }

    pub fn finish(self) -> String {
        self.text
    }
}

fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_families_labels_and_cumulative_buckets() {
        let mut histogram = Histogram::new(&[1.0, 10.0]);
        histogram.observe(0.5);
        histogram.observe(5.0);
        histogram.observe(50.0);
        let mut page = Page::default();
        page.family("x_seconds", "histogram", "How long.");
        page.histogram("x_seconds", &[("outcome", "a\"b")], &histogram);
        page.single("y", "gauge", "Why.", 2.5);
        let text = page.finish();
        assert!(text.contains("# TYPE x_seconds histogram\n"), "{text}");
        assert!(
            text.contains("x_seconds_bucket{outcome=\"a\\\"b\",le=\"1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("x_seconds_bucket{outcome=\"a\\\"b\",le=\"10\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("le=\"+Inf\"} 3\n"), "{text}");
        assert!(
            text.contains("x_seconds_sum{outcome=\"a\\\"b\"} 55.5\n"),
            "{text}"
        );
        assert!(
            text.ends_with("# HELP y Why.\n# TYPE y gauge\ny 2.5\n"),
            "{text}"
        );
    }
}
