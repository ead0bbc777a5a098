//! A timeline as an SVG picture for a report (`ocio timeline PLAN --svg FILE`): the lanes with
//! their names, the time axis, a bar per session coloured by how it ended (hover shows what it
//! was), retries hatched, waits for the operator striped over the bar, the critical path
//! outlined, and a legend. Plain SVG 1.1 that browsers and document tools show as it is.

use std::fmt::Write as _;

use super::{Bar, Outcome, Timeline, duration_label, offset_label, tick_step};

const WIDTH: f64 = 1200.0;
const LABELS: f64 = 170.0;
const LANE: f64 = 26.0;
const TOP: f64 = 58.0;
const LEGEND: f64 = 40.0;

/// `timeline` as an SVG document.
pub fn render(timeline: &Timeline) -> String {
    let rows: usize = timeline.lanes.iter().map(|l| l.tracks).sum();
    let height = TOP + LANE * rows.max(1) as f64 + LEGEND;
    let mut out = String::with_capacity(4096 + 512 * timeline.lanes.len());
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">
<defs>
<pattern id="retry" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="white" fill-opacity="0"/><line x1="0" y1="0" x2="0" y2="6" stroke="white" stroke-width="2" stroke-opacity="0.6"/></pattern>
<pattern id="wait" width="4" height="4" patternUnits="userSpaceOnUse"><rect width="4" height="4" fill="#f9a825"/><rect width="2" height="4" fill="#fff59d"/></pattern>
</defs>
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-size="15" font-weight="bold">{title}</text>
<text x="10" y="38" fill="#555">{subtitle}</text>
"##,
        title = escape(&format!("Timeline of {}", timeline.title)),
        subtitle = escape(&subtitle(timeline)),
    );
    axis(&mut out, timeline, height);
    let mut row = 0;
    for (index, lane) in timeline.lanes.iter().enumerate() {
        let y = TOP + LANE * row as f64;
        row += lane.tracks;
        if index % 2 == 1 {
            let _ = writeln!(
                out,
                r##"<rect x="0" y="{y}" width="{WIDTH}" height="{}" fill="#f5f5f5"/>"##,
                LANE * lane.tracks as f64
            );
        }
        let _ = writeln!(
            out,
            r##"<text x="10" y="{}" fill="#222">{}</text>"##,
            y + LANE * 0.65,
            escape(&crate::text::clip(&lane.name, 24))
        );
        for bar in &lane.bars {
            draw_bar(&mut out, timeline, bar, y + LANE * bar.track as f64);
        }
    }
    legend(&mut out, height - LEGEND + 14.0);
    out.push_str("</svg>\n");
    out
}

fn subtitle(timeline: &Timeline) -> String {
    let mut text = format!(
        "{} to {} ({}), lanes by {}",
        timeline.from.strftime("%Y-%m-%d %H:%M:%S UTC"),
        timeline.to.strftime("%H:%M:%S"),
        duration_label(timeline.from, timeline.to),
        timeline.by.name()
    );
    if timeline.live {
        text.push_str(", still running");
    }
    if !timeline.critical.is_empty() {
        text.push_str(&format!(
            "; critical path: {}",
            timeline.critical.join(" → ")
        ));
    }
    text
}

/// Where time `at` is on the x axis.
fn x_of(timeline: &Timeline, at: jiff::Timestamp) -> f64 {
    let span = span_seconds(timeline);
    let offset = at.duration_since(timeline.from).as_secs_f64().max(0.0);
    LABELS + (WIDTH - LABELS - 20.0) * (offset / span).min(1.0)
}

fn span_seconds(timeline: &Timeline) -> f64 {
    timeline
        .to
        .duration_since(timeline.from)
        .as_secs_f64()
        .max(1.0)
}

fn axis(out: &mut String, timeline: &Timeline, height: f64) {
    let span = span_seconds(timeline);
    let step = tick_step(span, 10);
    let bottom = height - LEGEND;
    let mut at = 0;
    while at as f64 <= span {
        let x = LABELS + (WIDTH - LABELS - 20.0) * (at as f64 / span);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{bottom}" stroke="#ddd"/><text x="{x:.1}" y="{}" fill="#555" text-anchor="middle">{}</text>"##,
            TOP - 6.0,
            TOP - 9.0,
            offset_label(at)
        );
        at += step;
    }
}

