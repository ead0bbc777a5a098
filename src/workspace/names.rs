//! Branch and directory names made from plan names and task ids, which may hold characters git
//! or a file system does not accept (`Add pagination to /users`, `v1..v2`, `.hidden`).
//!
//! A name that is already a safe component is kept as it is. Any other name is tidied (odd
//! characters become `-`) and gets a short hash of the original, so two names that tidy to the
//! same text (`a/b`, `a b`) still get different branches. The word `integration` is reserved for
//! the plan's integration branch and is never a task's component.

/// The component of the plan's integration branch and worktree (`ocio/<plan>/integration`).
pub(crate) const INTEGRATION: &str = "integration";

/// The prefix of every branch ocio makes.
pub(crate) const BRANCH_PREFIX: &str = "ocio";

/// Longest tidied text kept before the hash.
const MAX_KEPT: usize = 48;

/// `name` as one component of a branch name and a directory name: `[A-Za-z0-9._-]`, not
/// starting with `.` or `-`, without `..`, not ending with `.lock` or `.`, never
/// [`INTEGRATION`], at most 57 bytes. Deterministic.
pub(crate) fn component(name: &str) -> String {
    if is_safe(name) && name != INTEGRATION {
        return name.to_string();
    }
    let mut tidy = String::with_capacity(name.len().min(MAX_KEPT));
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '_' | '.') {
            c
        } else {
            '-'
        };
        let previous = tidy.chars().next_back();
        let repeated = matches!((previous, c), (Some('-'), '-') | (Some('.'), '.'));
        if !repeated {
            tidy.push(c);
        }
        if tidy.len() >= MAX_KEPT {
            break;
        }
    }
    let tidy = tidy.trim_matches(|c| c == '-' || c == '.');
    let tidy = tidy.strip_suffix(".lock").unwrap_or(tidy);
    let tidy = tidy.trim_end_matches(['-', '.']);
    let hash = format!("{:08x}", fnv1a(name.as_bytes()) as u32);
    if tidy.is_empty() {
        hash
    } else {
        format!("{tidy}-{hash}")
    }
}

/// Whether `name` can be used as a component as it is.
fn is_safe(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_KEPT
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.starts_with(['.', '-'])
        && !name.ends_with('.')
        && !name.ends_with(".lock")
        && !name.contains("..")
}

/// `ocio/<plan>/<task>`: the branch of a task's worktree.
pub(crate) fn task_branch(plan: &str, task: &str) -> String {
    format!("{BRANCH_PREFIX}/{}/{}", component(plan), component(task))
}

/// `ocio/<plan>/integration`: where the plan's finished tasks are merged.
pub(crate) fn integration_branch(plan: &str) -> String {
    format!("{BRANCH_PREFIX}/{}/{INTEGRATION}", component(plan))
}

/// `refs/ocio/plans/<plan>`: the mark that a plan claimed the name (pointing at the commit it
/// started from). Not a branch, so deleting a plan's branches leaves it, and `git branch`
/// does not list it; `git for-each-ref refs/ocio/` does.
pub(crate) fn plan_marker(plan: &str) -> String {
    format!("refs/{BRANCH_PREFIX}/plans/{}", component(plan))
}

/// FNV-1a, 64 bits: a stable hash (std's `DefaultHasher` may change between releases, and
/// these names outlive a process).
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// git's rules for one component of a ref name (`git check-ref-format`), plus what a
    /// directory name needs.
    fn valid(component: &str) -> bool {
        !component.is_empty()
            && !component.starts_with('.')
            && !component.starts_with('-')
            && !component.ends_with(".lock")
            && !component.ends_with('.')
            && !component.contains("..")
            && !component.contains("@{")
            && component != "@"
            && component
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    }

    #[test]
    fn plain_names_are_kept() {
        for name in ["impl", "add-pagination", "v1.2", "api_design", "T-1"] {
            assert_eq!(component(name), name);
        }
        assert_eq!(
            task_branch("add-pagination", "impl"),
            "ocio/add-pagination/impl"
        );
        assert_eq!(
            integration_branch("add-pagination"),
            "ocio/add-pagination/integration"
        );
    }

    #[test]
    fn odd_names_are_tidied_and_hashed() {
        let name = component("Add pagination to /users");
        assert!(name.starts_with("Add-pagination-to-users-"), "{name}");
        assert!(valid(&name));
        for odd in [
            ".hidden",
            "a..b",
            "x.lock",
            "-flag",
            "trailing.",
            "über",
            "",
            "@",
            "a@{b",
        ] {
            let name = component(odd);
            assert!(valid(&name), "{odd:?} -> {name:?}");
            assert_ne!(name, odd);
        }
        assert_ne!(
            component("a/b"),
            component("a b"),
            "different names stay apart"
        );
    }

    #[test]
    fn the_integration_word_is_reserved_for_the_plan() {
        let task = component(INTEGRATION);
        assert_ne!(task, INTEGRATION);
        assert_ne!(task_branch("p", INTEGRATION), integration_branch("p"));
    }

    #[test]
    fn git_accepts_the_branch_names() {
        for (plan, task) in [
            ("Add pagination to /users", "impl"),
            ("p", "..x.lock"),
            ("ü", "@"),
        ] {
            let branch = task_branch(plan, task);
            let status = std::process::Command::new("git")
                .args(["check-ref-format", "--branch", &branch])
                .output()
                .unwrap();
            assert!(status.status.success(), "{branch}");
        }
    }

    proptest! {
        #[test]
        fn every_name_becomes_a_valid_stable_component(name in "\\PC{0,80}") {
            let made = component(&name);
            prop_assert!(valid(&made), "{name:?} -> {made:?}");
            prop_assert!(made.len() <= MAX_KEPT + 9);
            prop_assert_eq!(component(&name), made.clone());
            prop_assert_ne!(made, INTEGRATION);
        }

        #[test]
        fn distinct_names_get_distinct_components(a in "[a-z/ .]{1,12}", b in "[a-z/ .]{1,12}") {
            prop_assume!(a != b);
            prop_assert_ne!(component(&a), component(&b));
        }
    }
}
