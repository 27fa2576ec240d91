//! `put_tenant`: the profile and its routing items in one TransactWriteItems, so a
//! routing item never points at a missing profile and a changed phone number or
//! WABA does not leave the old one routed to this tenant.

use super::items::{Item, Key, RouteItem, encode, profile_item};
use super::{DynamoDirectory, backend};
use crate::domain::tenant::TenantProfile;
use crate::domain::{PhoneNumberId, TenantId};
use crate::ports::DirectoryError;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, Delete, Put, TransactWriteItem};
use std::collections::HashSet;

/// Reads and transactions tried before giving up on a profile that keeps changing.
const PUT_TENANT_ATTEMPTS: usize = 4;

/// One action of the transaction, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// Write the profile, if its routing is still what we read (`None`: it did not exist).
    PutProfile { read: Option<Routing> },
    /// Point a routing item at the tenant (the last put wins if another tenant had it).
    PutRoute(Key),
    /// Remove a routing item of the previous profile, if it still points at the tenant.
    DeleteRoute(Key),
}

/// The ids a profile is routed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Routing {
    tenant: TenantId,
    phone_number_id: PhoneNumberId,
    other_phone_number_ids: Vec<PhoneNumberId>,
    waba_id: String,
}

impl Routing {
    fn of(profile: &TenantProfile) -> Self {
        Self {
            tenant: profile.id.clone(),
            phone_number_id: profile.phone_number_id.clone(),
            other_phone_number_ids: profile.other_phone_number_ids.clone(),
            waba_id: profile.waba_id.clone(),
        }
    }

    /// Its routing item keys: each phone number (the default first), then its WABA
    /// membership (one item per tenant, so tenants sharing a WABA each keep theirs).
    fn keys(&self) -> Vec<Key> {
        std::iter::once(&self.phone_number_id)
            .chain(&self.other_phone_number_ids)
            .map(Key::phone)
            .chain(std::iter::once(Key::waba(&self.waba_id, &self.tenant)))
            .collect()
    }
}

/// What to write to replace `previous` with `profile`, leaving alone the old routing
/// items another tenant took over since (`foreign`).
pub(super) fn plan(
    profile: &TenantProfile,
    previous: Option<&TenantProfile>,
    foreign: &HashSet<Key>,
) -> Vec<Action> {
    let new = Routing::of(profile).keys();
    let read = previous.map(Routing::of);
    let mut actions = vec![Action::PutProfile { read: read.clone() }];
    actions.extend(new.iter().cloned().map(Action::PutRoute));
    if let Some(read) = read {
        for old in read.keys() {
            if !new.contains(&old) && !foreign.contains(&old) {
                actions.push(Action::DeleteRoute(old));
            }
        }
    }
    actions
}

/// What a cancelled transaction tells us to do next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Retry {
    /// Read the profile again and rebuild, leaving these old routes alone.
    Again { foreign: Vec<Key> },
    /// Not something a retry fixes.
    GiveUp(String),
}

/// Map each cancellation reason to its action (DynamoDB returns them in request order).
pub(super) fn after_cancellation(actions: &[Action], reasons: &[CancellationReason]) -> Retry {
    if reasons.len() != actions.len() {
        return Retry::GiveUp(format!(
            "{} cancellation reasons for {} actions",
            reasons.len(),
            actions.len()
        ));
    }
    let mut foreign = Vec::new();
    for (action, reason) in actions.iter().zip(reasons) {
        match (reason.code().unwrap_or("None"), action) {
            ("None", _) => {}
            // Another put_tenant changed the routing between our read and write.
            ("ConditionalCheckFailed", Action::PutProfile { .. }) => {}
            // The old number or WABA now belongs to another tenant: not ours to delete.
            ("ConditionalCheckFailed", Action::DeleteRoute(key)) => foreign.push(key.clone()),
            ("TransactionConflict", _) => {}
            (code, action) => return Retry::GiveUp(format!("{code} on {action:?}")),
        }
    }
    Retry::Again { foreign }
}

