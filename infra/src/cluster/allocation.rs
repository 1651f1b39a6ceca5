//! Where each shard should live: the coordinator's pure allocation rule.
//!
//! The rule follows Akka Cluster Sharding's least-shard allocation: a shard without a live owner goes
//! to the member holding the fewest shards (ties: the lower reported load, then the name), at once;
//! then, while the most loaded member holds more than one shard over the least loaded, shards move from
//! the first to the second, at most `min(20, 10 % of all shards)` per round, counting the moves still in
//! flight (a shard whose lease is not yet held by the member the map names, including shards placed
//! and not yet taken: no rebalancing while a failover is still landing). A shard in flight is never
//! moved again before it lands, so a round never undoes the previous one.

use std::collections::BTreeMap;

/// Most moves in flight at once: `min(20, 10 % of all shards)` (at least one).
#[must_use]
pub fn move_budget(shards: usize) -> usize {
    (shards / 10).clamp(1, 20)
}

/// A live member as the coordinator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The member's name.
    pub name: String,
    /// Its reported load (lower is preferred when shard counts tie).
    pub load: f64,
}

/// What one round decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// The desired owner of every shard (`None`: no live member).
    pub desired: Vec<Option<String>>,
    /// Shards that had no live desired owner and got one.
    pub placed: usize,
    /// Shards moved from a live member to another to even the load.
    pub moved: usize,
}

