//! The `Directory` conformance suite: one set of cases run against every adapter
//! (DESIGN §2 invariant). Use [`directory_conformance_tests!`](crate::directory_conformance_tests)
//! to turn it into one `#[tokio::test]` per case for an adapter.
//!
//! Each case gets a harness on an empty directory (a fresh SQLite file, a fresh
//! DynamoDB table), so listings can be compared exactly.

use std::sync::Arc;
use wa_shared::domain::quota::IntakeQuota;
use wa_shared::domain::template::{Template, TemplateCategory, TemplateStatus};
use wa_shared::domain::tenant::{ApiKeyEntry, ApiKeyHash, Contact, TenantProfile, TenantStatus};
use wa_shared::domain::{PhoneNumber, PhoneNumberId, TenantId, Timestamp};
use wa_shared::ports::{Directory, DirectoryError};

/// What the suite needs from an adapter under test.
pub trait DirectoryHarness: Send + Sync {
    /// The adapter under test, on a directory no other case uses.
    fn directory(&self) -> Arc<dyn Directory>;
}

const T0: Timestamp = Timestamp::from_secs(1_750_000_000);

fn at(seconds_after_t0: i64) -> Timestamp {
    T0.plus_millis(seconds_after_t0 * 1000)
}

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

fn phone_id(id: &str) -> PhoneNumberId {
    PhoneNumberId::parse(id).unwrap()
}

fn recipient() -> PhoneNumber {
    PhoneNumber::parse("+14155550123").unwrap()
}

/// A complete profile of `id` sending from phone number `phone` of WABA `waba`.
pub fn profile(id: &str, phone: &str, waba: &str) -> TenantProfile {
    crate::fixtures::tenant(id)
        .phone_number_id(phone)
        .waba_id(waba)
        .queue(&format!("dev-wa-send-{id}"))
        .token_ref(&format!("env:WA_{}_TOKEN", id.to_uppercase()))
        .max_concurrency(5)
        .updated_at(T0)
        .build()
}

/// One language version of a template as Meta returns it, with fields we do not model.
pub fn template(name: &str, language: &str, status: &str) -> Template {
    serde_json::from_value(serde_json::json!({
        "name": name,
        "language": language,
        "status": status,
        "category": "UTILITY",
        "id": format!("{name}-{language}-id"),
        "sub_category": "ORDER_STATUS",
        "components": [
            {"type": "BODY", "text": "Hi {{1}}, order {{2}} shipped.",
             "example": {"body_text": [["Ana", "#1234"]]}},
            {"type": "CAROUSEL", "cards": [{"index": 0}]},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Thanks"}]}
        ]
    }))
    .unwrap()
}

/// A stored profile is found by id and routed by its API key, phone number and WABA.
pub async fn tenant_is_found_by_api_key_phone_number_and_waba(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let acme = profile("acme", "106540352242922", "102290129340398");
    d.put_tenant(&acme).await.unwrap();
    let key = ApiKeyHash::of_key("wa_acme_key");
    d.put_api_key(&key, &acme.id).await.unwrap();
    assert_eq!(d.tenant(&acme.id).await.unwrap(), Some(acme.clone()));
    assert_eq!(
        d.tenant_by_api_key(&key).await.unwrap(),
        Some(acme.id.clone())
    );
    assert_eq!(
        d.tenant_by_phone_number_id(&acme.phone_number_id)
            .await
            .unwrap(),
        Some(acme.id.clone())
    );
    assert_eq!(
        d.tenants_by_waba_id("102290129340398").await.unwrap(),
        std::slice::from_ref(&acme.id)
    );
}

