//! The control room's state machine: messages in (keys, mouse, engine events, replies), effects
//! out (requests to the engine, quit). No terminal and no engine here, so tests drive it
//! directly and render it to a test backend.

use std::path::PathBuf;
use std::time::Instant;

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};

use super::editor::Editor;
use super::keymap::{Action, Keymap};
use super::panes::Panes;
use super::theme::Theme;
use super::view::{InboxRow, View};
use crate::domain::{AgentStatus, Lifecycle, SessionId, TaskId, TaskStatus};
use crate::engine::Told;
use crate::engine::approval::{Approver, Decision};
use crate::engine::view::{ConflictState, Entry, Logged, Noted, Snapshot};

/// What reaches the app, in order.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    /// Text pasted into the terminal (bracketed paste): text for the input that is open.
    Paste(String),
    Mouse(MouseEvent),
    Resize,
    /// A numbered engine event.
    Engine(Told),
    /// Events were missed: the next snapshot catches up.
    Lagged(u64),
    Snapshot(Box<Snapshot>),
    /// The control log's recent past and the notes of what else was told (asked for once the
    /// first snapshot is in).
    History(Vec<Logged>, Vec<Noted>),
    Transcript(SessionId, Vec<Entry>),
    /// A session's diff (or why there is none).
    Diff(SessionId, Result<String, String>),
    /// A plan's review (or why there is none).
    Review(
        crate::domain::PlanId,
        Result<Box<crate::domain::review::PlanReview>, String>,
    ),
    /// A plan's shared context.
    Context(crate::domain::PlanId, Vec<crate::domain::TaskContext>),
    /// What the search index found for this text, or why it could not search.
    Found(String, Result<Vec<crate::store::Found>, String>),
    /// A timeline (of the plan, or of every plan), or why there is none.
    Timeline(
        Option<crate::domain::PlanId>,
        Result<Box<crate::timeline::Timeline>, String>,
    ),
    /// The planner proposes a plan: show it for approval.
    Proposal(Box<crate::engine::Proposal>),
    /// A request finished: what it was and how it went.
    Reply(String, Result<String, String>),
    /// About once a second.
    Tick,
    /// SIGTERM / SIGHUP: leave now.
    Signal(&'static str),
    /// The engine (or the engine this room is attached to) went away.
    EngineGone(String),
}

/// What the app asks of the world.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Request(Request),
    /// Add a managed local agent (first run, `opencode` on PATH).
    AddLocalAgent,
    /// Step aside for `opencode attach` on a session (`o` in its detail).
    TakeOver(Box<super::takeover::TakeOver>),
    Quit,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Snapshot,
    /// The control log's newest entries, this many.
    History(usize),
    Transcript(SessionId),
    Submit(PathBuf),
    Prompt(String),
    Cancel(TaskId, String),
    Retry(TaskId, String),
    /// Answer a permission request (its id or short form), saying who answers.
    Approve(String, Decision, Approver),
    /// Answer a question (its id), one answer per question it asks.
    Answer(String, Vec<crate::engine::question::Answer>),
    /// Send a running session a message.
    Say(SessionId, String),
    /// Stop what a running session does now.
    Interrupt(SessionId),
    Pause(bool),
    Drain(String, bool),
    /// Ask the engine's planner for a plan towards a goal (shown for approval).
    Plan(String),
    /// A session's diff.
    Diff(SessionId),
    /// What a plan's finished tasks left (the shared context).
    Context(crate::domain::PlanId),
    /// Submit a plan's text (an approved proposal); the path names it in errors.
    SubmitText(PathBuf, String),
    /// A plan's review.
    Review(crate::domain::PlanId),
    /// Mark a plan's file reviewed (`true`) or not, then fetch its review again.
    MarkReviewed(crate::domain::PlanId, String, bool),
    /// Land a plan (named) on its base branch as a merge commit.
    Land(crate::domain::PlanId, String),
    /// A plan's timeline (`None`: every plan's of the last hours), lanes by agent or task.
    Timeline(Option<crate::domain::PlanId>, crate::timeline::LaneBy),
    /// Raise a budget of a plan (named) to these limits, if any, then settle the plan if it is
    /// paused over budget: continue it, or cancel it.
    Budget(
        crate::domain::PlanId,
        String,
        crate::engine::BudgetTarget,
        Option<crate::domain::Budget>,
        crate::engine::BudgetThen,
    ),
    /// Search sessions, events and transcripts for every word of this text.
    Search(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Sessions,
    Agents,
    Tasks,
    Events,
    Approvals,
}

