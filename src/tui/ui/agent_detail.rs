//! The agent detail: one agent full screen, with its status, why it is in it and since when,
//! its load, capabilities, backend and model.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::{age, clock, status_style};
use crate::domain::{AgentName, Backend, Lifecycle};
use crate::tui::app::App;

pub(crate) fn draw(frame: &mut Frame, app: &App, name: &AgentName, area: Rect) {
    let theme = &app.theme;
    let Some(agent) = app.view.agents.iter().find(|a| a.name == *name) else {
        let text = Paragraph::new(Line::styled(
            "this agent is no longer listed; esc goes back",
            theme.muted,
        ));
        frame.render_widget(text, area);
        return;
    };
    let status = agent.status.name();
    let mut lines = vec![Line::from(vec![
        Span::styled(status, status_style(app, status)),
        Span::styled(format!("  {}", agent.name), theme.title),
    ])];
    for (i, line) in agent.reason.iter().flat_map(|r| r.lines()).enumerate() {
        let lead = if i == 0 { "why    " } else { "       " };
        lines.push(Line::from(vec![
            Span::styled(lead, theme.muted),
            Span::styled(line.to_string(), status_style(app, status)),
        ]));
    }
    let since = match agent.since {
        Some(at) => format!("since {} ({} ago)", clock(at, &app.zone), age(at, app.now)),
        None => "since this engine started (or before it)".into(),
    };
    lines.push(Line::from(vec![
        Span::styled("when   ", theme.muted),
        Span::raw(since),
    ]));
    lines.push(Line::from(vec![
        Span::styled("load   ", theme.muted),
        Span::raw(format!("{}/{} sessions", agent.load, agent.max_concurrent)),
    ]));
    let capabilities: Vec<&str> = agent.capabilities.iter().map(String::as_str).collect();
    let capabilities = if capabilities.is_empty() {
        "none (takes tasks that need none)".to_string()
    } else {
        capabilities.join(", ")
    };
    lines.push(Line::from(vec![
        Span::styled("can    ", theme.muted),
        Span::raw(capabilities),
    ]));
    let backend = match &agent.backend {
        Backend::Opencode {
            url: Some(url),
            managed,
            ..
        } => format!("{} at {url}", opencode(*managed)),
        Backend::Opencode { managed, .. } => format!("{} server", opencode(*managed)),
        Backend::Simulated => "in-process simulator".to_string(),
    };
    lines.push(Line::from(vec![
        Span::styled("runs   ", theme.muted),
        Span::raw(backend),
    ]));
    if let Some(model) = &agent.model {
        lines.push(Line::from(vec![
            Span::styled("model  ", theme.muted),
            Span::raw(model.to_string()),
        ]));
    }
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(theme.border_focus)
        .title(Span::styled(" agent ", theme.accent));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}

fn opencode(managed: bool) -> &'static str {
    if managed {
        "managed OpenCode"
    } else {
        "OpenCode"
    }
}