/// Lookups of things never stored find nothing rather than failing.
pub async fn unknown_lookups_find_nothing(h: &dyn DirectoryHarness) {
    let d = h.directory();
    d.put_tenant(&profile("acme", "1", "2")).await.unwrap();
    let acme = tenant("acme");
    assert_eq!(d.tenant(&tenant("nobody")).await.unwrap(), None);
    assert_eq!(
        d.tenant_by_api_key(&ApiKeyHash::of_key("nope"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        d.tenant_by_phone_number_id(&phone_id("999")).await.unwrap(),
        None
    );
    assert!(d.tenants_by_waba_id("999").await.unwrap().is_empty());
    assert_eq!(d.template(&acme, "missing", "en").await.unwrap(), None);
    assert!(
        d.templates_named(&acme, "missing")
            .await
            .unwrap()
            .is_empty()
    );
}

/// `list_tenants` returns every profile, sorted by id, and nothing else of the directory.
pub async fn list_tenants_returns_every_profile(h: &dyn DirectoryHarness) {
    let d = h.directory();
    assert!(d.list_tenants().await.unwrap().is_empty());
    let beta = profile("beta", "20", "21");
    let acme = profile("acme", "10", "11");
    d.put_tenant(&beta).await.unwrap();
    d.put_tenant(&acme).await.unwrap();
    d.put_api_key(&ApiKeyHash::of_key("k"), &acme.id)
        .await
        .unwrap();
    d.put_template(&acme.id, &template("hello", "en", "APPROVED"), T0)
        .await
        .unwrap();
    d.record_inbound(&acme.id, &recipient(), T0).await.unwrap();
    assert_eq!(d.list_tenants().await.unwrap(), [acme, beta]);
}

/// A second put replaces the profile (its intake quota too) and moves its routing: the
/// old phone number and WABA no longer route to the tenant, the new ones do.
pub async fn put_tenant_replaces_the_profile_and_moves_its_routing(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let before = profile("acme", "10", "11");
    d.put_tenant(&before).await.unwrap();
    let after = TenantProfile {
        phone_number_id: phone_id("20"),
        waba_id: "21".into(),
        max_concurrency: 9,
        status: TenantStatus::Suspended,
        intake_quota: IntakeQuota {
            requests_per_second: 5,
            burst: 10,
            messages_per_day: Some(1000),
        },
        updated_at: at(60),
        ..before.clone()
    };
    d.put_tenant(&after).await.unwrap();
    assert_eq!(d.tenant(&after.id).await.unwrap(), Some(after.clone()));
    assert_eq!(
        d.tenant_by_phone_number_id(&phone_id("10")).await.unwrap(),
        None
    );
    assert!(d.tenants_by_waba_id("11").await.unwrap().is_empty());
    assert_eq!(
        d.tenant_by_phone_number_id(&phone_id("20")).await.unwrap(),
        Some(after.id.clone())
    );
    assert_eq!(
        d.tenants_by_waba_id("21").await.unwrap(),
        std::slice::from_ref(&after.id)
    );
    assert_eq!(d.list_tenants().await.unwrap(), [after]);
}

/// When a phone number moved to another tenant, a later put of its previous owner
/// does not take its routing away.
pub async fn a_moved_phone_number_stays_with_its_new_owner(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let acme = profile("acme", "10", "11");
    d.put_tenant(&acme).await.unwrap();
    // The number moves to beta (last put wins), then acme gets a new number.
    d.put_tenant(&profile("beta", "10", "31")).await.unwrap();
    let acme_moved = TenantProfile {
        phone_number_id: phone_id("12"),
        ..acme
    };
    d.put_tenant(&acme_moved).await.unwrap();
    assert_eq!(
        d.tenant_by_phone_number_id(&phone_id("10")).await.unwrap(),
        Some(tenant("beta"))
    );
    assert_eq!(
        d.tenant_by_phone_number_id(&phone_id("12")).await.unwrap(),
        Some(tenant("acme"))
    );
}

/// A tenant with several numbers is routed by each; a number it drops stops routing
/// to it; tenants sharing a WABA are each listed for it, and one leaving the WABA
/// leaves the other in place.
pub async fn several_numbers_and_a_shared_waba_route_to_each_tenant(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let acme = TenantProfile {
        other_phone_number_ids: vec![phone_id("12"), phone_id("13")],
        ..profile("acme", "10", "11")
    };
    d.put_tenant(&acme).await.unwrap();
    let beta = profile("beta", "20", "11");
    d.put_tenant(&beta).await.unwrap();
    assert_eq!(d.tenant(&acme.id).await.unwrap(), Some(acme.clone()));
    for number in ["10", "12", "13"] {
        assert_eq!(
            d.tenant_by_phone_number_id(&phone_id(number))
                .await
                .unwrap(),
            Some(acme.id.clone()),
            "number {number}"
        );
    }
    assert_eq!(
        d.tenants_by_waba_id("11").await.unwrap(),
        [acme.id.clone(), beta.id.clone()]
    );
    // acme drops 13 and takes 14; beta moves to its own WABA.
    let acme_after = TenantProfile {
        other_phone_number_ids: vec![phone_id("12"), phone_id("14")],
        updated_at: at(60),
        ..acme.clone()
    };
    d.put_tenant(&acme_after).await.unwrap();
    d.put_tenant(&profile("beta", "20", "31")).await.unwrap();
    assert_eq!(
        d.tenant_by_phone_number_id(&phone_id("13")).await.unwrap(),
        None
    );
    assert_eq!(
        d.tenant_by_phone_number_id(&phone_id("14")).await.unwrap(),
        Some(acme.id.clone())
    );
    assert_eq!(
        d.tenants_by_waba_id("11").await.unwrap(),
        std::slice::from_ref(&acme.id)
    );
    assert_eq!(d.tenants_by_waba_id("31").await.unwrap(), [beta.id]);
    assert_eq!(d.tenant(&acme.id).await.unwrap(), Some(acme_after));
}

/// A template is found by its exact locale only (`en` is not `en_US`) and round-trips.
pub async fn template_is_found_by_exact_locale(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let acme = tenant("acme");
    let en_us = template("order_shipped", "en_US", "APPROVED");
    d.put_template(&acme, &en_us, at(1)).await.unwrap();
    let stored = d
        .template(&acme, "order_shipped", "en_US")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.template, en_us);
    assert_eq!((stored.quality, stored.updated_at), (None, at(1)));
    assert_eq!(
        d.template(&acme, "order_shipped", "en").await.unwrap(),
        None
    );
}

/// `templates_named` lists every language of a name, and no template of another name.
pub async fn templates_named_lists_every_language(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let acme = tenant("acme");
    for (name, language) in [
        ("hello", "en"),
        ("hello", "es"),
        ("hello", "pt_BR"),
        ("hello_world", "en"),
    ] {
        d.put_template(&acme, &template(name, language, "APPROVED"), T0)
            .await
            .unwrap();
    }
    let mut languages: Vec<_> = d
        .templates_named(&acme, "hello")
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.template.name, t.template.language))
        .collect();
    languages.sort();
    assert_eq!(
        languages,
        [
            ("hello".into(), "en".into()),
            ("hello".into(), "es".into()),
            ("hello".into(), "pt_BR".into())
        ] as [(String, String); 3]
    );
}

