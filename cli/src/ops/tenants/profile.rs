//! The tenant profile `wa tenants add` wants, and the API keys it issues.

use super::AddArgs;
use crate::ops::plan::diff;
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use wa_shared::domain::quota::IntakeQuota;
use wa_shared::domain::tenant::{
    OnAmbiguous, TenantProfile, TenantStatus, default_opt_in_keywords, default_opt_out_keywords,
};
use wa_shared::domain::validation::FormattingPolicy;
use wa_shared::domain::{PhoneNumberId, TenantId, Timestamp};
use wa_shared::ports::Directory;

/// `max_concurrency` of a new tenant.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 5;
/// `throughput_mps` of a new tenant (Meta's default for a phone number).
pub const DEFAULT_THROUGHPUT_MPS: u32 = 80;
/// `token_ref` of a new tenant on SQLite: `wa dev` resolves it to its sandbox's token.
pub const DEV_TOKEN_REF: &str = "dev:sandbox";
/// Prefix of every API key (tells a key from other secrets when it leaks into a log).
pub const API_KEY_PREFIX: &str = "wa_";

/// The profile settings given on the command line (validated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileFlags {
    /// `--phone-number-id`.
    pub phone_number_id: Option<PhoneNumberId>,
    /// `--other-phone-number-id` (`Some(empty)`: clear the list).
    pub other_phone_number_ids: Option<Vec<PhoneNumberId>>,
    /// `--waba-id`.
    pub waba_id: Option<String>,
    /// `--max-concurrency`.
    pub max_concurrency: Option<u32>,
    /// `--throughput-mps`.
    pub throughput_mps: Option<u32>,
    /// `--requests-per-second`.
    pub requests_per_second: Option<u32>,
    /// `--burst`.
    pub burst: Option<u32>,
    /// `--messages-per-day`: `Some(None)` removes the cap (given as 0).
    pub messages_per_day: Option<Option<u32>>,
    /// `--formatting`.
    pub formatting: Option<FormattingPolicy>,
    /// `--on-ambiguous`.
    pub on_ambiguous: Option<OnAmbiguous>,
    /// `--marketing-messages-api`.
    pub marketing_messages_api: Option<bool>,
}

impl ProfileFlags {
    /// Validate the flags of `wa tenants add`.
    pub fn from_args(args: &AddArgs) -> anyhow::Result<Self> {
        let phone_number_id = args
            .phone_number_id
            .as_deref()
            .map(PhoneNumberId::parse)
            .transpose()
            .context("invalid --phone-number-id")?;
        let other_phone_number_ids = if args.other_phone_number_ids.is_empty() {
            None
        } else {
            let mut numbers = Vec::new();
            for raw in args.other_phone_number_ids.iter().filter(|n| !n.is_empty()) {
                let number = PhoneNumberId::parse(raw)
                    .with_context(|| format!("invalid --other-phone-number-id {raw}"))?;
                if phone_number_id.as_ref() == Some(&number) || numbers.contains(&number) {
                    anyhow::bail!("phone number id {number} is given twice");
                }
                numbers.push(number);
            }
            Some(numbers)
        };
        let waba_id = args.waba_id.clone();
        if let Some(waba) = &waba_id {
            // WABA ids are Graph object ids: digits, like phone number ids.
            PhoneNumberId::parse(waba).context("invalid --waba-id: must be 1-32 digits")?;
        }
        Ok(Self {
            phone_number_id,
            other_phone_number_ids,
            waba_id,
            max_concurrency: args.max_concurrency,
            throughput_mps: args.throughput_mps,
            requests_per_second: args.requests_per_second,
            burst: args.burst,
            messages_per_day: args.messages_per_day.map(|n| (n > 0).then_some(n)),
            formatting: args.formatting.map(Into::into),
            on_ambiguous: args.on_ambiguous.map(Into::into),
            marketing_messages_api: args.marketing_messages_api,
        })
    }
}

