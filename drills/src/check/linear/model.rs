//! The model: one register per key, with values interned to small integers.
//!
//! The search only ever asks one question of the model: "can this operation take effect on
//! this register value, and what value does it leave?". Keeping the state a `u32` makes that
//! question a couple of compares and lets the search cache `(operations done, value)` pairs
//! cheaply.

/// An interned register value: [`ABSENT`] is the missing key, `1..` index the key's value table.
pub(crate) type Value = u32;

/// The register value of a key that does not exist.
pub(crate) const ABSENT: Value = 0;

/// What an operation does to, or asks of, the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// A read that returned this value.
    Read(Value),
    /// A blind write (update or insert).
    Write(Value),
    /// A compare-and-swap that found `expect` and swapped in `new` (or, when its outcome is
    /// unknown, one that would have).
    Cas {
        /// The value the swap required.
        expect: Value,
        /// The value it put there.
        new: Value,
    },
    /// A compare-and-swap that found another value than `expect`: a read that saw "not expect".
    CasRefused {
        /// The value the swap required and did not find.
        expect: Value,
    },
}

impl Action {
    /// The register after this action on `state`, or `None` when the action cannot happen on
    /// that value (a read of another value, a swap that finds another value, a refused swap
    /// that finds its own value).
    pub(crate) fn apply(self, state: Value) -> Option<Value> {
        match self {
            Action::Read(v) => (state == v).then_some(state),
            Action::Write(v) => Some(v),
            Action::Cas { expect, new } => (state == expect).then_some(new),
            Action::CasRefused { expect } => (state != expect).then_some(state),
        }
    }

    /// Whether the action can never change the register. Such an action, once it can take
    /// effect, may be linearized at once without losing any linearization (see the search).
    pub(crate) fn is_read_only(self) -> bool {
        matches!(self, Action::Read(_) | Action::CasRefused { .. })
    }

    /// Whether the action may change the register (and so can be the source of a value).
    pub(crate) fn writes(self) -> Option<Value> {
        match self {
            Action::Write(v) | Action::Cas { new: v, .. } => Some(v),
            Action::Read(_) | Action::CasRefused { .. } => None,
        }
    }

    /// The value this action needs the register to hold, if it needs one.
    pub(crate) fn needs(self) -> Option<Value> {
        match self {
            Action::Read(v) | Action::Cas { expect: v, .. } => Some(v),
            Action::Write(_) | Action::CasRefused { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_take_effect_only_on_the_values_they_allow() {
        assert_eq!(Action::Read(2).apply(2), Some(2));
        assert_eq!(Action::Read(2).apply(ABSENT), None);
        assert_eq!(Action::Write(3).apply(ABSENT), Some(3));
        let cas = Action::Cas { expect: 1, new: 4 };
        assert_eq!(cas.apply(1), Some(4));
        assert_eq!(cas.apply(4), None);
        let refused = Action::CasRefused { expect: 1 };
        assert_eq!(refused.apply(1), None);
        assert_eq!(refused.apply(ABSENT), Some(ABSENT));
        assert!(refused.is_read_only() && Action::Read(1).is_read_only());
        assert!(!cas.is_read_only() && !Action::Write(1).is_read_only());
    }
}
