//! `ocio review`: a finished plan's files, tasks and answers as text and JSON from a running
//! engine, files marked and unmarked reviewed, and bad input refused with exit 2.

use super::support::TestRepo;
use super::support::home::{Home, stderr, stdout};

#[test]
fn review_shows_a_finished_plans_files_and_tasks_and_marks_files() {
    let home = Home::new();
    home.write_config("[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"10ms\"\n");
    let repo = TestRepo::new();
    let plan = format!(
        "name = \"shop\"\nrepo = {:?}\n[[tasks]]\nid = \"cart\"\nprompt = 'SIM-WRITE cart.txt items\\n'\n[[tasks]]\nid = \"idle\"\nprompt = \"look\"\n",
        repo.dir_str()
    );
    let plan = home.write_plan("shop.toml", &plan);
    let out = home.ocio(&["review", "shop"]);
    assert_eq!(out.status.code(), Some(2), "no plan yet");
    assert!(stderr(&out).contains("shop"), "{}", stderr(&out));
    let mut engine = home.engine(&[]);
    let out = home.ocio(&["submit", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    engine.until("the plan finishes", |l| l["type"] == "plan_finished");

    let out = home.ocio(&["review", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    // Against where `ocio land` delivers: the branch checked out when it was submitted (it
    // read `HEAD`).
    assert!(
        text.contains("branch ocio/shop/integration  base main"),
        "{text}"
    );
    assert!(text.contains("ahead 2  behind 0"), "{text}");
    assert!(text.contains("A  +1 -0"), "{text}");
    assert!(
        text.contains("not reviewed") && text.contains("cart.txt  (cart)"),
        "{text}"
    );
    assert!(text.contains("answer: simulated result of cart"), "{text}");
    assert!(text.contains("changed nothing"), "the idle task: {text}");

    let out = home.ocio(&["review", "shop", "--mark", "cart.txt", "--diff"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("reviewed 1/1 files"), "{text}");
    assert!(text.contains("+items"), "the diff: {text}");

    let json = home.json(&["review", "shop", "--json"]);
    let file = &json["review"]["branch"]["files"][0];
    assert_eq!(file["path"], "cart.txt");
    assert_eq!(file["reviewed"], "yes");
    assert_eq!(file["tasks"][0], "cart");
    assert_eq!(json["review"]["tasks"][0]["key"], "cart");
    assert_eq!(json["review"]["name"], "shop");

    let json = home.json(&["review", "shop", "--unmark", "cart.txt", "--json"]);
    assert_eq!(json["review"]["branch"]["files"][0]["reviewed"], "no");

    let out = home.ocio(&["review", "shop", "--mark", "other.txt"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did not change \"other.txt\""),
        "{}",
        stderr(&out)
    );
    let out = home.ocio(&["review", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no plan \"nope\""),
        "{}",
        stderr(&out)
    );

    // With the engine stopped (after `ocio run`, say) the same review comes from the database
    // and git; marking needs the engine that owns the database.
    let (code, _, err) = engine.stop("TERM");
    assert_eq!(code, Some(130), "{err}");
    let json = home.json(&["review", "shop", "--json"]);
    assert_eq!(json["source"], "database", "{json}");
    assert_eq!(json["review"]["branch"]["files"][0]["path"], "cart.txt");
    assert_eq!(json["review"]["branch"]["files"][0]["reviewed"], "no");
    assert_eq!(json["review"]["tasks"][0]["key"], "cart");
    let out = home.ocio(&["review", "shop", "--diff"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("+items"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("read from the database"),
        "{}",
        stderr(&out)
    );
    let out = home.ocio(&["review", "shop", "--mark", "cart.txt"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no engine is running"),
        "{}",
        stderr(&out)
    );
    let out = home.ocio(&["review", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no plan \"nope\""),
        "{}",
        stderr(&out)
    );
}
