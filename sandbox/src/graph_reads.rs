//! The Graph reads an operator's health check makes (`wa doctor`), answered like Meta:
//!
//! - `GET /{version}/{phone_number_id}` (`?fields=display_phone_number,quality_rating,
//!   verified_name`): the business number, with the token of that number;
//! - `GET /{version}/{waba_id}/subscribed_apps`: the apps subscribed to the WABA's
//!   webhooks, with a token of one of its numbers. The sandbox posts every WABA's
//!   webhooks to its receiver, so one app (the sandbox's) is always subscribed.
//!
//! A missing, wrong or expired token answers 190 (HTTP 401); an id the sandbox does
//! not serve answers 100 (HTTP 400), as Meta does for an object it cannot load.

use super::config::PhoneNumberConfig;
use super::meta_error::MetaError;
use super::state::Shared;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use tokio::time::Instant;

/// Id of the app the sandbox reports as subscribed to every WABA it serves.
pub const SANDBOX_APP_ID: &str = "100000000000001";
/// Its name.
pub const SANDBOX_APP_NAME: &str = "wa-sandbox";
/// The verified business name every sandbox number shows.
pub const SANDBOX_VERIFIED_NAME: &str = "WA Sandbox";
/// The quality rating every sandbox number shows.
pub const SANDBOX_QUALITY_RATING: &str = "GREEN";

/// The fields answered when `fields` is absent (a subset of Meta's defaults).
const DEFAULT_FIELDS: &[&str] = &["verified_name", "display_phone_number", "quality_rating"];

fn not_found(method: &str, id: &str) -> MetaError {
    MetaError::new(100, format!(
        "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
    ))
    .with_status(400)
}

/// Meta's answers to a token that does not open `phones` (none of them, or expired).
fn check_token(
    shared: &Shared,
    phones: &[PhoneNumberConfig],
    bearer: Option<&str>,
) -> Result<(), MetaError> {
    let Some(token) = bearer else {
        return Err(MetaError::new(
            190,
            "An active access token must be used to query information about the current user.",
        ));
    };
    let now = Instant::now();
    let matching: Vec<&PhoneNumberConfig> = phones
        .iter()
        .filter(|p| p.access_token.expose() == token)
        .collect();
    if matching.is_empty() {
        return Err(MetaError::new(
            190,
            "Invalid OAuth access token - Cannot parse access token",
        ));
    }
    if matching.iter().all(|p| shared.token_expired(&p.id, now)) {
        return Err(MetaError::new(
            190,
            "Session has expired on Wednesday, 02-Dec-26 07:00:00 PST.",
        ));
    }
    Ok(())
}

/// `GET /{version}/{phone_number_id}`: the number's fields (`fields` picks them; `id`
/// is always there).
pub fn phone_number(
    shared: &Shared,
    id: &str,
    bearer: Option<&str>,
    query: &HashMap<String, String>,
) -> Result<Value, MetaError> {
    let Some(phone) = shared.phone(id) else {
        return Err(not_found("get", id));
    };
    check_token(shared, std::slice::from_ref(&phone), bearer)?;
    let fields: Vec<&str> = match query.get("fields") {
        Some(f) => f
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect(),
        None => DEFAULT_FIELDS.to_vec(),
    };
    let mut out = Map::new();
    for field in fields {
        let value = match field {
            "verified_name" => json!(SANDBOX_VERIFIED_NAME),
            "display_phone_number" => json!(display(&phone.display_phone_number)),
            "quality_rating" => json!(SANDBOX_QUALITY_RATING),
            "code_verification_status" => json!("VERIFIED"),
            "platform_type" => json!("CLOUD_API"),
            "throughput" => json!({"level": "STANDARD"}),
            "id" => continue,
            other => {
                return Err(MetaError::new(
                    100,
                    format!(
                        "Tried accessing nonexisting field ({other}) on node type (WhatsAppBusinessPhoneNumber)"
                    ),
                ));
            }
        };
        out.insert(field.to_owned(), value);
    }
    out.insert("id".into(), json!(phone.id));
    Ok(Value::Object(out))
}

