//! Every fixture in `events/meta/` parsed, and each event kind read field by field.

use super::*;
use crate::domain::{MessageState, Timestamp};
use EventKind as K;
use std::collections::BTreeSet;

pub(super) const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/meta");

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../../../events/meta/", $name, ".json"))
    };
}

/// Every fixture, the kinds of event it must produce in order, and the warning codes.
pub(super) const FIXTURES: &[(&str, &[EventKind], &[&str])] = &[
    ("status-sent", &[K::Status], &[]),
    ("status-delivered", &[K::Status], &[]),
    ("status-read", &[K::Status], &[]),
    ("status-failed", &[K::Status], &[]),
    ("status-played", &[K::Status], &[]),
    ("status-timestamp-millis", &[K::Status, K::Status], &[]),
    ("status-unknown-value", &[K::Status], &["unknown_status"]),
    ("statuses-batch", &[K::Status; 6], &[]),
    ("inbound-text", &[K::Inbound], &[]),
    ("inbound-stop", &[K::Inbound], &[]),
    ("inbound-button", &[K::Inbound], &[]),
    ("inbound-list-reply", &[K::Inbound], &[]),
    ("inbound-bsuid", &[K::Inbound], &[]),
    ("inbound-image", &[K::Inbound], &[]),
    ("inbound-reaction", &[K::Inbound], &[]),
    ("inbound-location", &[K::Inbound], &[]),
    ("user-preferences-stop", &[K::UserPreference], &[]),
    ("user-preferences-resume", &[K::UserPreference], &[]),
    ("system-error", &[K::SystemError], &[]),
    ("template-status-approved", &[K::TemplateStatus], &[]),
    ("template-status-paused", &[K::TemplateStatus], &[]),
    ("template-status-disabled", &[K::TemplateStatus], &[]),
    ("template-quality-update", &[K::TemplateQuality], &[]),
    ("template-category-update", &[K::TemplateCategory], &[]),
    (
        "template-category-update-impending",
        &[K::TemplateCategory],
        &[],
    ),
    ("phone-quality-update", &[K::PhoneNumberQuality], &[]),
    ("account-update-restriction", &[K::AccountUpdate], &[]),
    ("account-update-ban", &[K::AccountUpdate], &[]),
    ("unknown-field", &[K::Unknown], &["unknown_field"]),
];

pub(super) fn parse(body: &str) -> WebhookBatch {
    parse_envelope(body.as_bytes()).unwrap()
}

fn only<T: Clone>(batch: &WebhookBatch, pick: impl Fn(&WebhookEvent) -> Option<&T>) -> T {
    assert_eq!(batch.events.len(), 1, "{:?}", batch.events);
    pick(&batch.events[0])
        .cloned()
        .expect("unexpected event kind")
}

fn only_status(body: &str) -> StatusUpdate {
    only(&parse(body), |e| match e {
        WebhookEvent::Status(s) => Some(s),
        _ => None,
    })
}

fn only_inbound(body: &str) -> InboundMessage {
    only(&parse(body), |e| match e {
        WebhookEvent::Inbound(m) => Some(m),
        _ => None,
    })
}

pub(super) fn codes(batch: &WebhookBatch) -> Vec<&'static str> {
    batch.warnings.iter().map(|w| w.problem.code()).collect()
}

