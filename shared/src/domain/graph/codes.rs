//! The Graph error-code table: one constant, one lookup.
//!
//! Sources: the error table of `reference/whatsapp-cloud-api.md` §3 (its "Class /
//! handling" column) and DESIGN §3. Where they disagree, DESIGN §3 wins for the codes
//! it lists, and the row says so in a `DESIGN:` comment. Rows are ranges because
//! Meta documents two ranges (200–299, 133005–133009); most rows are one code.

use crate::domain::failure::FailureClass::{
    self, Recipient, Rejected, Tenant, Throttled, Transient,
};
use std::time::Duration;

/// One row of [`CODE_CLASSES`]: the codes `first..=last` and what they mean for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeRule {
    /// First code of the row.
    pub first: i64,
    /// Last code of the row (equal to `first` for a single code).
    pub last: i64,
    /// What the sender does about it.
    pub class: FailureClass,
    /// Short reason, our words; used as a title when Meta gives none.
    pub reason: &'static str,
    /// Meta's own guidance on how long to wait, when it is longer than a generic
    /// backoff would be; a floor for [`FailureClass::retry_delay`], not a replacement.
    pub min_delay: Option<Duration>,
}

const fn code(code: i64, class: FailureClass, reason: &'static str) -> CodeRule {
    CodeRule {
        first: code,
        last: code,
        class,
        reason,
        min_delay: None,
    }
}

const fn codes(first: i64, last: i64, class: FailureClass, reason: &'static str) -> CodeRule {
    CodeRule {
        first,
        last,
        class,
        reason,
        min_delay: None,
    }
}

impl CodeRule {
    const fn wait_secs(mut self, secs: u64) -> Self {
        self.min_delay = Some(Duration::from_secs(secs));
        self
    }