/// A status webhook (PAUSED) is visible on the next read, as the template's status.
pub async fn status_update_is_visible_on_the_next_get(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let acme = tenant("acme");
    d.put_template(&acme, &template("promo", "en", "APPROVED"), at(1))
        .await
        .unwrap();
    let updated = d
        .update_template_status(&acme, "promo", "en", &TemplateStatus::Paused, at(2))
        .await
        .unwrap();
    assert!(updated);
    let stored = d.template(&acme, "promo", "en").await.unwrap().unwrap();
    assert_eq!(stored.template.status, Some(TemplateStatus::Paused));
    assert!(!stored.template.is_approved());
    assert_eq!(stored.updated_at, at(2));
    let named = d.templates_named(&acme, "promo").await.unwrap();
    assert_eq!(named[0].template.status, Some(TemplateStatus::Paused));
    // A re-sync writes Meta's status again.
    d.put_template(&acme, &template("promo", "en", "APPROVED"), at(3))
        .await
        .unwrap();
    let stored = d.template(&acme, "promo", "en").await.unwrap().unwrap();
    assert_eq!(stored.template.status, Some(TemplateStatus::Approved));
}

/// Webhooks apply only when newer than what is stored: a stale PAUSED (replayed from
/// the inbox after the APPROVED that followed it) does not re-pause the template, and
/// a status older than the last sync is ignored; status and quality keep their own
/// times.
pub async fn template_updates_apply_only_when_newer(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let acme = tenant("acme");
    d.put_template(&acme, &template("promo", "en", "APPROVED"), at(10))
        .await
        .unwrap();
    let status_of = || async {
        d.template(&acme, "promo", "en")
            .await
            .unwrap()
            .unwrap()
            .template
            .status
    };
    // Older than the sync: ignored.
    assert!(
        !d.update_template_status(&acme, "promo", "en", &TemplateStatus::Paused, at(5))
            .await
            .unwrap()
    );
    assert_eq!(status_of().await, Some(TemplateStatus::Approved));
    // PAUSED at 20, then APPROVED at 30, then the PAUSED of 20 replayed.
    assert!(
        d.update_template_status(&acme, "promo", "en", &TemplateStatus::Paused, at(20))
            .await
            .unwrap()
    );
    assert!(
        d.update_template_status(&acme, "promo", "en", &TemplateStatus::Approved, at(30))
            .await
            .unwrap()
    );
    assert!(
        !d.update_template_status(&acme, "promo", "en", &TemplateStatus::Paused, at(20))
            .await
            .unwrap()
    );
    assert_eq!(status_of().await, Some(TemplateStatus::Approved));
    // A status change in the same second as a sync applies (Meta's times are whole
    // seconds; the sync ran at 40.7 s).
    d.put_template(
        &acme,
        &template("promo", "en", "APPROVED"),
        Timestamp::from_millis(T0.as_millis() + 40_700),
    )
    .await
    .unwrap();
    assert!(
        d.update_template_status(&acme, "promo", "en", &TemplateStatus::Paused, at(40))
            .await
            .unwrap()
    );
    assert_eq!(status_of().await, Some(TemplateStatus::Paused));
    // A quality change at 25 is newer than any quality stored: it applies, although a
    // status change at 30 is stored.
    assert!(
        d.update_template_quality(&acme, "promo", "en", "YELLOW", at(25))
            .await
            .unwrap()
    );
    assert!(
        !d.update_template_quality(&acme, "promo", "en", "GREEN", at(24))
            .await
            .unwrap()
    );
    let stored = d.template(&acme, "promo", "en").await.unwrap().unwrap();
    assert_eq!(stored.quality.as_deref(), Some("YELLOW"));
}

