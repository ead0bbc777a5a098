//! Tests of what keeps a plan from reaching outside its project: `repo` checked on the file
//! system (on load and again before it is queued), task ids safe as path and branch names,
//! `locks` held to the same rules as `files`, and values clipped when errors echo them.

use std::path::Path;

use super::*;

fn errors(text: &str) -> Vec<PlanError> {
    match PlanFile::parse(text, Path::new("add.toml")) {
        Ok(_) => panic!("expected errors in:\n{text}"),
        Err(errors) => errors.into_vec(),
    }
}

/// A plan file with `repo = "{repo}"` in `dir`, where `make` has made (or not) what it names.
fn load_beside(dir: &Path, repo: &str, make: impl FnOnce(&Path)) -> Result<PlanFile, PlanErrors> {
    make(&dir.join(repo));
    let path = dir.join("plan.toml");
    std::fs::write(&path, one_task(&format!("repo = {repo:?}"))).unwrap();
    PlanFile::load(&path)
}

/// The plan file `text` written in a fresh directory, and what loading it gives.
fn load(text: &str) -> (tempfile::TempDir, Result<PlanFile, PlanErrors>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = PlanFile::load(&path);
    (dir, loaded)
}

fn one_task(header: &str) -> String {
    format!("name = \"p\"\n{header}\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n")
}

fn repo_error(repo: &str) -> PlanError {
    let (_dir, loaded) = load(&one_task(&format!("repo = {repo:?}")));
    the_repo_error(loaded.map(drop))
}

/// The one error, which is about `repo` (at line 2, column 8).
fn the_repo_error(checked: Result<(), PlanErrors>) -> PlanError {
    let errors = checked.expect_err("the repo is refused").into_vec();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let error = errors.into_iter().next().unwrap();
    assert_eq!((error.line, error.column), (2, 8), "{error}");
    assert_eq!(error.field.as_deref(), Some("repo"), "{error}");
    error
}

#[test]
fn a_repo_that_does_not_exist_is_refused_on_load_naming_the_path() {
    let error = repo_error("no-such-dir");
    assert!(error.message.contains("no-such-dir"), "{error}");
    assert!(error.message.contains("does not exist"), "{error}");
    assert!(error.hint.is_some(), "{error}");
}

#[test]
fn a_repo_that_is_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load_beside(dir.path(), "notes.txt", |file| {
        std::fs::write(file, "x").unwrap()
    });
    let error = the_repo_error(loaded.map(drop));
    assert!(error.message.contains("not a directory"), "{error}");
}

#[test]
fn the_root_and_the_home_directory_are_not_projects() {
    let error = repo_error("/");
    assert!(error.message.contains("not a project"), "{error}");
    if let Some(home) = std::env::var_os("HOME").filter(|home| Path::new(home).is_dir()) {
        let error = repo_error(&home.to_string_lossy());
        assert!(error.message.contains("home directory"), "{error}");
    }
}

#[test]
fn a_bad_repo_is_reported_with_every_other_problem() {
    let text =
        "name = \"p\"\nrepo = \"gone\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\nneeds = [\"b\"]\n";
    let (_dir, loaded) = load(text);
    let errors = loaded.unwrap_err().into_vec();
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_deref()).collect();
    assert_eq!(fields, [Some("repo"), Some("needs")], "{errors:#?}");
}

#[test]
fn a_repo_deleted_after_loading_is_refused_by_check_repo() {
    let dir = tempfile::tempdir().unwrap();
    let plan = load_beside(dir.path(), "project", |repo| {
        std::fs::create_dir(repo).unwrap()
    })
    .unwrap();
    assert!(plan.check_repo().is_ok());
    std::fs::remove_dir(dir.path().join("project")).unwrap();
    let error = the_repo_error(plan.check_repo());
    assert!(error.message.contains("does not exist"), "{error}");
}

#[test]
fn parse_alone_does_not_look_at_the_file_system() {
    PlanFile::parse(&one_task("repo = \"no-such-dir\""), Path::new("add.toml")).unwrap();
}

#[test]
fn task_ids_must_be_safe_as_a_path_and_a_branch_name() {
    let long = "a".repeat(65);
    for bad in [
        "..",
        "-rf",
        ".hidden",
        "a..b",
        "a.",
        "x.lock",
        long.as_str(),
    ] {
        let text = format!("name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = {bad:?}\nprompt = \"x\"\n");
        let found = errors(&text);
        assert_eq!(found.len(), 1, "{bad}: {found:#?}");
        assert_eq!(found[0].field.as_deref(), Some("id"), "{bad}: {}", found[0]);
        assert_eq!(found[0].line, 4, "{bad}: {}", found[0]);
    }
    for good in ["api-design", "v1.2", "a_b", "A9"] {
        let text =
            format!("name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = {good:?}\nprompt = \"x\"\n");
        PlanFile::parse(&text, Path::new("add.toml")).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
}

#[test]
fn locks_are_held_to_the_rules_of_files() {
    let text = "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\nlocks = [\"../../etc\", \"/etc/\"]\nfiles = [\"../../etc\", \"/etc/\"]\n";
    let found = errors(text);
    let places: Vec<_> = found.iter().map(|e| (e.line, e.field.as_deref())).collect();
    assert_eq!(
        places,
        [
            (6, Some("locks")),
            (6, Some("locks")),
            (7, Some("files")),
            (7, Some("files"))
        ],
        "{found:#?}"
    );
    let fine = "name = \"p\"\nrepo = \".\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\nlocks = [\"src/api/\", \"database\", \"merge:x\", \"repo:/r\"]\n";
    PlanFile::parse(fine, Path::new("add.toml")).unwrap();
}

#[test]
fn long_values_are_clipped_when_errors_echo_them() {
    let huge = "x".repeat(100_000);
    let text = format!(
        "name = \"p\"\nrepo = \".\"\nbase = \"{huge} \"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\nneeds = [\"{huge}\"]\nfiles = [\"/{huge}\"]\n"
    );
    let found = errors(&text);
    assert_eq!(found.len(), 3, "{} errors", found.len());
    for error in found {
        assert!(
            error.to_string().len() < 1_000,
            "{}",
            error.to_string().len()
        );
    }
}
