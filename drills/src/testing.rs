//! Planted failures for the tests of the verdict's fail-closed paths, switched on by the
//! environment variable `RAFTDRILL_TEST_HOOKS` (a comma-separated list of hook names). Nothing
//! is planted without it; the README lists the hooks.

/// A planted failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Every fault's undo fails (`fail-undo`).
    FailUndo,
    /// The read-back task of the first key panics (`panic-read-back`).
    PanicReadBack,
    /// The task that follows the operation stream panics at its end (`panic-tracker`).
    PanicTracker,
}

impl Hook {
    fn name(self) -> &'static str {
        match self {
            Hook::FailUndo => "fail-undo",
            Hook::PanicReadBack => "panic-read-back",
            Hook::PanicTracker => "panic-tracker",
        }
    }
}

/// The environment variable that plants failures.
pub const ENV: &str = "RAFTDRILL_TEST_HOOKS";

/// What a planted failure says of itself.
pub const PLANTED: &str = "planted by RAFTDRILL_TEST_HOOKS";

/// Whether `hook` is planted.
pub fn hook(hook: Hook) -> bool {
    std::env::var(ENV).is_ok_and(|v| v.split(',').any(|h| h.trim() == hook.name()))
}