/// A completed category change from Meta is kept over the stored JSON's category
/// until the next sync, and only when not older than what is stored.
pub async fn category_change_is_kept_until_the_next_sync(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let acme = tenant("acme");
    let category = || async {
        d.template(&acme, "promo", "en")
            .await
            .unwrap()
            .unwrap()
            .template
            .category
    };
    d.put_template(&acme, &template("promo", "en", "APPROVED"), at(1))
        .await
        .unwrap();
    assert_eq!(category().await, Some(TemplateCategory::Utility));
    assert!(
        d.update_template_category(&acme, "promo", "en", &TemplateCategory::Marketing, at(5))
            .await
            .unwrap()
    );
    assert_eq!(category().await, Some(TemplateCategory::Marketing));
    let named = d.templates_named(&acme, "promo").await.unwrap();
    assert_eq!(
        named[0].template.category,
        Some(TemplateCategory::Marketing)
    );
    assert!(
        !d.update_template_category(&acme, "promo", "en", &TemplateCategory::Utility, at(3))
            .await
            .unwrap()
    );
    assert_eq!(category().await, Some(TemplateCategory::Marketing));
    assert!(
        !d.update_template_category(&acme, "gone", "en", &TemplateCategory::Utility, at(9))
            .await
            .unwrap()
    );
    // A sync writes Meta's JSON again: its category holds, and older changes are stale.
    d.put_template(&acme, &template("promo", "en", "APPROVED"), at(10))
        .await
        .unwrap();
    assert_eq!(category().await, Some(TemplateCategory::Utility));
    assert!(
        !d.update_template_category(&acme, "promo", "en", &TemplateCategory::Marketing, at(9))
            .await
            .unwrap()
    );
}

/// A marketing stop follows the order of Meta's times, like the opt-out, and leaves
/// the contact's other facts (window, full opt-out) alone.
pub async fn marketing_preference_follows_the_order_of_time(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let acme = tenant("acme");
    let ana = PhoneNumber::parse("+14155550123").unwrap();
    d.record_inbound(&acme, &ana, at(1)).await.unwrap();
    d.set_marketing_opt_out(&acme, &ana, true, at(10))
        .await
        .unwrap();
    let c = d.contact(&acme, &ana).await.unwrap();
    assert!(c.marketing_opted_out && !c.opted_out);
    assert_eq!(c.marketing_changed_at, Some(at(10)));
    assert_eq!(c.last_inbound_at, Some(at(1)));
    // An older resume does not undo it; a newer one does; at the same time a stop wins.
    d.set_marketing_opt_out(&acme, &ana, false, at(5))
        .await
        .unwrap();
    assert!(d.contact(&acme, &ana).await.unwrap().marketing_opted_out);
    d.set_marketing_opt_out(&acme, &ana, false, at(20))
        .await
        .unwrap();
    assert!(!d.contact(&acme, &ana).await.unwrap().marketing_opted_out);
    d.set_marketing_opt_out(&acme, &ana, true, at(20))
        .await
        .unwrap();
    assert!(d.contact(&acme, &ana).await.unwrap().marketing_opted_out);
    // A contact never seen before can be stopped.
    let ben = PhoneNumber::parse("+14155550124").unwrap();
    d.set_marketing_opt_out(&acme, &ben, true, at(3))
        .await
        .unwrap();
    let c = d.contact(&acme, &ben).await.unwrap();
    assert!(c.marketing_opted_out && c.last_inbound_at.is_none() && !c.opted_out);
}

