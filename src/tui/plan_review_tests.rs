//! The plan review view: `V` asks for the selected plan's review, the view draws at 80x24 and
//! 160x48, space marks the file under the cursor (and fetches the review again), Enter shows
//! its diff, Esc goes back, and an event about the plan fetches the review again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::KeyCode;

use super::app::{Effect, Mode, Msg, Pane, Request};
use super::tests::{app, draw, key, plan_id, tid, told};
use crate::domain::review::{BranchReview, PlanReview, ReviewFile, ReviewTask, Reviewed};
use crate::domain::{MergeState, TaskStatus, Usage};
use crate::engine::EngineEvent;

fn file(
    status: char,
    path: &str,
    counts: (u64, u64),
    tasks: &[&str],
    reviewed: Reviewed,
) -> ReviewFile {
    ReviewFile {
        status,
        path: path.into(),
        from: (status == 'R').then(|| "src/old_name.rs".into()),
        mode: None,
        added: Some(counts.0),
        removed: Some(counts.1),
        blob: Some("b1".into()),
        tasks: tasks.iter().map(|t| t.to_string()).collect(),
        reviewed,
    }
}

const DIFF: &str = "diff --git a/src/api.rs b/src/api.rs\n--- a/src/api.rs\n+++ b/src/api.rs\n@@ -1,2 +1,3 @@\n fn api() {\n-    todo!()\n+    serve();\n+    log();\n }\ndiff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-# old\n+# new\n";

fn review() -> PlanReview {
    let usage = Usage {
        input_tokens: 12_000,
        output_tokens: 3_400,
        cost: 0.0831,
        ..Usage::default()
    };
    let task = |key: &str, merge: MergeState, answer: &str| ReviewTask {
        key: key.into(),
        title: key.into(),
        status: TaskStatus::Done,
        merge,
        answer: Some(answer.into()),
        usage,
        sessions: 1,
    };
    let merged = MergeState::Merged {
        commit: "9c3a1f0e2b4d9c3a1f0e".into(),
    };
    PlanReview {
        plan: plan_id(),
        name: "add-pagination".into(),
        branch: Some(BranchReview {
            integration: "ocio/add-pagination/integration".into(),
            base: "main".into(),
            base_commit: "1a2b3c4d5e6f1a2b3c4d".into(),
            ahead: 6,
            behind: 1,
            files: vec![
                file('M', "src/api.rs", (2, 1), &["api"], Reviewed::No),
                file('A', "README.md", (1, 1), &["design"], Reviewed::Yes),
                file(
                    'R',
                    "src/storage.rs",
                    (0, 0),
                    &["storage"],
                    Reviewed::Changed,
                ),
                file('M', "Cargo.lock", (3, 3), &[], Reviewed::No),
            ],
            diff: DIFF.into(),
            diff_cut: None,
        }),
        no_branch: None,
        tasks: vec![
            task(
                "design",
                merged.clone(),
                "Paginate with a cursor.\nPages of 50.",
            ),
            task("api", merged, "The API takes ?cursor= now."),
            task("idle", MergeState::Unchanged, "Nothing needed changing."),
        ],
        usage: Usage {
            input_tokens: 36_000,
            output_tokens: 10_200,
            cost: 0.2493,
            ..Usage::default()
        },
        budget: None,
        over_budget: None,
        landing: None,
    }
}

/// The room with the plan view open on [`review`].
fn opened() -> super::app::App {
    let mut app = app();
    app.focus = Pane::Tasks;
    let effects = key(&mut app, KeyCode::Char('V'));
    assert_eq!(effects, [Effect::Request(Request::Review(plan_id()))]);
    assert_eq!(app.mode, Mode::PlanReview(plan_id()));
    app.update(Msg::Review(plan_id(), Ok(Box::new(review()))));
    app
}

#[test]
fn the_plan_view_at_80x24_and_160x48() {
    let mut app = opened();
    insta::assert_snapshot!("plan_review_80x24", draw(&mut app, 80, 24));
    insta::assert_snapshot!("plan_review_160x48", draw(&mut app, 160, 48));
    key(&mut app, KeyCode::Enter);
    insta::assert_snapshot!("plan_review_diff_80x24", draw(&mut app, 80, 24));
}

