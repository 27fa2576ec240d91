//! `AwsMeter`: an HTTP proxy on 127.0.0.1 in front of an AWS endpoint (moto in the
//! tests) that counts every AWS API call going through it, by service and operation,
//! with its payload size and, for DynamoDB, the request units it is billed.
//!
//! Point a process at it with `AWS_ENDPOINT_URL` and it sees exactly the calls the
//! process makes, SDK retries included. DynamoDB's units are computed from the items
//! before and after each write (read from the upstream beside the call, not counted):
//! moto answers a constant `ConsumedCapacity`, and on-demand billing is by item size
//! (`item_size`), including the writes to each global secondary index the item is in.

use crate::item_size::{item_size, read_units, write_units};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Bytes DynamoDB adds to each index entry's size.
const INDEX_ENTRY_OVERHEAD: u64 = 100;

/// The largest request or answer the meter relays (DynamoDB's is 16 MB).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// One AWS API call seen by the meter.
#[derive(Debug, Clone, Serialize)]
pub struct Call {
    /// The phase label current when the call was made ([`AwsMeter::phase`]).
    pub phase: String,
    /// The service, from the request's credential scope (`dynamodb`, `sqs`, ...).
    pub service: String,
    /// The operation (`PutItem`, `SendMessage`, ...).
    pub operation: String,
    /// The HTTP status answered.
    pub status: u16,
    /// Request body bytes.
    pub request_bytes: u64,
    /// DynamoDB write request units billed to the table (0 for other services).
    pub write_units: f64,
    /// DynamoDB write request units billed to its global secondary indexes.
    pub index_write_units: f64,
    /// DynamoDB read request units.
    pub read_units: f64,
}

#[derive(Default)]
struct Recorded {
    phase: String,
    calls: Vec<Call>,
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    recorded: Mutex<Recorded>,
    tables: Mutex<HashMap<String, TableShape>>,
}

/// What the meter needs of a table: its key attributes and its global indexes.
#[derive(Debug, Clone, Default)]
struct TableShape {
    keys: Vec<String>,
    indexes: Vec<IndexShape>,
}

#[derive(Debug, Clone)]
struct IndexShape {
    keys: Vec<String>,
    /// `None`: every attribute (`ALL`); else the projected non-key attributes.
    projected: Option<Vec<String>>,
}

/// The running meter; stops when dropped.
pub struct AwsMeter {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for AwsMeter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AwsMeter {
    /// Start a meter on 127.0.0.1 relaying to `upstream` (`http://127.0.0.1:5000`).
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            recorded: Mutex::default(),
            tables: Mutex::default(),
        });
        let app = axum::Router::new()
            .fallback(relay)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("aws meter stopped: {e}");
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// The URL to give as `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Label the calls from now on (`intake`, `sender`, ...).
    pub fn phase(&self, label: &str) {
        self.lock().phase = label.to_owned();
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Forget the calls so far (the phase stays).
    pub fn reset(&self) {
        self.lock().calls.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.shared
            .recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

async fn relay(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    match relay_and_count(&shared, request).await {
        Ok(response) => response,
        Err(e) => {
            eprintln!("aws meter: {e:#}");
            let mut response = Response::new(Body::from(format!("aws meter: {e:#}")));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response
        }
    }
}

async fn relay_and_count(shared: &Shared, request: Request) -> anyhow::Result<Response> {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, MAX_BODY).await?;
    let service = service_of(&parts.headers);
    let operation = operation_of(&parts.headers, &parts.uri, &body);
    let auth = parts.headers.get("authorization").cloned();
    let request_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);

    let writes = if service == "dynamodb" {
        dynamo_writes(&operation, &request_json)
    } else {
        Vec::new()
    };
    let mut before = Vec::with_capacity(writes.len());
    for w in &writes {
        before.push(shared.current_item(w, auth.as_ref()).await?);
    }

    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut upstream = shared
        .http
        .request(parts.method.clone(), format!("{}{path}", shared.upstream));
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream.body(body.clone()).send().await?;
    let status = answer.status();
    let headers = answer.headers().clone();
    let answer_body = answer.bytes().await?;

    let mut call = Call {
        phase: String::new(),
        service: service.clone(),
        operation: operation.clone(),
        status: status.as_u16(),
        request_bytes: body.len() as u64,
        write_units: 0.0,
        index_write_units: 0.0,
        read_units: 0.0,
    };
    if service == "dynamodb" {
        for (w, old) in writes.iter().zip(before) {
            let shape = shared.shape(&w.table, auth.as_ref()).await?;
            if status.is_success() {
                let new = shared.current_item(w, auth.as_ref()).await?;
                let size = old
                    .as_ref()
                    .map_or(0, item_size)
                    .max(new.as_ref().map_or(0, item_size));
                call.write_units += write_units(size, w.transactional);
                call.index_write_units +=
                    index_units(&shape, old.as_ref(), new.as_ref(), w.transactional);
            } else {
                // A refused conditional write is billed on the item it was checked against.
                call.write_units += write_units(old.as_ref().map_or(0, item_size), w.transactional);
            }
        }
        let answer_json: Value = serde_json::from_slice(&answer_body).unwrap_or(Value::Null);
        call.read_units = dynamo_read_units(&operation, &request_json, &answer_json);
    }
    {
        let mut recorded = shared
            .recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        call.phase = recorded.phase.clone();
        recorded.calls.push(call);
    }

    let mut response = Response::new(Body::from(answer_body));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" && name != "connection" {
            response.headers_mut().insert(name, value.clone());
        }
    }
    Ok(response)
}