/// Tab's order before a frame was drawn (after one, the order the panes are read in on the
/// screen, as the layout gives them): the wide layout's.
pub(crate) const PANES: [Pane; 5] = [
    Pane::Sessions,
    Pane::Tasks,
    Pane::Agents,
    Pane::Approvals,
    Pane::Events,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing the sessions filter.
    Filter,
    /// The `:` command line (one line), opened over `back` (the panes, or a plan's view):
    /// closed or run, the room goes back to it.
    Palette(Editor, Box<Mode>),
    /// The `n` dialog: a prompt for a one-task plan (many lines).
    NewTask(Editor),
    Help,
    /// The selected session, full screen.
    Detail(SessionId),
    /// The selected agent, full screen: status, why, since when, load, capabilities.
    Agent(crate::domain::AgentName),
    /// Quit while work runs, or while `rooms` other control rooms are attached to the engine
    /// this room hosts?
    ConfirmQuit {
        rooms: usize,
    },
    /// Cancel this task? Then back to `back`.
    ConfirmCancel {
        task: TaskId,
        name: String,
        back: Box<Mode>,
    },
    /// Asked before landing plan `plan` (named `name`) on its base branch.
    ConfirmLand {
        plan: crate::domain::PlanId,
        name: String,
        back: Box<Mode>,
    },
    /// Asked before cancelling plan `plan` (named `name`), paused over budget.
    ConfirmBudgetCancel {
        plan: crate::domain::PlanId,
        name: String,
        back: Box<Mode>,
    },
    /// A planner's plan, waiting for the operator's yes or no.
    Review(Box<crate::engine::Proposal>),
    /// Typing the answer to a session's question; then back to `back`.
    Answer(Box<Answering>),
    /// Typing a message to a running session; then back to its detail.
    Say(SessionId, Editor),
    /// A plan's result for review, full screen: files, a file's diff, tasks' answers.
    PlanReview(crate::domain::PlanId),
    /// Sessions on a time axis (`app.timeline` says whose).
    Timeline,
}

/// The answer being typed to a question: a line per question it asks, each an option's
/// number (`2`, or `1,3` where several may be picked) or a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answering {
    pub(crate) request: String,
    pub(crate) task: String,
    pub(crate) questions: Vec<crate::engine::question::QuestionItem>,
    pub(crate) editor: Editor,
    pub(crate) back: Mode,
}

/// A short message at the bottom: what a command did.
#[derive(Debug, Clone)]
pub(crate) struct Toast {
    pub(crate) text: String,
    pub(crate) error: bool,
    pub(crate) at: Instant,
}

pub struct App {
    pub view: View,
    pub(crate) theme: Theme,
    pub(crate) keymap: Keymap,
    pub mode: Mode,
    pub focus: Pane,
    pub panes: Panes,
    pub(crate) toast: Option<Toast>,
    /// Where the engine runs: `None` in this process, else what this room is attached to.
    pub(crate) attached: Option<String>,
    /// The control rooms following the engine this room hosts (itself among them).
    pub(crate) rooms: Option<crate::engine::Rooms>,
    /// Shown on the empty sessions pane until an agent exists.
    pub(crate) onboarding: Vec<String>,
    /// The command line shows the commands it may run (`?` or an ambiguous Tab).
    pub(crate) palette_list: bool,
    /// Whether a managed local agent can be added with one key.
    pub(crate) local: super::first_run::LocalOffer,
    /// The time frames are drawn at (ages are counted to it): set by the loop before each
    /// frame, so drawing never reads the clock and a frame depends on the app alone.
    pub now: jiff::Timestamp,
    /// The zone times of day are shown in (the system's).
    pub zone: jiff::tz::TimeZone,
    /// The operator asked to leave (set only where [`Effect::Quit`] is returned).
    pub(super) quit: bool,
    /// The bell, desktop notifications and title the room's terminal gets.
    pub(crate) alerts: super::alert::Alerts,
    /// `o` on this session waits for a snapshot saying where it runs.
    pub(super) take_over_waits: Option<SessionId>,
    /// The plan review view (`V`).
    pub plan_review: super::plan_review::PlanReviewState,
    pub timeline: super::timeline::TimelineState,
    /// What `/` found beyond the visible columns.
    pub search: super::search::SearchState,
    /// Where a task typed in the room runs, as the new-task editor says it.
    pub(crate) task_home: Option<String>,
}

