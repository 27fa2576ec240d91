//! Builders of the fixtures tests share: one tenant profile builder instead of
//! copied literals. Defaults are the `events/` fixtures' tenant `demo`.

use wa_shared::domain::quota::IntakeQuota;
use wa_shared::domain::tenant::{
    OnAmbiguous, TenantProfile, TenantStatus, default_opt_in_keywords, default_opt_out_keywords,
};
use wa_shared::domain::validation::FormattingPolicy;
use wa_shared::domain::{PhoneNumberId, TenantId, Timestamp};

/// The business phone number id of the fixtures' tenant (`events/meta`).
pub const PHONE_NUMBER_ID: &str = "106540352242922";
/// The WABA id of the fixtures' tenant.
pub const WABA_ID: &str = "102290129340398";

/// A tenant profile under construction; [`tenant`] starts one.
#[derive(Debug, Clone)]
pub struct TenantProfileBuilder(TenantProfile);

/// An active profile of `id`: the fixtures' phone number and WABA, queue `send-<id>`,
/// token `env:UNUSED`, concurrency 2, 80 msg/s, the default intake quota, strict
/// formatting, `on_ambiguous = fail`, the default keywords, written at 2025-06-09T00:00:00Z.
pub fn tenant(id: &str) -> TenantProfileBuilder {
    TenantProfileBuilder(TenantProfile {
        id: TenantId::parse(id).unwrap(),
        status: TenantStatus::Active,
        phone_number_id: PhoneNumberId::parse(PHONE_NUMBER_ID).unwrap(),
        other_phone_number_ids: Vec::new(),
        waba_id: WABA_ID.into(),
        queue: format!("send-{id}"),
        token_ref: "env:UNUSED".into(),
        max_concurrency: 2,
        throughput_mps: 80,
        intake_quota: IntakeQuota::default(),
        formatting: FormattingPolicy::Strict,
        on_ambiguous: OnAmbiguous::Fail,
        opt_out_keywords: default_opt_out_keywords(),
        opt_in_keywords: default_opt_in_keywords(),
        phone_quality: None,
        account_event: None,
        hold: None,
        phone_quality_at: None,
        account_event_at: None,
        marketing_messages_api: false,
        updated_at: Timestamp::from_secs(1_749_427_200),
    })
}

impl TenantProfileBuilder {
    /// Also owns these business phone number ids (a send may choose one as `from`).
    pub fn other_phone_number_ids(mut self, ids: &[&str]) -> Self {
        self.0.other_phone_number_ids = ids
            .iter()
            .map(|i| PhoneNumberId::parse(i).unwrap())
            .collect();
        self
    }

    /// Sends from this business phone number id.
    pub fn phone_number_id(mut self, id: &str) -> Self {
        self.0.phone_number_id = PhoneNumberId::parse(id).unwrap();
        self
    }

    /// Belongs to this WABA.
    pub fn waba_id(mut self, id: &str) -> Self {
        self.0.waba_id = id.into();
        self
    }

    /// Its send queue (URL or embedded name).
    pub fn queue(mut self, queue: &str) -> Self {
        self.0.queue = queue.into();
        self
    }

    /// Where its token is kept.
    pub fn token_ref(mut self, token_ref: &str) -> Self {
        self.0.token_ref = token_ref.into();
        self
    }

    /// Sends in flight at once.
    pub fn max_concurrency(mut self, n: u32) -> Self {
        self.0.max_concurrency = n;
        self
    }

    /// Its number's rate.
    pub fn throughput_mps(mut self, n: u32) -> Self {
        self.0.throughput_mps = n;
        self
    }

    /// What intake accepts from it (requests per second, burst, messages per day).
    pub fn intake_quota(mut self, quota: IntakeQuota) -> Self {
        self.0.intake_quota = quota;
        self
    }

    /// When it was written.
    pub fn updated_at(mut self, at: Timestamp) -> Self {
        self.0.updated_at = at;
        self
    }

    /// The profile.
    pub fn build(self) -> TenantProfile {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_fixtures_tenant_and_setters_change_one_field() {
        let p = tenant("demo").build();
        assert_eq!(p.phone_number_id.as_str(), PHONE_NUMBER_ID);
        assert_eq!(p.queue, "send-demo");
        assert_eq!(p.status, TenantStatus::Active);
        let q = tenant("demo").queue("q").max_concurrency(5).build();
        assert_eq!((q.queue.as_str(), q.max_concurrency), ("q", 5));
        assert_eq!(q.waba_id, p.waba_id);
    }
}
