//! The timeline view: a line saying whose timeline and its span, the time axis, then a row per
//! lane track (name on the first) with each session's bar in the colour of its state: `█` a
//! first attempt, `▒` a retry, `░` while it waited for the operator; bars on the critical path
//! underlined; the bar's label over it where it fits. A legend closes it. Without colour
//! (`NO_COLOR`) the outcomes have glyphs of their own, else a failed bar reads as completed.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::timeline::{Bar, Outcome, Timeline, duration_label, offset_label, tick_step};
use crate::tui::app::App;
use crate::tui::theme::Theme;

/// Columns of lane names.
const NAMES: u16 = 16;

pub(crate) fn draw(frame: &mut Frame, app: &mut App, area: Rect) {
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(app.theme.border)
        .title(Span::styled(" timeline ", app.theme.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    app.timeline.columns = inner.width.saturating_sub(NAMES + 1).max(1);
    let theme = &app.theme;
    let state = &app.timeline;
    let timeline = match &state.data {
        Some(Ok(timeline)) => timeline,
        Some(Err(e)) => {
            let text = Paragraph::new(Line::styled(e.clone(), theme.status("failed")))
                .wrap(Wrap { trim: false });
            frame.render_widget(text, inner);
            return;
        }
        None => {
            frame.render_widget(Line::styled("reading the timeline…", theme.muted), inner);
            return;
        }
    };
    let axis = Axis {
        left: inner.x + NAMES + 1,
        columns: state.columns,
        start: state.offset,
        per_column: state.seconds_per_column(state.columns),
    };
    let mut y = inner.y;
    let bottom = inner.bottom();
    let put = |line: Line, y: &mut u16, frame: &mut Frame| {
        if *y < bottom {
            frame.render_widget(line, Rect::new(inner.x, *y, inner.width, 1));
            *y += 1;
        }
    };
    put(title(theme, timeline, &app.zone), &mut y, frame);
    put(axis.line(theme), &mut y, frame);
    let legend_row = bottom.saturating_sub(1);
    let mut row = 0;
    for lane in &timeline.lanes {
        for track in 0..lane.tracks {
            row += 1;
            if row <= state.scroll || y >= legend_row {
                continue;
            }
            let name = if track == 0 { lane.name.as_str() } else { "" };
            let label = crate::text::clip(name, usize::from(NAMES));
            let area = Rect::new(inner.x, y, NAMES, 1);
            frame.render_widget(Span::styled(label, theme.base), area);
            let buffer = frame.buffer_mut();
            for bar in lane.bars.iter().filter(|b| b.track == track) {
                axis.bar(buffer, theme, timeline, bar, y);
            }
            y += 1;
        }
    }
    if timeline.lanes.is_empty() && y < legend_row {
        put(
            Line::styled("no sessions ran in this time", theme.muted),
            &mut y,
            frame,
        );
    }
    if legend_row > inner.y + 2 {
        let area = Rect::new(inner.x, legend_row, inner.width, 1);
        frame.render_widget(legend(theme, timeline, inner.width), area);
    }
}

/// `shop · 14:05:10 → 14:07:30 (2m20s) · lanes by agent · live · critical: a → b`.
fn title(theme: &Theme, timeline: &Timeline, zone: &jiff::tz::TimeZone) -> Line<'static> {
    let mut spans = vec![
        Span::styled(timeline.title.clone(), theme.title),
        Span::styled(
            format!(
                " · {} → {} ({}) · lanes by {}",
                super::clock(timeline.from, zone),
                super::clock(timeline.to, zone),
                duration_label(timeline.from, timeline.to),
                timeline.by.name()
            ),
            theme.muted,
        ),
    ];
    if timeline.live {
        spans.push(Span::styled(" · live", theme.status("running")));
    }
    if !timeline.critical.is_empty() {
        spans.push(Span::styled(
            format!(" · critical: {}", timeline.critical.join(" → ")),
            theme.accent,
        ));
    }
    Line::from(spans)
}

/// Where time falls on screen.
struct Axis {
    /// The first column of bars.
    left: u16,
    columns: u16,
    /// Seconds from the timeline's start at the first column.
    start: f64,
    per_column: f64,
}

impl Axis {
    /// The column of `seconds` from the timeline's start (may be off screen).
    fn column(&self, seconds: f64) -> i64 {
        ((seconds - self.start) / self.per_column).floor() as i64
    }

    /// The time axis: a tick label every few columns.
    fn line(&self, theme: &Theme) -> Line<'static> {
        let span = self.per_column * f64::from(self.columns);
        let step = tick_step(span, usize::from(self.columns / 10).max(1));
        let mut text = " ".repeat(usize::from(NAMES) + 1 + usize::from(self.columns));
        let first = (self.start / step as f64).ceil() as i64 * step;
        let mut at = first;
        while (at as f64) < self.start + span {
            let column = usize::try_from(self.column(at as f64)).unwrap_or(0);
            let label = format!("┆{}", offset_label(at));
            let from = usize::from(NAMES) + 1 + column;
            let end = (from + label.chars().count()).min(text.chars().count());
            text = splice(&text, from, end, &label);
            at += step;
        }
        Line::styled(text, theme.muted)
    }

    /// One bar on row `y`, clipped to the screen.
    fn bar(&self, buffer: &mut Buffer, theme: &Theme, timeline: &Timeline, bar: &Bar, y: u16) {
        let seconds = |at: jiff::Timestamp| at.duration_since(timeline.from).as_secs_f64();
        let from = self.column(seconds(bar.from)).max(0);
        let to = self
            .column(seconds(bar.to))
            .max(from)
            .min(i64::from(self.columns) - 1);
        if from >= i64::from(self.columns) || to < 0 {
            return;
        }
        let mut style = theme.status(bar.outcome.name());
        if bar.critical {
            style = style.add_modifier(Modifier::UNDERLINED | Modifier::BOLD);
        }
        let glyph = glyph(theme, bar.outcome, bar.is_retry());
        let waited = |column: i64| {
            bar.waits.iter().any(|w| {
                self.column(seconds(w.from)) <= column && column <= self.column(seconds(w.to))
            })
        };
        for column in from..=to {
            let x = self.left + u16::try_from(column).unwrap_or(0);
            let (glyph, style) = match waited(column) {
                true => ("░", theme.status("waiting-approval")),
                false => (glyph, style),
            };
            buffer[(x, y)].set_symbol(glyph).set_style(style);
        }
        // The label over the bar where it fits, in the bar's colour as background.
        let width = usize::try_from(to - from + 1).unwrap_or(0);
        if width > bar.label.chars().count() + 1 {
            let on_bar = Style::new()
                .bg(style.fg.unwrap_or_default())
                .fg(ratatui::style::Color::Black);
            let x = self.left + u16::try_from(from).unwrap_or(0);
            buffer.set_string(x, y, &bar.label, on_bar);
        }
    }
}

