//! The pure logic of merging customers: which merges are allowed, what proves two customers are
//! one person, and where a merged customer's messages go. The tenant's routing desk holds the
//! [`MergeMap`] (one authority per tenant, so two merges can never race into a loop); the HTTP
//! layer checks the evidence against both customers' identities with [`check_evidence`].

use std::collections::BTreeMap;

use crest_proto::customers::{
    CustomerMergeUndone, CustomersMerged, EvidenceKind, IdentityKind, IdentityRecorded,
    MergeEvidence,
};
use crest_proto::{CustomerId, MergeId};
use serde::{Deserialize, Serialize};

/// One merge as the desk remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRecord {
    /// The customer merged away.
    pub from: CustomerId,
    /// The customer that remains.
    pub into: CustomerId,
    /// True once undone.
    pub undone: bool,
    /// When it was merged (ms since the epoch).
    pub merged_at_ms: u64,
}

/// Why a merge or an undo is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MergeRefusal {
    /// `from` and `into` are the same customer.
    #[error("a customer cannot be merged into itself")]
    SameCustomer,
    /// The customers belong to different tenants.
    #[error("customers of different tenants are never merged")]
    OtherTenant,
    /// `from` is already merged into someone.
    #[error("customer {customer} is already merged into {into} (merge {merge}); undo that first")]
    AlreadyMerged {
        /// The customer.
        customer: String,
        /// Where it went.
        into: String,
        /// By which merge.
        merge: String,
    },
    /// `into` was merged away: merge into the customer it was merged into instead.
    #[error(
        "customer {customer} was merged into {into} (merge {merge}); merge into {into} instead"
    )]
    IntoMergedAway {
        /// The customer.
        customer: String,
        /// Where it went.
        into: String,
        /// By which merge.
        merge: String,
    },
    /// The merge would make a loop (`into` is already merged, directly or not, into `from`).
    #[error("merging {from} into {into} would make a loop")]
    Loop {
        /// The customer to merge away.
        from: String,
        /// The customer to keep.
        into: String,
    },
    /// A merge id used before.
    #[error("merge {0} exists already")]
    DuplicateId(String),
    /// No merge with this id.
    #[error("no merge {0}")]
    UnknownMerge(String),
    /// The merge was undone already.
    #[error("merge {0} was undone already")]
    AlreadyUndone(String),
}

/// Every merge of a tenant, and the customers currently merged away.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeMap {
    /// Every merge ever made, undone ones included.
    merges: BTreeMap<MergeId, MergeRecord>,
    /// Customers merged away, to the merge that took them.
    merged_away: BTreeMap<CustomerId, MergeId>,
}

/// Longest chain of merges followed (a chain is always finite; this guards a corrupt state).
const MAX_CHAIN: usize = 64;

impl MergeMap {
    /// Checks that `from` can be merged into `into` with the new id `merge`.
    pub fn check_merge(
        &self,
        merge: &MergeId,
        from: &CustomerId,
        into: &CustomerId,
    ) -> Result<(), MergeRefusal> {
        if from.tenant() != into.tenant() || merge.tenant() != from.tenant() {
            return Err(MergeRefusal::OtherTenant);
        }
        if from == into {
            return Err(MergeRefusal::SameCustomer);
        }
        if self.merges.contains_key(merge) {
            return Err(MergeRefusal::DuplicateId(merge.key()));
        }
        if let Some((merge, record)) = self.active_merge_of(from) {
            return Err(MergeRefusal::AlreadyMerged {
                customer: from.key().to_owned(),
                into: record.into.key().to_owned(),
                merge: merge.key(),
            });
        }
        if let Some((merge, record)) = self.active_merge_of(into) {
            return Err(MergeRefusal::IntoMergedAway {
                customer: into.key().to_owned(),
                into: record.into.key().to_owned(),
                merge: merge.key(),
            });
        }
        // Both are roots now, so no loop can form; kept as a guard should the rules above change.
        if self.surviving(into) == *from {
            return Err(MergeRefusal::Loop {
                from: from.key().to_owned(),
                into: into.key().to_owned(),
            });
        }
        Ok(())
    }

