//! Standard Webhooks signatures: shared with the AWS delivery function, so both
//! sign alike ([`wa_shared::domain::endpoints::signing`]).

pub use wa_shared::domain::endpoints::signing::*;