impl ProfileFlags {
    /// `base` with the quota flags given applied.
    pub fn intake_quota(&self, base: IntakeQuota) -> IntakeQuota {
        IntakeQuota {
            requests_per_second: self.requests_per_second.unwrap_or(base.requests_per_second),
            burst: self.burst.unwrap_or(base.burst),
            messages_per_day: self.messages_per_day.unwrap_or(base.messages_per_day),
        }
    }
}

/// The profile `add` wants: the current one with the given flags applied, or a new
/// one from the flags and defaults. `updated_at` is the current one's (or `now`).
pub fn wanted_profile(
    tenant: &TenantId,
    current: Option<&TenantProfile>,
    flags: &ProfileFlags,
    queue: String,
    token_ref: String,
    now: Timestamp,
) -> anyhow::Result<TenantProfile> {
    if let Some(current) = current {
        let mut p = current.clone();
        if let Some(v) = &flags.phone_number_id {
            p.phone_number_id = v.clone();
        }
        if let Some(v) = &flags.other_phone_number_ids {
            p.other_phone_number_ids = v.clone();
        }
        // The default number is not also one of the others.
        let default = p.phone_number_id.clone();
        p.other_phone_number_ids.retain(|n| *n != default);
        if let Some(v) = &flags.waba_id {
            p.waba_id = v.clone();
        }
        p.max_concurrency = flags.max_concurrency.unwrap_or(p.max_concurrency);
        p.throughput_mps = flags.throughput_mps.unwrap_or(p.throughput_mps);
        p.intake_quota = flags.intake_quota(p.intake_quota);
        p.formatting = flags.formatting.unwrap_or(p.formatting);
        p.on_ambiguous = flags.on_ambiguous.unwrap_or(p.on_ambiguous);
        p.marketing_messages_api = flags
            .marketing_messages_api
            .unwrap_or(p.marketing_messages_api);
        p.queue = queue;
        p.token_ref = token_ref;
        return Ok(p);
    }
    let (Some(phone_number_id), Some(waba_id)) = (&flags.phone_number_id, &flags.waba_id) else {
        anyhow::bail!("tenant {tenant} is new: --phone-number-id and --waba-id are required");
    };
    Ok(TenantProfile {
        id: tenant.clone(),
        status: TenantStatus::Active,
        phone_number_id: phone_number_id.clone(),
        other_phone_number_ids: flags.other_phone_number_ids.clone().unwrap_or_default(),
        waba_id: waba_id.clone(),
        queue,
        token_ref,
        max_concurrency: flags.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY),
        throughput_mps: flags.throughput_mps.unwrap_or(DEFAULT_THROUGHPUT_MPS),
        intake_quota: flags.intake_quota(IntakeQuota::default()),
        formatting: flags.formatting.unwrap_or_default(),
        on_ambiguous: flags.on_ambiguous.unwrap_or_default(),
        opt_out_keywords: default_opt_out_keywords(),
        opt_in_keywords: default_opt_in_keywords(),
        phone_quality: None,
        account_event: None,
        hold: None,
        phone_quality_at: None,
        account_event_at: None,
        marketing_messages_api: flags.marketing_messages_api.unwrap_or(false),
        updated_at: now,
    })
}

fn name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

