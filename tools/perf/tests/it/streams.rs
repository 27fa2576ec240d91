//! DynamoDB Streams for the `events` function, as Lambda would hand it its records:
//! moto keeps no stream, so the tap reads the messages and events tables straight
//! from moto (not through the meter: Lambda's reads of a stream are free) and turns
//! what changed since its last look into stream records (`NEW_AND_OLD_IMAGES`).

use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The last images seen of both tables.
pub struct StreamTap {
    http: reqwest::Client,
    endpoint: String,
    tables: Vec<String>,
    seen: HashMap<String, HashMap<String, Map<String, Value>>>,
    keys: HashMap<String, Vec<String>>,
    sequence: u64,
}

impl StreamTap {
    /// A tap on `tables` at moto's `endpoint`; what they hold now counts as seen.
    pub async fn new(endpoint: &str, tables: &[&str]) -> Self {
        let mut tap = Self {
            http: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            tables: tables.iter().map(|t| (*t).to_owned()).collect(),
            seen: HashMap::new(),
            keys: HashMap::new(),
            sequence: 0,
        };
        for table in tap.tables.clone() {
            let described = tap.call("DescribeTable", json!({"TableName": table})).await;
            let keys = described["Table"]["KeySchema"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k["AttributeName"].as_str().map(str::to_owned))
                .collect();
            tap.keys.insert(table.clone(), keys);
            tap.records(&table).await;
        }
        tap
    }

    async fn call(&self, operation: &str, body: Value) -> Value {
        let answer = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("x-amz-target", format!("DynamoDB_20120810.{operation}"))
            .header("content-type", "application/x-amz-json-1.0")
            // moto routes by the credential scope's service.
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        answer.json().await.unwrap()
    }

    /// The last image seen of the item of `table` whose `pk` is `pk` (a string key).
    pub fn item(&self, table: &str, pk: &str) -> Option<&Map<String, Value>> {
        self.seen
            .get(table)?
            .values()
            .find(|item| item.get("pk").and_then(|v| v["S"].as_str()) == Some(pk))
    }

    /// The stream records of `table` since the last call: an `INSERT` or `MODIFY` per
    /// changed item, a `REMOVE` per item gone, in no particular order among items.
    pub async fn records(&mut self, table: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut start: Option<Value> = None;
        loop {
            let mut request = json!({"TableName": table, "ConsistentRead": true});
            if let Some(s) = start.take() {
                request["ExclusiveStartKey"] = s;
            }
            let page = self.call("Scan", request).await;
            items.extend(
                page["Items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i.as_object().cloned()),
            );
            match page.get("LastEvaluatedKey") {
                Some(k) => start = Some(k.clone()),
                None => break,
            }
        }
        let key_names = self.keys.get(table).cloned().unwrap_or_default();
        let key_of = |item: &Map<String, Value>| -> Map<String, Value> {
            item.iter()
                .filter(|(k, _)| key_names.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let mut now: HashMap<String, Map<String, Value>> = HashMap::new();
        for item in items {
            now.insert(Value::Object(key_of(&item)).to_string(), item);
        }
        let before = self.seen.remove(table).unwrap_or_default();
        let mut out = Vec::new();
        for (key, item) in &now {
            let old = before.get(key);
            if old == Some(item) {
                continue;
            }
            let name = if old.is_some() { "MODIFY" } else { "INSERT" };
            out.push(self.record(table, name, key_of(item), Some(item), old));
        }
        for (key, item) in &before {
            if !now.contains_key(key) {
                out.push(self.record(table, "REMOVE", key_of(item), None, Some(item)));
            }
        }
        self.seen.insert(table.to_owned(), now);
        out
    }

    fn record(
        &mut self,
        table: &str,
        name: &str,
        keys: Map<String, Value>,
        new: Option<&Map<String, Value>>,
        old: Option<&Map<String, Value>>,
    ) -> Value {
        self.sequence += 1;
        let mut change = json!({
            "ApproximateCreationDateTime": 1_780_481_730,
            "Keys": keys,
            "SequenceNumber": format!("{:021}", self.sequence),
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        });
        if let Some(new) = new {
            change["NewImage"] = Value::Object(new.clone());
        }
        if let Some(old) = old {
            change["OldImage"] = Value::Object(old.clone());
        }
        json!({
            "eventID": format!("perf-{}", self.sequence),
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "eventSourceARN": format!(
                "arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-01-01T00:00:00.000"
            ),
            "dynamodb": change,
        })
    }
}