/// A marketing limit (131049) is kept at its latest end, created for a contact never
/// seen, and leaves the contact's other facts alone.
pub async fn marketing_limit_only_moves_later(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let acme = tenant("acme");
    let ana = PhoneNumber::parse("+14155550123").unwrap();
    d.record_inbound(&acme, &ana, at(1)).await.unwrap();
    d.set_marketing_limit(&acme, &ana, at(100)).await.unwrap();
    let c = d.contact(&acme, &ana).await.unwrap();
    assert_eq!(c.marketing_limited_until, Some(at(100)));
    assert_eq!(c.last_inbound_at, Some(at(1)));
    assert!(!c.marketing_opted_out && !c.opted_out);
    // An earlier end never shortens it; a later one extends it.
    d.set_marketing_limit(&acme, &ana, at(50)).await.unwrap();
    let c = d.contact(&acme, &ana).await.unwrap();
    assert_eq!(c.marketing_limited_until, Some(at(100)));
    d.set_marketing_limit(&acme, &ana, at(200)).await.unwrap();
    let c = d.contact(&acme, &ana).await.unwrap();
    assert_eq!(c.marketing_limited_until, Some(at(200)));
    // A contact never seen before, and another tenant's contact untouched.
    let ben = PhoneNumber::parse("+14155550124").unwrap();
    d.set_marketing_limit(&acme, &ben, at(30)).await.unwrap();
    let c = d.contact(&acme, &ben).await.unwrap();
    assert_eq!(c.marketing_limited_until, Some(at(30)));
    assert!(c.last_inbound_at.is_none() && !c.opted_out);
    let other = d.contact(&tenant("beta"), &ana).await.unwrap();
    assert_eq!(other.marketing_limited_until, None);
}

/// Updates about a template we do not have return false and create nothing.
pub async fn updates_of_an_unknown_template_return_false(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let acme = tenant("acme");
    d.put_template(&acme, &template("known", "en", "APPROVED"), T0)
        .await
        .unwrap();
    let status = d
        .update_template_status(&acme, "known", "es", &TemplateStatus::Paused, at(1))
        .await
        .unwrap();
    let quality = d
        .update_template_quality(&acme, "unknown", "en", "RED", at(1))
        .await
        .unwrap();
    assert!(!status && !quality);
    assert_eq!(d.template(&acme, "known", "es").await.unwrap(), None);
    assert_eq!(d.template(&acme, "unknown", "en").await.unwrap(), None);
    assert_eq!(d.templates_named(&acme, "known").await.unwrap().len(), 1);
}

/// A quality webhook is kept, and a later re-sync of the template does not erase it.
pub async fn quality_update_is_kept_across_a_resync(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let acme = tenant("acme");
    let t = template("promo", "en", "APPROVED");
    d.put_template(&acme, &t, at(1)).await.unwrap();
    assert!(
        d.update_template_quality(&acme, "promo", "en", "YELLOW", at(2))
            .await
            .unwrap()
    );
    let stored = d.template(&acme, "promo", "en").await.unwrap().unwrap();
    assert_eq!(
        (stored.quality.as_deref(), stored.updated_at),
        (Some("YELLOW"), at(2))
    );
    assert_eq!(stored.template, t);
    d.put_template(&acme, &t, at(3)).await.unwrap();
    let stored = d.template(&acme, "promo", "en").await.unwrap().unwrap();
    assert_eq!(stored.quality.as_deref(), Some("YELLOW"));
}

/// A recipient we know nothing of has no window and is not opted out.
pub async fn contact_defaults_when_nothing_is_stored(h: &dyn DirectoryHarness) {
    let d = h.directory();
    assert_eq!(
        d.contact(&tenant("acme"), &recipient()).await.unwrap(),
        Contact::default()
    );
}

/// `last_inbound_at` only moves forward: an older, late webhook does not move it back.
pub async fn record_inbound_only_moves_forward(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let (acme, who) = (tenant("acme"), recipient());
    d.record_inbound(&acme, &who, at(10)).await.unwrap();
    assert_eq!(
        d.contact(&acme, &who).await.unwrap().last_inbound_at,
        Some(at(10))
    );
    d.record_inbound(&acme, &who, at(5)).await.unwrap();
    assert_eq!(
        d.contact(&acme, &who).await.unwrap().last_inbound_at,
        Some(at(10))
    );
    d.record_inbound(&acme, &who, at(10)).await.unwrap();
    assert_eq!(
        d.contact(&acme, &who).await.unwrap().last_inbound_at,
        Some(at(10))
    );
    d.record_inbound(&acme, &who, at(20)).await.unwrap();
    let contact = d.contact(&acme, &who).await.unwrap();
    assert_eq!(contact.last_inbound_at, Some(at(20)));
    assert!(contact.window_open(at(21)));
    assert!(!contact.opted_out);
}