#[test]
fn space_marks_the_file_under_the_cursor_and_enter_shows_its_diff() {
    let mut app = opened();
    let effects = key(&mut app, KeyCode::Char(' '));
    let mark = Request::MarkReviewed(plan_id(), "src/api.rs".into(), true);
    assert_eq!(effects, [Effect::Request(mark)]);
    key(&mut app, KeyCode::Char('j'));
    let effects = key(&mut app, KeyCode::Char(' '));
    let unmark = Request::MarkReviewed(plan_id(), "README.md".into(), false);
    assert_eq!(
        effects,
        [Effect::Request(unmark)],
        "a reviewed file is unmarked"
    );
    key(&mut app, KeyCode::Char('j'));
    let effects = key(&mut app, KeyCode::Char(' '));
    let again = Request::MarkReviewed(plan_id(), "src/storage.rs".into(), true);
    assert_eq!(
        effects,
        [Effect::Request(again)],
        "a changed file is marked again"
    );
    key(&mut app, KeyCode::Char('k'));
    key(&mut app, KeyCode::Enter);
    assert!(app.plan_review.diff);
    let screen = draw(&mut app, 80, 24);
    assert!(
        screen.contains("+# new") && !screen.contains("serve()"),
        "{screen}"
    );
    key(&mut app, KeyCode::Esc);
    assert!(!app.plan_review.diff);
    assert_eq!(app.mode, Mode::PlanReview(plan_id()));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn an_event_about_the_plan_fetches_its_review_again() {
    let mut app = opened();
    let merged = EngineEvent::Merged {
        plan: plan_id(),
        task: tid(1),
        key: "api".into(),
        commit: "c0ffee".into(),
    };
    let effects = app.update(Msg::Engine(told(merged)));
    assert!(
        effects.contains(&Effect::Request(Request::Review(plan_id()))),
        "{effects:?}"
    );
    // Landed: what is left between the branch and its base is nothing now (found in the
    // demo: the view kept the files and `L land` after `L` landed the plan).
    let landed = EngineEvent::PlanLanded {
        plan: plan_id(),
        name: "add-pagination".into(),
        landing: landed_on("main", &[]),
    };
    let effects = app.update(Msg::Engine(told(landed)));
    assert!(
        effects.contains(&Effect::Request(Request::Review(plan_id()))),
        "{effects:?}"
    );
    let other = EngineEvent::Paused { paused: true };
    let effects = app.update(Msg::Engine(told(other)));
    assert!(!effects.contains(&Effect::Request(Request::Review(plan_id()))));
    // A review of another plan is not shown.
    let mut elsewhere = review();
    elsewhere.plan = crate::domain::PlanId::from_u128(7);
    app.update(Msg::Review(elsewhere.plan, Ok(Box::new(elsewhere))));
    assert_eq!(
        app.plan_review
            .review
            .as_ref()
            .unwrap()
            .as_ref()
            .unwrap()
            .plan,
        plan_id()
    );
}

#[test]
fn enter_on_a_plans_row_opens_its_review() {
    let mut app = app();
    app.focus = Pane::Tasks;
    draw(&mut app, 120, 36);
    assert_eq!(app.panes.task_tree.selected(), [plan_id().as_u128()]);
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(effects, [Effect::Request(Request::Review(plan_id()))]);
    assert_eq!(app.mode, Mode::PlanReview(plan_id()));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Normal);
}

/// The room with the plan's view open and every task of it ended.
fn ended() -> super::app::App {
    let mut app = opened();
    for task in &mut app.view.plans[0].tasks {
        task.status = crate::domain::TaskStatus::Done;
    }
    app
}

