//! The local event source mappings: what Lambda does between a queue and a function.
//!
//! Each tenant's send queue gets as many workers as the tenant's `max_concurrency`
//! (the mapping's `MaximumConcurrency`), so one tenant's backlog never takes another
//! tenant's workers. A worker receives up to 10 messages, hands them to the sender
//! handler as an SQS event and, like Lambda with `ReportBatchItemFailures`, deletes
//! every record the handler did not report (a reported one has already had its
//! visibility set to the retry delay). The webhook inbox gets one worker running the
//! webhook function's inbox handler. Tenants are re-listed every few seconds, so a
//! tenant added while `wa dev` runs (`wa tenants add --data`) is served too.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{Instrument, error, info, info_span, warn};
use wa_shared::app::ReconcilerDeps;
use wa_shared::domain::tenant::TenantProfile;
use wa_shared::ports::{QueueRef, ReceiptHandle, ReceivedMessage};
use wa_shared::wiring::local::Functions;

/// How long one receive waits for a message (a long poll; shutdown interrupts it).
const RECEIVE_WAIT: Duration = Duration::from_secs(5);
/// Pause after a failed receive, so a broken store is not hammered.
const ERROR_PAUSE: Duration = Duration::from_secs(1);
/// How often the tenant list is read again.
pub const TENANT_REFRESH: Duration = Duration::from_secs(2);

/// Which handler a queue's batches go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumer {
    /// The sender function (a tenant's send queue).
    Sender,
    /// The webhook function's inbox replay.
    Inbox,
}

/// One mapping: a queue, its handler, its concurrency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The queue.
    pub queue: QueueRef,
    /// Its consumer.
    pub consumer: Consumer,
    /// Workers (batches in flight at once).
    pub concurrency: u32,
}

/// Called with each tenant the first time the pollers see it (`wa dev` gives its
/// phone number to the sandbox).
pub type OnTenant = Arc<dyn Fn(&TenantProfile) + Send + Sync>;

/// Runs mappings until `stop` turns true; in-flight batches finish first.
pub struct Pollers {
    functions: Functions,
    visibility: Duration,
    stop: watch::Receiver<bool>,
    on_tenant: Option<OnTenant>,
}

impl Pollers {
    /// Pollers feeding `functions`; received messages stay hidden for `visibility`.
    pub fn new(functions: Functions, visibility: Duration, stop: watch::Receiver<bool>) -> Self {
        Self {
            functions,
            visibility,
            stop,
            on_tenant: None,
        }
    }

    /// Call `hook` with every tenant when its polling starts.
    pub fn on_tenant(mut self, hook: OnTenant) -> Self {
        self.on_tenant = Some(hook);
        self
    }

