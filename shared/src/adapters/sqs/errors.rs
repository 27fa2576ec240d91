//! SDK errors mapped to `QueueError`, keeping the SDK error as the source.

use crate::ports::QueueError;
use aws_sdk_sqs::error::ProvideErrorMetadata;

pub(super) fn required(
    value: Option<&str>,
    operation: &'static str,
    field: &str,
) -> Result<String, QueueError> {
    value
        .map(str::to_owned)
        .ok_or_else(|| aws_error(operation, format!("answer has no {field}")))
}

pub(super) fn aws_error(
    operation: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> QueueError {
    QueueError::Backend {
        operation,
        source: source.into(),
    }
}

/// Map the errors callers act on; keep every other SDK error as the source.
pub(super) fn sqs_error<E>(operation: &'static str, queue: &str, error: E) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match error.code() {
        Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist") => {
            QueueError::QueueNotFound(queue.to_owned())
        }
        Some(
            "AWS.SimpleQueueService.MessageNotInflight"
            | "MessageNotInflight"
            | "ReceiptHandleIsInvalid",
        ) => QueueError::ReceiptNotInFlight,
        _ => aws_error(operation, error),
    }
}

pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