    /// Checks that merge `merge` can be undone; answers it.
    pub fn check_undo(&self, merge: &MergeId) -> Result<&MergeRecord, MergeRefusal> {
        let record = self
            .merges
            .get(merge)
            .ok_or_else(|| MergeRefusal::UnknownMerge(merge.key()))?;
        if record.undone {
            return Err(MergeRefusal::AlreadyUndone(merge.key()));
        }
        Ok(record)
    }

    /// Records a merge (its checks passed).
    pub fn apply_merged(&mut self, merged: &CustomersMerged, at_ms: u64) {
        debug_assert!(
            self.check_merge(&merged.merge, &merged.from, &merged.into)
                .is_ok(),
            "a merge is recorded only after its checks"
        );
        self.merges.insert(
            merged.merge.clone(),
            MergeRecord {
                from: merged.from.clone(),
                into: merged.into.clone(),
                undone: false,
                merged_at_ms: at_ms,
            },
        );
        self.merged_away
            .insert(merged.from.clone(), merged.merge.clone());
    }

    /// Records an undo.
    pub fn apply_undone(&mut self, undone: &CustomerMergeUndone) {
        let Some(record) = self.merges.get_mut(&undone.merge) else {
            return;
        };
        record.undone = true;
        if self.merged_away.get(&record.from) == Some(&undone.merge) {
            self.merged_away.remove(&record.from);
        }
    }

    /// A merge by id.
    #[must_use]
    pub fn merge(&self, merge: &MergeId) -> Option<&MergeRecord> {
        self.merges.get(merge)
    }

    /// The active merge that took `customer` away, if any.
    #[must_use]
    pub fn active_merge_of(&self, customer: &CustomerId) -> Option<(&MergeId, &MergeRecord)> {
        let merge = self.merged_away.get(customer)?;
        let record = self.merges.get(merge)?;
        Some((merge, record))
    }

    /// The customer `customer` is merged into now, if any (the next hop of its messages; the
    /// customer at the end of the chain routes them).
    #[must_use]
    pub fn merged_into(&self, customer: &CustomerId) -> Option<CustomerId> {
        self.active_merge_of(customer)
            .map(|(_, record)| record.into.clone())
    }

    /// The customer whose conversations `customer`'s messages go to: itself unless merged away,
    /// else the end of its chain of merges.
    #[must_use]
    pub fn surviving(&self, customer: &CustomerId) -> CustomerId {
        let mut current = customer.clone();
        for _ in 0..MAX_CHAIN {
            match self.active_merge_of(&current) {
                Some((_, record)) => current = record.into.clone(),
                None => return current,
            }
        }
        current
    }

    /// Every customer merged into `customer`, directly or through others (not `customer`
    /// itself), in the order of their merges.
    #[must_use]
    pub fn absorbed(&self, customer: &CustomerId) -> Vec<CustomerId> {
        let mut found = Vec::new();
        let mut frontier = vec![customer.clone()];
        // Active merges form a forest (a merge needs both customers not merged away), and a
        // customer already found is never followed again, so this ends.
        while let Some(next) = frontier.pop() {
            let mut children: Vec<&MergeRecord> = self
                .merges
                .values()
                .filter(|record| !record.undone && record.into == next)
                .collect();
            children.sort_by_key(|record| record.merged_at_ms);
            for child in children {
                if child.from != *customer && !found.contains(&child.from) {
                    found.push(child.from.clone());
                    frontier.push(child.from.clone());
                }
            }
        }
        found
    }
}

/// Why evidence does not prove two customers are one person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakEvidence {
    /// The evidence names nothing.
    #[error("the evidence's value is empty")]
    Empty,
    /// One of the customers does not have the phone as a verified identity.
    #[error("phone {phone} is not a verified identity of customer {customer}")]
    PhoneNotVerified {
        /// The phone.
        phone: String,
        /// The customer lacking it.
        customer: String,
    },
    /// One of the customers does not own the order.
    #[error("order {order} is not an order of customer {customer}")]
    OrderNotOwned {
        /// The order.
        order: String,
        /// The customer not owning it.
        customer: String,
    },
}

