//! The plan review view: a plan's integration branch against its base on one line (with its
//! tokens and cost), the changed files with their status, line counts, reviewed mark and
//! tasks under a cursor, and the tasks with their answers; Enter shows the file's diff.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::detail::coloured_diff;
use super::si;
use crate::domain::review::{BranchReview, PlanReview, ReviewFile, Reviewed};
use crate::domain::{MergeState, PlanLanding};
use crate::tui::app::App;
use crate::tui::theme::Theme;

pub(crate) fn draw(frame: &mut Frame, app: &mut App, area: Rect) {
    let head = match &app.plan_review.review {
        Some(Ok(review)) => header_rows(app, review, area.width),
        _ => Vec::new(),
    };
    // Its whole header (a plan paused over budget says why and its keys), in up to a third
    // of the view.
    let head_height = u16::try_from(head.len())
        .unwrap_or(u16::MAX)
        .min(area.height / 3)
        .max(2);
    clamp_scroll(app, area.height.saturating_sub(head_height + 2));
    let theme = &app.theme;
    let state = &app.plan_review;
    let review = match &state.review {
        Some(Ok(review)) => review,
        Some(Err(e)) => {
            let text = Paragraph::new(Line::styled(e.clone(), theme.status("failed")))
                .wrap(Wrap { trim: false });
            frame.render_widget(text.block(frame_block(theme, " plan review ")), area);
            return;
        }
        None => {
            let text = Paragraph::new(Line::styled("reading the plan's review…", theme.muted));
            frame.render_widget(text.block(frame_block(theme, " plan review ")), area);
            return;
        }
    };
    let landing = landing_of(app, review.plan);
    let [top, body] =
        Layout::vertical([Constraint::Length(head_height), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(head), top);
    let Some(branch) = &review.branch else {
        let why = review.no_branch.clone().unwrap_or_default();
        let mut lines = vec![Line::styled(why, theme.muted), Line::raw("")];
        lines.extend(task_lines(theme, review));
        let text = Paragraph::new(lines).wrap(Wrap { trim: false });
        frame.render_widget(text.block(frame_block(theme, " tasks ")), body);
        return;
    };
    if state.diff {
        draw_diff(frame, app, branch, body);
        return;
    }
    // Landed, the base holds the work: nothing is left between them, and the files are
    // those the landing changed.
    let landed = landing.filter(|_| branch.files.is_empty());
    let count = landed.map_or(branch.files.len(), |l| l.files.len());
    let rows = u16::try_from(count).unwrap_or(u16::MAX);
    let files_height = rows.saturating_add(2).clamp(3, body.height / 2 + 1);
    let [files, tasks] =
        Layout::vertical([Constraint::Length(files_height), Constraint::Min(0)]).areas(body);
    let inner = usize::from(files_height.saturating_sub(2)).max(1);
    let (lines, title) = file_list(theme, state.cursor, branch, landed, inner);
    frame.render_widget(
        Paragraph::new(lines).block(frame_block(theme, &title)),
        files,
    );
    let tasks_text = Paragraph::new(task_lines(theme, review))
        .wrap(Wrap { trim: false })
        .scroll((u16::try_from(state.scroll).unwrap_or(u16::MAX), 0));
    let title = format!(" tasks {} ", review.tasks.len());
    frame.render_widget(tasks_text.block(frame_block(theme, &title)), tasks);
}

/// The files pane's rows (`inner` of them, scrolled to the cursor) and title: the branch's
/// changed files, or once it landed, those the landing changed.
fn file_list(
    theme: &Theme,
    cursor: usize,
    branch: &BranchReview,
    landed: Option<&PlanLanding>,
    inner: usize,
) -> (Vec<Line<'static>>, String) {
    if let Some(landing) = landed {
        let title = format!(
            " files it landed on {}: {} ",
            landing.base,
            landing.files.len()
        );
        let lines = landing
            .files
            .iter()
            .take(inner)
            .map(|f| Line::styled(format!(" {f}"), theme.base))
            .collect();
        return (lines, title);
    }
    let first = cursor.saturating_sub(inner - 1);
    let lines = branch
        .files
        .iter()
        .enumerate()
        .skip(first)
        .take(inner)
        .map(|(i, f)| file_line(theme, f, i == cursor))
        .collect();
    let title = format!(
        " files {} · space marks reviewed · enter diff · L land ",
        branch.files.len()
    );
    (lines, title)
}

fn frame_block<'a>(theme: &Theme, title: &str) -> Block<'a> {
    Block::new()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(title.to_string(), theme.title))
}