fn draw_bar(out: &mut String, timeline: &Timeline, bar: &Bar, y: f64) {
    let (x1, x2) = (x_of(timeline, bar.from), x_of(timeline, bar.to));
    let width = (x2 - x1).max(2.0);
    let (top, height) = (y + 4.0, LANE - 8.0);
    let stroke = match bar.critical {
        true => r##" stroke="#000" stroke-width="2.5""##,
        false => "",
    };
    let _ = write!(
        out,
        r##"<g><title>{}</title><rect x="{x1:.1}" y="{top}" width="{width:.1}" height="{height}" rx="2" fill="{}"{stroke}/>"##,
        escape(&tooltip(bar)),
        colour(bar.outcome)
    );
    if bar.is_retry() {
        let _ = write!(
            out,
            r##"<rect x="{x1:.1}" y="{top}" width="{width:.1}" height="{height}" fill="url(#retry)"/>"##
        );
    }
    for wait in &bar.waits {
        let (w1, w2) = (x_of(timeline, wait.from), x_of(timeline, wait.to));
        let _ = write!(
            out,
            r##"<rect x="{w1:.1}" y="{}" width="{:.1}" height="{}" fill="url(#wait)"/>"##,
            top + height / 2.0,
            (w2 - w1).max(1.5),
            height / 2.0
        );
    }
    if width > 60.0 {
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" fill="white" font-size="11">{}</text>"##,
            x1 + 4.0,
            top + height * 0.72,
            escape(&crate::text::clip(&bar.label, (width / 7.0) as usize))
        );
    }
    out.push_str("</g>\n");
}

fn tooltip(bar: &Bar) -> String {
    let mut text = format!(
        "{} · {} · {} · {}",
        bar.label,
        bar.agent.as_deref().unwrap_or("no agent"),
        bar.outcome.name(),
        duration_label(bar.from, bar.to)
    );
    if !bar.waits.is_empty() {
        text.push_str(&format!(
            " · waited for the operator {} time(s)",
            bar.waits.len()
        ));
    }
    if bar.critical {
        text.push_str(" · critical path");
    }
    text
}

/// The colour of a bar that ended `outcome` (readable in print and by most colour-blind eyes:
/// blue, green, red, grey, orange, purple).
pub(crate) fn colour(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Running => "#1565c0",
        Outcome::Completed => "#2e7d32",
        Outcome::Failed => "#c62828",
        Outcome::Cancelled => "#757575",
        Outcome::TimedOut => "#ef6c00",
        Outcome::Lost => "#6a1b9a",
    }
}

fn legend(out: &mut String, y: f64) {
    let mut x = 10.0;
    let items = [
        (colour(Outcome::Completed), "completed"),
        (colour(Outcome::Failed), "failed"),
        (colour(Outcome::TimedOut), "timed out"),
        (colour(Outcome::Cancelled), "cancelled"),
        (colour(Outcome::Lost), "lost"),
        (colour(Outcome::Running), "running"),
        ("url(#wait)", "waiting for the operator"),
    ];
    for (fill, name) in items {
        let _ = write!(
            out,
            r##"<rect x="{x}" y="{}" width="14" height="10" fill="{fill}"/><text x="{}" y="{y}">{name}</text>"##,
            y - 9.0,
            x + 18.0
        );
        x += 30.0 + 7.0 * name.len() as f64;
    }
    let _ = writeln!(
        out,
        r##"<rect x="{x}" y="{}" width="14" height="10" fill="{}" stroke="#000" stroke-width="2.5"/><text x="{}" y="{y}">critical path</text><rect x="{}" y="{}" width="14" height="10" fill="{}"/><rect x="{}" y="{}" width="14" height="10" fill="url(#retry)"/><text x="{}" y="{y}">retry</text>"##,
        y - 9.0,
        colour(Outcome::Completed),
        x + 18.0,
        x + 120.0,
        y - 9.0,
        colour(Outcome::Completed),
        x + 120.0,
        y - 9.0,
        x + 138.0
    );
}

/// Text made safe for SVG.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in crate::text::without_control(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