/// The settings `add` manages that differ, as `field: have -> want`.
pub fn profile_diffs(have: &TenantProfile, want: &TenantProfile) -> Vec<String> {
    [
        diff(
            "phone_number_id",
            &have.phone_number_id,
            &want.phone_number_id,
        ),
        diff(
            "other_phone_number_ids",
            numbers(&have.other_phone_number_ids),
            numbers(&want.other_phone_number_ids),
        ),
        diff("waba_id", &have.waba_id, &want.waba_id),
        diff("queue", &have.queue, &want.queue),
        diff("token_ref", &have.token_ref, &want.token_ref),
        diff(
            "max_concurrency",
            have.max_concurrency,
            want.max_concurrency,
        ),
        diff("throughput_mps", have.throughput_mps, want.throughput_mps),
        diff("intake_quota", have.intake_quota, want.intake_quota),
        diff("formatting", name(&have.formatting), name(&want.formatting)),
        diff(
            "on_ambiguous",
            name(&have.on_ambiguous),
            name(&want.on_ambiguous),
        ),
        diff(
            "marketing_messages_api",
            have.marketing_messages_api,
            want.marketing_messages_api,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn numbers(ids: &[PhoneNumberId]) -> String {
    if ids.is_empty() {
        return "(none)".to_owned();
    }
    ids.iter()
        .map(PhoneNumberId::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// What the routing entries of `want`'s phone numbers and WABA say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// Each of its phone number ids (the default first) and the tenant it routes to.
    pub phones: Vec<(PhoneNumberId, Option<TenantId>)>,
    /// The tenants on its WABA (several tenants may share one).
    pub waba: Vec<TenantId>,
}

impl Routing {
    /// Look them up.
    pub async fn of(directory: &dyn Directory, want: &TenantProfile) -> anyhow::Result<Self> {
        let mut phones = Vec::new();
        for number in want.phone_number_ids() {
            let owner = directory.tenant_by_phone_number_id(number).await?;
            phones.push((number.clone(), owner));
        }
        Ok(Self {
            phones,
            waba: directory.tenants_by_waba_id(&want.waba_id).await?,
        })
    }

    /// Refuse to take a phone number that routes to another tenant: its webhooks would
    /// silently go to the wrong tenant. A WABA may be shared (each tenant on it gets its
    /// template and account webhooks).
    pub fn check_not_taken(&self, want: &TenantProfile) -> anyhow::Result<()> {
        for (number, owner) in &self.phones {
            if let Some(owner) = owner.as_ref().filter(|o| **o != want.id) {
                anyhow::bail!(
                    "phone number id {number} belongs to tenant {owner}; change that tenant first"
                );
            }
        }
        Ok(())
    }

    /// The routing entries that do not point at `want`'s tenant yet.
    pub fn diffs(&self, want: &TenantProfile) -> Vec<String> {
        let show = |t: &Option<TenantId>| t.as_ref().map_or("(none)".to_owned(), |t| t.to_string());
        let mut diffs = Vec::new();
        for (number, owner) in &self.phones {
            if owner.as_ref() != Some(&want.id) {
                diffs.push(format!(
                    "routing of phone number id {number}: {} -> {}",
                    show(owner),
                    want.id
                ));
            }
        }
        if !self.waba.contains(&want.id) {
            let others = if self.waba.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = self.waba.iter().map(TenantId::as_str).collect();
                format!(" (shared with {})", names.join(", "))
            };
            diffs.push(format!(
                "routing of WABA {}: + {}{others}",
                want.waba_id, want.id
            ));
        }
        diffs
    }
}

/// A new API key: the prefix and 32 random bytes (256 bits) from the OS, base64url.
pub fn new_api_key() -> anyhow::Result<SecretString> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the API key: {e}"))?;
    Ok(SecretString::from(format!(
        "{API_KEY_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(bytes)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn flags() -> ProfileFlags {
        ProfileFlags {
            phone_number_id: Some(PhoneNumberId::parse("106540352242922").unwrap()),
            waba_id: Some("102290129340398".into()),
            ..ProfileFlags::default()
        }
    }

    #[test]
    fn a_new_profile_takes_the_flags_and_the_defaults() {
        let p = wanted_profile(
            &tenant(),
            None,
            &flags(),
            "send-acme".into(),
            DEV_TOKEN_REF.into(),
            Timestamp::from_millis(7),
        )
        .unwrap();
        assert_eq!(p.status, TenantStatus::Active);
        assert_eq!(p.max_concurrency, DEFAULT_MAX_CONCURRENCY);
        assert_eq!(p.throughput_mps, DEFAULT_THROUGHPUT_MPS);
        assert_eq!(p.formatting, FormattingPolicy::Strict);
        assert_eq!(p.on_ambiguous, OnAmbiguous::Fail);
        assert!(!p.marketing_messages_api, "/messages unless asked");
        assert_eq!(
            (p.queue.as_str(), p.token_ref.as_str()),
            ("send-acme", "dev:sandbox")
        );
        assert_eq!(p.updated_at, Timestamp::from_millis(7));
        let none = ProfileFlags::default();
        let e = wanted_profile(
            &tenant(),
            None,
            &none,
            "q".into(),
            "t".into(),
            Timestamp::from_millis(0),
        );
        assert!(e.unwrap_err().to_string().contains("--phone-number-id"));
    }

    #[test]
    fn an_existing_profile_keeps_what_the_flags_leave_out() {
        let now = Timestamp::from_millis(1);
        let mut current =
            wanted_profile(&tenant(), None, &flags(), "q".into(), "t".into(), now).unwrap();
        current.max_concurrency = 9;
        current.status = TenantStatus::Suspended;
        let same = wanted_profile(
            &tenant(),
            Some(&current),
            &ProfileFlags::default(),
            "q".into(),
            "t".into(),
            Timestamp::from_millis(99),
        )
        .unwrap();
        assert_eq!(same, current, "nothing given, nothing changes");
        assert!(profile_diffs(&current, &same).is_empty());
        let more = ProfileFlags {
            max_concurrency: Some(12),
            formatting: Some(FormattingPolicy::Sanitize),
            marketing_messages_api: Some(true),
            ..ProfileFlags::default()
        };
        assert_eq!(current.intake_quota, IntakeQuota::default());
        let changed = wanted_profile(
            &tenant(),
            Some(&current),
            &more,
            "q".into(),
            "t".into(),
            now,
        )
        .unwrap();
        assert_eq!(changed.status, TenantStatus::Suspended, "add never resumes");
        assert_eq!(
            profile_diffs(&current, &changed),
            [
                "max_concurrency: 9 -> 12",
                "formatting: strict -> sanitize",
                "marketing_messages_api: false -> true"
            ]
        );
    }

    #[test]
    fn quota_flags_change_only_what_they_name_and_zero_removes_the_daily_cap() {
        let now = Timestamp::from_millis(1);
        let current =
            wanted_profile(&tenant(), None, &flags(), "q".into(), "t".into(), now).unwrap();
        let capped = ProfileFlags {
            requests_per_second: Some(5),
            messages_per_day: Some(Some(1000)),
            ..ProfileFlags::default()
        };
        let changed = wanted_profile(
            &tenant(),
            Some(&current),
            &capped,
            "q".into(),
            "t".into(),
            now,
        )
        .unwrap();
        assert_eq!(
            changed.intake_quota,
            IntakeQuota {
                requests_per_second: 5,
                burst: 100,
                messages_per_day: Some(1000)
            }
        );
        assert_eq!(
            profile_diffs(&current, &changed),
            ["intake_quota: 50/s burst 100, no daily cap -> 5/s burst 100, 1000/day"]
        );
        let uncapped = ProfileFlags {
            messages_per_day: Some(None),
            ..ProfileFlags::default()
        };
        let back = wanted_profile(
            &tenant(),
            Some(&changed),
            &uncapped,
            "q".into(),
            "t".into(),
            now,
        )
        .unwrap();
        assert_eq!(back.intake_quota.messages_per_day, None);
        assert_eq!(back.intake_quota.requests_per_second, 5);
    }

    #[test]
    fn api_keys_are_long_random_and_prefixed() {
        let a = new_api_key().unwrap();
        let b = new_api_key().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(a.expose_secret().starts_with(API_KEY_PREFIX));
        assert_eq!(a.expose_secret().len(), API_KEY_PREFIX.len() + 43);
        assert!(
            !format!("{a:?}").contains(a.expose_secret()),
            "Debug redacts"
        );
    }
}