impl DynamoDirectory {
    pub(super) async fn put_tenant_transaction(
        &self,
        profile: &TenantProfile,
    ) -> Result<(), DirectoryError> {
        let mut foreign = HashSet::new();
        for _ in 0..PUT_TENANT_ATTEMPTS {
            let previous = self.profile(&profile.id, true).await?;
            let actions = plan(profile, previous.as_ref(), &foreign);
            let items = actions
                .iter()
                .map(|action| self.transact_item(action, profile))
                .collect::<Result<Vec<_>, _>>()?;
            self.calls.record("TransactWriteItems");
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            let err = match sent {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            let reasons = match err.as_service_error() {
                Some(e) if e.is_transaction_canceled_exception() => match e {
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => {
                        c.cancellation_reasons().to_vec()
                    }
                    _ => Vec::new(),
                },
                _ => return Err(backend("TransactWriteItems", err)),
            };
            match after_cancellation(&actions, &reasons) {
                Retry::Again { foreign: taken } => foreign.extend(taken),
                Retry::GiveUp(why) => {
                    return Err(backend(
                        "TransactWriteItems",
                        format!("put_tenant {} cancelled: {why}", profile.id),
                    ));
                }
            }
        }
        Err(backend(
            "TransactWriteItems",
            format!(
                "put_tenant {} gave up: the profile kept changing",
                profile.id
            ),
        ))
    }

    fn transact_item(
        &self,
        action: &Action,
        profile: &TenantProfile,
    ) -> Result<TransactWriteItem, DirectoryError> {
        let built = match action {
            Action::PutProfile { read } => {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(profile_item(profile)?));
                let put = match read {
                    None => put.condition_expression("attribute_not_exists(pk)"),
                    // Every routed id unchanged since our read: the deletes below
                    // remove exactly the routes the replaced profile had.
                    Some(read) => {
                        let put = put
                            .expression_attribute_values(
                                ":phone",
                                AttributeValue::S(read.phone_number_id.as_str().to_owned()),
                            )
                            .expression_attribute_values(
                                ":waba",
                                AttributeValue::S(read.waba_id.clone()),
                            );
                        if read.other_phone_number_ids.is_empty() {
                            put.condition_expression(
                                "phone_number_id = :phone AND waba_id = :waba \
                                 AND attribute_not_exists(other_phone_number_ids)",
                            )
                        } else {
                            let others = read
                                .other_phone_number_ids
                                .iter()
                                .map(|n| AttributeValue::S(n.as_str().to_owned()))
                                .collect();
                            put.condition_expression(
                                "phone_number_id = :phone AND waba_id = :waba \
                                 AND other_phone_number_ids = :others",
                            )
                            .expression_attribute_values(":others", AttributeValue::L(others))
                        }
                    }
                };
                put.build()
                    .map(|p| TransactWriteItem::builder().put(p).build())
            }
            Action::PutRoute(key) => {
                let item: Item =
                    encode(&RouteItem::new(key.clone(), &profile.id), &key.describe())?;
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .build()
                    .map(|p| TransactWriteItem::builder().put(p).build())
            }
            Action::DeleteRoute(key) => Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key.to_item()))
                // Absent is fine (nothing to remove); owned by another tenant is not ours.
                .condition_expression("attribute_not_exists(pk) OR tenant = :tenant")
                .expression_attribute_values(":tenant", tenant_value(&profile.id))
                .build()
                .map(|d| TransactWriteItem::builder().delete(d).build()),
        };
        built.map_err(|e| backend("TransactWriteItems", e))
    }
}

