//! Which Graph endpoint a send goes to: `/messages`, or Meta's Marketing Messages API
//! (`/marketing_messages`, the same request body) for the MARKETING templates of a
//! tenant that chose it (`TenantProfile::marketing_messages_api`).

use crate::domain::tenant::TenantProfile;

/// The Graph send endpoint of one message, under `/{phone_number_id}/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SendEndpoint {
    /// `POST /{phone_number_id}/messages`: every message, unless below.
    #[default]
    Messages,
    /// `POST /{phone_number_id}/marketing_messages`: the Marketing Messages API, for
    /// MARKETING templates of tenants with `marketing_messages_api` on.
    MarketingMessages,
}

impl SendEndpoint {
    /// The endpoint for a send of `profile`'s: `is_marketing` is whether it is a
    /// template whose catalog category is MARKETING (`policy::is_marketing`).
    pub fn for_send(profile: &TenantProfile, is_marketing: bool) -> Self {
        if is_marketing && profile.marketing_messages_api {
            Self::MarketingMessages
        } else {
            Self::Messages
        }
    }

    /// The last segment of the URL: `messages` or `marketing_messages`.
    pub fn path(self) -> &'static str {
        match self {
            Self::Messages => "messages",
            Self::MarketingMessages => "marketing_messages",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> TenantProfile {
        serde_json::from_value(serde_json::json!({"id": "demo", "phone_number_id": "1",
            "waba_id": "2", "queue": "q", "token_ref": "env:X", "max_concurrency": 1,
            "throughput_mps": 80, "updated_at": 0}))
        .unwrap()
    }

    #[test]
    fn only_marketing_templates_of_a_tenant_that_chose_it_use_the_marketing_api() {
        let mut p = profile();
        assert_eq!(SendEndpoint::for_send(&p, true), SendEndpoint::Messages);
        assert_eq!(SendEndpoint::for_send(&p, false), SendEndpoint::Messages);
        p.marketing_messages_api = true;
        assert_eq!(
            SendEndpoint::for_send(&p, true),
            SendEndpoint::MarketingMessages
        );
        assert_eq!(SendEndpoint::for_send(&p, false), SendEndpoint::Messages);
        assert_eq!(SendEndpoint::Messages.path(), "messages");
        assert_eq!(SendEndpoint::MarketingMessages.path(), "marketing_messages");
    }
}