/// How plan `plan`'s landing stands, when it is landing or has landed.
fn landing_of(app: &App, plan: crate::domain::PlanId) -> Option<&crate::domain::PlanLanding> {
    let plan = app.view.plans.iter().find(|p| p.id == plan)?;
    plan.landing.as_ref()
}

/// The header's lines folded to `width`, so that none of it is cut at the edge.
fn header_rows(app: &App, review: &PlanReview, width: u16) -> Vec<Line<'static>> {
    let landing = landing_of(app, review.plan);
    let name = app.view.plan_called(review.plan, &review.name);
    header(&app.theme, review, name, landing)
        .into_iter()
        .flat_map(|line| super::wrap::wrap(line, usize::from(width), 1))
        .collect()
}

/// `plan shop · ocio/shop/integration ← main 1a2b3c4d · ↑4 ↓0 · 3.6k tokens $0.0123 ·
/// reviewed 1/2`; paused over budget, why and its keys on a line between.
/// Landed: `plan shop · landed on master at 1a2b3c4d5e · from ocio/shop/integration`, its
/// files and spend below (ahead and behind say nothing once the base holds the work).
fn header(
    theme: &Theme,
    review: &PlanReview,
    name: &str,
    landing: Option<&PlanLanding>,
) -> Vec<Line<'static>> {
    let mut first = vec![
        Span::styled(format!(" plan {name} "), theme.accent),
        Span::styled(format!("({}) ", review.plan.short()), theme.muted),
    ];
    let mut second = vec![Span::raw(" ")];
    if let Some(landing) = landing {
        first.push(Span::styled(landing.summary(), theme.status("completed")));
        if let Some(b) = &review.branch {
            first.push(Span::styled(
                format!(" · from {}", b.integration),
                theme.muted,
            ));
        }
        second.push(Span::styled(
            format!("{} · ", crate::text::count(landing.files.len(), "file")),
            theme.info,
        ));
    } else if let Some(b) = &review.branch {
        let commit = b.base_commit.get(..8).unwrap_or(&b.base_commit);
        first.push(Span::raw(format!(
            "{} ← {} {commit}",
            b.integration, b.base
        )));
        let moved = if b.behind > 0 {
            theme.status("failed")
        } else {
            theme.muted
        };
        second.push(Span::styled(format!("ahead {} ", b.ahead), theme.info));
        second.push(Span::styled(format!("behind {} · ", b.behind), moved));
    }
    let (done, all) = review.reviewed_count();
    second.push(Span::styled(
        format!(
            "{} tokens ${:.4}",
            si(review.usage.total_tokens()),
            review.usage.cost
        ),
        theme.muted,
    ));
    if all > 0 || landing.is_none() {
        second.push(Span::styled(
            format!(" · reviewed {done}/{all} files"),
            theme.info,
        ));
    }
    if let Some(budget) = &review.budget {
        second.push(Span::styled(
            format!(" · budget {}", super::budget_words(budget, &review.usage)),
            theme.info,
        ));
    }
    let mut lines = vec![Line::from(first)];
    if let Some(cause) = &review.over_budget {
        lines.push(Line::styled(
            format!(" PAUSED {cause} · C continue · X cancel"),
            theme.status("paused"),
        ));
    }
    lines.push(Line::from(second));
    lines
}

/// `landed on master at 1a2b3c4d5e`, or where it was pushed (and its pull request).
/// Where a task's merge stands, in a word or two.
fn merge_word(merge: &MergeState) -> &'static str {
    match merge {
        MergeState::None => "no merge",
        MergeState::Pending => "to merge",
        MergeState::Resolving { .. } => "resolving",
        MergeState::Merged { .. } => "merged",
        MergeState::Unchanged => "changed nothing",
        MergeState::Conflict { .. } => "conflicted",
        MergeState::CheckFailed { .. } => "check failed",
        MergeState::Fixing { .. } => "fixing check",
    }
}

