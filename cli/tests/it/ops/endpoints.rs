//! Issue 12 on AWS (moto): `wa tenants endpoints add|list|remove` (the registry in the
//! directory table, secrets in Secrets Manager), `wa events list` on the DynamoDB
//! event log and `wa events replay` queueing `DeliveryJob`s on the deliveries queue;
//! and what the endpoint commands say on wa dev's SQLite file.

use crate::ops::support::{Backend, Run, wa, wa_env};
use std::collections::{BTreeMap, BTreeSet};
use wa_shared::adapters::{DynamoEndpointRegistry, DynamoEventLog};
use wa_shared::domain::endpoints::signing::WebhookSecret;
use wa_shared::domain::endpoints::{DeadLetter, DeadReason, DeliveryJob};
use wa_shared::domain::events::{Event, EventType};
use wa_shared::domain::{TenantId, Timestamp};
use wa_shared::ports::{EndpointRegistry, EventLog};
use wa_testkit::fixtures;

/// A stack on moto with what issue 12 adds: the deliveries queue and the endpoint
/// secret prefix (the events table is one of the schema's tables).
struct Stack {
    backend: Backend,
    deliveries_url: String,
    endpoint_prefix: String,
    registry: DynamoEndpointRegistry,
    log: DynamoEventLog,
}

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

impl Stack {
    /// A fresh stack with tenants `acme` and `other` in its directory; `None` without moto.
    async fn start() -> Option<Self> {
        let backend = Backend::moto().await?;
        let s = backend.moto.as_ref().unwrap();
        let name = format!("{}deliveries", s.queue_prefix);
        let deliveries_url = aws_sdk_sqs::Client::new(&s.sdk)
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let endpoint_prefix = s.secret_prefix.replace("/tenants/", "/endpoints/");
        let registry = DynamoEndpointRegistry::new(&s.sdk, &s.tables.directory);
        let log = DynamoEventLog::new(&s.sdk, &s.tables.events);
        backend
            .directory
            .put_tenant(&fixtures::tenant("acme").build())
            .await
            .unwrap();
        backend
            .directory
            .put_tenant(
                &fixtures::tenant("other")
                    .phone_number_id("106540352242999")
                    .waba_id("102290129340999")
                    .build(),
            )
            .await
            .unwrap();
        Some(Self {
            backend,
            deliveries_url,
            endpoint_prefix,
            registry,
            log,
        })
    }

    /// `items` and every stack output as flags.
    fn cmd(&self, items: &[&str]) -> Vec<String> {
        let s = self.backend.moto.as_ref().unwrap();
        let mut all = self.backend.cmd(items);
        all.extend(
            [
                "--events-table",
                &s.tables.events,
                "--deliveries-queue-url",
                &self.deliveries_url,
                "--endpoint-secret-prefix",
                &self.endpoint_prefix,
            ]
            .map(str::to_owned),
        );
        all
    }

    fn wa(&self, items: &[&str]) -> Run {
        wa(&self.cmd(items))
    }

    fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.backend.moto.as_ref().unwrap().sdk)
    }

    /// The names of the secrets under the endpoint prefix that are not deleted.
    async fn live_secrets(&self) -> BTreeSet<String> {
        let out = self.secrets().list_secrets().send().await.unwrap();
        out.secret_list()
            .iter()
            .filter(|s| s.deleted_date().is_none())
            .filter_map(|s| s.name())
            .filter(|n| n.starts_with(&self.endpoint_prefix))
            .map(str::to_owned)
            .collect()
    }

    /// Add an endpoint with `wa tenants endpoints add`: its id and the printed secret.
    fn add_endpoint(&self, url: &str, extra: &[&str]) -> (String, Option<String>) {
        let mut items = vec![
            "tenants",
            "endpoints",
            "add",
            "--tenant",
            "acme",
            "--url",
            url,
        ];
        items.extend(extra);
        let out = self.wa(&items).ok();
        let id = out
            .split_whitespace()
            .find(|w| w.starts_with("ep_"))
            .unwrap_or_else(|| panic!("an endpoint id in {out}"))
            .to_owned();
        let mut lines = out.lines();
        let secret = lines
            .find(|l| l.starts_with("Signing secret of endpoint"))
            .and_then(|_| lines.next())
            .map(str::to_owned);
        (id, secret)
    }

    /// Every job waiting on the deliveries queue (received and deleted).
    async fn drain_jobs(&self) -> Vec<DeliveryJob> {
        let sqs = aws_sdk_sqs::Client::new(&self.backend.moto.as_ref().unwrap().sdk);
        let mut jobs = Vec::new();
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&self.deliveries_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let messages = out.messages();
            if messages.is_empty() {
                return jobs;
            }
            for m in messages {
                let body = m.body().unwrap();
                jobs.push(
                    serde_json::from_str(body)
                        .unwrap_or_else(|e| panic!("{body} is not a DeliveryJob: {e}")),
                );
                sqs.delete_message()
                    .queue_url(&self.deliveries_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

/// An event of `tenant` at `at`.
fn event(tenant: &str, id: &str, event_type: EventType, at: Timestamp) -> Event {
    Event {
        id: id.to_owned(),
        event_type,
        timestamp: at.to_rfc3339(),
        tenant: TenantId::parse(tenant).unwrap(),
        data: serde_json::json!({"message_id": format!("msg_{id}"), "sequence": 1}),
    }
}

#[tokio::test]
async fn endpoints_are_added_listed_and_removed_on_aws_with_their_secrets() {
    let Some(stack) = Stack::start().await else {
        return;
    };

    // Refused before anything is written: a private address, an unknown tenant.
    let private = stack
        .wa(&[
            "tenants",
            "endpoints",
            "add",
            "--tenant",
            "acme",
            "--url",
            "https://10.0.0.1/",
        ])
        .failed();
    assert!(
        private.contains("10.0.0.1 is a private, link-local or reserved address"),
        "{private}"
    );
    let loopback = stack
        .wa(&[
            "tenants",
            "endpoints",
            "add",
            "--tenant",
            "acme",
            "--url",
            "https://127.0.0.1:9/",
        ])
        .failed();
    assert!(loopback.contains("loopback"), "{loopback}");
    let unknown = stack
        .wa(&[
            "tenants",
            "endpoints",
            "add",
            "--tenant",
            "nobody",
            "--url",
            "https://hooks.example.com/wa",
        ])
        .failed();
    assert!(unknown.contains("no tenant nobody"), "{unknown}");
    let dry = stack
        .wa(&[
            "tenants",
            "endpoints",
            "add",
            "--tenant",
            "acme",
            "--url",
            "https://hooks.example.com/wa",
            "--dry-run",
        ])
        .ok();
    assert!(dry.contains("dry run") && !dry.contains("whsec_"), "{dry}");
    assert!(stack.live_secrets().await.is_empty());
    assert!(stack.registry.list(&acme()).await.unwrap().is_empty());

    // A generated secret, printed once, kept in Secrets Manager.
    let (id, secret) = stack.add_endpoint(
        "https://hooks.example.com/wa",
        &["--type", "message.delivered", "--type", "message.failed"],
    );
    let secret = secret.expect("a generated secret is printed");
    assert!(WebhookSecret::parse(&secret).is_ok(), "{secret}");
    let name = format!("{}acme/{id}", stack.endpoint_prefix);
    let kept = stack
        .secrets()
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(kept.secret_string(), Some(secret.as_str()));
    let endpoint = stack.registry.get(&acme(), &id).await.unwrap().unwrap();
    assert_eq!(endpoint.url, "https://hooks.example.com/wa");
    assert_eq!(
        endpoint.types,
        Some(BTreeSet::from([
            EventType::MessageDelivered,
            EventType::MessageFailed
        ]))
    );
    assert!(
        endpoint.secret_ref.contains(&name),
        "{}",
        endpoint.secret_ref
    );

    // A given secret is kept, never printed.
    let given = WebhookSecret::from_key(b"cli-test-secret-of-thirty-two-b!").to_whsec();
    let (second, printed) = stack.add_endpoint(
        "https://hooks.example.com/other",
        &["--secret", given.as_str()],
    );
    assert_eq!(printed, None);
    let second_ref = stack
        .registry
        .get(&acme(), &second)
        .await
        .unwrap()
        .unwrap()
        .secret_ref;
    let kept = stack
        .secrets()
        .get_secret_value()
        .secret_id(&second_ref)
        .send()
        .await
        .unwrap();
    assert_eq!(kept.secret_string(), Some(given.as_str()));

    // Health and dead letters show in the list; no secret does.
    stack
        .registry
        .record_failure(
            &acme(),
            &second,
            Timestamp::from_millis(1_780_000_000_000),
            "HTTP 503: down for maintenance",
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
    stack
        .registry
        .put_dead_letter(&DeadLetter {
            tenant: acme(),
            endpoint: second.clone(),
            reason: DeadReason::AttemptsExhausted,
            attempts: 8,
            last_error: Some("HTTP 503".into()),
            dead_at: Timestamp::from_millis(1_780_000_000_000),
            event: event(
                "acme",
                "evt_dead",
                EventType::MessageSent,
                Timestamp::from_millis(1_780_000_000_000),
            ),
        })
        .await
        .unwrap();
    let list = stack
        .wa(&["tenants", "endpoints", "list", "--tenant", "acme"])
        .ok();
    assert!(
        !list.contains("whsec_") && !list.contains(&secret),
        "{list}"
    );
    let header = list.lines().next().unwrap();
    for column in [
        "ENDPOINT",
        "URL",
        "TYPES",
        "STATE",
        "LAST SUCCESS",
        "FAILING SINCE",
        "FAILURES",
        "DEAD LETTERS",
        "LAST ERROR",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = |id: &str| {
        list.lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} in {list}"))
            .to_owned()
    };
    let first_row = row(&id);
    assert!(
        first_row.contains("message.delivered,message.failed") && first_row.contains("enabled"),
        "{first_row}"
    );
    let second_row = row(&second);
    assert!(
        second_row.contains("2026-05-28T20:26:40.000Z")
            && second_row.contains("HTTP 503: down for maintenance"),
        "{second_row}"
    );
    let json = stack.wa(&["tenants", "endpoints", "list", "--json"]).ok();
    assert!(!json.contains("whsec_"), "{json}");
    let lines: BTreeMap<String, serde_json::Value> = json
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["id"].as_str().unwrap().to_owned(), v)
        })
        .collect();
    assert_eq!(lines.len(), 2, "{json}");
    assert_eq!(lines[&id]["dead_letters"], 0);
    assert_eq!(lines[&second]["dead_letters"], 1);
    assert_eq!(lines[&second]["health"]["failures_in_a_row"], 1);
    assert_eq!(lines[&second]["types"], serde_json::Value::Null);

    // Remove: the endpoint, its dead letters and its secret.
    let removed = stack
        .wa(&[
            "tenants",
            "endpoints",
            "remove",
            "--tenant",
            "acme",
            "--endpoint",
            &second,
        ])
        .ok();
    assert!(
        removed.contains(&format!("endpoint {second} of tenant acme removed"))
            && removed.contains("1 dead letter"),
        "{removed}"
    );
    assert_eq!(stack.registry.get(&acme(), &second).await.unwrap(), None);
    assert!(
        stack
            .registry
            .dead_letters(&acme(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let gone = stack
        .secrets()
        .get_secret_value()
        .secret_id(&second_ref)
        .send()
        .await;
    let described = stack
        .secrets()
        .describe_secret()
        .secret_id(&second_ref)
        .send()
        .await;
    assert!(
        gone.is_err() || described.is_ok_and(|d| d.deleted_date().is_some()),
        "the secret is deleted or scheduled for deletion"
    );
    assert_eq!(stack.live_secrets().await, BTreeSet::from([name]));
    let again = stack
        .wa(&[
            "tenants",
            "endpoints",
            "remove",
            "--tenant",
            "acme",
            "--endpoint",
            &second,
        ])
        .failed();
    assert!(again.contains("has no endpoint"), "{again}");

    // Tests of the delivery function on 127.0.0.1: the hidden allowance (flag or env).
    for (extra, env) in [
        (vec!["--allow-loopback"], vec![]),
        (vec![], vec![("WA_DELIVERY_ALLOW_LOOPBACK", "true")]),
    ] {
        let mut items = vec![
            "tenants",
            "endpoints",
            "add",
            "--tenant",
            "acme",
            "--url",
            "http://127.0.0.1:9/hooks",
        ];
        items.extend(extra);
        let out = wa_env(&stack.cmd(&items), &env).ok();
        assert!(
            out.contains("http://127.0.0.1:9/hooks (types: all)"),
            "{out}"
        );
    }
}

#[tokio::test]
async fn events_are_listed_from_the_dynamodb_log_and_replayed_to_the_deliveries_queue() {
    let Some(stack) = Stack::start().await else {
        return;
    };
    let now = Timestamp::from_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap(),
    );
    let two_days_ago = now.plus_millis(-2 * 86_400_000);
    stack
        .log
        .append(&[
            event("acme", "evt_old", EventType::MessageDelivered, two_days_ago),
            event(
                "acme",
                "evt_delivered",
                EventType::MessageDelivered,
                now.plus_millis(-60_000),
            ),
            event(
                "acme",
                "evt_read",
                EventType::MessageRead,
                now.plus_millis(-30_000),
            ),
            event(
                "other",
                "evt_other",
                EventType::MessageSent,
                now.plus_millis(-10_000),
            ),
        ])
        .await
        .unwrap();

    // list: one tenant, every tenant, JSON.
    let acme_only = stack
        .wa(&["events", "list", "--since", "1h", "--tenant", "acme"])
        .ok();
    assert!(
        acme_only.contains("evt_delivered")
            && acme_only.contains("evt_read")
            && !acme_only.contains("evt_old")
            && !acme_only.contains("evt_other"),
        "{acme_only}"
    );
    assert!(acme_only.contains("2 event(s) since"), "{acme_only}");
    let every = stack.wa(&["events", "list", "--since", "1h"]).ok();
    assert!(
        every.contains("evt_other") && every.contains("3 event(s) since"),
        "{every}"
    );
    let json = stack
        .wa(&[
            "events",
            "list",
            "--since",
            "3d",
            "--tenant",
            "acme",
            "--type",
            "message.delivered",
            "--json",
        ])
        .ok();
    let ids: Vec<String> = json
        .lines()
        .map(|l| serde_json::from_str::<Event>(l).unwrap().id)
        .collect();
    assert_eq!(ids, ["evt_old", "evt_delivered"]);

    // Nothing to replay before an endpoint exists.
    let none = stack
        .wa(&["events", "replay", "--since", "1h", "--tenant", "acme"])
        .failed();
    assert!(none.contains("has no event endpoint"), "{none}");

    // ep_a wants message.delivered; ep_b everything, but is disabled with a dead letter.
    let (ep_a, _) = stack.add_endpoint(
        "https://hooks.example.com/a",
        &["--type", "message.delivered"],
    );
    let (ep_b, _) = stack.add_endpoint("https://hooks.example.com/b", &[]);
    stack
        .registry
        .put_dead_letter(&DeadLetter {
            tenant: acme(),
            endpoint: ep_b.clone(),
            reason: DeadReason::EndpointDisabled,
            attempts: 0,
            last_error: None,
            dead_at: now,
            event: event("acme", "evt_old", EventType::MessageDelivered, two_days_ago),
        })
        .await
        .unwrap();
    assert!(
        stack
            .registry
            .set_disabled(&acme(), &ep_b, true)
            .await
            .unwrap()
    );

    let replayed = stack
        .wa(&["events", "replay", "--since", "1h", "--tenant", "acme"])
        .ok();
    assert!(
        replayed.contains(
            "tenant acme (2 endpoints): 1 dead letter and 3 deliveries of logged events queued; 1 endpoint enabled again"
        ),
        "{replayed}"
    );
    assert!(
        replayed.contains("4 deliveries queued on the deliveries queue"),
        "{replayed}"
    );
    let mut got: Vec<(String, String)> = stack
        .drain_jobs()
        .await
        .into_iter()
        .map(|j| {
            assert_eq!(j.tenant, acme());
            assert_eq!(j.attempts, 0);
            assert_eq!(j.event.tenant, acme());
            (j.endpoint, j.event.id)
        })
        .collect();
    got.sort();
    let mut want = vec![
        (ep_a.clone(), "evt_delivered".to_owned()),
        (ep_b.clone(), "evt_delivered".to_owned()),
        (ep_b.clone(), "evt_old".to_owned()),
        (ep_b.clone(), "evt_read".to_owned()),
    ];
    want.sort();
    assert_eq!(got, want);
    let b = stack.registry.get(&acme(), &ep_b).await.unwrap().unwrap();
    assert!(!b.disabled, "replay enables the endpoint");
    assert!(
        stack
            .registry
            .dead_letters(&acme(), None, 10)
            .await
            .unwrap()
            .is_empty(),
        "the dead letter was queued and removed"
    );
    let listed = stack
        .wa(&["tenants", "endpoints", "list", "--tenant", "acme"])
        .ok();
    assert!(!listed.contains("disabled"), "{listed}");

    // One endpoint, by id, without --tenant; then by URL, dead letters only.
    let one = stack
        .wa(&["events", "replay", "--since", "1h", "--endpoint", &ep_a])
        .ok();
    assert!(
        one.contains(&format!(
            "tenant acme endpoint {ep_a} (https://hooks.example.com/a)"
        )),
        "{one}"
    );
    let jobs = stack.drain_jobs().await;
    assert_eq!(
        jobs.iter()
            .map(|j| (j.endpoint.as_str(), j.event.id.as_str()))
            .collect::<Vec<_>>(),
        [(ep_a.as_str(), "evt_delivered")]
    );
    let dead_only = stack
        .wa(&[
            "events",
            "replay",
            "--since",
            "1h",
            "--tenant",
            "acme",
            "--endpoint",
            "https://hooks.example.com/b",
            "--only-dead",
        ])
        .ok();
    assert!(dead_only.contains("0 deliveries queued"), "{dead_only}");
    assert!(stack.drain_jobs().await.is_empty());
    let unknown = stack
        .wa(&[
            "events",
            "replay",
            "--since",
            "1h",
            "--tenant",
            "acme",
            "--endpoint",
            "ep_01kaaaaaaaaaaaaaaaaaaaaaaa",
        ])
        .failed();
    assert!(unknown.contains("has no endpoint ep_01k"), "{unknown}");

    // Without the deliveries queue's output, replay says which one is missing.
    let missing = wa(&stack.backend.cmd(&[
        "events",
        "replay",
        "--since",
        "1h",
        "--events-table",
        &stack.backend.moto.as_ref().unwrap().tables.events,
    ]))
    .failed();
    assert!(
        missing.contains("DeliveriesQueueUrl") && missing.contains("--deliveries-queue-url"),
        "{missing}"
    );
}

#[tokio::test]
async fn on_wa_devs_file_the_endpoint_commands_point_to_wa_toml() {
    let backend = Backend::sqlite().await;
    for command in [
        vec!["tenants", "endpoints", "list"],
        vec![
            "tenants",
            "endpoints",
            "add",
            "--tenant",
            "acme",
            "--url",
            "https://hooks.example.com/",
        ],
        vec![
            "tenants",
            "endpoints",
            "remove",
            "--tenant",
            "acme",
            "--endpoint",
            "ep_01kaaaaaaaaaaaaaaaaaaaaaaa",
        ],
    ] {
        let err = wa(&backend.cmd(&command)).failed();
        assert!(
            err.contains("[[tenants.endpoints]]") && err.contains("wa.toml"),
            "{command:?}: {err}"
        );
    }
}
