//! `ocio search`: a word found only in a session title, only in an event cause, only in a
//! transcript entry, read from a real database file; filters; bad input refused with exit 2.

use jiff::Timestamp;
use ocio::domain::{AgentName, Plan, PlanId, Session, SessionId, SessionKind, SessionStatus};
use ocio::store::{Batch, Store, StoreOptions};

use super::support::home::{Home, stderr, stdout};

#[derive(serde::Serialize)]
struct Entry {
    part: Option<String>,
    text: String,
}

fn session(title: &str) -> Session {
    Session::new(
        SessionId::generate(),
        title,
        SessionKind::Code,
        Timestamp::now(),
    )
}

/// A database with a plan `shop` and three sessions, each holding one rare word in one place.
fn seeded(home: &Home) -> (Session, Session, Session) {
    let store = Store::open(&home.db(), StoreOptions::default()).unwrap();
    let plan = Plan {
        id: PlanId::generate(),
        name: "shop".into(),
        repo: home.path("repo"),
        tasks: Vec::new(),
        created_at: Timestamp::now(),
    };
    let mut titled = session("Refactor the zebra module");
    titled.plan = Some(plan.id);
    let mut caused = session("second");
    caused.agent = Some(AgentName::new("builder").unwrap());
    let spoken = session("third");
    let event = caused
        .transition(
            SessionStatus::Queued,
            "queued for giraffe",
            Timestamp::now(),
        )
        .unwrap();
    let entry = Entry {
        part: None,
        text: "hello\nthe okapi ran the tests".into(),
    };
    let mut batch = Batch::new();
    batch
        .put_plan(&plan)
        .put_session(&titled)
        .put_session(&caused)
        .append_event(&event)
        .put_session(&spoken)
        .put_transcript(spoken.id, None, &entry, u64::MAX);
    store.commit_blocking(batch).unwrap();
    store.close_blocking();
    (titled, caused, spoken)
}

fn ids(json: &serde_json::Value) -> Vec<String> {
    json["found"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["session"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_word_only_in_a_title_an_event_or_a_transcript_is_found() {
    let home = Home::new();
    let (titled, caused, spoken) = seeded(&home);

    let zebra = home.json(&["search", "zebra", "--json"]);
    assert_eq!(ids(&zebra), vec![titled.id.to_string()]);
    assert_eq!(zebra["found"][0]["place"]["kind"], "title");
    let giraffe = home.json(&["search", "Giraffe", "--json"]);
    assert_eq!(ids(&giraffe), vec![caused.id.to_string()]);
    assert_eq!(giraffe["found"][0]["place"]["kind"], "event");
    assert_eq!(giraffe["found"][0]["line"], "queued for giraffe");
    let okapi = home.json(&["search", "okapi tes", "--json"]);
    assert_eq!(ids(&okapi), vec![spoken.id.to_string()]);
    assert_eq!(okapi["found"][0]["place"]["kind"], "transcript");
    assert_eq!(okapi["found"][0]["line"], "the okapi ran the tests");

    let out = home.ocio(&["search", "okapi"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&spoken.id.short()), "{text}");
    assert!(
        text.contains("[transcript #1]") && text.contains("the okapi ran"),
        "{text}"
    );
    let out = home.ocio(&["search", "elephant"]);
    assert!(
        stdout(&out).starts_with("nothing found"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn filters_keep_only_the_plans_the_agents_and_the_recent_sessions() {
    let home = Home::new();
    let (titled, caused, _) = seeded(&home);
    let in_plan = home.json(&["search", "zebra", "--plan", "shop", "--json"]);
    assert_eq!(ids(&in_plan), vec![titled.id.to_string()]);
    let not_in_plan = home.json(&["search", "giraffe", "--plan", "shop", "--json"]);
    assert!(ids(&not_in_plan).is_empty());
    let by_agent = home.json(&["search", "giraffe", "--agent", "builder", "--json"]);
    assert_eq!(ids(&by_agent), vec![caused.id.to_string()]);
    let other_agent = home.json(&["search", "giraffe", "--agent", "other", "--json"]);
    assert!(ids(&other_agent).is_empty());
    let recent = home.json(&["search", "zebra", "--since", "2h", "--json"]);
    assert_eq!(ids(&recent), vec![titled.id.to_string()]);
}

#[test]
fn reindex_makes_the_database_searchable_again() {
    let home = Home::new();
    seeded(&home);
    let out = home.ocio(&["search", "--reindex"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("indexed 3 titles, 1 event causes and 1 transcript entries"),
        "{}",
        stdout(&out)
    );
    assert_eq!(ids(&home.json(&["search", "zebra", "--json"])).len(), 1);
}

#[test]
fn bad_search_input_is_refused_with_exit_2_naming_the_flag() {
    let home = Home::new();
    seeded(&home);
    for (args, said) in [
        (&["search", ""][..], "no word to search for"),
        (&["search", " - "][..], "no word to search for"),
        (&["search"][..], "no word to search for"),
        (
            &["search", "zebra", "--since", "yesterday"][..],
            "--since \"yesterday\"",
        ),
        (
            &["search", "zebra", "--plan", "nope"][..],
            "--plan: no plan \"nope\"",
        ),
    ] {
        let out = home.ocio(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(said), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn what_an_engine_wrote_is_found_while_it_runs_and_after() {
    let home = Home::new();
    home.write_config(
        "[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"10ms\"\nmax_concurrent = 2\n",
    );
    let repo = super::support::TestRepo::new();
    let plan = format!(
        "name = \"shop\"\nrepo = {:?}\n[[tasks]]\nid = \"cart\"\nprompt = 'SIM-WRITE cart.txt items\\n'\n",
        repo.dir_str()
    );
    let plan = home.write_plan("shop.toml", &plan);
    let mut engine = home.engine(&[]);
    let out = home.ocio(&["submit", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    engine.until("the plan finishes", |l| l["type"] == "plan_finished");
    let live = home.json(&["search", "cart", "--plan", "shop", "--json"]);
    engine.stop("TERM");
    let after = home.json(&["search", "cart", "--plan", "shop", "--json"]);
    assert_eq!(live["found"], after["found"]);
    let found = after["found"].as_array().unwrap();
    assert!(!found.is_empty(), "{after:#}");
    assert!(found.iter().all(|f| f["plan"].is_string()), "{after:#}");
}
