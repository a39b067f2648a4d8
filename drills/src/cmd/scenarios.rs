//! `raftdrill scenarios`: the built-in library, one line each.

use crate::scenario::{BUILTIN, builtin};

/// The listing, one `name  duration  description` line per scenario.
pub fn listing() -> String {
    let mut out = String::new();
    for (name, _) in BUILTIN {
        if let Some(Ok(s)) = builtin(name) {
            out.push_str(&format!(
                "{name:<20} {:>4}s  {}\n",
                s.load.duration.as_secs(),
                s.description
            ));
        }
    }
    out
}