#[test]
fn l_asks_before_landing_the_plan_and_only_yes_lands_it() {
    let mut app = ended();
    assert!(key(&mut app, KeyCode::Char('L')).is_empty());
    assert!(matches!(app.mode, Mode::ConfirmLand { .. }));
    let screen = draw(&mut app, 80, 24);
    assert!(
        screen.contains("Land plan add-pagination on its base branch?"),
        "{screen}"
    );
    assert!(
        key(&mut app, KeyCode::Char('n')).is_empty(),
        "no: nothing lands"
    );
    assert_eq!(app.mode, Mode::PlanReview(plan_id()));
    key(&mut app, KeyCode::Char('L'));
    let effects = key(&mut app, KeyCode::Char('y'));
    let land = Request::Land(plan_id(), "add-pagination".into());
    assert_eq!(effects, [Effect::Request(land)]);
    assert_eq!(
        app.mode,
        Mode::PlanReview(plan_id()),
        "back to the plan view"
    );
}

/// Hand trial: the land dialog did not say that files of the branch were not reviewed, and
/// the footer under it showed the tasks pane's keys. It counts them (a file changed since it
/// was marked is not reviewed) and the footer says what answers it.
#[test]
fn the_land_dialog_counts_the_files_not_reviewed_and_shows_its_keys() {
    let mut app = ended();
    key(&mut app, KeyCode::Char('L'));
    assert!(matches!(app.mode, Mode::ConfirmLand { .. }));
    let screen = draw(&mut app, 80, 24);
    // Of four files one is reviewed: src/storage.rs changed since it was marked.
    assert!(
        screen.contains("3 files not reviewed, of 4 changed"),
        "{screen}"
    );
    let footer = screen.lines().last().unwrap();
    assert!(
        footer.contains("land: y/enter lands · any other key does not"),
        "{screen}"
    );
    // All reviewed: nothing said of it.
    key(&mut app, KeyCode::Char('n'));
    let mut review = review();
    for file in &mut review.branch.as_mut().unwrap().files {
        file.reviewed = Reviewed::Yes;
    }
    app.update(Msg::Review(plan_id(), Ok(Box::new(review))));
    key(&mut app, KeyCode::Char('L'));
    let screen = draw(&mut app, 80, 24);
    assert!(!screen.contains("not reviewed"), "{screen}");
    assert!(screen.contains("y/enter lands"), "{screen}");
}

/// A plan with tasks still to run, or one landed already, is not asked about: the engine
/// would refuse it after the question.
#[test]
fn l_on_a_plan_that_cannot_land_now_says_why_without_asking() {
    let mut app = opened();
    assert!(key(&mut app, KeyCode::Char('L')).is_empty());
    assert_eq!(app.mode, Mode::PlanReview(plan_id()), "no question");
    let toast = &app.toast.as_ref().unwrap().text;
    assert!(
        toast.contains("cannot land yet: api, storage, tests, review still to run"),
        "{toast}"
    );
    let mut app = ended();
    app.view.plans[0].landing = Some(landed_on("main", &[]));
    assert!(key(&mut app, KeyCode::Char('L')).is_empty());
    assert_eq!(app.mode, Mode::PlanReview(plan_id()), "no question");
    let toast = &app.toast.as_ref().unwrap().text;
    assert!(
        toast.contains("add-pagination landed already on main (at 0123456789)"),
        "{toast}"
    );
}

/// The room with a plan paused over budget, its view open.
fn over_budget() -> super::app::App {
    let mut app = opened();
    let cause = "over budget: task `api` budget 240/200 tokens";
    app.view.budgets = crate::engine::view::BudgetsView {
        day: "2026-12-04".into(),
        daily: crate::domain::Budget::new(Some(2_000_000), Some(5.0)).ok(),
        daily_spent: Usage {
            input_tokens: 240,
            ..Usage::default()
        },
        agents: Vec::new(),
        plans: vec![crate::engine::view::PlanSpendView {
            plan: plan_id(),
            name: "add-pagination".into(),
            budget: None,
            spent: Usage::default(),
            over_budget: Some(cause.into()),
            stopped: vec!["api".into()],
        }],
    };
    let mut paused = review();
    paused.over_budget = Some(cause.into());
    paused.budget = crate::domain::Budget::new(Some(100_000), None).ok();
    app.update(Msg::Review(plan_id(), Ok(Box::new(paused))));
    app
}

