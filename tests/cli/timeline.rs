//! `ocio timeline`: a finished plan's sessions from the control log, while the engine runs and
//! after it stopped, as text, JSON and SVG; the engine-wide window; bad input refused with
//! exit 2.

use super::support::TestRepo;
use super::support::home::{Home, stderr, stdout};

#[test]
fn a_plans_timeline_is_read_from_the_control_log_engine_running_or_not() {
    let home = Home::new();
    home.write_config(
        "[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"10ms\"\nmax_concurrent = 2\n",
    );
    let repo = TestRepo::new();
    let plan = format!(
        "name = \"shop\"\nrepo = {:?}\n[[tasks]]\nid = \"cart\"\nprompt = 'SIM-WRITE cart.txt items\\n'\n[[tasks]]\nid = \"pay\"\nneeds = [\"cart\"]\nprompt = 'SIM-WRITE pay.txt card\\n'\n[[tasks]]\nid = \"docs\"\nprompt = \"look\"\n",
        repo.dir_str()
    );
    let plan = home.write_plan("shop.toml", &plan);
    let mut engine = home.engine(&[]);
    let out = home.ocio(&["submit", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    engine.until("the plan finishes", |l| l["type"] == "plan_finished");

    let live = home.json(&["timeline", "shop", "--json"]);
    engine.stop("TERM");
    // Replayed from the database alone: the same timeline.
    let json = home.json(&["timeline", "shop", "--json"]);
    assert_eq!(json, live);
    assert_eq!(json["title"], "shop");
    assert_eq!(json["live"], false);
    assert_eq!(json["critical"], serde_json::json!(["cart", "pay"]));
    let bars: Vec<&serde_json::Value> = json["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["bars"].as_array().unwrap())
        .collect();
    assert_eq!(bars.len(), 3);
    assert!(bars.iter().all(|b| b["outcome"] == "completed"));
    assert_eq!(json["lanes"][0]["name"], "sim");

    let out = home.ocio(&["timeline", "shop", "--by", "task"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("Timeline of shop: "), "{text}");
    assert!(text.contains("critical path: cart -> pay"), "{text}");
    assert!(text.contains("\ncart\n  * cart #1"), "{text}");
    assert!(text.contains("\ndocs\n    docs #1"), "{text}");

    let picture = home.path("shop.svg");
    let out = home.ocio(&["timeline", "shop", "--svg", picture.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let svg = std::fs::read_to_string(&picture).unwrap();
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
    assert!(
        svg.contains("Timeline of shop") && svg.contains("pay #1"),
        "{svg}"
    );

    // Every session of the last hour.
    let all = home.json(&["timeline", "--since", "1h", "--json"]);
    assert_eq!(all["title"], "all plans");
    assert_eq!(all["lanes"][0]["bars"].as_array().unwrap().len(), 3);
}

#[test]
fn bad_timeline_input_is_refused_with_exit_2() {
    let home = Home::new();
    let out = home.ocio(&["timeline", "shop"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no database at"), "{}", stderr(&out));
    home.write_config("[[agents]]\nname = \"sim\"\nkind = \"simulated\"\n");
    // An engine made the database, then stopped.
    home.engine(&[]).stop("TERM");
    for (args, said) in [
        (&["timeline", "nope"][..], "no plan \"nope\""),
        (
            &["timeline", "--since", "yesterday"][..],
            "--since \"yesterday\"",
        ),
        (&["timeline", "--by", "mood"][..], "invalid value 'mood'"),
        (
            &["timeline", "--since", "200000000h"][..],
            "is not a time back",
        ),
        (
            &["search", "x1", "--since", "200000000h"][..],
            "is not a time back",
        ),
    ] {
        let out = home.ocio(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(said), "{args:?}: {}", stderr(&out));
    }
    let out = home.ocio(&["timeline", "--svg", "/nonexistent/dir/t.svg"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot write the picture"),
        "{}",
        stderr(&out)
    );
}
