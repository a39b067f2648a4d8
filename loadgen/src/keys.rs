//! Key choice: the uniform, zipfian and latest distributions of YCSB.

use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;

/// The zipfian skew YCSB uses by default.
pub const ZIPFIAN_THETA: f64 = 0.99;

/// How keys are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// Zipfian with θ = 0.99: a few keys take most of the traffic. Which keys are hot is
    /// scrambled over the key space, as YCSB's `ScrambledZipfianGenerator` does.
    Zipfian,
    /// Zipfian over recency: the most recently inserted keys are the hottest.
    Latest,
}

impl Distribution {
    /// The spelling used in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Zipfian => "zipfian",
            Distribution::Latest => "latest",
        }
    }
}

impl std::str::FromStr for Distribution {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "uniform" => Ok(Distribution::Uniform),
            "zipfian" => Ok(Distribution::Zipfian),
            "latest" => Ok(Distribution::Latest),
            other => Err(format!(
                "unknown distribution {other:?} (expected uniform, zipfian or latest)"
            )),
        }
    }
}

/// The zipfian generator of Gray et al., "Quickly Generating Billion-Record Synthetic
/// Databases" (SIGMOD 1994), as YCSB uses it: rank 0 is the hottest item.
#[derive(Debug, Clone)]
pub struct Zipfian {
    items: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipfian {
    /// A generator over `items` ranks (at least 1) with skew `theta` (in (0, 1)).
    ///
    /// Construction sums `items` terms, so it costs O(items) once.
    pub fn new(items: u64, theta: f64) -> Self {
        let items = items.max(1);
        let zetan = zeta(items, theta);
        let zeta2 = zeta(2.min(items), theta);
        let alpha = 1.0 / (1.0 - theta);
        let eta = if items > 1 {
            (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan)
        } else {
            0.0
        };
        Self {
            items,
            theta,
            alpha,
            zetan,
            eta,
        }
    }

    /// The share of draws that theory gives to rank 0: `1 / zeta(items, theta)`.
    pub fn hottest_share(&self) -> f64 {
        1.0 / self.zetan
    }

    /// Draw one rank in `[0, items)`.
    pub fn rank(&self, rng: &mut SplitMix64) -> u64 {
        let u = rng.next_f64();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.items - 1);
        }
        let rank = (self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        rank.min(self.items - 1)
    }
}

fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

/// Chooses key ids from a key space of `keys` ids, `0..keys`.
#[derive(Debug, Clone)]
pub struct KeyChooser {
    keys: u64,
    distribution: Distribution,
    zipf: Option<Zipfian>,
}

/// A prime larger than any key count we accept; multiplying by it modulo `keys` is a
/// permutation of `0..keys`, which spreads zipfian hot ranks over the key space.
const SCRAMBLE_PRIME: u128 = 2_305_843_009_213_693_951; // 2^61 - 1

impl KeyChooser {
    /// A chooser over `keys` ids (at least 1).
    pub fn new(keys: u64, distribution: Distribution) -> Self {
        let keys = keys.max(1);
        let zipf = match distribution {
            Distribution::Uniform => None,
            Distribution::Zipfian | Distribution::Latest => Some(Zipfian::new(keys, ZIPFIAN_THETA)),
        };
        Self {
            keys,
            distribution,
            zipf,
        }
    }

    /// The distribution in use.
    pub fn distribution(&self) -> Distribution {
        self.distribution
    }

    /// Draw a key id. `latest` is the highest id known to exist (used by
    /// [`Distribution::Latest`] only): rank 0 maps to it, rank 1 to the one before, and so on.
    pub fn choose(&self, rng: &mut SplitMix64, latest: u64) -> u64 {
        match (&self.zipf, self.distribution) {
            (Some(z), Distribution::Zipfian) => {
                let rank = z.rank(rng) as u128;
                ((rank * SCRAMBLE_PRIME + 0x5bd1_e995) % self.keys as u128) as u64
            }
            (Some(z), Distribution::Latest) => {
                let rank = z.rank(rng);
                latest - rank % (latest + 1)
            }
            _ => rng.below(self.keys),
        }
    }
}

/// The key string for a key id, zero-padded so keys sort in id order.
pub fn key_name(id: u64) -> String {
    format!("k{id:010}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipfian_hottest_share_matches_theory() {
        let z = Zipfian::new(1000, ZIPFIAN_THETA);
        let mut rng = SplitMix64::new(42);
        let draws = 200_000;
        let mut hits = [0u64; 3];
        for _ in 0..draws {
            let r = z.rank(&mut rng);
            assert!(r < 1000);
            if r < 3 {
                hits[r as usize] += 1;
            }
        }
        let theory = z.hottest_share();
        let share = hits[0] as f64 / draws as f64;
        // 1/zeta(1000, 0.99) is about 0.134; allow 1 percentage point.
        assert!((share - theory).abs() < 0.01, "share {share} vs {theory}");
        // Rank 1 gets 1/2^θ of rank 0's share.
        let second = hits[1] as f64 / draws as f64;
        let theory2 = theory / 2f64.powf(ZIPFIAN_THETA);
        assert!((second - theory2).abs() < 0.01, "{second} vs {theory2}");
    }

    #[test]
    fn scrambled_zipfian_stays_in_range_and_is_skewed() {
        let c = KeyChooser::new(500, Distribution::Zipfian);
        let mut rng = SplitMix64::new(9);
        let mut counts = vec![0u32; 500];
        for _ in 0..50_000 {
            counts[c.choose(&mut rng, 0) as usize] += 1;
        }
        let max = *counts.iter().max().unwrap() as f64 / 50_000.0;
        assert!(max > 0.1, "hottest key share {max}");
    }

    #[test]
    fn latest_prefers_recent_ids() {
        let c = KeyChooser::new(1000, Distribution::Latest);
        let mut rng = SplitMix64::new(3);
        let mut at_latest = 0;
        for _ in 0..10_000 {
            let id = c.choose(&mut rng, 1500);
            assert!(id <= 1500);
            if id == 1500 {
                at_latest += 1;
            }
        }
        assert!(at_latest > 1000, "{at_latest}");
    }

    #[test]
    fn uniform_covers_the_space() {
        let c = KeyChooser::new(10, Distribution::Uniform);
        let mut rng = SplitMix64::new(5);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            seen[c.choose(&mut rng, 0) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
