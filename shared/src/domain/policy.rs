//! Policy rules (pure): mutable facts that refuse a valid request (DESIGN §4 step 3,
//! §5 step 2). Intake and the sender's re-check both apply them.
//!
//! A refusal is not an error of the caller: the message is stored as `suppressed`
//! with its reason, so the product sees why it was never sent. Intake and the
//! sender's re-check both ask these functions, in the same order: tenant, template,
//! recipient.

use crate::domain::template::{Template, TemplateCategory, TemplateStatus};
use crate::domain::tenant::{Contact, TenantProfile, TenantStatus};
use crate::domain::{Suppression, SuppressionReason, Timestamp};

fn suppression(reason: SuppressionReason, detail: Option<String>) -> Suppression {
    Suppression { reason, detail }
}

/// A suspended tenant's messages are suppressed.
pub fn tenant_refusal(profile: &TenantProfile) -> Option<Suppression> {
    (profile.status == TenantStatus::Suspended)
        .then(|| suppression(SuppressionReason::TenantSuspended, None))
}

/// A MARKETING template while the tenant's number quality is low (the account-state
/// table, [`crate::domain::account_state`]): held until the quality recovers.
pub fn marketing_refusal(profile: &TenantProfile, is_marketing: bool) -> Option<Suppression> {
    (is_marketing && crate::domain::account_state::marketing_held(profile)).then(|| {
        suppression(
            SuppressionReason::NumberQualityLow,
            profile
                .phone_quality
                .as_ref()
                .map(|q| format!("phone number quality: {q}")),
        )
    })
}

/// A template Meta paused or disabled. These are facts that change under a
/// caller's feet, so intake suppresses them rather than answering 422; other
/// unapproved statuses (pending, rejected) are the caller's mistake and fail
/// validation.
pub fn paused_or_disabled(template: &Template) -> Option<Suppression> {
    match template.status {
        Some(TemplateStatus::Paused) => Some(suppression(SuppressionReason::TemplatePaused, None)),
        Some(TemplateStatus::Disabled) => {
            Some(suppression(SuppressionReason::TemplateDisabled, None))
        }
        _ => None,
    }
}

/// The sender's re-check: any status but `APPROVED` refuses the send, since the
/// request was valid when it was queued.
pub fn not_sendable(template: &Template) -> Option<Suppression> {
    paused_or_disabled(template).or_else(|| {
        (!template.is_approved()).then(|| {
            let status = template
                .status
                .as_ref()
                .map_or("UNKNOWN", TemplateStatus::as_str);
            suppression(
                SuppressionReason::TemplateNotApproved,
                Some(format!("template status is {status}")),
            )
        })
    })
}

/// Whether a send of `template` is marketing (its catalog category, kept current by
/// `template_category_update` webhooks): marketing opt-outs and limits apply to it.
pub fn is_marketing(template: Option<&Template>) -> bool {
    template.is_some_and(|t| t.category == Some(TemplateCategory::Marketing))
}

/// The recipient opted out (of everything, or of marketing for a MARKETING template),
/// or a free-form message outside the 24-hour window. `free_form` is every content but
/// a template (text, media, interactive, location, reaction), i.e. a send whose
/// [`ValidatedRequest::template_name`](crate::domain::validation::ValidatedRequest::template_name)
/// is `None`: Meta refuses them all outside the window (131047).
pub fn recipient_refusal(
    contact: &Contact,
    free_form: bool,
    is_marketing: bool,
    now: Timestamp,
) -> Option<Suppression> {
    if contact.opted_out {
        Some(suppression(SuppressionReason::OptedOut, None))
    } else if is_marketing && contact.marketing_opted_out {
        Some(suppression(SuppressionReason::MarketingOptedOut, None))
    } else if free_form && !contact.window_open(now) {
        Some(suppression(SuppressionReason::WindowClosed, None))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(status: &str) -> Template {
        serde_json::from_value(json!({"name": "t", "language": "en_US", "status": status})).unwrap()
    }

    #[test]
    fn paused_and_disabled_templates_are_suppressions_and_pending_is_not() {
        let reason = |s: &str| paused_or_disabled(&template(s)).map(|x| x.reason);
        assert_eq!(reason("PAUSED"), Some(SuppressionReason::TemplatePaused));
        assert_eq!(
            reason("DISABLED"),
            Some(SuppressionReason::TemplateDisabled)
        );
        assert_eq!(reason("PENDING"), None);
        assert_eq!(reason("APPROVED"), None);
    }

    #[test]
    fn the_sender_refuses_every_unapproved_status() {
        let reason = |s: &str| not_sendable(&template(s)).map(|x| x.reason);
        assert_eq!(reason("APPROVED"), None);
        assert_eq!(reason("PAUSED"), Some(SuppressionReason::TemplatePaused));
        assert_eq!(
            reason("PENDING_DELETION"),
            Some(SuppressionReason::TemplateNotApproved)
        );
        let detail = not_sendable(&template("REJECTED")).unwrap().detail;
        assert_eq!(detail.as_deref(), Some("template status is REJECTED"));
    }

    #[test]
    fn opted_out_beats_the_window_and_templates_ignore_the_window() {
        let now = Timestamp::from_secs(1_000_000);
        let closed = Contact::default();
        let open = Contact {
            last_inbound_at: Some(now),
            ..Contact::default()
        };
        let opted_out = Contact {
            opted_out: true,
            ..open.clone()
        };
        let reason = |c: &Contact, text| recipient_refusal(c, text, false, now).map(|s| s.reason);
        assert_eq!(reason(&closed, true), Some(SuppressionReason::WindowClosed));
        assert_eq!(reason(&closed, false), None);
        assert_eq!(reason(&open, true), None);
        assert_eq!(reason(&opted_out, false), Some(SuppressionReason::OptedOut));
    }

    #[test]
    fn a_marketing_opt_out_refuses_marketing_templates_only() {
        let now = Timestamp::from_secs(1_000_000);
        let stopped = Contact {
            marketing_opted_out: true,
            ..Contact::default()
        };
        let reason =
            |c: &Contact, marketing| recipient_refusal(c, false, marketing, now).map(|s| s.reason);
        assert_eq!(
            reason(&stopped, true),
            Some(SuppressionReason::MarketingOptedOut)
        );
        assert_eq!(reason(&stopped, false), None);
        assert_eq!(reason(&Contact::default(), true), None);
        // A full opt-out names the stronger reason.
        let both = Contact {
            opted_out: true,
            ..stopped
        };
        assert_eq!(reason(&both, true), Some(SuppressionReason::OptedOut));
    }
}