#[test]
fn a_plan_paused_over_budget_shows_in_the_header_the_inbox_and_its_view() {
    let mut app = over_budget();
    let screen = draw(&mut app, 220, 48);
    assert!(
        screen.contains("PAUSED over budget: task `api` budget 240/200 tokens"),
        "{screen}"
    );
    assert!(screen.contains("budget 46.2k/100.0k tok"), "{screen}");
    assert!(screen.contains("over budget: add-pagination"), "{screen}");
    assert!(
        screen.contains("today 240/2.0M tok $0.00/$5.00"),
        "{screen}"
    );
    key(&mut app, KeyCode::Esc);
    app.view.approvals.clear();
    // The session that waited for the request waits no more.
    for s in &mut app.view.sessions {
        if s.session.status == crate::domain::SessionStatus::WaitingApproval {
            s.session.status = crate::domain::SessionStatus::Running;
        }
    }
    let screen = draw(&mut app, 160, 48);
    assert!(
        screen.contains("approvals 0 · over budget 1"),
        "in the inbox: {screen}"
    );
    assert!(
        screen.contains("add-pagination    over budget task `api`"),
        "in the inbox (said once: hand trial): {screen}"
    );
}

/// Hand trial: at 80 columns the view's header read `PAUSED over budget: pla`, the cause and
/// `C continue · X cancel` cut off, and the footer did not list C or X either; at 120
/// columns it ended `· C continue · X`.
#[test]
fn the_keys_of_a_plan_paused_over_budget_show_at_80_and_120_columns() {
    let mut app = over_budget();
    for width in [80, 120] {
        let screen = draw(&mut app, width, 30);
        let header: String = screen.lines().skip(1).take(4).collect();
        for said in ["PAUSED", "C continue", "X cancel", "240/200 tokens"] {
            assert!(header.contains(said), "{said} at {width}: {screen}");
        }
        let footer = screen.lines().last().unwrap();
        for keys in ["C continue", "X cancel"] {
            assert!(footer.contains(keys), "{keys} at {width}: {screen}");
        }
        assert!(screen.contains(" files 4 "), "the files below: {screen}");
    }
    insta::assert_snapshot!("plan_review_over_budget_80x24", draw(&mut app, 80, 24));
    // Not paused, the footer has no C or X.
    let mut app = opened();
    assert!(!draw(&mut app, 120, 30).contains("C continue"));
}

#[test]
fn c_continues_a_plan_paused_over_budget_and_x_asks_before_cancelling_it() {
    use crate::engine::{BudgetTarget, BudgetThen};
    let mut app = over_budget();
    let effects = key(&mut app, KeyCode::Char('C'));
    let go_on = Request::Budget(
        plan_id(),
        "add-pagination".into(),
        BudgetTarget::Plan,
        None,
        BudgetThen::Continue,
    );
    assert_eq!(effects, [Effect::Request(go_on)]);
    assert!(key(&mut app, KeyCode::Char('X')).is_empty());
    assert!(matches!(app.mode, Mode::ConfirmBudgetCancel { .. }));
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("paused over budget?"), "{screen}");
    let effects = key(&mut app, KeyCode::Char('y'));
    let cancel = Request::Budget(
        plan_id(),
        "add-pagination".into(),
        BudgetTarget::Plan,
        None,
        BudgetThen::Cancel,
    );
    assert_eq!(effects, [Effect::Request(cancel)]);
    assert_eq!(app.mode, Mode::PlanReview(plan_id()));
}

/// Hand trial: `C` on a plan still over budget says to raise it with `:budget ...`, but `:`
/// did nothing in the plan's view (keystrokes vanished until esc).
#[test]
fn the_command_line_opens_over_the_plan_view_and_goes_back_to_it() {
    use crate::engine::{BudgetTarget, BudgetThen};
    let mut app = over_budget();
    key(&mut app, KeyCode::Char(':'));
    assert!(matches!(app.mode, Mode::Palette(..)), "{:?}", app.mode);
    super::tests::typed(&mut app, "budget add-pagination 900");
    let screen = draw(&mut app, 120, 36);
    assert!(screen.contains(":budget add-pagination 900▏"), "{screen}");
    assert!(
        screen.contains(" plan add-pagination ("),
        "the view beneath: {screen}"
    );
    let raise = Request::Budget(
        plan_id(),
        "add-pagination".into(),
        BudgetTarget::Plan,
        crate::domain::Budget::new(Some(900), None).ok(),
        BudgetThen::Continue,
    );
    assert_eq!(key(&mut app, KeyCode::Enter), [Effect::Request(raise)]);
    assert_eq!(app.mode, Mode::PlanReview(plan_id()), "back in the view");
    // Closed, or refused, it goes back to the view too.
    key(&mut app, KeyCode::Char(':'));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::PlanReview(plan_id()));
    key(&mut app, KeyCode::Char(':'));
    super::tests::typed(&mut app, "bogus");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(app.mode, Mode::PlanReview(plan_id()));
    let screen = draw(&mut app, 120, 36);
    assert!(screen.contains("no command \"bogus\""), "{screen}");
}