    /// Whether `code` falls in this row.
    pub const fn covers(&self, code: i64) -> bool {
        self.first <= code && code <= self.last
    }
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;

/// Every Graph error code we know, with its failure class. Rows do not overlap.
pub const CODE_CLASSES: &[CodeRule] = &[
    // --- Graph platform codes --------------------------------------------------
    code(
        0,
        Tenant,
        "could not authenticate: token expired or invalidated",
    ),
    // The reference says "T, few retries, then PM": the retry budget bounds "few".
    code(
        1,
        Transient,
        "unknown error: invalid request or server error",
    ),
    code(2, Transient, "service temporarily down or overloaded"),
    code(3, Tenant, "capability or permission issue"),
    // "Back off minutes": the generic throttle backoff starts lower than a minute.
    code(4, Throttled, "app-level Graph call rate limit").wait_secs(MINUTE),
    code(10, Tenant, "permission not granted or removed"),
    code(33, Tenant, "business phone number deleted"),
    code(100, Rejected, "invalid or unsupported parameter"),
    code(190, Tenant, "access token expired"),
    // 200 also means "no token at all"; the whole range is API permissions.
    codes(200, 299, Tenant, "API permission missing"),
    code(368, Tenant, "account restricted for policy violation"),
    // A rolling hour: some quota returns as the oldest calls age out, so wait
    // minutes rather than the full hour.
    code(80007, Throttled, "WABA management rate limit").wait_secs(5 * MINUTE),
    // --- WhatsApp send codes ---------------------------------------------------
    code(130403, Recipient, "business has blocked this user"),
    code(130429, Throttled, "per-number throughput reached").wait_secs(2),
    code(
        130472,
        Rejected,
        "recipient is in a Meta marketing experiment",
    ),
    code(
        130497,
        Tenant,
        "account may not message users in that country",
    ),
    code(131000, Transient, "unknown send failure"),
    code(131005, Tenant, "access denied"),
    code(131008, Rejected, "required parameter missing"),
    // The reference allows one delayed retry for a just-approved template; we do
    // not know the template's age here, and DESIGN §3 lists 131009 as rejected.
    code(131009, Rejected, "parameter value invalid"),
    code(131016, Transient, "service temporarily unavailable"),
    // DESIGN: recipient (the reference says "permanent for this message").
    code(
        131021,
        Recipient,
        "sender and recipient are the same number",
    ),
    code(131026, Recipient, "message undeliverable to this recipient"),
    code(
        131030,
        Tenant,
        "recipient not in the test number's allow list",
    ),
    code(131031, Tenant, "business account locked"),
    code(131037, Tenant, "number lacks an approved display name"),
    code(131042, Tenant, "payment or billing problem"),
    code(
        131045,
        Tenant,
        "phone number registration or certificate error",
    ),
    // DESIGN: recipient (the reference says "PM – resend as a template"): the
    // window is the recipient's state, and the same request fails until they write.
    code(
        131047,
        Recipient,
        "outside the 24-hour customer service window",
    ),
    // DESIGN: throttled (the reference says "AC/TH"). "Pause for hours, do not
    // hot-retry": wait an hour at least.
    code(131048, Throttled, "spam rate limit on the number").wait_secs(HOUR),
    // Retrying within 24 h extends the block (reference §5).
    code(131049, Throttled, "per-user marketing limit").wait_secs(24 * HOUR),
    code(131050, Recipient, "user stopped marketing messages"),
    code(131051, Rejected, "unsupported message type"),
    // About *inbound* media; never the answer to a send. Listed so a stray one is
    // not mistaken for an unknown code: retrying our request cannot help.
    code(131052, Rejected, "could not download inbound media"),
    // Courier retries it: the media host may come back. The retry budget ends it.
    code(131053, Transient, "could not fetch or upload the media"),
    // Meta suggests 4^X seconds; the throttle backoff grows faster than that, so
    // the floor is one pair-rate slot (one message per 6 s to one user).
    code(131056, Throttled, "pair rate limit to this recipient").wait_secs(6),
    code(131057, Transient, "account in maintenance").wait_secs(90),
    // Only on GET message_templates paging: the same request fails again; the
    // caller restarts without the cursor.
    code(131059, Rejected, "invalid pagination cursor"),
    code(
        131062,
        Rejected,
        "BSUID recipient not supported for this message",
    ),
    code(
        131063,
        Tenant,
        "marketing templates disabled on this account",
    ),
    // The reference says "AC/TH – lifts after enforcement period": an account
    // state with no known end, so the tenant is held and looked at.
    code(
        131064,
        Tenant,
        "messaging limited after template misclassification",
    ),
    code(132000, Rejected, "template parameter count mismatch"),
    code(
        132001,
        Rejected,
        "template missing in that language or not approved",
    ),
    code(132005, Rejected, "hydrated template text too long"),
    code(132007, Rejected, "template content policy violation"),
    code(132012, Rejected, "template parameter format mismatch"),
    code(132015, Rejected, "template paused"),
    code(132016, Rejected, "template permanently disabled"),
    code(
        132018,
        Rejected,
        "template parameter has newline, tab or 5+ spaces",
    ),
    code(132068, Rejected, "flow blocked"),
    code(132069, Throttled, "flow throttled").wait_secs(HOUR),
    code(133000, Tenant, "previous deregistration incomplete"),
    code(133004, Transient, "server temporarily unavailable"),
    codes(
        133005,
        133009,
        Tenant,
        "two-step PIN or re-verification problem",
    ),
    // DESIGN: recipient (the reference says "AC"); DESIGN §3 lists it with the
    // codes that fail one message rather than hold the tenant.
    code(133010, Recipient, "number not registered on the platform"),
    code(133015, Transient, "number recently deleted").wait_secs(5 * MINUTE),
    // Reference "TH/AC – hours"; courier throttles it.
    code(
        133016,
        Throttled,
        "too many register or deregister attempts",
    )
    .wait_secs(HOUR),
    code(134011, Tenant, "WhatsApp Payments terms not accepted"),
    // "If many at once, AC review" is an alerting rule on failure rates, not a
    // class for one message.
    code(135000, Rejected, "generic user error"),
    code(137000, Recipient, "recipient identity key changed"),
];

/// The row of [`CODE_CLASSES`] covering `code`, if we know it.
pub fn rule_for(code: i64) -> Option<&'static CodeRule> {
    CODE_CLASSES.iter().find(|rule| rule.covers(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written from the reference and DESIGN §3, not from the table above: one row per
    /// code (both ends of each range), so a changed class fails here.
    const EXPECTED: &[(i64, FailureClass)] = &[
        (0, Tenant),
        (1, Transient),
        (2, Transient),
        (3, Tenant),
        (4, Throttled),
        (10, Tenant),
        (33, Tenant),
        (100, Rejected),
        (190, Tenant),
        (200, Tenant),
        (250, Tenant),
        (299, Tenant),
        (368, Tenant),
        (80007, Throttled),
        (130403, Recipient),
        (130429, Throttled),
        (130472, Rejected),
        (130497, Tenant),
        (131000, Transient),
        (131005, Tenant),
        (131008, Rejected),
        (131009, Rejected),
        (131016, Transient),
        (131021, Recipient),
        (131026, Recipient),
        (131030, Tenant),
        (131031, Tenant),
        (131037, Tenant),
        (131042, Tenant),
        (131045, Tenant),
        (131047, Recipient),
        (131048, Throttled),
        (131049, Throttled),
        (131050, Recipient),
        (131051, Rejected),
        (131052, Rejected),
        (131053, Transient),
        (131056, Throttled),
        (131057, Transient),
        (131059, Rejected),
        (131062, Rejected),
        (131063, Tenant),
        (131064, Tenant),
        (132000, Rejected),
        (132001, Rejected),
        (132005, Rejected),
        (132007, Rejected),
        (132012, Rejected),
        (132015, Rejected),
        (132016, Rejected),
        (132018, Rejected),
        (132068, Rejected),
        (132069, Throttled),
        (133000, Tenant),
        (133004, Transient),
        (133005, Tenant),
        (133006, Tenant),
        (133007, Tenant),
        (133008, Tenant),
        (133009, Tenant),
        (133010, Recipient),
        (133015, Transient),
        (133016, Throttled),
        (134011, Tenant),
        (135000, Rejected),
        (137000, Recipient),
    ];

    #[test]
    fn every_listed_code_has_its_expected_class() {
        for &(code, class) in EXPECTED {
            let rule = rule_for(code).unwrap_or_else(|| panic!("code {code} missing"));
            assert_eq!(rule.class, class, "code {code}");
        }
    }

    #[test]
    fn every_table_row_is_covered_by_an_expected_row() {
        let listed = |c: i64| EXPECTED.iter().any(|&(e, _)| e == c);
        for rule in CODE_CLASSES {
            assert!(listed(rule.first), "row {} has no test row", rule.first);
            assert!(listed(rule.last), "row end {} has no test row", rule.last);
        }
    }

    #[test]
    fn rows_are_well_formed_and_do_not_overlap() {
        for (i, a) in CODE_CLASSES.iter().enumerate() {
            assert!(a.first <= a.last, "row {}", a.first);
            assert!(!a.reason.is_empty(), "row {}", a.first);
            for b in &CODE_CLASSES[i + 1..] {
                assert!(
                    a.last < b.first || b.last < a.first,
                    "{} overlaps {}",
                    a.first,
                    b.first
                );
            }
        }
    }

    #[test]
    fn only_retryable_rows_carry_a_wait() {
        for rule in CODE_CLASSES {
            if rule.min_delay.is_some() {
                assert!(rule.class.is_retryable(), "code {}", rule.first);
            }
        }
    }

    #[test]
    fn meta_waits_are_honoured_for_throttles() {
        let wait = |c| rule_for(c).and_then(|r| r.min_delay);
        assert!(wait(131049) >= Some(Duration::from_secs(24 * 3600)));
        assert!(wait(131056) >= Some(Duration::from_secs(6)));
        assert!(wait(130429) >= Some(Duration::from_secs(1)));
        assert!(wait(132069) >= Some(Duration::from_secs(3600)));
    }

    #[test]
    fn unknown_codes_have_no_rule() {
        for c in [-1, 5, 199, 300, 131001, 999_999, i64::MAX, i64::MIN] {
            assert_eq!(rule_for(c), None, "{c}");
        }
    }
}
