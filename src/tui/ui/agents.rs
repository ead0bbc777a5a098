//! The agents pane (status, a load gauge and a sparkline of recent load per agent) and the
//! approvals pane (permission requests waiting for the operator).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

use super::widths::{Column, Want, constraints, fit, only_shown};
use super::{block, fit as fit_text, status_style};
use crate::domain::Lifecycle;
use crate::engine::view::ConflictState;
use crate::tui::app::{App, Pane};
use crate::tui::keymap::Action;
use crate::tui::view::InboxRow;

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Columns: name, status, load gauge, load / most, and the recent load (or why it is down).
const RECENT: usize = 4;
/// Who gets room first: the name, the status, the numbers, the gauge, then recent load.
const PRIORITY: [usize; 5] = [0, 1, 3, 2, RECENT];
/// The approvals table's columns by who gets room first (and is left out last): the id, the
/// task, what it asks, what for.
const APPROVAL_PRIORITY: [usize; 4] = [1, 0, 2, 3];
/// Half a minute of load history.
const SPARK_WANT: u16 = 30;

/// The agents table's columns, from every agent.
pub(crate) fn agent_columns(app: &App) -> [Column; 5] {
    let agents = &app.view.agents;
    let reasons = agents.iter().filter_map(short_reason);
    let recent = if agents.iter().any(|a| short_reason(a).is_some()) {
        Column::of("RECENT / WHY", reasons.map(|r| r.chars().count()), 8, 40).max_with(SPARK_WANT)
    } else {
        Column {
            min: 4,
            want: SPARK_WANT,
        }
    };
    [
        Column::of(
            "AGENT",
            agents.iter().map(|a| a.name.as_str().chars().count()),
            8,
            24,
        ),
        Column::of(
            "STATUS",
            agents.iter().map(|a| a.status.name().len()),
            8,
            12,
        ),
        Column { min: 5, want: 10 },
        // Load / most: numbers, whole or left out.
        Column::of("", agents.iter().map(|a| load_text(a).len()), 3, 9).whole(),
        recent,
    ]
}

fn load_text(agent: &crate::domain::Agent) -> String {
    format!("{}/{}", agent.load, agent.max_concurrent)
}

pub(crate) fn draw_agents(frame: &mut Frame, app: &mut App, columns: &[Column; 5], area: Rect) {
    let block = block(
        app,
        Pane::Agents,
        format!("agents {}", app.view.agents.len()),
    );
    let inner = block.inner(area);
    if app.view.agents.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no agents", app.theme.muted)).block(block),
            area,
        );
        return;
    }
    let height = usize::from(inner.height.saturating_sub(1));
    let mut cursor = app.panes.agents;
    cursor.fit(app.view.agents.len(), height);
    app.panes.agents = cursor;
    let widths = fit(inner.width, columns, &PRIORITY, RECENT);
    let gauge_width = usize::from(widths[2]);
    let recent_width = usize::from(widths[RECENT]);
    let rows = app
        .view
        .agents
        .iter()
        .enumerate()
        .skip(cursor.offset)
        .take(height)
        .map(|(i, agent)| {
            let ratio = agent.load_ratio().clamp(0.0, 1.0);
            let filled = (ratio * gauge_width as f64).round() as usize;
            let gauge = format!(
                "{}{}",
                "█".repeat(filled),
                "░".repeat(gauge_width - filled.min(gauge_width))
            );
            // A down agent's row says why instead of its (idle) recent load.
            let recent = match short_reason(agent) {
                Some(why) => Span::styled(
                    fit_text(why, recent_width),
                    status_style(app, agent.status.name()),
                ),
                None => Span::styled(spark(app, agent, recent_width), app.theme.info),
            };
            let load_style = if ratio >= 1.0 {
                app.theme.status("waiting-approval")
            } else {
                app.theme.status("running")
            };
            let row = Row::new(only_shown(
                [
                    Cell::from(fit_text(agent.name.as_str(), usize::from(widths[0]))),
                    Cell::from(Span::styled(
                        agent.status.name(),
                        status_style(app, agent.status.name()),
                    )),
                    Cell::from(Span::styled(gauge, load_style)),
                    Cell::from(load_text(agent)),
                    Cell::from(recent),
                ],
                &widths,
            ));
            if i == cursor.selected && app.focus == Pane::Agents {
                row.style(app.theme.selected)
            } else {
                row
            }
        });
    frame.render_widget(
        Table::new(rows, constraints(&widths))
            .header(agents_header(app, &widths))
            .block(block)
            .column_spacing(1),
        area,
    );
}

/// The agents table's column names (of the columns shown).
fn agents_header(app: &App, widths: &[u16]) -> Row<'static> {
    let recent = if app.view.agents.iter().any(|a| short_reason(a).is_some()) {
        "RECENT / WHY"
    } else {
        "RECENT"
    };
    Row::new(only_shown(["AGENT", "STATUS", "LOAD", "", recent], widths)).style(app.theme.title)
}