#[test]
fn c_in_a_plan_not_paused_over_budget_does_nothing_but_say_so() {
    let mut app = opened();
    assert!(key(&mut app, KeyCode::Char('C')).is_empty());
    let screen = draw(&mut app, 120, 36);
    assert!(screen.contains("not paused over budget"), "{screen}");
}

#[test]
fn the_command_line_raises_a_plans_or_a_tasks_budget_and_continues() {
    use crate::engine::{BudgetTarget, BudgetThen};
    let mut app = super::tests::app();
    key(&mut app, KeyCode::Char(':'));
    super::tests::typed(&mut app, "budget add-pagination/api 500_000 $2.5");
    let effects = key(&mut app, KeyCode::Enter);
    let raise = Request::Budget(
        plan_id(),
        "add-pagination".into(),
        BudgetTarget::Task { key: "api".into() },
        crate::domain::Budget::new(Some(500_000), Some(2.5)).ok(),
        BudgetThen::Continue,
    );
    assert_eq!(effects, [Effect::Request(raise)]);
    key(&mut app, KeyCode::Char(':'));
    super::tests::typed(&mut app, "budget add-pagination cancel");
    let effects = key(&mut app, KeyCode::Enter);
    let cancel = Request::Budget(
        plan_id(),
        "add-pagination".into(),
        BudgetTarget::Plan,
        None,
        BudgetThen::Cancel,
    );
    assert_eq!(effects, [Effect::Request(cancel)]);
    key(&mut app, KeyCode::Char(':'));
    super::tests::typed(&mut app, "budget add-pagination lots");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    let screen = draw(&mut app, 120, 36);
    assert!(screen.contains("not a number of tokens"), "{screen}");
}

/// Found in the demo: after `L` landed the plan on `master`, its view still read
/// `ocio/demo-feature/integration ← HEAD … ahead 0 behind 1 · files 0`, as if nothing had
/// landed and on no branch of that name.
#[test]
fn a_landed_plan_says_where_and_at_which_commit_it_landed() {
    let mut app = ended();
    app.view.plans[0].landing = Some(landed_on("master", &["src/api.rs", "README.md"]));
    let mut landed = review();
    let branch = landed.branch.as_mut().unwrap();
    branch.base = "HEAD".into();
    branch.ahead = 0;
    branch.behind = 1;
    branch.files.clear();
    branch.diff.clear();
    app.update(Msg::Review(plan_id(), Ok(Box::new(landed))));
    let screen = draw(&mut app, 120, 40);
    assert!(
        screen.contains("landed on master at 0123456789"),
        "{screen}"
    );
    assert!(!screen.contains("← HEAD"), "{screen}");
    assert!(!screen.contains("behind 1"), "{screen}");
    // The files are those the landing changed.
    assert!(screen.contains("files it landed on master: 2"), "{screen}");
    assert!(screen.contains("README.md"), "{screen}");
}

/// The plan's landing by a merge on `base` at commit `0123456789abcdef`, changing `files`.
fn landed_on(base: &str, files: &[&str]) -> crate::domain::PlanLanding {
    crate::domain::PlanLanding {
        plan: plan_id(),
        mode: Some(crate::domain::LandMode::Merge),
        base: base.into(),
        commit: "0123456789abcdef".into(),
        files: files.iter().map(|f| f.to_string()).collect(),
        at: jiff::Timestamp::UNIX_EPOCH,
        pushed_to: None,
        pr_url: None,
    }
}