/// The service of a signed request: its credential scope `.../{region}/{service}/aws4_request`.
fn service_of(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|cred| cred.split(['/', ',']).nth(3))
        .unwrap_or("unknown")
        .to_owned()
}

/// The operation: `X-Amz-Target`'s suffix (JSON protocols), the `Action` of a query
/// protocol form, or the last segment of an RPC v2 path.
fn operation_of(headers: &HeaderMap, uri: &axum::http::Uri, body: &[u8]) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    let form = std::str::from_utf8(body).unwrap_or("");
    if let Some(action) = form
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
    {
        return action.to_owned();
    }
    uri.path()
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

/// One item a DynamoDB write touches.
#[derive(Debug, Clone)]
struct ItemWrite {
    table: String,
    /// The key, or the whole item of a put (reduced to its key with the table's shape).
    key_or_item: Map<String, Value>,
    transactional: bool,
}

fn dynamo_writes(operation: &str, request: &Value) -> Vec<ItemWrite> {
    let single = |field: &str, transactional: bool, r: &Value| -> Option<ItemWrite> {
        Some(ItemWrite {
            table: r.get("TableName")?.as_str()?.to_owned(),
            key_or_item: r.get(field)?.as_object()?.clone(),
            transactional,
        })
    };
    match operation {
        "PutItem" => single("Item", false, request).into_iter().collect(),
        "UpdateItem" | "DeleteItem" => single("Key", false, request).into_iter().collect(),
        "TransactWriteItems" => request
            .get("TransactItems")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let entry = entry.as_object()?;
                let (kind, r) = entry.iter().next()?;
                let field = if kind == "Put" { "Item" } else { "Key" };
                single(field, true, r)
            })
            .collect(),
        "BatchWriteItem" => request
            .get("RequestItems")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .flat_map(|(table, entries)| {
                entries
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(move |entry| {
                        let (item, field) = match entry.get("PutRequest") {
                            Some(put) => (put, "Item"),
                            None => (entry.get("DeleteRequest")?, "Key"),
                        };
                        Some(ItemWrite {
                            table: table.clone(),
                            key_or_item: item.get(field)?.as_object()?.clone(),
                            transactional: false,
                        })
                    })
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn dynamo_read_units(operation: &str, request: &Value, answer: &Value) -> f64 {
    let consistent = request.get("ConsistentRead").and_then(Value::as_bool) == Some(true);
    let size_of = |v: &Value| v.as_object().map_or(0, item_size);
    match operation {
        "GetItem" => read_units(answer.get("Item").map_or(0, size_of), consistent, false),
        "Query" | "Scan" => {
            let total: u64 = answer
                .get("Items")
                .and_then(Value::as_array)
                .map_or(0, |items| items.iter().map(size_of).sum());
            read_units(total, consistent, false)
        }
        "BatchGetItem" => answer
            .get("Responses")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(table, items)| {
                let consistent = request["RequestItems"][table]["ConsistentRead"] == json!(true);
                items
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| read_units(size_of(i), consistent, false))
                    .sum::<f64>()
            })
            .sum(),
        "TransactGetItems" => answer
            .get("Responses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|r| read_units(r.get("Item").map_or(0, size_of), true, true))
            .sum(),
        _ => 0.0,
    }
}

/// Units written to the table's global indexes: an index holds the item when it has
/// all the index's key attributes; a changed index key is a delete and a put, a
/// changed projection one write, an unchanged one none.
fn index_units(
    shape: &TableShape,
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
    transactional: bool,
) -> f64 {
    let mut units = 0.0;
    for index in &shape.indexes {
        let entry = |item: Option<&Map<String, Value>>| -> Option<Map<String, Value>> {
            let item = item?;
            if !index.keys.iter().all(|k| item.contains_key(k)) {
                return None;
            }
            Some(
                item.iter()
                    .filter(|(name, _)| {
                        shape.keys.contains(name)
                            || index.keys.contains(name)
                            || index.projected.as_ref().is_none_or(|p| p.contains(name))
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
        };
        let (before, after) = (entry(old), entry(new));
        let key_of = |e: &Map<String, Value>| -> Vec<Value> {
            index.keys.iter().map(|k| e[k].clone()).collect()
        };
        // DynamoDB counts 100 bytes of overhead per index entry.
        let size = |e: &Map<String, Value>| item_size(e) + INDEX_ENTRY_OVERHEAD;
        units += match (&before, &after) {
            (None, None) => 0.0,
            (Some(b), None) => write_units(size(b), transactional),
            (None, Some(a)) => write_units(size(a), transactional),
            (Some(b), Some(a)) if key_of(b) != key_of(a) => {
                write_units(size(b), transactional) + write_units(size(a), transactional)
            }
            (Some(b), Some(a)) if b == a => 0.0,
            (Some(b), Some(a)) => write_units(size(b).max(size(a)), transactional),
        };
    }
    units
}

impl Shared {
    /// A DynamoDB call of the meter's own, straight to the upstream (not counted).
    async fn dynamo(
        &self,
        operation: &str,
        body: &Value,
        auth: Option<&axum::http::HeaderValue>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .post(format!("{}/", self.upstream))
            .header("x-amz-target", format!("DynamoDB_20120810.{operation}"))
            .header("content-type", "application/x-amz-json-1.0")
            .body(body.to_string());
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let answer = request.send().await?;
        let status = answer.status();
        let text = answer.text().await?;
        anyhow::ensure!(status.is_success(), "{operation}: {status} {text}");
        Ok(serde_json::from_str(&text)?)
    }

    async fn shape(
        &self,
        table: &str,
        auth: Option<&axum::http::HeaderValue>,
    ) -> anyhow::Result<TableShape> {
        if let Some(shape) = self
            .tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(table)
        {
            return Ok(shape.clone());
        }
        let described = self
            .dynamo("DescribeTable", &json!({"TableName": table}), auth)
            .await?;
        let keys_of = |schema: &Value| -> Vec<String> {
            schema
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k["AttributeName"].as_str().map(str::to_owned))
                .collect()
        };
        let t = &described["Table"];
        let shape = TableShape {
            keys: keys_of(&t["KeySchema"]),
            indexes: t["GlobalSecondaryIndexes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| IndexShape {
                    keys: keys_of(&i["KeySchema"]),
                    projected: match i["Projection"]["ProjectionType"].as_str() {
                        Some("ALL") => None,
                        _ => Some(
                            i["Projection"]["NonKeyAttributes"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|a| a.as_str().map(str::to_owned))
                                .collect(),
                        ),
                    },
                })
                .collect(),
        };
        self.tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(table.to_owned(), shape.clone());
        Ok(shape)
    }

    /// The item a write touches, as stored now (`None`: absent).
    async fn current_item(
        &self,
        write: &ItemWrite,
        auth: Option<&axum::http::HeaderValue>,
    ) -> anyhow::Result<Option<Map<String, Value>>> {
        let shape = self.shape(&write.table, auth).await?;
        let key: Map<String, Value> = write
            .key_or_item
            .iter()
            .filter(|(name, _)| shape.keys.contains(name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let answer = self
            .dynamo(
                "GetItem",
                &json!({"TableName": write.table, "Key": key, "ConsistentRead": true}),
                auth,
            )
            .await?;
        Ok(answer.get("Item").and_then(Value::as_object).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> TableShape {
        TableShape {
            keys: vec!["pk".into()],
            indexes: vec![IndexShape {
                keys: vec!["sweep_key".into(), "sweep_at".into()],
                projected: None,
            }],
        }
    }

    fn item(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn an_index_is_written_when_the_item_enters_moves_or_changes_in_it() {
        let s = shape();
        let out = item(json!({"pk": {"S": "a"}}));
        let in1 =
            item(json!({"pk": {"S": "a"}, "sweep_key": {"S": "queued#1"}, "sweep_at": {"N": "1"}}));
        let in2 = item(
            json!({"pk": {"S": "a"}, "sweep_key": {"S": "sending#1"}, "sweep_at": {"N": "2"}}),
        );
        assert_eq!(index_units(&s, None, Some(&out), false), 0.0);
        assert_eq!(index_units(&s, None, Some(&in1), false), 1.0);
        assert_eq!(index_units(&s, Some(&in1), Some(&in1), false), 0.0);
        assert_eq!(index_units(&s, Some(&in1), Some(&in2), false), 2.0);
        assert_eq!(index_units(&s, Some(&in2), Some(&out), false), 1.0);
    }

    #[test]
    fn writes_are_found_in_every_kind_of_write_request() {
        let put = json!({"TableName": "t", "Item": {"pk": {"S": "a"}, "x": {"S": "y"}}});
        assert_eq!(dynamo_writes("PutItem", &put).len(), 1);
        let tx = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}},
            {"Update": {"TableName": "u", "Key": {"pk": {"S": "b"}}}}]});
        let writes = dynamo_writes("TransactWriteItems", &tx);
        assert_eq!(writes.len(), 2);
        assert!(writes.iter().all(|w| w.transactional));
        let batch = json!({"RequestItems": {"t": [
            {"PutRequest": {"Item": {"pk": {"S": "a"}}}},
            {"DeleteRequest": {"Key": {"pk": {"S": "b"}}}}]}});
        assert_eq!(dynamo_writes("BatchWriteItem", &batch).len(), 2);
        assert!(dynamo_writes("GetItem", &put).is_empty());
    }

    #[test]
    fn the_service_and_operation_come_from_the_signed_request() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20261203/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x"
                .parse()
                .unwrap_or_else(|_| axum::http::HeaderValue::from_static("")),
        );
        headers.insert(
            "x-amz-target",
            axum::http::HeaderValue::from_static("AmazonSQS.SendMessage"),
        );
        let uri: axum::http::Uri = "/".parse().unwrap_or_default();
        assert_eq!(service_of(&headers), "sqs");
        assert_eq!(operation_of(&headers, &uri, b""), "SendMessage");
        let mut form = HeaderMap::new();
        form.insert("authorization", headers["authorization"].clone());
        assert_eq!(
            operation_of(&form, &uri, b"Action=PutMetricData&Version=2010-08-01"),
            "PutMetricData"
        );
    }
}