/// The agent's newest load samples, as many as fit in `width`.
fn spark(app: &App, agent: &crate::domain::Agent, width: usize) -> String {
    app.view
        .load
        .get(&agent.name)
        .map(|samples| {
            let skip = samples.len().saturating_sub(width);
            samples
                .iter()
                .skip(skip)
                .map(|p| SPARK[((*p as usize) * (SPARK.len() - 1)) / 100])
                .collect()
        })
        .unwrap_or_default()
}

/// Why an agent that is not online is so, in a few words: the last part of the first line of
/// its reason (`cannot reach ...: connection refused` is `connection refused`).
fn short_reason(agent: &crate::domain::Agent) -> Option<&str> {
    let first = agent.reason.as_deref()?.lines().next()?;
    let short = first.rsplit(": ").next().unwrap_or(first).trim();
    (!short.is_empty()).then_some(short)
}

/// The approvals table's columns (task, id, what it asks, for what), from every row of the
/// inbox; what it asks for takes the rest.
pub(crate) fn approval_columns(app: &App) -> [Column; 4] {
    let texts: Vec<[String; 4]> = app.view.inbox().map(|row| inbox_texts(app, row)).collect();
    let len = |i: usize| texts.iter().map(move |t| t[i].chars().count());
    [
        Column::of("TASK", len(0), 8, 24),
        // What `:approve` takes (a request's short id); conflicts have none. Typed by the
        // operator, so never cut: whole or (with no room at all) left out.
        Column::of("ID", len(1), 8, 8).whole(),
        Column::of("ASKS", len(2), 8, 24),
        Column::of("FOR", len(3), 8, 60),
    ]
}

/// The keys that answer a permission request (on the approvals pane's border and in a
/// session's detail).
pub(super) fn decision_keys(app: &App) -> String {
    format!(
        "{} once · {} always · {} reject",
        app.keymap.keys(Action::ApproveOnce),
        app.keymap.keys(Action::ApproveAlways),
        app.keymap.keys(Action::Reject)
    )
}

/// The keys that act on a question an agent asked: answer it (the answer's editor) or
/// reject it; "always" means nothing to a question (on the approvals pane's border and in a
/// session's detail).
pub(super) fn question_keys(app: &App) -> String {
    format!(
        "{} answer · {} reject",
        app.keymap.keys(Action::ApproveOnce),
        app.keymap.keys(Action::Reject)
    )
}

/// The approvals pane: its table whole, and never so narrow that the keys are cut.
pub(crate) fn approvals_want(app: &App, columns: &[Column; 4]) -> Want {
    // The keys, a space either side, on the bottom border.
    let keys = u16::try_from(decision_keys(app).chars().count() + 4).unwrap_or(u16::MAX);
    let table = Want::table(columns);
    Want {
        min: keys,
        want: table.want.max(keys),
    }
}

/// [`approvals_want`] asking for no more than a glance at what each request is for (the free
/// text, which takes whatever width the table is given): beside the events when both would
/// not fit whole.
pub(crate) fn approvals_glance(app: &App, columns: &[Column; 4]) -> Want {
    let [task, id, asks, what] = *columns;
    let what = Column {
        want: what.want.min(8),
        ..what
    };
    approvals_want(app, &[task, id, asks, what])
}

pub(crate) fn draw_approvals(frame: &mut Frame, app: &mut App, columns: &[Column; 4], area: Rect) {
    let count = app.view.approvals.len();
    let total = app.view.inbox_len();
    let mut title = format!("approvals {count}");
    let conflicts = app.view.conflicts.len();
    if conflicts > 0 {
        title.push_str(&format!(" · conflicts {conflicts}"));
    }
    let held = app.view.budgets.held().count();
    if held > 0 {
        title.push_str(&format!(" · over budget {held}"));
    }
    let messages = total - count - conflicts - held;
    if messages > 0 {
        title.push_str(&format!(" · messages {messages}"));
    }
    let mut block = block(app, Pane::Approvals, title);
    if total > 0 && app.focus != Pane::Approvals {
        block = block.border_style(app.theme.status("waiting-approval"));
    }
    if total == 0 {
        let nothing = Line::styled("nothing waits for you", app.theme.muted);
        frame.render_widget(Paragraph::new(nothing).block(block), area);
        return;
    }
    let inner = block.inner(area);
    // With room for one row, the request rather than the column names: its id is what the
    // operator types.
    let headed = inner.height >= 2;
    let height = usize::from(inner.height.saturating_sub(u16::from(headed)));
    app.panes.follow_inbox(&app.view);
    let mut cursor = app.panes.approvals;
    cursor.fit(total, height);
    app.panes.approvals = cursor;
    let keys = inbox_keys(app, area.width);
    let block =
        block.title_bottom(Line::styled(format!(" {keys} "), app.theme.muted).right_aligned());
    // The id first: a cut id does not answer anything.
    let widths = fit(inner.width, columns, &APPROVAL_PRIORITY, 3);
    let focused = app.focus == Pane::Approvals;
    let rows: Vec<Row> = app
        .view
        .inbox()
        .enumerate()
        .skip(cursor.offset)
        .take(height)
        .map(|(i, row)| {
            let row = inbox_row(app, row, &widths);
            if i == cursor.selected && focused {
                row.style(app.theme.selected)
            } else {
                row
            }
        })
        .collect();
    let header =
        Row::new(only_shown(["TASK", "ID", "ASKS", "FOR"], &widths)).style(app.theme.title);
    let mut table = Table::new(rows, constraints(&widths))
        .block(block)
        .column_spacing(1);
    if headed {
        table = table.header(header);
    }
    frame.render_widget(table, area);
}

