//! Meta's synchronous error envelope (reference §3), as the sandbox answers it:
//! `{"error":{"message":"(#code) Title","type":"OAuthException","code":..,
//! "error_data":{"messaging_product":"whatsapp","details":..},"fbtrace_id":..}}`.

use serde_json::{Value, json};

/// One error answer: HTTP status, code and texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaError {
    /// HTTP status of the answer (a hint only; clients must read `code`).
    pub http_status: u16,
    /// `error.code`.
    pub code: i64,
    /// `error_data.details`: what exactly was wrong.
    pub details: String,
}

impl MetaError {
    /// An error with Meta's usual HTTP status for the code.
    pub fn new(code: i64, details: impl Into<String>) -> Self {
        Self {
            http_status: super::faults::default_http_status(code),
            code,
            details: details.into(),
        }
    }

    /// The same error with another HTTP status.
    pub fn with_status(mut self, http_status: u16) -> Self {
        self.http_status = http_status;
        self
    }

    /// Meta's title of the code (the text after `(#code)`).
    pub fn title(&self) -> &'static str {
        title_of(self.code)
    }

    /// The envelope, with `fbtrace_id` as given.
    pub fn to_json(&self, fbtrace_id: &str) -> Value {
        let message = if self.code == 190 {
            // Token errors carry no `(#190)` prefix in Meta's answers.
            format!("{}: {}", self.title(), self.details)
        } else {
            format!("(#{}) {}", self.code, self.title())
        };
        let mut error = json!({
            "message": message,
            "type": if self.code == 100 && self.http_status == 404 { "GraphMethodException" } else { "OAuthException" },
            "code": self.code,
        });
        if self.code != 190 {
            error["error_data"] = json!({
                "messaging_product": "whatsapp",
                "details": self.details,
            });
        }
        error["fbtrace_id"] = Value::String(fbtrace_id.to_owned());
        json!({ "error": error })
    }
}

/// Meta's title for the codes the sandbox answers (reference §3 and Meta's error page).
pub fn title_of(code: i64) -> &'static str {
    match code {
        1 => "An unknown error has occurred.",
        2 => "Service temporarily unavailable",
        4 => "Application request limit reached",
        100 => "Invalid parameter",
        190 => "Error validating access token",
        130429 => "Rate limit hit",
        131000 => "Something went wrong",
        131008 => "Required parameter is missing",
        131009 => "Parameter value is not valid",
        131016 => "Service unavailable",
        131026 => "Message undeliverable",
        131047 => "Re-engagement message",
        131051 => "Unsupported message type",
        131056 => "(Business Account, Consumer Account) pair rate limit hit",
        131057 => "Account in maintenance mode",
        131059 => "Invalid pagination cursor",
        132000 => "Number of parameters does not match the expected number of params",
        132001 => "Template name does not exist in the translation",
        132012 => "Parameter format does not match format in the created template",
        132015 => "Template is Paused",
        132016 => "Template is disabled",
        132018 => "There was an issue with the parameters in your template.",
        _ => "Unknown error",
    }
}

/// Meta's `details` for the limit and window errors.
pub mod details {
    /// 130429.
    pub const THROUGHPUT: &str = "Cloud API message throughput has been reached.";
    /// 131056.
    pub const PAIR_RATE: &str = "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.";
    /// 131047.
    pub const WINDOW: &str = "Message failed to send because more than 24 hours have passed since the customer last replied to this number.";
    /// 131026.
    pub const UNDELIVERABLE: &str = "Message Undeliverable.";
    /// 131050.
    pub const MARKETING_STOPPED: &str =
        "The user has chosen to stop receiving marketing messages from this business.";
    /// 131049.
    pub const MARKETING_CAP: &str =
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.";
    /// 131000 and injected 5xx.
    pub const UNKNOWN: &str = "Something went wrong. Please try again later.";
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_shared::domain::graph::GraphError;

    #[test]
    fn the_envelope_reads_back_with_the_domain_parser() {
        let e = MetaError::new(132001, "template name (x) does not exist in en_US");
        assert_eq!(e.http_status, 404);
        let body = serde_json::to_vec(&e.to_json("Sbx1")).unwrap();
        let parsed = GraphError::parse(&body).unwrap();
        assert_eq!(parsed.code, Some(132001));
        assert_eq!(parsed.error_type.as_deref(), Some("OAuthException"));
        assert_eq!(
            parsed.title(),
            Some("Template name does not exist in the translation")
        );
        assert_eq!(
            parsed.details(),
            Some("template name (x) does not exist in en_US")
        );
        assert_eq!(parsed.fbtrace_id.as_deref(), Some("Sbx1"));
    }

    #[test]
    fn token_errors_look_like_metas_and_answer_401() {
        let e = MetaError::new(190, "Invalid OAuth access token.");
        assert_eq!(e.http_status, 401);
        let v = e.to_json("t");
        assert_eq!(v["error"]["code"], 190);
        assert!(v["error"].get("error_data").is_none());
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Error validating access token")
        );
    }
}
