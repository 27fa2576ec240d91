//! What a phone number's quality and the account's state mean for sending: the one
//! table mapping Meta's `phone_number_quality_update` and `account_update` webhooks
//! to actions (DESIGN §5: what belongs to a tenant is handled at that level).
//!
//! | signal (webhook `event`)                                   | action                                          |
//! | ---------------------------------------------------------- | ----------------------------------------------- |
//! | quality `FLAGGED`, or a `RED` quality                      | hold marketing (MARKETING templates suppressed, `number_quality_low`) and alarm |
//! | quality `DOWNGRADE` (lower messaging tier)                 | alarm                                           |
//! | quality `UPGRADE`, `THROUGHPUT_UPGRADE`, `ONBOARDING`, `GREEN`, anything else | nothing (ends a marketing hold) |
//! | account `ACCOUNT_RESTRICTION`                              | hold the tenant (its probe tests the restriction) and alarm |
//! | account `DISABLED_UPDATE` (ban), `ACCOUNT_DELETED`, `ACCOUNT_OFFBOARDED`, `PARTNER_REMOVED` | hold the tenant and alarm |
//! | account `ACCOUNT_VIOLATION`                                | alarm                                           |
//! | any other account event (`VERIFIED_ACCOUNT`, pricing tiers...) | nothing                                     |
//!
//! The marketing hold is derived from the stored quality (no state of its own): the
//! next quality update that is not low ends it. A tenant hold is the sender's hold
//! ([`super::tenant::TenantHold`]): it ends when a probe send succeeds, with a new
//! token, or by `wa tenants resume`.

use super::tenant::TenantProfile;

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountAction {
    /// MARKETING templates are suppressed while the stored quality is low.
    pub hold_marketing: bool,
    /// The tenant is put on hold (as after a tenant-class Graph failure).
    pub hold_tenant: bool,
    /// Operators are alarmed (`AccountAlert` metric).
    pub alarm: bool,
}

/// Whether a stored phone quality (`"{event} {tier}"`, e.g. `FLAGGED TIER_250`, or a
/// quality score) is low: marketing is held while it is.
pub fn quality_is_low(quality: &str) -> bool {
    let first = quality.split_whitespace().next().unwrap_or_default();
    first.eq_ignore_ascii_case("FLAGGED") || first.eq_ignore_ascii_case("RED")
}

/// The action for a `phone_number_quality_update` event (or quality score).
pub fn quality_action(event: &str) -> AccountAction {
    let low = quality_is_low(event);
    AccountAction {
        hold_marketing: low,
        hold_tenant: false,
        alarm: low || event.eq_ignore_ascii_case("DOWNGRADE"),
    }
}

/// The action for an `account_update` event.
pub fn account_action(event: &str) -> AccountAction {
    let e = event.to_ascii_uppercase();
    let hold = matches!(
        e.as_str(),
        "ACCOUNT_RESTRICTION"
            | "DISABLED_UPDATE"
            | "ACCOUNT_DELETED"
            | "ACCOUNT_OFFBOARDED"
            | "PARTNER_REMOVED"
    );
    AccountAction {
        hold_marketing: false,
        hold_tenant: hold,
        alarm: hold || e == "ACCOUNT_VIOLATION",
    }
}

/// Whether `profile`'s number quality holds its marketing sends now.
pub fn marketing_held(profile: &TenantProfile) -> bool {
    profile.phone_quality.as_deref().is_some_and(quality_is_low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_maps_each_signal_to_its_action() {
        let flagged = quality_action("FLAGGED");
        assert!(flagged.hold_marketing && flagged.alarm && !flagged.hold_tenant);
        assert!(quality_action("RED").hold_marketing);
        let down = quality_action("DOWNGRADE");
        assert!(down.alarm && !down.hold_marketing);
        for fine in [
            "UPGRADE",
            "THROUGHPUT_UPGRADE",
            "ONBOARDING",
            "GREEN",
            "YELLOW",
        ] {
            assert_eq!(quality_action(fine), AccountAction::default(), "{fine}");
        }
        for hold in [
            "ACCOUNT_RESTRICTION",
            "DISABLED_UPDATE",
            "ACCOUNT_DELETED",
            "ACCOUNT_OFFBOARDED",
            "PARTNER_REMOVED",
        ] {
            let a = account_action(hold);
            assert!(a.hold_tenant && a.alarm && !a.hold_marketing, "{hold}");
        }
        let violation = account_action("ACCOUNT_VIOLATION");
        assert!(violation.alarm && !violation.hold_tenant);
        assert_eq!(account_action("VERIFIED_ACCOUNT"), AccountAction::default());
    }

    #[test]
    fn stored_qualities_are_low_by_their_first_word() {
        assert!(quality_is_low("FLAGGED TIER_250"));
        assert!(quality_is_low("red"));
        assert!(!quality_is_low("THROUGHPUT_UPGRADE TIER_2K"));
        assert!(!quality_is_low(""));
    }
}