/// Checks that `evidence` proves `from` and `into` are one person, given each one's identities
/// (the latest record of each identity counts): a phone both have as a verified identity, or an
/// order both own. A name is never evidence (there is no such kind).
pub fn check_evidence(
    evidence: &MergeEvidence,
    from: (&CustomerId, &[IdentityRecorded]),
    into: (&CustomerId, &[IdentityRecorded]),
) -> Result<(), WeakEvidence> {
    let value = evidence.value.trim();
    if value.is_empty() {
        return Err(WeakEvidence::Empty);
    }
    for (customer, identities) in [from, into] {
        let latest = |kind: IdentityKind| {
            identities
                .iter()
                .rev()
                .find(|recorded| recorded.identity.kind == kind && recorded.identity.value == value)
        };
        match evidence.kind {
            EvidenceKind::VerifiedPhone => {
                if !latest(IdentityKind::Phone).is_some_and(|recorded| recorded.verified) {
                    return Err(WeakEvidence::PhoneNotVerified {
                        phone: value.to_owned(),
                        customer: customer.key().to_owned(),
                    });
                }
            }
            EvidenceKind::SharedOrder => {
                if latest(IdentityKind::Order).is_none() {
                    return Err(WeakEvidence::OrderNotOwned {
                        order: value.to_owned(),
                        customer: customer.key().to_owned(),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crest_proto::TenantId;
    use crest_proto::customers::Identity;

    use super::*;

    fn tenant() -> TenantId {
        TenantId::new("acme").expect("valid tenant")
    }

    fn customer(key: &str) -> CustomerId {
        CustomerId::new(&tenant(), key).expect("valid customer")
    }

    fn merge_id(n: u128) -> MergeId {
        MergeId::from_parts(tenant(), n)
    }

    fn merged(map: &mut MergeMap, n: u128, from: &str, into: &str) -> Result<(), MergeRefusal> {
        let merge = merge_id(n);
        map.check_merge(&merge, &customer(from), &customer(into))?;
        map.apply_merged(
            &CustomersMerged {
                merge,
                from: customer(from),
                into: customer(into),
                reason: "same buyer".to_owned(),
                evidence: MergeEvidence {
                    kind: EvidenceKind::VerifiedPhone,
                    value: "+861".to_owned(),
                },
                by: "admin:k".to_owned(),
            },
            u64::try_from(n).expect("small"),
        );
        Ok(())
    }

    fn undone(map: &mut MergeMap, n: u128) -> Result<(), MergeRefusal> {
        map.check_undo(&merge_id(n))?;
        let record = map.check_undo(&merge_id(n))?.clone();
        map.apply_undone(&CustomerMergeUndone {
            merge: merge_id(n),
            from: record.from,
            into: record.into,
            by: "admin:k".to_owned(),
        });
        Ok(())
    }

    #[test]
    fn a_merge_routes_from_to_into_and_undo_separates_them_again() {
        let mut map = MergeMap::default();
        merged(&mut map, 1, "web-1", "wx-1").expect("merge allowed");
        assert_eq!(map.surviving(&customer("web-1")), customer("wx-1"));
        assert_eq!(map.surviving(&customer("wx-1")), customer("wx-1"));
        assert_eq!(map.absorbed(&customer("wx-1")), vec![customer("web-1")]);
        undone(&mut map, 1).expect("undo allowed");
        assert_eq!(map.surviving(&customer("web-1")), customer("web-1"));
        assert!(map.absorbed(&customer("wx-1")).is_empty());
        assert_eq!(
            undone(&mut map, 1),
            Err(MergeRefusal::AlreadyUndone(merge_id(1).key()))
        );
        merged(&mut map, 2, "web-1", "wx-1").expect("merged again after the undo");
    }

    #[test]
    fn self_merges_merged_away_customers_and_loops_are_refused() {
        let mut map = MergeMap::default();
        assert_eq!(
            merged(&mut map, 1, "a", "a"),
            Err(MergeRefusal::SameCustomer)
        );
        merged(&mut map, 2, "a", "b").expect("a into b");
        assert!(matches!(
            merged(&mut map, 3, "a", "c"),
            Err(MergeRefusal::AlreadyMerged { .. })
        ));
        assert!(matches!(
            merged(&mut map, 4, "c", "a"),
            Err(MergeRefusal::IntoMergedAway { .. })
        ));
        // b into a would loop: a is merged away, so it is refused as such.
        assert!(matches!(
            merged(&mut map, 5, "b", "a"),
            Err(MergeRefusal::IntoMergedAway { .. })
        ));
        assert!(matches!(
            merged(&mut map, 2, "x", "y"),
            Err(MergeRefusal::DuplicateId(_))
        ));
        assert_eq!(
            undone(&mut map, 9),
            Err(MergeRefusal::UnknownMerge(merge_id(9).key()))
        );
    }

    #[test]
    fn chains_resolve_to_their_end_and_list_every_absorbed_customer() {
        let mut map = MergeMap::default();
        merged(&mut map, 1, "a", "b").expect("a into b");
        merged(&mut map, 2, "b", "c").expect("b into c");
        assert_eq!(map.surviving(&customer("a")), customer("c"));
        assert_eq!(map.merged_into(&customer("a")), Some(customer("b")));
        assert_eq!(map.merged_into(&customer("c")), None);
        assert_eq!(
            map.absorbed(&customer("c")),
            vec![customer("b"), customer("a")]
        );
        undone(&mut map, 2).expect("undo b into c");
        assert_eq!(map.surviving(&customer("a")), customer("b"));
        assert_eq!(map.absorbed(&customer("b")), vec![customer("a")]);
    }

    #[test]
    fn customers_of_two_tenants_are_never_merged() {
        let map = MergeMap::default();
        let other = CustomerId::new(&TenantId::new("other").expect("valid"), "a").expect("valid");
        assert_eq!(
            map.check_merge(&merge_id(1), &customer("a"), &other),
            Err(MergeRefusal::OtherTenant)
        );
    }

    fn identity(kind: IdentityKind, value: &str, verified: bool) -> IdentityRecorded {
        IdentityRecorded {
            identity: Identity {
                kind,
                channel: None,
                value: value.to_owned(),
            },
            verified,
        }
    }

    #[test]
    fn only_a_phone_verified_on_both_or_an_order_both_own_is_evidence() {
        let a = customer("a");
        let b = customer("b");
        let phone = MergeEvidence {
            kind: EvidenceKind::VerifiedPhone,
            value: "+8613800138000".to_owned(),
        };
        let verified = [identity(IdentityKind::Phone, "+8613800138000", true)];
        let unverified = [identity(IdentityKind::Phone, "+8613800138000", false)];
        assert_eq!(
            check_evidence(&phone, (&a, &verified), (&b, &verified)),
            Ok(())
        );
        assert!(matches!(
            check_evidence(&phone, (&a, &verified), (&b, &unverified)),
            Err(WeakEvidence::PhoneNotVerified { customer, .. }) if customer == "b"
        ));
        // A later record that withdraws the verification wins.
        let withdrawn = [
            identity(IdentityKind::Phone, "+8613800138000", true),
            identity(IdentityKind::Phone, "+8613800138000", false),
        ];
        assert!(check_evidence(&phone, (&a, &withdrawn), (&b, &verified)).is_err());
        // An email with the same value is not a phone.
        let email = [identity(IdentityKind::Email, "+8613800138000", true)];
        assert!(check_evidence(&phone, (&a, &email), (&b, &verified)).is_err());
        let order = MergeEvidence {
            kind: EvidenceKind::SharedOrder,
            value: "A1024".to_owned(),
        };
        let owns = [identity(IdentityKind::Order, "A1024", false)];
        assert_eq!(check_evidence(&order, (&a, &owns), (&b, &owns)), Ok(()));
        assert!(matches!(
            check_evidence(&order, (&a, &owns), (&b, &[])),
            Err(WeakEvidence::OrderNotOwned { .. })
        ));
        let blank = MergeEvidence {
            kind: EvidenceKind::SharedOrder,
            value: "  ".to_owned(),
        };
        assert_eq!(
            check_evidence(&blank, (&a, &owns), (&b, &owns)),
            Err(WeakEvidence::Empty)
        );
    }
}
