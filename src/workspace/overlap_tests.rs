//! Tests of the overlap map: examples, and a model-based property test against a plain list of
//! live touches.

use std::path::Path;

use proptest::prelude::*;

use super::*;

fn session(n: u128) -> SessionId {
    SessionId::from_u128(n)
}

#[test]
fn an_overlap_is_reported_once_naming_both_sessions_and_the_file() {
    let mut map = OverlapMap::new();
    let (a, b, c) = (session(1), session(2), session(3));
    assert_eq!(map.touch(a, "src/lib.rs"), None);
    assert_eq!(map.touch(a, "src/lib.rs"), None);
    let overlap = map.touch(b, "./src//lib.rs").unwrap();
    assert_eq!(
        overlap,
        Overlap {
            path: "src/lib.rs".into(),
            session: b,
            with: vec![a]
        }
    );
    assert_eq!(map.touch(b, "src/lib.rs"), None, "once");
    assert_eq!(
        map.touch(a, "src/lib.rs"),
        None,
        "a touching again is no news"
    );
    assert_eq!(map.touch(c, "src/lib.rs").unwrap().with, vec![a, b]);
    assert_eq!(
        map.overlaps().collect::<Vec<_>>(),
        [("src/lib.rs", &[a, b, c][..])]
    );
}

#[test]
fn a_released_session_no_longer_overlaps_or_blocks() {
    let mut map = OverlapMap::new();
    let (a, b) = (session(1), session(2));
    map.touch(a, "src/api/users.rs");
    map.touch(a, "README.md");
    let released = map.release(a);
    assert_eq!(released.len(), 2);
    assert!(map.is_empty());
    assert_eq!(map.touch(b, "src/api/users.rs"), None);
    assert_eq!(map.blocks(&["README.md".into()]), None);
    assert_eq!(
        map.release(a),
        BTreeSet::new(),
        "releasing twice is harmless"
    );
}

#[test]
fn declared_directories_cover_everything_below_them() {
    let mut map = OverlapMap::new();
    let (a, b) = (session(1), session(2));
    map.touch(a, "src/api/users.rs");
    map.touch(b, "src/api_v2.rs");
    let blocked = |entries: &[&str]| {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        map.blocks(&entries)
    };
    assert_eq!(blocked(&["src/api/"]), Some((a, "src/api/users.rs".into())));
    assert_eq!(blocked(&["src/api"]), Some((a, "src/api/users.rs".into())));
    assert_eq!(
        blocked(&["src/api/users.rs"]),
        Some((a, "src/api/users.rs".into()))
    );
    assert_eq!(
        blocked(&["src/api_v2.rs"]),
        Some((b, "src/api_v2.rs".into()))
    );
    assert_eq!(
        blocked(&["src/ap"]),
        None,
        "a prefix of a name is not a directory"
    );
    assert_eq!(blocked(&["src/api/orders.rs", "docs/"]), None);
    assert_eq!(
        blocked(&["src/"]),
        Some((a, "src/api/users.rs".into())),
        "first in path order"
    );
    assert_eq!(blocked(&[]), None);
}

#[test]
fn event_paths_become_repo_relative() {
    let dir = Path::new("/data/worktrees/r/p/impl/1");
    assert_eq!(
        repo_relative(dir, "/data/worktrees/r/p/impl/1/src/a.rs"),
        Some("src/a.rs".into())
    );
    assert_eq!(repo_relative(dir, "src/./b.rs"), Some("src/b.rs".into()));
    assert_eq!(repo_relative(dir, "/elsewhere/a.rs"), None);
    assert_eq!(repo_relative(dir, "../a.rs"), None);
    assert_eq!(repo_relative(dir, "/data/worktrees/r/p/impl/1"), None);
}

#[derive(Debug, Clone)]
enum Op {
    Touch(u8, u8),
    Release(u8),
    Blocks(Vec<u8>),
}

const PATHS: [&str; 6] = ["a", "a/x", "a/y", "ab", "b/z", "b"];
const ENTRIES: [&str; 7] = ["a", "a/", "a/x", "ab", "b/", "b/z", "c"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, 0u8..6).prop_map(|(s, p)| Op::Touch(s, p)),
        1 => (0u8..4).prop_map(Op::Release),
        2 => prop::collection::vec(0u8..7, 0..3).prop_map(Op::Blocks),
    ]
}

fn covers(entry: &str, path: &str) -> bool {
    let entry = entry.trim_end_matches('/');
    path == entry || path.starts_with(&format!("{entry}/"))
}

proptest! {
    #[test]
    fn the_map_agrees_with_a_list_of_live_touches(ops in prop::collection::vec(op(), 1..60)) {
        let mut map = OverlapMap::new();
        // The model: live (session, path) pairs in the order they were first touched.
        let mut live: Vec<(u8, &str)> = Vec::new();
        for op in ops {
            match op {
                Op::Touch(s, p) => {
                    let path = PATHS[usize::from(p)];
                    let expected = if live.contains(&(s, path)) {
                        None
                    } else {
                        let with: Vec<SessionId> = live
                            .iter()
                            .filter(|(_, other)| *other == path)
                            .map(|(other, _)| session(u128::from(*other)))
                            .collect();
                        live.push((s, path));
                        (!with.is_empty()).then(|| Overlap {
                            path: path.to_string(),
                            session: session(u128::from(s)),
                            with,
                        })
                    };
                    prop_assert_eq!(map.touch(session(u128::from(s)), path), expected);
                }
                Op::Release(s) => {
                    let expected: BTreeSet<String> = live
                        .iter()
                        .filter(|(other, _)| *other == s)
                        .map(|(_, path)| path.to_string())
                        .collect();
                    live.retain(|(other, _)| *other != s);
                    prop_assert_eq!(map.release(session(u128::from(s))), expected);
                }
                Op::Blocks(entries) => {
                    let entries: Vec<String> =
                        entries.iter().map(|e| ENTRIES[usize::from(*e)].to_string()).collect();
                    let expected = live
                        .iter()
                        .filter(|(_, path)| entries.iter().any(|e| covers(e, path)))
                        .map(|(_, path)| *path)
                        .min()
                        .map(|path| {
                            let first = live.iter().find(|(_, p)| *p == path).map(|(s, _)| *s);
                            (session(u128::from(first.unwrap_or_default())), path.to_string())
                        });
                    prop_assert_eq!(map.blocks(&entries), expected);
                }
            }
            let overlapping = PATHS
                .iter()
                .filter(|path| live.iter().filter(|(_, p)| p == *path).count() > 1)
                .count();
            prop_assert_eq!(map.overlaps().count(), overlapping);
        }
    }
}