impl App {
    pub fn new(theme: Theme, keymap: Keymap) -> Self {
        Self {
            view: View::default(),
            theme,
            keymap,
            mode: Mode::Normal,
            focus: Pane::Sessions,
            panes: Panes::default(),
            toast: None,
            attached: None,
            rooms: None,
            onboarding: Vec::new(),
            palette_list: false,
            local: super::first_run::LocalOffer::Unavailable,
            now: jiff::Timestamp::now(),
            zone: jiff::tz::TimeZone::system(),
            quit: false,
            alerts: super::alert::Alerts::default(),
            take_over_waits: None,
            plan_review: Default::default(),
            timeline: Default::default(),
            search: Default::default(),
            task_home: None,
        }
    }

    pub(crate) fn should_quit(&self) -> bool {
        self.quit
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Key(key) if key.kind != KeyEventKind::Release => self.key(key),
            Msg::Key(_) | Msg::Resize => Vec::new(),
            Msg::Paste(text) => self.paste(&text),
            Msg::Mouse(mouse) => self.mouse(mouse),
            Msg::Engine(told) => {
                self.alerts.receive(&told, Instant::now());
                let review = self.review_after(&told);
                self.timeline_after(&told);
                self.view.receive(told);
                let mut effects: Vec<Effect> = review.into_iter().collect();
                if self.view.wants_snapshot {
                    effects.push(Effect::Request(Request::Snapshot));
                }
                effects
            }
            Msg::Lagged(n) => {
                self.view.log(
                    jiff::Timestamp::now(),
                    "engine",
                    format!("{n} events missed; catching up"),
                );
                vec![Effect::Request(Request::Snapshot)]
            }
            Msg::Snapshot(snapshot) => self.snapshot(*snapshot),
            Msg::History(entries, notes) => {
                self.view.apply_history(entries, notes, self.now);
                Vec::new()
            }
            Msg::Transcript(id, entries) => {
                self.view.transcript = Some((id, entries));
                self.view.generation += 1;
                Vec::new()
            }
            Msg::Context(plan, tasks) => {
                self.view.contexts.insert(plan, tasks);
                self.view.generation += 1;
                Vec::new()
            }
            Msg::Review(plan, review) => {
                self.on_review(plan, review.map(|r| *r));
                Vec::new()
            }
            Msg::Found(text, found) => {
                self.on_found(text, found);
                Vec::new()
            }
            Msg::Timeline(plan, timeline) => {
                self.on_timeline(plan, timeline.map(|t| *t));
                Vec::new()
            }
            Msg::Diff(id, diff) => {
                self.view.diff = Some((id, diff));
                self.view.generation += 1;
                Vec::new()
            }
            Msg::Proposal(proposal) => {
                self.panes.help_scroll = 0;
                self.mode = Mode::Review(proposal);
                Vec::new()
            }
            Msg::Reply(what, result) => {
                let (text, error) = match result {
                    Ok(done) => (format!("{what}: {done}"), false),
                    Err(e) => (format!("{what}: {e}"), true),
                };
                self.toast(text, error);
                // What a request changed comes as events; one that failed may have been
                // shown done already (an answered approval leaves the pane at once).
                if error {
                    return vec![Effect::Request(Request::Snapshot)];
                }
                Vec::new()
            }
            Msg::Tick => {
                self.view.sample_load();
                let mut effects = self.detail_tick();
                effects.extend(self.timeline_tick());
                effects.extend(self.search_tick());
                if self
                    .toast
                    .as_ref()
                    .is_some_and(|t| t.at.elapsed().as_secs() >= 6)
                {
                    self.toast = None;
                }
                effects
            }
            Msg::Signal(name) => {
                tracing::info!(signal = name, "leaving the control room on a signal");
                self.quit = true;
                vec![Effect::Quit]
            }
            Msg::EngineGone(why) => {
                self.toast(format!("the engine stopped: {why}"), true);
                self.quit = true;
                vec![Effect::Quit]
            }
        }
    }

    pub(crate) fn toast(&mut self, text: String, error: bool) {
        self.toast = Some(Toast {
            text,
            error,
            at: Instant::now(),
        });
    }

    fn key(&mut self, key: KeyEvent) -> Vec<Effect> {
        match self.mode.clone() {
            Mode::Filter => self.filter_key(key),
            Mode::Palette(..) | Mode::NewTask(_) => self.edit(key),
            Mode::Answer(_) => self.answer_key(key),
            Mode::Say(..) => self.say_key(key),
            Mode::Help => {
                let scroll = &mut self.panes.help_scroll;
                match self.keymap.action(&key) {
                    Some(action) if scroll_by(scroll, action) => {}
                    Some(Action::Top) => *scroll = 0,
                    Some(Action::Bottom) => *scroll = usize::MAX / 2,
                    _ => self.mode = Mode::Normal,
                }
                Vec::new()
            }
            Mode::Review(proposal) => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                    self.mode = Mode::Normal;
                    let origin = PathBuf::from(format!("(plan by {})", proposal.agent));
                    vec![Effect::Request(Request::SubmitText(origin, proposal.toml))]
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    self.mode = Mode::Normal;
                    self.toast(format!("plan {} discarded", proposal.name), false);
                    Vec::new()
                }
                _ => {
                    if let Some(action) = self.keymap.action(&key) {
                        scroll_by(&mut self.panes.help_scroll, action);
                    }
                    Vec::new()
                }
            },
            Mode::ConfirmQuit { .. }
            | Mode::ConfirmCancel { .. }
            | Mode::ConfirmLand { .. }
            | Mode::ConfirmBudgetCancel { .. } => self.confirm_key(key),
            Mode::Detail(_) => self.detail_key(&key),
            Mode::PlanReview(plan) => self.plan_review_key(plan, &key),
            Mode::Timeline => self.timeline_key(&key),
            Mode::Agent(_) => match self.keymap.action(&key) {
                Some(Action::Back) | Some(Action::Open) => {
                    self.mode = Mode::Normal;
                    Vec::new()
                }
                Some(Action::Quit) => self.ask_quit(),
                _ => Vec::new(),
            },
            Mode::Normal => match self.keymap.action(&key) {
                Some(action) => self.action(action),
                None => Vec::new(),
            },
        }
    }

    /// A key in a session's detail view: scroll, back, its task's cancel and retry, the diff,
    /// and the answer to the permission request it waits on.
    fn detail_key(&mut self, key: &KeyEvent) -> Vec<Effect> {
        match self.keymap.action(key) {
            Some(Action::Back) | Some(Action::Open) => {
                self.mode = Mode::Normal;
                Vec::new()
            }
            Some(Action::Quit) => self.ask_quit(),
            Some(Action::Up) => {
                self.panes.detail_scroll = self.panes.detail_scroll.saturating_add(1);
                Vec::new()
            }
            Some(Action::Down) => {
                self.panes.detail_scroll = self.panes.detail_scroll.saturating_sub(1);
                Vec::new()
            }
            Some(Action::Top) => {
                self.panes.detail_scroll = usize::MAX / 2;
                Vec::new()
            }
            Some(Action::Bottom) => {
                self.panes.detail_scroll = 0;
                Vec::new()
            }
            Some(action @ (Action::Cancel | Action::Retry)) => self.on_task(action),
            Some(Action::TakeOver) => self.take_over(),
            Some(action @ (Action::Say | Action::Interrupt)) => self.steer(action),
            Some(action @ (Action::ApproveOnce | Action::ApproveAlways | Action::Reject)) => {
                self.decide(action)
            }
            Some(Action::Diff) => {
                self.panes.detail_diff = !self.panes.detail_diff;
                self.panes.detail_scroll = 0;
                match (&self.mode, self.panes.detail_diff) {
                    (Mode::Detail(id), true) => vec![Effect::Request(Request::Diff(*id))],
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    /// The first snapshot is followed by the control log's recent history: what happened
    /// before this room, once its sessions and agents are known.
    fn snapshot(&mut self, snapshot: Snapshot) -> Vec<Effect> {
        let first = !self.view.loaded;
        let seq = snapshot.seq;
        self.view.apply_snapshot(snapshot);
        let mut effects = Vec::new();
        if first {
            self.alerts.loaded(seq, Instant::now());
            effects.push(Effect::Request(Request::History(super::view::HISTORY)));
        }
        if self.view.wants_snapshot {
            // Events it needed were missing, or a replayed one names something new.
            effects.push(Effect::Request(Request::Snapshot));
        }
        effects.extend(self.take_over_after_snapshot());
        effects
    }

    /// Palette commands name tasks by key (`plan/task` or `task`): find their ids.
    pub(super) fn resolve(&mut self, request: super::palette::Named) -> Option<Effect> {
        use super::palette::Named;
        let task = |app: &mut Self, name: &str| {
            let found = app.find_task(name);
            if found.is_none() {
                app.toast(
                    format!("no task {name:?}; name it as plan/task or task"),
                    true,
                );
            }
            found
        };
        let request = match request {
            Named::Ready(request) => request,
            Named::Cancel(name) => {
                let id = task(self, &name)?;
                Request::Cancel(id, name)
            }
            Named::Retry(name) => {
                let id = task(self, &name)?;
                Request::Retry(id, name)
            }
            Named::Budget(name, raise, then) => self.budget_request(&name, raise, then)?,
        };
        Some(Effect::Request(request))
    }

    /// `:budget PLAN[/TASK]`: the plan by name or short id, and which budget.
    fn budget_request(
        &mut self,
        name: &str,
        raise: Option<crate::domain::Budget>,
        then: crate::engine::BudgetThen,
    ) -> Option<Request> {
        use crate::engine::BudgetTarget;
        let (plan, target) = match name.split_once('/') {
            Some((plan, key)) => (plan, BudgetTarget::Task { key: key.into() }),
            None => (name, BudgetTarget::Plan),
        };
        let plans = &self.view.plans;
        // As shown first (the older of two plans of one name is its name, the newer `-2`).
        let found = plans
            .iter()
            .rev()
            .find(|p| p.shown_name(plans) == plan || p.id.short() == plan)
            .or_else(|| plans.iter().rev().find(|p| p.name == plan || p.key == plan))
            .map(|p| (p.id, p.shown_name(plans).to_string()));
        let Some((id, plan)) = found else {
            self.toast(format!("no plan {plan:?}; name it by its name"), true);
            return None;
        };
        Some(Request::Budget(id, plan, target, raise, then))
    }

    /// Open the command line over what is shown; closed or run, it goes back to that.
    pub(super) fn open_palette(&mut self) {
        self.palette_list = false;
        // The command line shows toasts (a cut paste); an older one is not its news.
        self.toast = None;
        let back = Box::new(std::mem::replace(&mut self.mode, Mode::Normal));
        self.mode = Mode::Palette(Editor::single_line(), back);
    }

    fn find_task(&self, name: &str) -> Option<TaskId> {
        let (plan, key) = match name.rsplit_once('/') {
            Some((plan, key)) => (Some(plan), key),
            None => (None, name),
        };
        let plans = &self.view.plans;
        // The plan as shown (its branches' name when another has its name), else by name.
        let in_plan = |called: &dyn Fn(&crate::engine::PlanView) -> bool| {
            plans
                .iter()
                .rev()
                .filter(|p| called(p))
                .flat_map(|p| p.tasks.iter())
                .find(|t| t.key == key)
                .map(|t| t.id)
        };
        match plan {
            None => in_plan(&|_| true),
            Some(n) => in_plan(&|p| p.shown_name(plans) == n).or_else(|| in_plan(&|p| p.name == n)),
        }
    }

    fn action(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Quit => return self.ask_quit(),
            Action::Help => {
                self.mode = Mode::Help;
                self.panes.help_scroll = 0;
            }
            Action::NextPane | Action::PrevPane => {
                // Tab reads the panes as the eye does, in the layout drawn at this width.
                let order: Vec<Pane> = match self.panes.areas.len() {
                    n if n == PANES.len() => self.panes.areas.iter().map(|(p, _)| *p).collect(),
                    _ => PANES.to_vec(),
                };
                let at = order.iter().position(|p| *p == self.focus).unwrap_or(0);
                let step = if action == Action::NextPane {
                    1
                } else {
                    order.len() - 1
                };
                self.focus = order[(at + step) % order.len()];
            }
            Action::Up
            | Action::Down
            | Action::Top
            | Action::Bottom
            | Action::PageUp
            | Action::PageDown => self.panes.move_cursor(self.focus, action, &self.view),
            Action::Collapse | Action::Expand => self.panes.tree_key(action, &self.view),
            Action::Graph => self.panes.graph = !self.panes.graph,
            Action::PlanReview => match self.selected_plan() {
                Some(plan) => return self.open_plan_review(plan),
                None => self.toast("no plan yet to review".into(), false),
            },
            // The selected plan's (`e` there: every plan's of the last hours).
            Action::Timeline => {
                let plan = self.selected_plan();
                return self.open_timeline(plan);
            }
            // Only in the detail view.
            Action::Diff | Action::TakeOver | Action::Say | Action::Interrupt => {}
            Action::Open => return self.open(),
            Action::Back => {
                if !self.panes.filter.is_empty() {
                    self.panes.filter.clear();
                    self.view.generation += 1;
                }
            }
            Action::Filter => {
                self.focus = Pane::Sessions;
                self.mode = Mode::Filter;
            }
            Action::Palette => self.open_palette(),
            Action::NewTask if self.no_agents() => {}
            Action::NewTask => self.mode = Mode::NewTask(Editor::multi_line()),
            Action::Sort => {
                self.panes.sort = self.panes.sort.next();
                self.view.generation += 1;
            }
            Action::Pause => return vec![Effect::Request(Request::Pause(!self.view.paused))],
            Action::AddLocal => return self.add_local(),
            Action::Cancel | Action::Retry => return self.on_task(action),
            Action::Drain => {
                if let Some(agent) = self.panes.selected_agent(&self.view) {
                    let drain = agent.status != AgentStatus::Draining;
                    return vec![Effect::Request(Request::Drain(
                        agent.name.to_string(),
                        drain,
                    ))];
                }
            }
            Action::ApproveOnce | Action::ApproveAlways | Action::Reject => {
                return self.decide(action);
            }
        }
        Vec::new()
    }

    /// Answer a permission request: the one the open session's detail waits on, else the one
    /// selected in the approvals pane. It leaves the pane at once.
    fn decide(&mut self, action: Action) -> Vec<Effect> {
        let decision = match action {
            Action::ApproveOnce => Decision::Once,
            Action::ApproveAlways => Decision::Always,
            _ => Decision::Reject,
        };
        self.panes.follow_inbox(&self.view);
        let selected = self.panes.approvals.selected;
        let index = match &self.mode {
            Mode::Detail(id) => self.view.approvals.iter().position(|a| a.session == *id),
            _ if selected < self.view.approvals.len() => Some(selected),
            // Answered from another pane, the keys go to the first request (the approvals
            // pane's border says so); on a conflict's row they answer nothing.
            _ if self.focus != Pane::Approvals => Some(0),
            _ => None,
        };
        match index.filter(|i| *i < self.view.approvals.len()) {
            Some(index) if self.view.approvals[index].ask.is_question() => {
                self.on_question(index, decision)
            }
            Some(index) => {
                let id = self.view.approvals[index].ask.id.clone();
                self.view.answered(&id, decision == Decision::Reject);
                vec![Effect::Request(Request::Approve(
                    id,
                    decision,
                    Approver::Key,
                ))]
            }
            None => {
                let selected = self.view.inbox().nth(selected);
                let what = match (&self.mode, selected) {
                    (Mode::Detail(_), _) => "this session waits on no permission request",
                    (_, Some(InboxRow::Conflict(_))) => &format!(
                        "a merge conflict, not a request: {} retries its task, {} cancels it, {} says how",
                        self.keymap.keys(Action::Retry),
                        self.keymap.keys(Action::Cancel),
                        self.keymap.keys(Action::Open)
                    ),
                    (_, Some(InboxRow::Held(_))) => &format!(
                        "a plan paused over budget, not a request: {} opens it (C continue, X cancel)",
                        self.keymap.keys(Action::Open)
                    ),
                    (_, Some(InboxRow::Message(_))) => &format!(
                        "a session waiting for your message, not a request: {} opens it, {} there sends one",
                        self.keymap.keys(Action::Open),
                        self.keymap.keys(Action::Say)
                    ),
                    _ => "no permission request is waiting",
                };
                self.toast(what.into(), false);
                Vec::new()
            }
        }
    }

    /// Retry the task behind the selection (session or task), or ask before cancelling it.
    fn on_task(&mut self, action: Action) -> Vec<Effect> {
        if self.focus == Pane::Approvals {
            self.panes.follow_inbox(&self.view);
        }
        let target = match (&self.mode, self.focus) {
            (Mode::Detail(id), _) => self.task_of_session(*id),
            (_, Pane::Sessions) => self
                .panes
                .selected_session(&self.view)
                .and_then(|s| self.task_of_session(s.session.id)),
            (_, Pane::Tasks) => self.panes.selected_task(&self.view),
            (_, Pane::Approvals) => match self.view.inbox().nth(self.panes.approvals.selected) {
                Some(InboxRow::Request(a)) => self.task_of_session(a.session),
                Some(InboxRow::Message(s)) => self.task_of_session(s.session.id),
                Some(InboxRow::Conflict(c)) => self
                    .view
                    .task_named(|t| t.id == c.task)
                    .or_else(|| Some((c.task, c.key.clone()))),
                _ => None,
            },
            _ => None,
        };
        let Some((id, name)) = target else {
            self.toast("select a session or a task first".into(), false);
            return Vec::new();
        };
        if action == Action::Cancel {
            // A task that cannot be cancelled is told so at once, not after a question.
            match self.task_status(id) {
                Some(status) if !status.can_become(TaskStatus::Cancelled) => {
                    self.toast(format!("{name} is {status}: nothing to cancel"), false);
                }
                _ => self.ask_cancel(id, name),
            }
            return Vec::new();
        }
        vec![Effect::Request(Request::Retry(id, name))]
    }

    /// What the room last heard of task `id`'s status.
    fn task_status(&self, id: TaskId) -> Option<TaskStatus> {
        let tasks = self.view.plans.iter().flat_map(|p| &p.tasks);
        tasks.filter(|t| t.id == id).map(|t| t.status).next()
    }

    fn task_of_session(&self, id: SessionId) -> Option<(TaskId, String)> {
        let view = self.view.sessions.iter().find(|s| s.session.id == id)?;
        Some((view.session.task?, view.task.clone()))
    }

    fn open(&mut self) -> Vec<Effect> {
        if self.focus == Pane::Agents {
            if let Some(agent) = self.view.agents.get(self.panes.agents.selected) {
                self.mode = Mode::Agent(agent.name.clone());
            }
            return Vec::new();
        }
        let session = match self.focus {
            Pane::Sessions => self
                .panes
                .selected_session(&self.view)
                .map(|s| s.session.id),
            Pane::Tasks => self
                .panes
                .selected_task(&self.view)
                .and_then(|(id, _)| {
                    self.view
                        .plans
                        .iter()
                        .flat_map(|p| &p.tasks)
                        .find(|t| t.id == id)
                })
                .and_then(|t| t.session),
            Pane::Approvals => return self.open_inbox_row(),
            _ => None,
        };
        let Some(id) = session else {
            if self.focus != Pane::Tasks {
                return Vec::new();
            }
            // Enter on a plan's own row opens its review; on a task with no session yet, says
            // whole what it waits for (the tree clips it).
            match self.panes.selected_task(&self.view) {
                None => {
                    if let Some(plan) = self.selected_plan() {
                        return self.open_plan_review(plan);
                    }
                }
                Some((task, _)) => {
                    if let Some(said) = self.unstarted(task) {
                        self.toast(said, false);
                    }
                }
            }
            return Vec::new();
        };
        self.open_session(id)
    }

    /// What a task with no session says when opened: its state and what it waits for.
    fn unstarted(&self, id: TaskId) -> Option<String> {
        let (plan, task) = self
            .view
            .plans
            .iter()
            .find_map(|p| Some((p, p.tasks.iter().find(|t| t.id == id)?)))?;
        let undone: Vec<&str> = plan
            .tasks
            .iter()
            .filter(|t| task.needs.contains(&t.key) && t.status != TaskStatus::Done)
            .map(|t| t.key.as_str())
            .collect();
        let why = match (&task.waits, task.status) {
            (Some(waits), _) => format!("waits {waits}"),
            (None, TaskStatus::Pending) if !undone.is_empty() => {
                format!("waits for {} to be done", undone.join(", "))
            }
            (None, TaskStatus::Ready) => "waits for a free agent".into(),
            (None, _) => "has no session".into(),
        };
        Some(format!("{} {}: {why}", task.key, task.status.name()))
    }

    /// The approvals pane's selected row, the cursor kept on what it was on.
    fn inbox_selected(&mut self) -> Option<InboxRow<'_>> {
        self.panes.follow_inbox(&self.view);
        self.view.inbox().nth(self.panes.approvals.selected)
    }

    /// The approvals pane's selected row opened: a request's session, a conflict's task, a
    /// plan paused over budget.
    fn open_inbox_row(&mut self) -> Vec<Effect> {
        enum Opened {
            Session(SessionId),
            Conflict(TaskId, String),
            Plan(crate::domain::PlanId),
        }
        let opened = match self.inbox_selected() {
            Some(InboxRow::Request(a)) => Opened::Session(a.session),
            Some(InboxRow::Conflict(c)) => Opened::Conflict(c.task, c.key.clone()),
            Some(InboxRow::Held(p)) => Opened::Plan(p.plan),
            Some(InboxRow::Message(s)) => Opened::Session(s.session.id),
            None => return Vec::new(),
        };
        match opened {
            Opened::Session(id) => self.open_session(id),
            Opened::Conflict(task, key) => self.show_conflict(task, &key),
            Opened::Plan(plan) => self.open_plan_review(plan),
        }
    }

    /// A conflict's row opened: its task selected in the task tree (where `R` retries it and
    /// `c` cancels it), and what settles it said.
    fn show_conflict(&mut self, task: TaskId, key: &str) -> Vec<Effect> {
        let Some(conflict) = self.view.conflicts.iter().find(|c| c.task == task) else {
            return Vec::new();
        };
        let files = conflict.files.join(", ");
        let text = match conflict.state {
            ConflictState::Resolving => format!(
                "{key}: a resolver session settles its merge conflict in {files} now; its run shows among the sessions"
            ),
            ConflictState::Parked => format!(
                "{key} conflicted in {files}: settle it on the integration branch (or leave it), then {} runs it again on top; {} cancels it",
                self.keymap.keys(Action::Retry),
                self.keymap.keys(Action::Cancel)
            ),
        };
        if let Some(path) = self.panes.task_tree.path(task.as_u128()) {
            self.panes.task_tree.select(path);
            self.focus = Pane::Tasks;
        }
        self.toast(text, false);
        self.view.generation += 1;
        Vec::new()
    }

    /// Open session `id`'s detail and fetch its transcript.
    pub(crate) fn open_session(&mut self, id: SessionId) -> Vec<Effect> {
        self.mode = Mode::Detail(id);
        self.panes.detail_scroll = 0;
        self.panes.detail_find = None;
        self.panes.detail_diff = false;
        self.view.transcript = Some((id, Vec::new()));
        // Where the session runs comes with snapshots only (not with the events that made it).
        let mut effects = vec![
            Effect::Request(Request::Transcript(id)),
            Effect::Request(Request::Snapshot),
        ];
        if let Some(plan) = self
            .view
            .sessions
            .iter()
            .find(|s| s.session.id == id)
            .and_then(|s| s.session.plan)
        {
            effects.push(Effect::Request(Request::Context(plan)));
        }
        effects
    }

    fn mouse(&mut self, mouse: MouseEvent) -> Vec<Effect> {
        if self.mode != Mode::Normal {
            return Vec::new();
        }
        let at = Position::new(mouse.column, mouse.row);
        let hit = self
            .panes
            .areas
            .iter()
            .find(|(_, r)| r.contains(at))
            .map(|(p, r)| (*p, *r));
        match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if let Some((pane, area)) = hit {
                    self.focus = pane;
                    self.panes.click(pane, area, at, &self.view);
                }
            }
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                if let Some((pane, _)) = hit {
                    self.focus = pane;
                    let action = if mouse.kind == MouseEventKind::ScrollDown {
                        Action::Down
                    } else {
                        Action::Up
                    };
                    self.panes.move_cursor(pane, action, &self.view);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// Where each pane was drawn, for mouse hits (set by the renderer).
    pub(crate) fn set_areas(&mut self, areas: Vec<(Pane, Rect)>) {
        self.panes.areas = areas;
    }
}

/// In a text field: esc and ctrl-c close it.
pub(super) fn closes(key: &KeyEvent) -> bool {
    key.code == KeyCode::Esc
        || (key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL))
}

/// The character a key types into a text field; ctrl and alt chords type nothing.
pub(super) fn typed(key: &KeyEvent) -> Option<char> {
    match key.code {
        KeyCode::Char(c)
            if !key
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
        {
            Some(c)
        }
        _ => None,
    }
}

/// Moves a text's scroll position by a line or a page for `action`; whether it was one of
/// those.
fn scroll_by(scroll: &mut usize, action: Action) -> bool {
    *scroll = match action {
        Action::Up => scroll.saturating_sub(1),
        Action::Down => scroll.saturating_add(1),
        Action::PageUp => scroll.saturating_sub(10),
        Action::PageDown => scroll.saturating_add(10),
        _ => return false,
    };
    true
}