fn tenant_value(tenant: &TenantId) -> AttributeValue {
    AttributeValue::S(tenant.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;
    use crate::domain::tenant::{
        OnAmbiguous, TenantStatus, default_opt_in_keywords, default_opt_out_keywords,
    };
    use crate::domain::validation::FormattingPolicy;

    fn profile(phone: &str, waba: &str) -> TenantProfile {
        TenantProfile {
            id: TenantId::parse("acme").unwrap(),
            status: TenantStatus::Active,
            phone_number_id: PhoneNumberId::parse(phone).unwrap(),
            other_phone_number_ids: vec![],
            waba_id: waba.into(),
            queue: "q".into(),
            token_ref: "env:X".into(),
            max_concurrency: 1,
            throughput_mps: 80,
            intake_quota: Default::default(),
            formatting: FormattingPolicy::default(),
            on_ambiguous: OnAmbiguous::Fail,
            opt_out_keywords: default_opt_out_keywords(),
            opt_in_keywords: default_opt_in_keywords(),
            phone_quality: None,
            account_event: None,
            hold: None,
            phone_quality_at: None,
            account_event_at: None,
            marketing_messages_api: false,
            updated_at: Timestamp::from_millis(0),
        }
    }

    fn reason(code: &str) -> CancellationReason {
        CancellationReason::builder().code(code).build()
    }

    #[test]
    fn a_new_tenant_is_created_only_if_absent_with_both_routes() {
        let p = profile("1", "w1");
        assert_eq!(
            plan(&p, None, &HashSet::new()),
            [
                Action::PutProfile { read: None },
                Action::PutRoute(Key::phone(&p.phone_number_id)),
                Action::PutRoute(Key::waba("w1", &p.id)),
            ]
        );
    }

    #[test]
    fn every_number_is_routed_and_a_dropped_number_is_deleted() {
        let mut old = profile("1", "w1");
        old.other_phone_number_ids = vec![PhoneNumberId::parse("3").unwrap()];
        let mut new = profile("1", "w1");
        new.other_phone_number_ids = vec![PhoneNumberId::parse("4").unwrap()];
        let actions = plan(&new, Some(&old), &HashSet::new());
        assert!(actions.contains(&Action::PutRoute(Key::phone(
            &PhoneNumberId::parse("4").unwrap()
        ))));
        assert!(actions.contains(&Action::PutRoute(Key::phone(&new.phone_number_id))));
        assert_eq!(
            actions.last(),
            Some(&Action::DeleteRoute(Key::phone(
                &PhoneNumberId::parse("3").unwrap()
            )))
        );
        assert_eq!(actions.len(), 5);
    }

    #[test]
    fn an_unchanged_routing_deletes_nothing() {
        let p = profile("1", "w1");
        let actions = plan(&p, Some(&p), &HashSet::new());
        assert_eq!(actions.len(), 3);
        assert_eq!(
            actions[0],
            Action::PutProfile {
                read: Some(Routing::of(&p))
            }
        );
    }

    #[test]
    fn a_moved_phone_number_deletes_the_old_route_unless_another_tenant_took_it() {
        let old = profile("1", "w1");
        let new = profile("2", "w1");
        let actions = plan(&new, Some(&old), &HashSet::new());
        assert_eq!(
            actions.last(),
            Some(&Action::DeleteRoute(Key::phone(&old.phone_number_id)))
        );
        assert_eq!(actions.len(), 4);
        let taken = HashSet::from([Key::phone(&old.phone_number_id)]);
        assert_eq!(plan(&new, Some(&old), &taken).len(), 3);
    }

    #[test]
    fn a_failed_delete_condition_marks_the_route_foreign() {
        let old = profile("1", "w1");
        let new = profile("2", "w2");
        let actions = plan(&new, Some(&old), &HashSet::new());
        let reasons = [
            reason("None"),
            reason("None"),
            reason("None"),
            reason("ConditionalCheckFailed"),
            reason("None"),
        ];
        assert_eq!(
            after_cancellation(&actions, &reasons),
            Retry::Again {
                foreign: vec![Key::phone(&old.phone_number_id)]
            }
        );
    }

    #[test]
    fn a_changed_profile_or_conflict_retries_and_anything_else_gives_up() {
        let p = profile("1", "w1");
        let actions = plan(&p, None, &HashSet::new());
        let changed = [
            reason("ConditionalCheckFailed"),
            reason("None"),
            reason("None"),
        ];
        assert_eq!(
            after_cancellation(&actions, &changed),
            Retry::Again { foreign: vec![] }
        );
        let conflict = [
            reason("None"),
            reason("TransactionConflict"),
            reason("None"),
        ];
        assert_eq!(
            after_cancellation(&actions, &conflict),
            Retry::Again { foreign: vec![] }
        );
        let invalid = [reason("None"), reason("ValidationError"), reason("None")];
        assert!(matches!(
            after_cancellation(&actions, &invalid),
            Retry::GiveUp(_)
        ));
        assert!(matches!(
            after_cancellation(&actions, &[]),
            Retry::GiveUp(_)
        ));
    }
}