/// Opt-out and opt-in follow the order of their times, not of their arrival; at the
/// same instant an opt-out wins.
pub async fn opt_out_and_opt_in_follow_the_order_of_time(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let (acme, who) = (tenant("acme"), recipient());
    d.record_inbound(&acme, &who, at(1)).await.unwrap();
    d.set_opt_out(&acme, &who, true, at(10)).await.unwrap();
    let expect = |opted_out, changed| Contact {
        last_inbound_at: Some(at(1)),
        opted_out,
        opt_changed_at: Some(changed),
        ..Contact::default()
    };
    assert_eq!(d.contact(&acme, &who).await.unwrap(), expect(true, at(10)));
    // A late opt-in written before the opt-out changes nothing.
    d.set_opt_out(&acme, &who, false, at(5)).await.unwrap();
    assert_eq!(d.contact(&acme, &who).await.unwrap(), expect(true, at(10)));
    d.set_opt_out(&acme, &who, false, at(20)).await.unwrap();
    assert_eq!(d.contact(&acme, &who).await.unwrap(), expect(false, at(20)));
    // Same instant: the opt-in does not undo an opt-out, the opt-out wins over an opt-in.
    d.set_opt_out(&acme, &who, true, at(30)).await.unwrap();
    d.set_opt_out(&acme, &who, false, at(30)).await.unwrap();
    assert_eq!(d.contact(&acme, &who).await.unwrap(), expect(true, at(30)));
    d.set_opt_out(&acme, &who, false, at(40)).await.unwrap();
    d.set_opt_out(&acme, &who, true, at(40)).await.unwrap();
    assert_eq!(d.contact(&acme, &who).await.unwrap(), expect(true, at(40)));
    // Recording an inbound leaves the opt-out alone.
    d.record_inbound(&acme, &who, at(50)).await.unwrap();
    assert!(d.contact(&acme, &who).await.unwrap().opted_out);
}

/// One tenant's templates and contacts are invisible to another tenant.
pub async fn tenants_do_not_see_each_others_templates_or_contacts(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let (a, b, who) = (tenant("tenant-a"), tenant("tenant-b"), recipient());
    d.put_template(&a, &template("hello", "en", "APPROVED"), T0)
        .await
        .unwrap();
    d.record_inbound(&a, &who, at(1)).await.unwrap();
    d.set_opt_out(&a, &who, true, at(2)).await.unwrap();
    assert_eq!(d.template(&b, "hello", "en").await.unwrap(), None);
    assert!(d.templates_named(&b, "hello").await.unwrap().is_empty());
    assert!(
        !d.update_template_status(&b, "hello", "en", &TemplateStatus::Paused, at(3))
            .await
            .unwrap()
    );
    assert_eq!(d.contact(&b, &who).await.unwrap(), Contact::default());
    let a_template = d.template(&a, "hello", "en").await.unwrap().unwrap();
    assert_eq!(a_template.template.status, Some(TemplateStatus::Approved));
    assert!(d.contact(&a, &who).await.unwrap().opted_out);
}