/// The keys for the selected row of the approvals pane (the first, a request where there is
/// one, when it is not focused: the answer keys reach it from any pane; a question's answer
/// and reject keys, never a permission's), in their short form
/// where they do not fit whole on the border (a cut one reads `nce · A always`).
fn inbox_keys(app: &App, width: u16) -> String {
    let selected = match app.focus {
        Pane::Approvals => app.panes.approvals.selected,
        _ => 0,
    };
    let key = |action| app.keymap.keys(action);
    let (whole, short) = match app.view.inbox().nth(selected) {
        Some(InboxRow::Request(a)) if a.ask.is_question() => (
            question_keys(app),
            format!("{}/{}", key(Action::ApproveOnce), key(Action::Reject)),
        ),
        Some(InboxRow::Request(_)) | None => (
            decision_keys(app),
            format!(
                "{}/{}/{}",
                key(Action::ApproveOnce),
                key(Action::ApproveAlways),
                key(Action::Reject)
            ),
        ),
        Some(InboxRow::Conflict(c)) if c.state == ConflictState::Parked => (
            format!(
                "{} retry · {} cancel · {} how",
                key(Action::Retry),
                key(Action::Cancel),
                key(Action::Open)
            ),
            format!("{}/{}", key(Action::Retry), key(Action::Cancel)),
        ),
        Some(InboxRow::Conflict(_)) => (format!("{} how", key(Action::Open)), key(Action::Open)),
        Some(InboxRow::Held(_)) => (
            format!("{} opens its plan", key(Action::Open)),
            key(Action::Open),
        ),
        Some(InboxRow::Message(_)) => (
            format!(
                "{} opens it, {} sends it a message",
                key(Action::Open),
                key(Action::Say)
            ),
            key(Action::Open),
        ),
    };
    if whole.chars().count() + 4 > usize::from(width) {
        short
    } else {
        whole
    }
}

/// One row of the approvals table: a request, a conflict or a plan paused over budget.
fn inbox_row(app: &App, row: InboxRow<'_>, widths: &[u16]) -> Row<'static> {
    let w = |i: usize| usize::from(widths[i]);
    let style = match row {
        InboxRow::Request(_) | InboxRow::Message(_) => app.theme.status("waiting-approval"),
        InboxRow::Conflict(_) | InboxRow::Held(_) => app.theme.status("failed"),
    };
    let [who, id, what, about] = inbox_texts(app, row);
    Row::new(only_shown(
        [
            Cell::from(fit_text(&who, w(0))),
            Cell::from(Span::styled(fit_text(&id, w(1)), app.theme.muted)),
            Cell::from(Span::styled(fit_text(&what, w(2)), style)),
            Cell::from(fit_text(&about, w(3))),
        ],
        widths,
    ))
}

/// What a row of the approvals table says in its columns: whose, its id (a request's), what
/// it is, what about.
fn inbox_texts(app: &App, row: InboxRow<'_>) -> [String; 4] {
    match row {
        InboxRow::Request(a) => [
            a.task.clone(),
            a.ask.short().to_string(),
            a.ask.permission.clone(),
            a.ask.patterns.join(", "),
        ],
        InboxRow::Conflict(c) => [
            c.key.clone(),
            String::new(),
            conflict_state(c),
            c.files.join(", "),
        ],
        InboxRow::Held(p) => [
            app.view.plan_called(p.plan, &p.name).to_string(),
            String::new(),
            "over budget".into(),
            held_about(app, p),
        ],
        InboxRow::Message(s) => [
            s.task_label(),
            s.session.id.short(),
            "waits for your message".into(),
            format!("{} in its detail sends one", app.keymap.keys(Action::Say)),
        ],
    }
}

/// What a plan paused over budget waits for, and how to settle it.
fn held_about(app: &App, plan: &crate::engine::view::PlanSpendView) -> String {
    format!(
        "{}; {} opens the plan: C continue, X cancel",
        // Its column says "over budget" already (it read "over budget over budget: ...").
        plan.over_budget
            .as_deref()
            .map(|why| why.strip_prefix("over budget: ").unwrap_or(why))
            .unwrap_or_default(),
        app.keymap.keys(Action::PlanReview)
    )
}

/// What a conflict waits on, in a few words.
pub(crate) fn conflict_state(c: &crate::engine::view::ConflictView) -> String {
    match c.state {
        ConflictState::Resolving => "conflict: resolving".into(),
        ConflictState::Parked => format!("conflict ({})", c.policy.text()),
    }
}