/// `+` and the digits, as Meta shows a number (`+1 555-078-3881` there; the sandbox
/// keeps the digits unformatted).
fn display(digits: &str) -> String {
    if digits.starts_with('+') {
        digits.to_owned()
    } else {
        format!("+{digits}")
    }
}

/// `GET /{version}/{waba_id}/subscribed_apps`: `{"data": [{"whatsapp_business_api_data":
/// {"id", "link", "name"}}]}`.
pub fn subscribed_apps(
    shared: &Shared,
    waba_id: &str,
    bearer: Option<&str>,
) -> Result<Value, MetaError> {
    let phones = shared.phones_of_waba(waba_id);
    if phones.is_empty() {
        return Err(not_found("get", waba_id));
    }
    check_token(shared, &phones, bearer)?;
    Ok(json!({
        "data": [{
            "whatsapp_business_api_data": {
                "id": SANDBOX_APP_ID,
                "link": format!("https://www.facebook.com/games/?app_id={SANDBOX_APP_ID}"),
                "name": SANDBOX_APP_NAME,
            }
        }]
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SandboxConfig;
    use wa_shared::domain::graph::GraphError;

    fn shared() -> Shared {
        let config = SandboxConfig {
            phone_numbers: vec![PhoneNumberConfig {
                id: "106540352242922".into(),
                display_phone_number: "15550783881".into(),
                waba_id: "102290129340398".into(),
                access_token: "good".into(),
                throughput_mps: None,
            }],
            ..SandboxConfig::default()
        };
        Shared::new(config).unwrap().0
    }

    fn query(fields: &str) -> HashMap<String, String> {
        HashMap::from([("fields".to_owned(), fields.to_owned())])
    }

    #[tokio::test]
    async fn a_number_is_read_with_its_token_only() {
        let s = shared();
        let v = phone_number(
            &s,
            "106540352242922",
            Some("good"),
            &query("display_phone_number,quality_rating,verified_name"),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"display_phone_number": "+15550783881", "quality_rating": "GREEN",
                   "verified_name": SANDBOX_VERIFIED_NAME, "id": "106540352242922"})
        );
        for token in [Some("bad"), None] {
            let e = phone_number(&s, "106540352242922", token, &HashMap::new()).unwrap_err();
            assert_eq!((e.code, e.http_status), (190, 401));
            // Parsed back the way the Graph client reads Meta's errors.
            let body = serde_json::to_vec(&e.to_json("t")).unwrap();
            assert_eq!(GraphError::parse(&body).unwrap().code, Some(190));
        }
        let e = phone_number(&s, "999", Some("good"), &HashMap::new()).unwrap_err();
        assert_eq!((e.code, e.http_status), (100, 400));
        let e = phone_number(&s, "106540352242922", Some("good"), &query("nope")).unwrap_err();
        assert_eq!(e.code, 100);
    }

    #[tokio::test]
    async fn an_expired_token_answers_190() {
        let s = shared();
        s.expire_token(&crate::control::TokenExpiry {
            phone_number_id: "106540352242922".into(),
            duration_ms: 60_000,
        })
        .unwrap();
        let e = phone_number(&s, "106540352242922", Some("good"), &HashMap::new()).unwrap_err();
        assert_eq!(e.code, 190);
        let e = subscribed_apps(&s, "102290129340398", Some("good")).unwrap_err();
        assert_eq!(e.code, 190);
    }

    #[tokio::test]
    async fn the_sandbox_app_is_subscribed_to_every_waba_it_serves() {
        let s = shared();
        let v = subscribed_apps(&s, "102290129340398", Some("good")).unwrap();
        assert_eq!(
            v["data"][0]["whatsapp_business_api_data"]["name"],
            SANDBOX_APP_NAME
        );
        assert_eq!(
            v["data"][0]["whatsapp_business_api_data"]["id"],
            SANDBOX_APP_ID
        );
        let e = subscribed_apps(&s, "102290129340398", Some("bad")).unwrap_err();
        assert_eq!(e.code, 190);
        let e = subscribed_apps(&s, "1", Some("good")).unwrap_err();
        assert_eq!((e.code, e.http_status), (100, 400));
    }
}