#[test]
fn every_fixture_parses_into_its_expected_event_kinds() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(FIXTURE_DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let listed: BTreeSet<String> = FIXTURES
        .iter()
        .map(|(n, _, _)| format!("{n}.json"))
        .collect();
    assert_eq!(on_disk, listed, "fixtures on disk and in the table differ");
    for (name, kinds, warnings) in FIXTURES {
        let body = std::fs::read(format!("{FIXTURE_DIR}/{name}.json")).unwrap();
        let batch = parse_envelope(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: Vec<EventKind> = batch.events.iter().map(WebhookEvent::kind).collect();
        assert_eq!(&got, kinds, "{name}");
        assert_eq!(&codes(&batch), warnings, "{name}: {:?}", batch.warnings);
    }
}

#[test]
fn fixtures_verify_with_a_computed_signature() {
    let body = fixture!("statuses-batch").as_bytes();
    let header = sign(b"fixture-secret", body);
    assert_eq!(
        verify_signature(b"fixture-secret", body, Some(&header)),
        Ok(())
    );
}

#[test]
fn a_sent_status_carries_routing_data_pricing_and_conversation() {
    let s = only_status(fixture!("status-sent"));
    assert_eq!(s.waba_id, "102290129340398");
    assert_eq!(s.phone_number_id.unwrap().as_str(), "106540352242922");
    assert_eq!(
        s.wamid.as_str(),
        "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
    );
    assert_eq!(s.status, DeliveryStatus::Sent);
    assert_eq!(s.timestamp, Some(Timestamp::from_secs(1_750_030_071)));
    assert_eq!(s.recipient_id.as_deref(), Some("16505551234"));
    assert_eq!(
        s.biz_opaque_callback_data.as_deref(),
        Some("wa1:demo:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3")
    );
    assert_eq!(
        s.pricing,
        Some(Pricing {
            billable: Some(true),
            pricing_model: Some("PMP".into()),
            pricing_type: Some("regular".into()),
            category: Some("utility".into()),
        })
    );
    let conversation = s.conversation.unwrap();
    assert_eq!(conversation["origin"]["type"], "utility");
    assert!(s.errors.is_empty());
}

#[test]
fn delivered_read_and_played_map_to_their_lifecycle_states() {
    let delivered = only_status(fixture!("status-delivered"));
    assert_eq!(
        delivered.status.message_state(),
        Some(MessageState::Delivered)
    );
    let read = only_status(fixture!("status-read"));
    assert_eq!(read.status.message_state(), Some(MessageState::Read));
    assert_eq!(
        read.recipient_user_id.as_deref(),
        Some("US.13491208655302741918")
    );
    assert_eq!(read.pricing, None);
    let played = only_status(fixture!("status-played"));
    assert_eq!(played.status, DeliveryStatus::Played);
    assert_eq!(played.status.message_state(), Some(MessageState::Read));
}

#[test]
fn a_failed_status_carries_its_error() {
    let s = only_status(fixture!("status-failed"));
    assert_eq!(s.status, DeliveryStatus::Failed);
    assert_eq!(s.status.message_state(), Some(MessageState::Failed));
    assert_eq!(
        s.errors,
        vec![WebhookError {
            code: Some(131_026),
            title: Some("Message undeliverable".into()),
            message: Some("Message undeliverable".into()),
            details: Some("Message Undeliverable.".into()),
            href: Some(
                "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
                    .into()
            ),
        }]
    );
}

#[test]
fn a_batch_keeps_every_status_with_its_own_entry_and_number() {
    let batch = parse(fixture!("statuses-batch"));
    let seen: Vec<(&str, &str, &str)> = batch
        .statuses()
        .map(|s| {
            (
                s.waba_id.as_str(),
                s.phone_number_id.as_ref().unwrap().as_str(),
                s.status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("102290129340398", "106540352242922", "sent"),
            ("102290129340398", "106540352242922", "delivered"),
            ("102290129340398", "106540352242922", "read"),
            ("102290129340398", "106540352242923", "failed"),
            ("109876543210987", "113355779911224", "delivered"),
            ("109876543210987", "113355779911224", "read"),
        ]
    );
    let failed = batch.statuses().nth(3).unwrap();
    assert_eq!(failed.errors[0].code, Some(131_049));
}

#[test]
fn an_unknown_status_value_is_kept_and_reported() {
    let batch = parse(fixture!("status-unknown-value"));
    let s = batch.statuses().next().unwrap();
    assert_eq!(s.status, DeliveryStatus::Unknown("deleted".into()));
    assert_eq!(s.status.message_state(), None);
    assert_eq!(
        batch.warnings[0].to_string(),
        "unknown status value `deleted` in statuses[0] of change 0 of entry 0"
    );
}

#[test]
fn millisecond_and_numeric_timestamps_are_read() {
    let batch = parse(fixture!("status-timestamp-millis"));
    let times: Vec<_> = batch.statuses().map(|s| s.timestamp).collect();
    assert_eq!(
        times,
        [
            Some(Timestamp::from_millis(1_750_030_073_512)),
            Some(Timestamp::from_secs(1_750_030_190)),
        ]
    );
}

#[test]
fn an_inbound_text_carries_sender_profile_and_body() {
    let m = only_inbound(fixture!("inbound-text"));
    assert_eq!(
        m.phone_number_id.as_ref().unwrap().as_str(),
        "106540352242922"
    );
    assert_eq!(m.from.as_deref(), Some("16505551234"));
    assert_eq!(m.from_user_id.as_deref(), Some("US.13491208655302741918"));
    assert_eq!(m.profile_name.as_deref(), Some("Ana Souza"));
    assert_eq!(m.message_type.as_deref(), Some("text"));
    assert_eq!(m.text(), Some("Hi! Is my order on its way?"));
    assert_eq!(m.reply_id(), None);
    assert_eq!(m.timestamp, Some(Timestamp::from_secs(1_750_030_500)));
    assert!(m.id.is_some());
    assert_eq!(m.context_wamid, None);
}

#[test]
fn a_stop_message_exposes_its_keyword_text() {
    let m = only_inbound(fixture!("inbound-stop"));
    assert_eq!(m.text(), Some("STOP"));
    assert_eq!(m.profile_name.as_deref(), Some("Ben Okafor"));
}

#[test]
fn a_quick_reply_tap_carries_label_payload_and_replied_to_wamid() {
    let m = only_inbound(fixture!("inbound-button"));
    assert_eq!(
        m.content,
        InboundContent::QuickReply {
            text: Some("Reschedule".into()),
            payload: Some("reschedule_delivery".into()),
        }
    );
    assert_eq!(m.text(), Some("Reschedule"));
    assert_eq!(m.reply_id(), Some("reschedule_delivery"));
    assert_eq!(
        m.context_wamid.unwrap().as_str(),
        "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
    );
    assert_eq!(m.context_from.as_deref(), Some("15550783881"));
}

#[test]
fn a_list_reply_carries_the_chosen_row() {
    let m = only_inbound(fixture!("inbound-list-reply"));
    assert_eq!(
        m.content,
        InboundContent::InteractiveReply {
            reply: ReplyKind::List,
            id: Some("slot_tue_am".into()),
            title: Some("Tuesday morning".into()),
            description: Some("08:00-12:00".into()),
        }
    );
}

#[test]
fn media_reactions_and_locations_carry_their_references() {
    let image = only_inbound(fixture!("inbound-image"));
    assert_eq!(
        image.content,
        InboundContent::Media {
            kind: "image".into(),
            id: Some("1048576204857601".into()),
            mime_type: Some("image/jpeg".into()),
            sha256: Some("29ed500fa64eb55fc19dc4124acb300e5dcc54a0f822a301ae99944db".into()),
            caption: Some("The parcel arrived damaged".into()),
            filename: None,
        }
    );
    assert_eq!(image.text(), None);
    let reaction = only_inbound(fixture!("inbound-reaction"));
    assert_eq!(
        reaction.content,
        InboundContent::Reaction {
            message_id: Some("wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA".into()),
            emoji: Some("\u{1F44D}".into()),
        }
    );
    let location = only_inbound(fixture!("inbound-location"));
    assert_eq!(
        location.content,
        InboundContent::Location {
            latitude: Some(-23.5617),
            longitude: Some(-46.6559),
            name: Some("Avenida Paulista".into()),
            address: Some("Av. Paulista, 1578 - Bela Vista, Sao Paulo".into()),
        }
    );
}

#[test]
fn a_username_user_is_identified_by_bsuid() {
    let m = only_inbound(fixture!("inbound-bsuid"));
    assert_eq!(m.from, None);
    assert_eq!(m.from_user_id.as_deref(), Some("US.28573910462018573641"));
    assert_eq!(m.profile_name.as_deref(), Some("night_owl"));
}

#[test]
fn a_system_error_names_the_number_and_code() {
    let e = only(&parse(fixture!("system-error")), |e| match e {
        WebhookEvent::SystemError(e) => Some(e),
        _ => None,
    });
    assert_eq!(e.phone_number_id.unwrap().as_str(), "106540352242922");
    assert_eq!(e.error.code, Some(130_429));
}

fn only_template_status(body: &str) -> TemplateStatusUpdate {
    only(&parse(body), |e| match e {
        WebhookEvent::TemplateStatus(t) => Some(t),
        _ => None,
    })
}

#[test]
fn template_status_updates_carry_the_template_and_the_event() {
    let approved = only_template_status(fixture!("template-status-approved"));
    assert_eq!(approved.waba_id, "102290129340398");
    assert_eq!(approved.time, Some(Timestamp::from_secs(1_750_028_400)));
    assert_eq!(approved.event, "APPROVED");
    assert_eq!(approved.template_id.as_deref(), Some("1689556908129832"));
    assert_eq!(approved.name.as_deref(), Some("order_shipped"));
    assert_eq!(approved.language.as_deref(), Some("en_US"));
    assert_eq!(approved.category.as_deref(), Some("UTILITY"));

    let paused = only_template_status(fixture!("template-status-paused"));
    assert_eq!(paused.event, "PAUSED");
    assert_eq!(paused.reason.as_deref(), Some("NONE"));
    assert_eq!(paused.other_info_title.as_deref(), Some("FIRST_PAUSE"));

    let disabled = only_template_status(fixture!("template-status-disabled"));
    assert_eq!(disabled.event, "DISABLED");
    assert_eq!(disabled.disable_info.unwrap()["disable_date"], "1750300000");
}

#[test]
fn quality_and_category_updates_carry_both_sides() {
    let quality = only(&parse(fixture!("template-quality-update")), |e| match e {
        WebhookEvent::TemplateQuality(q) => Some(q),
        _ => None,
    });
    assert_eq!(quality.previous_quality_score.as_deref(), Some("GREEN"));
    assert_eq!(quality.new_quality_score, "YELLOW");
    assert_eq!(quality.name.as_deref(), Some("spring_sale"));

    let done = only(&parse(fixture!("template-category-update")), |e| match e {
        WebhookEvent::TemplateCategory(c) => Some(c),
        _ => None,
    });
    assert_eq!(done.previous_category.as_deref(), Some("UTILITY"));
    assert_eq!(done.new_category.as_deref(), Some("MARKETING"));
    assert_eq!(done.correct_category, None);

    let announced = only(
        &parse(fixture!("template-category-update-impending")),
        |e| match e {
            WebhookEvent::TemplateCategory(c) => Some(c),
            _ => None,
        },
    );
    assert_eq!(announced.correct_category.as_deref(), Some("MARKETING"));
    assert_eq!(
        announced.category_update_timestamp,
        Some(Timestamp::from_secs(1_750_400_000))
    );
}

#[test]
fn phone_and_account_updates_carry_tier_restrictions_and_bans() {
    let phone = only(&parse(fixture!("phone-quality-update")), |e| match e {
        WebhookEvent::PhoneNumberQuality(p) => Some(p),
        _ => None,
    });
    assert_eq!(phone.event, "UPGRADE");
    assert_eq!(phone.display_phone_number.as_deref(), Some("15550783881"));
    assert_eq!(
        phone.max_daily_conversations_per_business.as_deref(),
        Some("TIER_10K")
    );
    assert_eq!(phone.current_limit.as_deref(), Some("TIER_10K"));

    let restricted = only(
        &parse(fixture!("account-update-restriction")),
        |e| match e {
            WebhookEvent::AccountUpdate(a) => Some(a),
            _ => None,
        },
    );
    assert_eq!(restricted.event, "ACCOUNT_RESTRICTION");
    assert_eq!(
        restricted.restrictions,
        vec![AccountRestriction {
            restriction_type: "RESTRICTED_BIZ_INITIATED_MESSAGING".into(),
            expiration: Some(Timestamp::from_secs(1_750_854_800)),
        }]
    );

    let banned = only(&parse(fixture!("account-update-ban")), |e| match e {
        WebhookEvent::AccountUpdate(a) => Some(a),
        _ => None,
    });
    assert_eq!(banned.event, "DISABLED_UPDATE");
    assert_eq!(banned.ban_info.unwrap()["waba_ban_state"], "DISABLE");
}

#[test]
fn an_unknown_field_is_kept_whole_and_reported() {
    let batch = parse(fixture!("unknown-field"));
    let WebhookEvent::Unknown(change) = &batch.events[0] else {
        panic!("expected an unknown change");
    };
    assert_eq!(change.field, "business_capability_update");
    assert_eq!(change.value["max_phone_numbers_per_business"], 20);
    assert_eq!(
        batch.warnings[0].to_string(),
        "unknown field `business_capability_update` in change 0 of entry 0"
    );
}

#[test]
fn a_user_preference_says_stop_or_resume_of_marketing() {
    for (fixture, expected) in [
        (fixture!("user-preferences-stop"), Some(true)),
        (fixture!("user-preferences-resume"), Some(false)),
    ] {
        let u = only(&parse(fixture), |e| match e {
            WebhookEvent::UserPreference(u) => Some(u),
            _ => None,
        });
        assert_eq!(u.marketing_opted_out(), expected);
        assert_eq!(u.wa_id.as_deref(), Some("16505551234"));
        assert_eq!(
            u.phone_number_id.as_ref().map(|p| p.as_str()),
            Some("106540352242922")
        );
        assert!(u.time.is_some());
    }
}
