//! `ocio gc` removes the transcripts of sessions that ended longer ago than the retention and
//! says what it freed, with the engine stopped (in the file) or running (through it); a
//! missing or bad retention, and bad transcript settings in the config, are refused with
//! exit 2 naming what to fix.

use std::time::Duration;

use super::support::home::{Engine, Home, stderr, stdout};

const AGENT: &str = "[[agents]]\nname = \"sim\"\nkind = \"simulated\"\nduration = \"10ms\"\n";

fn run_a_task(home: &Home) {
    let plan = home.write_plan(
        "p.toml",
        "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"do a\"\n",
    );
    let run = Engine::spawn(home.command(&["run", plan.to_str().unwrap(), "--headless"]));
    let (code, _, err) = run.wait();
    assert_eq!(code, Some(0), "{err}");
}

fn entries(home: &Home) -> usize {
    let logs = home.json(&["logs", "p/a", "--json"]);
    logs["entries"].as_array().unwrap().len()
}

#[test]
fn gc_frees_old_transcripts_and_says_what_it_freed() {
    let home = Home::new();
    home.write_config(AGENT);
    run_a_task(&home);
    let stored = entries(&home);
    assert!(stored > 0, "the task's transcript is stored");

    let out = home.ocio(&["gc"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("transcript_retention"),
        "{}",
        stderr(&out)
    );
    let out = home.ocio(&["gc", "--older-than", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--older-than"), "{}", stderr(&out));

    // Ended less than a day ago: kept.
    let kept = home.json(&["gc", "--older-than", "1d", "--json"]);
    assert_eq!(kept["source"], "database");
    assert_eq!(kept["pruned"]["sessions"], 0, "{kept}");
    assert_eq!(entries(&home), stored);

    // Through a running engine.
    std::thread::sleep(Duration::from_millis(1100));
    let engine = home.engine(&[]);
    let freed = home.json(&["gc", "--older-than", "1s", "--json"]);
    assert_eq!(freed["source"], "engine");
    assert_eq!(freed["pruned"]["sessions"], 1, "{freed}");
    assert_eq!(freed["pruned"]["entries"], stored as u64, "{freed}");
    assert!(freed["pruned"]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(engine.stop("TERM").0, Some(130));
    assert_eq!(entries(&home), 0, "gone from the database");

    // In the file, with the retention from the config.
    home.write_config(&format!(
        "[engine]\ntranscript_retention = \"1s\"\n\n{AGENT}"
    ));
    run_a_task(&home);
    std::thread::sleep(Duration::from_millis(1100));
    let out = home.ocio(&["gc"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("removed the transcripts of 1 session") && text.contains("freed"),
        "{text}"
    );
}

#[test]
fn bad_transcript_settings_are_refused_naming_the_key() {
    let home = Home::new();
    for (setting, named) in [
        ("transcript_cap = \"huge\"", "transcript_cap"),
        ("transcript_retention = \"0s\"", "transcript_retention"),
    ] {
        home.write_config(&format!("[engine]\n{setting}\n\n{AGENT}"));
        let out = home.ocio(&["status"]);
        assert_eq!(out.status.code(), Some(2), "{setting}: {}", stderr(&out));
        assert!(stderr(&out).contains(named), "{setting}: {}", stderr(&out));
    }
}
