//! The plan review view in a real terminal: a plan in a git repository runs to the end, `V`
//! opens its review (the files it changed, by which task, and the tasks' answers), space marks
//! the file under the cursor reviewed and the mark shows once the engine has recorded it, and
//! `L` (asking first) lands the plan on main; `T` shows its timeline.

use std::process::Command;

use super::{Room, tmux_available};

const PLAN: &str = "name = \"shop\"\nrepo = \".\"\n[[tasks]]\nid = \"cart\"\nprompt = 'SIM-WRITE cart.txt items\\n'\ncapabilities = [\"code\"]\n[[tasks]]\nid = \"till\"\nprompt = 'SIM-WRITE till.txt coins\\n'\ncapabilities = [\"code\"]\n";

fn git(repo: &std::path::Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_plan_view_shows_a_finished_plans_files_and_tasks_and_marks_a_file_reviewed() {
    if !tmux_available() {
        return;
    }
    let room = Room::prepare("plan-review", super::CONFIG);
    let repo = room.path("repo");
    std::fs::remove_file(repo.join("plan.toml")).unwrap();
    std::fs::remove_file(repo.join("slow.toml")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "# shop\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    std::fs::write(repo.join("shop.toml"), PLAN).unwrap();
    let mut room = room.launch(100, 30);
    room.submit("shop.toml");
    room.wait_for("the plan to succeed", |s| s.contains("plan shop succeeded"));

    room.keys(&["V"]);
    let screen = room.wait_for("the plan's review", |s| {
        s.contains("files 2") && s.contains("tasks 2")
    });
    for wanted in [
        "ocio/shop/integration ← main",
        "[ ] A +1",
        "cart.txt (cart)",
        "till.txt (till)",
        "simulated result of cart",
        "reviewed 0/2 files",
    ] {
        if !screen.contains(wanted) {
            room.fail(&format!("the plan view lacks {wanted:?}"));
        }
    }
    room.keys(&["Space"]);
    room.wait_for("the mark", |s| {
        s.contains("[x] A +1") && s.contains("cart.txt") && s.contains("reviewed 1/2 files")
    });
    room.keys(&["Enter"]);
    room.wait_for("the file's diff", |s| {
        s.contains("+items") && !s.contains("+coins")
    });
    room.keys(&["Escape"]);
    // Landing asks first, then brings the plan's work onto main.
    room.keys(&["L"]);
    room.wait_for("the question", |s| {
        s.contains("Land plan shop on its base branch?")
    });
    room.keys(&["y"]);
    room.wait_for("the landing", |s| s.contains("landed on main at"));
    let landed = Command::new("git")
        .args(["show", "main:cart.txt"])
        .current_dir(&repo)
        .output()
        .unwrap();
    if String::from_utf8_lossy(&landed.stdout) != "items\n" {
        room.fail("main lacks the plan's cart.txt after landing");
    }
    if std::fs::read_to_string(repo.join("till.txt"))
        .ok()
        .as_deref()
        != Some("coins\n")
    {
        room.fail("the checkout was not brought up to the landed main");
    }
    room.keys(&["Escape"]);
    room.wait_for("the panes again", |s| {
        s.contains("SESSIONS") || s.contains("sessions")
    });
    // The plan's timeline, replayed from the control log: a lane for the agent, a bar per
    // task's session; by task, a lane each.
    room.keys(&["T"]);
    room.wait_for("the timeline", |s| {
        s.contains("shop ·") && s.contains("lanes by agent") && s.contains("completed")
    });
    room.keys(&["b"]);
    room.wait_for("lanes by task", |s| {
        s.contains("lanes by task") && s.contains("cart") && s.contains("till")
    });
    room.keys(&["Escape"]);
    room.wait_for("the panes again", |s| {
        s.contains("SESSIONS") || s.contains("sessions")
    });
    room.quit();
    room.expect_exit(0);
}