/// `text` with its characters `from..end` replaced by `with`.
fn splice(text: &str, from: usize, end: usize, with: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if from >= chars.len() {
        return text.to_string();
    }
    let mut out: String = chars[..from].iter().collect();
    out.extend(with.chars().take(end - from));
    out.extend(chars[end.max(from)..].iter());
    out
}

/// A bar's glyph: with colour, `█` a first attempt and `▒` a retry, the colour telling the
/// outcome; without colour, the outcome needs a glyph of its own (a completed retry keeps `▒`).
fn glyph(theme: &Theme, outcome: Outcome, retry: bool) -> &'static str {
    match (theme.colorless, outcome) {
        (true, Outcome::Failed) => "╳",
        (true, Outcome::TimedOut) => "▚",
        (true, Outcome::Cancelled) => "┄",
        (true, Outcome::Lost) => "?",
        (true, Outcome::Running) => "»",
        _ if retry => "▒",
        _ => "█",
    }
}

/// The legend: a glyph for each kind of bar the timeline has (all of them while it has none),
/// what underlined means where a critical path is drawn; in fewer columns, tighter, then whole
/// items only, never a cut word.
fn legend(theme: &Theme, timeline: &Timeline, width: u16) -> Line<'static> {
    let bars: Vec<&crate::timeline::Bar> = timeline.lanes.iter().flat_map(|l| &l.bars).collect();
    // A completed retry is drawn `▒`, not `█`.
    let has = |outcome: Outcome| {
        bars.is_empty()
            || bars
                .iter()
                .any(|b| b.outcome == outcome && !(outcome == Outcome::Completed && b.is_retry()))
    };
    let mut items: Vec<(&'static str, &'static str, &'static str)> = [
        (Outcome::Completed, "completed", "completed"),
        (Outcome::Failed, "failed", "failed"),
        (Outcome::TimedOut, "timed-out", "timed out"),
        (Outcome::Cancelled, "cancelled", "cancelled"),
        (Outcome::Lost, "lost", "lost"),
        (Outcome::Running, "running", "running"),
    ]
    .into_iter()
    .filter(|(outcome, ..)| has(*outcome))
    .map(|(outcome, status, name)| (glyph(theme, outcome, false), status, name))
    .collect();
    if bars.is_empty() || bars.iter().any(|b| b.is_retry()) {
        items.push(("▒", "completed", "retry"));
    }
    if bars.is_empty() || bars.iter().any(|b| !b.waits.is_empty()) {
        items.push(("░", "waiting-approval", "waiting for you"));
    }
    let critical = bars.is_empty() || !timeline.critical.is_empty();
    let room = usize::from(width);
    let length = |gap: usize| {
        let items: usize = items
            .iter()
            .map(|(_, _, n)| 2 + n.chars().count() + gap)
            .sum();
        items + if critical { 25 } else { 0 }
    };
    let gap = if length(2) <= room { 2 } else { 1 };
    let mut spans = Vec::new();
    let mut used = 0;
    for (glyph, status, name) in items {
        let wide = 2 + name.chars().count() + gap;
        if used + wide > room {
            spans.push(Span::styled("…", theme.muted));
            return Line::from(spans);
        }
        used += wide;
        spans.push(Span::styled(glyph, theme.status(status)));
        spans.push(Span::styled(
            format!(" {name}{}", " ".repeat(gap)),
            theme.muted,
        ));
    }
    if critical && used + 25 <= room {
        spans.push(Span::styled(
            "underlined",
            theme.base.add_modifier(Modifier::UNDERLINED),
        ));
        spans.push(Span::styled(": critical path", theme.muted));
    } else if critical && used < room {
        spans.push(Span::styled("…", theme.muted));
    }
    Line::from(spans)
}
