//! Flags that take one of a few words: clap lists the words in `--help`, in shell completions
//! and in its error for a typo, and the type's own `FromStr` (the one scenario files use) turns
//! the word into the value.

use std::str::FromStr;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use loadgen::keys::Distribution;
use loadgen::target::TargetKind;
use loadgen::{Engine, WorkloadKind};
use raftdrill_wire::Consistency;
use target_cluster::store::{FsyncPolicy, StoreKind};

/// A type whose values are spelled as words on the command line.
pub trait Word: FromStr<Err = String> + Clone + Send + Sync + 'static {
    /// Every value, in the order `--help` lists them.
    const ALL: &'static [Self];
    /// The value's word.
    fn word(&self) -> &'static str;
}

/// The value parser of a flag that takes one of `T`'s words.
pub fn one_of<T: Word>() -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(T::ALL.iter().map(Word::word)).try_map(|s| s.parse::<T>())
}

macro_rules! words {
    ($t:ty: $($v:expr),+ $(,)?) => {
        impl Word for $t {
            const ALL: &'static [Self] = &[$($v),+];
            fn word(&self) -> &'static str {
                self.as_str()
            }
        }
    };
}

words!(TargetKind: TargetKind::Reference, TargetKind::Etcd);
words!(WorkloadKind: WorkloadKind::A, WorkloadKind::B, WorkloadKind::C, WorkloadKind::D,
    WorkloadKind::F, WorkloadKind::W);
words!(Distribution: Distribution::Uniform, Distribution::Zipfian, Distribution::Latest);
words!(Consistency: Consistency::Linearizable, Consistency::Lease, Consistency::Stale,
    Consistency::Session);
words!(Engine: Engine::Goose, Engine::Tasks);
words!(FsyncPolicy: FsyncPolicy::Always, FsyncPolicy::Never);
words!(StoreKind: StoreKind::Disk, StoreKind::Memory);

#[cfg(test)]
mod tests {
    use super::*;

    /// Each listed word parses back to its value, and no word is listed twice.
    fn round_trips<T: Word + PartialEq + std::fmt::Debug>() {
        let mut seen = std::collections::BTreeSet::new();
        for v in T::ALL {
            assert_eq!(v.word().parse::<T>().as_ref(), Ok(v));
            assert!(seen.insert(v.word()), "{} listed twice", v.word());
        }
    }

    #[test]
    fn every_word_is_its_value() {
        round_trips::<TargetKind>();
        round_trips::<WorkloadKind>();
        round_trips::<Distribution>();
        round_trips::<Consistency>();
        round_trips::<Engine>();
        round_trips::<FsyncPolicy>();
        round_trips::<StoreKind>();
    }
}