fn mark(theme: &Theme, reviewed: Reviewed) -> Span<'static> {
    match reviewed {
        Reviewed::Yes => Span::styled("[x]", theme.status("completed")),
        Reviewed::No => Span::styled("[ ]", theme.muted),
        Reviewed::Changed => Span::styled("[~]", theme.status("failed")),
    }
}

fn file_line(theme: &Theme, file: &ReviewFile, selected: bool) -> Line<'static> {
    let counts = match (file.added, file.removed) {
        (Some(a), Some(r)) => format!("+{a:<4} -{r:<4}"),
        _ => "binary     ".to_string(),
    };
    let path = match &file.from {
        Some(from) => format!("{from} → {}", file.path),
        None => file.path.clone(),
    };
    let by = if file.tasks.is_empty() {
        "resolver/merge".to_string()
    } else {
        file.tasks.join(", ")
    };
    let line = Line::from(vec![
        Span::raw(if selected { "› " } else { "  " }),
        mark(theme, file.reviewed),
        Span::styled(format!(" {} ", file.status), theme.accent),
        Span::styled(counts, theme.info),
        Span::raw(format!(" {path} ")),
        Span::styled(
            file.mode
                .as_ref()
                .map(|mode| format!("[{mode}] "))
                .unwrap_or_default(),
            theme.info,
        ),
        Span::styled(format!("({by})"), theme.muted),
    ]);
    if selected {
        line.style(theme.selected)
    } else {
        line
    }
}

fn task_lines(theme: &Theme, review: &PlanReview) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for task in &review.tasks {
        let status = task.status.to_string();
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", task.key), theme.accent),
            Span::styled(format!("{status} "), theme.status(&status)),
            Span::styled(
                format!(
                    "{} · {} tokens ${:.4}",
                    merge_word(&task.merge),
                    si(task.usage.total_tokens()),
                    task.usage.cost,
                ),
                theme.muted,
            ),
        ]));
        if let Some(answer) = &task.answer {
            for line in answer.trim().lines().take(6) {
                lines.push(Line::raw(format!("  {line}")));
            }
        }
    }
    lines
}

fn draw_diff(frame: &mut Frame, app: &App, branch: &BranchReview, area: Rect) {
    let theme = &app.theme;
    let state = &app.plan_review;
    let Some(file) = branch.files.get(state.cursor) else {
        return;
    };
    let mut lines = match branch.file_diff(&file.path) {
        Some(text) => coloured_diff(theme, text),
        None => vec![Line::styled(
            "no diff for this file in the combined diff (it was cut, or the change is binary)",
            theme.muted,
        )],
    };
    let height = usize::from(area.height.saturating_sub(2));
    let scroll = state.scroll.min(lines.len());
    let shown: Vec<Line> = lines.drain(scroll..).take(height).collect();
    let title = format!(
        " {} · {} · esc back to the files ",
        file.path,
        file.reviewed.text()
    );
    frame.render_widget(
        Paragraph::new(shown).block(frame_block(theme, &title)),
        area,
    );
}

/// A diff scrolled no further than its last page of `height` lines.
fn clamp_scroll(app: &mut App, height: u16) {
    let state = &mut app.plan_review;
    let Some(Ok(review)) = &state.review else {
        return;
    };
    if !state.diff {
        // The tasks section: no further than its last line.
        let lines = review
            .tasks
            .iter()
            .map(|t| {
                1 + t
                    .answer
                    .as_deref()
                    .map_or(0, |a| a.trim().lines().take(6).count())
            })
            .sum::<usize>();
        state.scroll = state.scroll.min(lines.saturating_sub(1));
        return;
    }
    let lines = review
        .branch
        .as_ref()
        .and_then(|b| b.file_diff(&b.files.get(state.cursor)?.path))
        .map_or(0, |d| d.lines().count());
    state.scroll = state.scroll.min(lines.saturating_sub(usize::from(height)));
}