/// Concurrent inbound records, in any order, leave the latest time.
pub async fn concurrent_inbound_records_end_at_the_latest(h: &dyn DirectoryHarness) {
    let (acme, who) = (tenant("acme"), recipient());
    // Interleave early and late times so a lost update would show.
    let tasks: Vec<_> = (0..24_i64)
        .map(|i| {
            let (d, acme, who) = (h.directory(), acme.clone(), who.clone());
            let second = if i % 2 == 0 { i } else { 100 - i };
            tokio::spawn(async move { d.record_inbound(&acme, &who, at(second)).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let contact = h.directory().contact(&acme, &who).await.unwrap();
    assert_eq!(contact.last_inbound_at, Some(at(99)));
}

/// A hold is a partial write: placed once (the first cause is kept), one probe claim
/// wins per `probe_at`, released once; the rest of the profile never changes, and a
/// missing tenant is never created.
pub async fn holds_are_placed_once_probed_by_one_and_released(h: &dyn DirectoryHarness) {
    use wa_shared::domain::tenant::TenantHold;
    let d = h.directory();
    let acme = tenant("acme");
    let before = profile("acme", "1000001", "2000001");
    d.put_tenant(&before).await.unwrap();
    let hold = TenantHold {
        code: Some(190),
        reason: "access token expired".into(),
        detail: Some("Error validating access token".into()),
        since: at(10),
        probe_at: at(130),
    };
    assert!(d.place_hold(&acme, &hold).await.unwrap());
    let second = TenantHold {
        code: Some(368),
        since: at(20),
        ..hold.clone()
    };
    assert!(!d.place_hold(&acme, &second).await.unwrap(), "already held");
    let held = d.tenant(&acme).await.unwrap().unwrap();
    assert_eq!(held.hold.as_ref(), Some(&hold));
    assert_eq!(
        TenantProfile {
            hold: None,
            ..held.clone()
        },
        before,
        "nothing else changed"
    );
    // Two senders saw probe_at = 130: only one claims it.
    assert!(d.claim_hold_probe(&acme, at(130), at(250)).await.unwrap());
    assert!(!d.claim_hold_probe(&acme, at(130), at(251)).await.unwrap());
    let probed = d.tenant(&acme).await.unwrap().unwrap().hold.unwrap();
    assert_eq!(
        (probed.probe_at, probed.since, probed.code),
        (at(250), at(10), Some(190))
    );
    assert!(d.release_hold(&acme).await.unwrap());
    assert!(!d.release_hold(&acme).await.unwrap(), "released once");
    assert!(!d.claim_hold_probe(&acme, at(250), at(400)).await.unwrap());
    assert_eq!(d.tenant(&acme).await.unwrap().unwrap(), before);
    // A tenant that does not exist is not created by a hold.
    let ghost = tenant("ghost");
    assert!(!d.place_hold(&ghost, &hold).await.unwrap());
    assert!(d.tenant(&ghost).await.unwrap().is_none());
}

/// Account signals are ordered partial writes: an older one never replaces a newer
/// one, an equal time applies again, and nothing else of the profile changes (a
/// concurrent suspension is never undone).
pub async fn account_signals_apply_in_meta_time_order_and_touch_nothing_else(
    h: &dyn DirectoryHarness,
) {
    use wa_shared::ports::AccountSignal;
    let d = h.directory();
    let acme = tenant("acme");
    let mut before = profile("acme", "1000001", "2000001");
    d.put_tenant(&before).await.unwrap();
    // An operator suspends meanwhile (written after the webhook read nothing).
    before.status = TenantStatus::Suspended;
    d.put_tenant(&before).await.unwrap();
    let q = AccountSignal::PhoneQuality;
    assert!(
        d.set_account_signal(&acme, q, "FLAGGED TIER_250", at(20))
            .await
            .unwrap()
    );
    assert!(
        !d.set_account_signal(&acme, q, "UPGRADE TIER_2K", at(10))
            .await
            .unwrap(),
        "older"
    );
    assert!(
        d.set_account_signal(&acme, q, "FLAGGED TIER_250", at(20))
            .await
            .unwrap(),
        "same time"
    );
    let a = AccountSignal::AccountEvent;
    assert!(
        d.set_account_signal(&acme, a, "ACCOUNT_RESTRICTION", at(15))
            .await
            .unwrap()
    );
    let after = d.tenant(&acme).await.unwrap().unwrap();
    assert_eq!(after.phone_quality.as_deref(), Some("FLAGGED TIER_250"));
    assert_eq!(after.phone_quality_at, Some(at(20)));
    assert_eq!(after.account_event.as_deref(), Some("ACCOUNT_RESTRICTION"));
    assert_eq!(after.account_event_at, Some(at(15)));
    assert_eq!(
        after.status,
        TenantStatus::Suspended,
        "the suspension stays"
    );
    assert_eq!(
        TenantProfile {
            phone_quality: None,
            phone_quality_at: None,
            account_event: None,
            account_event_at: None,
            ..after
        },
        before
    );
    assert!(
        d.set_account_signal(&acme, q, "UPGRADE TIER_2K", at(30))
            .await
            .unwrap()
    );
    assert!(
        !d.set_account_signal(&tenant("ghost"), q, "FLAGGED", at(1))
            .await
            .unwrap()
    );
    assert!(d.tenant(&tenant("ghost")).await.unwrap().is_none());
}

/// A tenant's API keys are listed by hash with when and how they were added, oldest
/// first; a revoked key no longer routes and leaves the list; a tenant cannot revoke
/// another tenant's key.
pub async fn api_keys_are_listed_per_tenant_and_revoked(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let (acme, beta) = (tenant("acme"), tenant("beta"));
    d.put_tenant(&profile("acme", "10", "11")).await.unwrap();
    d.put_tenant(&profile("beta", "20", "21")).await.unwrap();
    assert!(d.api_keys(&acme).await.unwrap().is_empty());
    let newer = ApiKeyEntry::new(ApiKeyHash::of_key("acme-2"), at(5), None);
    let older = ApiKeyEntry::new(ApiKeyHash::of_key("acme-1"), at(1), Some("wa.toml"));
    let betas = ApiKeyEntry::new(ApiKeyHash::of_key("beta-1"), at(2), Some("ops"));
    d.add_api_key(&acme, &newer).await.unwrap();
    d.add_api_key(&acme, &older).await.unwrap();
    d.add_api_key(&beta, &betas).await.unwrap();
    assert_eq!(
        d.api_keys(&acme).await.unwrap(),
        [older.clone(), newer.clone()]
    );
    assert_eq!(
        d.api_keys(&beta).await.unwrap(),
        std::slice::from_ref(&betas)
    );
    assert!(d.api_keys(&tenant("nobody")).await.unwrap().is_empty());

    assert!(d.revoke_api_key(&acme, &older.hash).await.unwrap());
    assert_eq!(d.tenant_by_api_key(&older.hash).await.unwrap(), None);
    assert_eq!(
        d.api_keys(&acme).await.unwrap(),
        std::slice::from_ref(&newer)
    );
    assert_eq!(
        d.tenant_by_api_key(&newer.hash).await.unwrap(),
        Some(acme.clone())
    );
    assert!(!d.revoke_api_key(&acme, &older.hash).await.unwrap(), "gone");
    assert!(
        !d.revoke_api_key(&acme, &betas.hash).await.unwrap(),
        "not acme's"
    );
    assert_eq!(
        d.tenant_by_api_key(&betas.hash).await.unwrap(),
        Some(beta.clone())
    );
    assert_eq!(d.api_keys(&beta).await.unwrap(), [betas]);
    // The profile is untouched by its keys.
    assert_eq!(
        d.tenant(&acme).await.unwrap(),
        Some(profile("acme", "10", "11"))
    );
}

/// A key of one tenant is refused for another (never re-pointed); adding a key the
/// tenant has keeps its first time and label; once revoked, another tenant may add it.
pub async fn an_api_key_of_another_tenant_is_refused_not_repointed(h: &dyn DirectoryHarness) {
    let d = h.directory();
    let (acme, beta) = (tenant("acme"), tenant("beta"));
    let first = ApiKeyEntry::new(ApiKeyHash::of_key("shared"), at(1), Some("wa.toml"));
    d.add_api_key(&acme, &first).await.unwrap();
    let again = ApiKeyEntry::new(first.hash.clone(), at(9), Some("later"));
    let refused = d.add_api_key(&beta, &again).await;
    assert!(
        matches!(&refused, Err(DirectoryError::ApiKeyTaken { owner }) if owner == &acme),
        "{refused:?}"
    );
    let refused = d.put_api_key(&first.hash, &beta).await;
    assert!(
        matches!(&refused, Err(DirectoryError::ApiKeyTaken { owner }) if owner == &acme),
        "{refused:?}"
    );
    assert_eq!(
        d.tenant_by_api_key(&first.hash).await.unwrap(),
        Some(acme.clone())
    );
    assert!(d.api_keys(&beta).await.unwrap().is_empty());

    d.add_api_key(&acme, &again).await.unwrap();
    d.put_api_key(&first.hash, &acme).await.unwrap();
    assert_eq!(
        d.api_keys(&acme).await.unwrap(),
        std::slice::from_ref(&first)
    );

    assert!(d.revoke_api_key(&acme, &first.hash).await.unwrap());
    d.add_api_key(&beta, &again).await.unwrap();
    assert_eq!(
        d.tenant_by_api_key(&first.hash).await.unwrap(),
        Some(beta.clone())
    );
    assert_eq!(d.api_keys(&beta).await.unwrap(), [again]);
    assert!(d.api_keys(&acme).await.unwrap().is_empty());
    // put_api_key records when (by the wall clock), without a label.
    let plain = ApiKeyHash::of_key("plain");
    d.put_api_key(&plain, &acme).await.unwrap();
    let listed = d.api_keys(&acme).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((&listed[0].hash, &listed[0].label), (&plain, &None));
    assert!(listed[0].added_at.is_some_and(|t| t > T0));
}

/// One `#[tokio::test]` per conformance case. `$harness` is an expression giving a
/// future of `Option<impl DirectoryHarness>` (`None`: skip, e.g. moto not running).
#[macro_export]
macro_rules! directory_conformance_tests {
    ($harness:expr) => {
        $crate::directory_conformance_tests!(@cases $harness;
            tenant_is_found_by_api_key_phone_number_and_waba,
            unknown_lookups_find_nothing,
            list_tenants_returns_every_profile,
            put_tenant_replaces_the_profile_and_moves_its_routing,
            a_moved_phone_number_stays_with_its_new_owner,
            several_numbers_and_a_shared_waba_route_to_each_tenant,
            template_is_found_by_exact_locale,
            templates_named_lists_every_language,
            status_update_is_visible_on_the_next_get,
            updates_of_an_unknown_template_return_false,
            template_updates_apply_only_when_newer,
            category_change_is_kept_until_the_next_sync,
            marketing_preference_follows_the_order_of_time,
            marketing_limit_only_moves_later,
            quality_update_is_kept_across_a_resync,
            contact_defaults_when_nothing_is_stored,
            record_inbound_only_moves_forward,
            opt_out_and_opt_in_follow_the_order_of_time,
            tenants_do_not_see_each_others_templates_or_contacts,
            concurrent_inbound_records_end_at_the_latest,
            holds_are_placed_once_probed_by_one_and_released,
            account_signals_apply_in_meta_time_order_and_touch_nothing_else,
            api_keys_are_listed_per_tenant_and_revoked,
            an_api_key_of_another_tenant_is_refused_not_repointed,
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(harness) = $harness.await else { return };
                $crate::directory_conformance::$case(&harness).await;
            }
        )*
    };
}