/// One allocation round. `desired` is the previous map (one entry per shard), `owners` who holds
/// each shard's lease now, `members` the live members.
#[must_use]
pub fn allocate(
    desired: &[Option<String>],
    owners: &[Option<String>],
    members: &[Candidate],
) -> Round {
    let mut next: Vec<Option<String>> = desired.to_vec();
    if members.is_empty() {
        return Round {
            desired: next,
            placed: 0,
            moved: 0,
        };
    }
    let load: BTreeMap<&str, f64> = members
        .iter()
        .map(|member| (member.name.as_str(), member.load))
        .collect();
    let mut counts: BTreeMap<String, usize> = members
        .iter()
        .map(|member| (member.name.clone(), 0))
        .collect();
    for owner in next.iter_mut() {
        match owner {
            Some(name) if counts.contains_key(name.as_str()) => {
                *counts.get_mut(name.as_str()).expect("counted") += 1;
            }
            _ => *owner = None,
        }
    }
    let least = |counts: &BTreeMap<String, usize>| -> String {
        counts
            .iter()
            .min_by(|(a, a_count), (b, b_count)| {
                a_count
                    .cmp(b_count)
                    .then(load[a.as_str()].total_cmp(&load[b.as_str()]))
                    .then(a.cmp(b))
            })
            .map(|(name, _)| name.clone())
            .expect("members are not empty")
    };
    let mut placed = 0;
    for owner in next.iter_mut() {
        if owner.is_none() {
            let name = least(&counts);
            *counts.get_mut(&name).expect("counted") += 1;
            *owner = Some(name);
            placed += 1;
        }
    }
    // Rebalance, counting what is still in flight against the budget.
    let in_flight = next
        .iter()
        .zip(owners)
        .filter(|(want, has)| want != has)
        .count();
    let mut budget = move_budget(next.len()).saturating_sub(in_flight);
    let mut moved = 0;
    while budget > 0 {
        let to = least(&counts);
        let (from, from_count) = counts
            .iter()
            .max_by(|(a, a_count), (b, b_count)| {
                a_count
                    .cmp(b_count)
                    .then(load[a.as_str()].total_cmp(&load[b.as_str()]))
                    .then(b.cmp(a))
            })
            .map(|(name, count)| (name.clone(), *count))
            .expect("members are not empty");
        if from_count <= counts[&to] + 1 {
            break;
        }
        // A settled shard of `from` (its lease is where the map says): the highest numbered, so
        // that rounds pick the same shards whatever the order they are computed in.
        let Some(shard) = (0..next.len()).rev().find(|&shard| {
            next[shard].as_deref() == Some(from.as_str())
                && owners.get(shard).and_then(Option::as_deref) == Some(from.as_str())
        }) else {
            break;
        };
        next[shard] = Some(to.clone());
        *counts.get_mut(&from).expect("counted") -= 1;
        *counts.get_mut(&to).expect("counted") += 1;
        budget -= 1;
        moved += 1;
    }
    Round {
        desired: next,
        placed,
        moved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[&str]) -> Vec<Candidate> {
        names
            .iter()
            .map(|name| Candidate {
                name: (*name).to_owned(),
                load: 0.0,
            })
            .collect()
    }

    fn counts(map: &[Option<String>]) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for owner in map.iter().flatten() {
            *counts.entry(owner.clone()).or_default() += 1;
        }
        counts
    }

    #[test]
    fn the_budget_is_ten_percent_capped_at_twenty() {
        assert_eq!(move_budget(256), 20);
        assert_eq!(move_budget(100), 10);
        assert_eq!(move_budget(5), 1);
    }

    #[test]
    fn a_fresh_cluster_places_every_shard_evenly_at_once() {
        let round = allocate(
            &vec![None; 256],
            &vec![None; 256],
            &members(&["a", "b", "c"]),
        );
        assert_eq!(round.placed, 256);
        assert_eq!(round.moved, 0);
        let counts = counts(&round.desired);
        assert_eq!(counts.values().sum::<usize>(), 256);
        assert!(
            counts.values().all(|&count| count == 85 || count == 86),
            "{counts:?}"
        );
    }

    #[test]
    fn a_dead_members_shards_go_to_the_live_ones_without_moving_others() {
        let first = allocate(
            &vec![None; 256],
            &vec![None; 256],
            &members(&["a", "b", "c"]),
        );
        let owners = first.desired.clone();
        let round = allocate(&first.desired, &owners, &members(&["a", "c"]));
        let counts = counts(&round.desired);
        assert_eq!(counts.len(), 2);
        assert_eq!(counts.values().sum::<usize>(), 256);
        assert!(counts.values().all(|&count| count == 128), "{counts:?}");
        for (before, after) in first.desired.iter().zip(&round.desired) {
            if before.as_deref() != Some("b") {
                assert_eq!(before, after, "a live member's shard stayed");
            }
        }
        assert_eq!(round.moved, 0);
    }

    #[test]
    fn a_joining_member_gets_shards_within_the_budget_every_round_until_even() {
        let mut desired =
            allocate(&vec![None; 256], &vec![None; 256], &members(&["a", "b"])).desired;
        let mut owners = desired.clone();
        let everyone = members(&["a", "b", "c"]);
        let mut rounds = 0;
        loop {
            let round = allocate(&desired, &owners, &everyone);
            assert!(round.moved <= 20, "{}", round.moved);
            if rounds == 0 {
                assert!(
                    round.moved > 0,
                    "the joining member gets shards in the first round"
                );
            }
            desired = round.desired;
            if round.moved == 0 {
                break;
            }
            // The moves land before the next round.
            owners = desired.clone();
            rounds += 1;
            assert!(rounds < 20, "converges");
        }
        let counts = counts(&desired);
        assert!(
            counts.values().all(|&count| (85..=86).contains(&count)),
            "{counts:?}"
        );
    }

    #[test]
    fn moves_in_flight_count_against_the_budget_and_are_not_moved_again() {
        let desired = allocate(&vec![None; 256], &vec![None; 256], &members(&["a", "b"])).desired;
        let owners = desired.clone();
        let everyone = members(&["a", "b", "c"]);
        let first = allocate(&desired, &owners, &everyone);
        assert_eq!(first.moved, 20);
        // Nothing landed yet: the next round moves nothing and keeps the moves as they are.
        let second = allocate(&first.desired, &owners, &everyone);
        assert_eq!(second.moved, 0);
        assert_eq!(second.desired, first.desired);
    }

    #[test]
    fn a_balanced_map_stays_as_it_is() {
        let first = allocate(
            &vec![None; 256],
            &vec![None; 256],
            &members(&["a", "b", "c"]),
        );
        let again = allocate(&first.desired, &first.desired, &members(&["a", "b", "c"]));
        assert_eq!(again.desired, first.desired);
        assert_eq!((again.placed, again.moved), (0, 0));
    }

    #[test]
    fn without_members_the_map_is_left_as_it_is() {
        let map = vec![Some("a".to_owned()); 4];
        let round = allocate(&map, &[None, None, None, None], &[]);
        assert_eq!(round.desired, map);
        assert_eq!((round.placed, round.moved), (0, 0));
    }

    #[test]
    fn ties_go_to_the_less_loaded_member() {
        let mut candidates = members(&["a", "b"]);
        candidates[0].load = 9.0;
        let round = allocate(&[None], &[None], &candidates);
        assert_eq!(round.desired, vec![Some("b".to_owned())]);
    }
}