    /// Serve the inbox and every tenant's queue until stopped.
    pub async fn run(self, inbox: QueueRef) {
        let mut running: HashMap<String, (Mapping, watch::Sender<bool>)> = HashMap::new();
        let mut workers = JoinSet::new();
        let inbox = Mapping {
            queue: inbox,
            consumer: Consumer::Inbox,
            concurrency: 1,
        };
        let (inbox_stop, _) = watch::channel(false);
        self.spawn(&mut workers, &inbox, &inbox_stop);
        let mut stop = self.stop.clone();
        loop {
            match self.functions.sender.ports.directory.list_tenants().await {
                Ok(tenants) => {
                    if let Some(hook) = &self.on_tenant {
                        for t in tenants
                            .iter()
                            .filter(|t| !running.contains_key(t.id.as_str()))
                        {
                            hook(t);
                        }
                    }
                    let wanted: HashMap<String, Mapping> = tenants
                        .into_iter()
                        .map(|t| {
                            let mapping = Mapping {
                                queue: QueueRef::new(t.queue),
                                consumer: Consumer::Sender,
                                concurrency: t.max_concurrency.max(1),
                            };
                            (t.id.as_str().to_owned(), mapping)
                        })
                        .collect();
                    running.retain(|tenant, (mapping, tenant_stop)| {
                        let keep = wanted.get(tenant) == Some(mapping);
                        if !keep {
                            // Its workers finish their batch and exit.
                            let _ = tenant_stop.send(true);
                        }
                        keep
                    });
                    for (tenant, mapping) in wanted {
                        if running.contains_key(&tenant) {
                            continue;
                        }
                        info!(tenant = %tenant, queue = %mapping.queue, concurrency = mapping.concurrency,
                              "polling the tenant's queue");
                        let (tenant_stop, _) = watch::channel(false);
                        self.spawn(&mut workers, &mapping, &tenant_stop);
                        running.insert(tenant, (mapping, tenant_stop));
                    }
                }
                Err(e) => error!(error = %e, "listing tenants failed; keeping the current pollers"),
            }
            // Reap finished workers as we go, so the set does not grow.
            while workers.try_join_next().is_some() {}
            tokio::select! {
                () = tokio::time::sleep(TENANT_REFRESH) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        let _ = inbox_stop.send(true);
        for (_, (_, tenant_stop)) in running {
            let _ = tenant_stop.send(true);
        }
        while workers.join_next().await.is_some() {}
    }

    fn spawn(&self, workers: &mut JoinSet<()>, mapping: &Mapping, own_stop: &watch::Sender<bool>) {
        for n in 0..mapping.concurrency {
            let worker = Worker {
                functions: self.functions.clone(),
                mapping: mapping.clone(),
                visibility: self.visibility,
            };
            let span = info_span!("poller", queue = %mapping.queue, worker = n);
            let stops = (self.stop.clone(), own_stop.subscribe());
            workers.spawn(worker.run(stops).instrument(span));
        }
    }
}

struct Worker {
    functions: Functions,
    mapping: Mapping,
    visibility: Duration,
}

impl Worker {
    async fn run(self, (mut all, mut own): (watch::Receiver<bool>, watch::Receiver<bool>)) {
        loop {
            if *all.borrow() || *own.borrow() {
                return;
            }
            let received = tokio::select! {
                r = self.functions.sender.ports.queue.receive(&self.mapping.queue, 10, self.visibility, RECEIVE_WAIT) => r,
                _ = all.wait_for(|s| *s) => return,
                _ = own.wait_for(|s| *s) => return,
            };
            match received {
                Ok(messages) if messages.is_empty() => {}
                Ok(messages) => self.handle(messages).await,
                Err(e) => {
                    error!(error = %e, "receive failed");
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
            }
        }
    }

    /// One invocation: the batch to the handler, then the deletes Lambda would do.
    async fn handle(&self, messages: Vec<ReceivedMessage>) {
        let receipts: Vec<(String, ReceiptHandle)> = messages
            .iter()
            .map(|m| (m.id.as_str().to_owned(), m.receipt.clone()))
            .collect();
        let event = sqs_event(&self.mapping.queue, messages);
        let response = invoke(self.mapping.consumer, &self.functions, event).await;
        // Together, not one after the other: the store folds them into one commit, where
        // ten deletes in a row held the worker for ten commits (issue 15).
        let queue = &self.functions.sender.ports.queue;
        let deletes = receipts
            .iter()
            .filter(|(id, _)| {
                !response
                    .batch_item_failures
                    .iter()
                    .any(|f| &f.item_identifier == id)
            })
            .map(|(id, receipt)| async move {
                if let Err(e) = queue.delete(&self.mapping.queue, receipt).await {
                    // The message comes back after its visibility timeout; the claim
                    // makes the second delivery harmless.
                    warn!(error = %e, sqs_message_id = %id, "delete after a handled record failed");
                }
            });
        futures_util::future::join_all(deletes).await;
    }
}

async fn invoke(consumer: Consumer, functions: &Functions, event: SqsEvent) -> SqsBatchResponse {
    match consumer {
        Consumer::Sender => wa_shared::app::sender::handle(&functions.sender, event).await,
        Consumer::Inbox => wa_shared::app::webhook::handle_inbox(&functions.webhook, event).await,
    }
}

/// The SQS event Lambda would deliver for these messages.
pub fn sqs_event(queue: &QueueRef, messages: Vec<ReceivedMessage>) -> SqsEvent {
    let source_arn = format!("arn:wa-dev:sqs:local:000000000000:{queue}");
    let mut event = SqsEvent::default();
    event.records = messages
        .into_iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = Some(m.id.as_str().to_owned());
            record.receipt_handle = Some(m.receipt.as_str().to_owned());
            record.body = Some(m.body);
            record.attributes.insert(
                "ApproximateReceiveCount".into(),
                m.receive_count.to_string(),
            );
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(source_arn.clone());
            record.aws_region = Some("local".into());
            record
        })
        .collect();
    event
}

/// Runs the reconciler every `every` until `stop`; one run at a time, so runs never overlap.
pub async fn reconcile_every(
    deps: ReconcilerDeps,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let deps = Arc::new(deps);
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match wa_shared::app::reconciler::run(&deps).await {
            Ok(report) => tracing::debug!(?report, "reconciler run"),
            Err(e) => error!(error = %e, "reconciler run incomplete"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_shared::ports::QueueMessageId;

    #[test]
    fn a_batch_looks_like_lambdas_sqs_event() {
        let event = sqs_event(
            &QueueRef::new("send-acme"),
            vec![ReceivedMessage {
                id: QueueMessageId::new("m1"),
                receipt: ReceiptHandle::new("r1"),
                body: r#"{"tenant":"acme","id":"x"}"#.into(),
                receive_count: 2,
            }],
        );
        let json = serde_json::to_value(&event).unwrap();
        let record = &json["Records"][0];
        assert_eq!(record["messageId"], "m1");
        assert_eq!(record["receiptHandle"], "r1");
        assert_eq!(record["eventSource"], "aws:sqs");
        assert_eq!(record["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(record["body"], r#"{"tenant":"acme","id":"x"}"#);
    }
}
