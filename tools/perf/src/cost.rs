//! The AWS bill of one million messages, from what a metered run counted: the
//! pipeline's AWS calls and DynamoDB units ([`crate::meter`]), its Lambda invocations
//! with their durations and memory sizes, its API Gateway requests and its log bytes,
//! at the list prices below.

use crate::meter::Call;
use serde::Serialize;

/// List prices, us-east-1, USD, as published by AWS (checked 2026-12; free tiers
/// ignored). Change them here; `docs/performance.md` prints them with the table.
pub mod prices {
    /// Lambda on arm64, per GB-second.
    pub const LAMBDA_ARM_GB_SECOND: f64 = 0.000_013_333_4;
    /// Lambda, per request.
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// API Gateway HTTP API, per request (first 300 million a month).
    pub const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
    /// SQS standard queue, per request (each 64 KB chunk of payload is one).
    pub const SQS_REQUEST: f64 = 0.40 / 1e6;
    /// DynamoDB on-demand, per write request unit.
    pub const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
    /// DynamoDB on-demand, per read request unit.
    pub const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
    /// EventBridge, per custom event put (64 KB chunks).
    pub const EVENTBRIDGE_EVENT: f64 = 1.00 / 1e6;
    /// CloudWatch Logs, per GB ingested (standard class).
    pub const LOGS_GB: f64 = 0.50;
    /// Secrets Manager, per API call.
    pub const SECRETS_CALL: f64 = 0.05 / 10_000.0;
}

/// One Lambda function's share of a run.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionUse {
    /// The function (`intake`, ...).
    pub name: String,
    /// Its memory size in MB (from the SAM template).
    pub memory_mb: u32,
    /// Invocations during the run.
    pub invocations: u64,
    /// Their summed billed duration in ms (each rounded up to the ms, as Lambda bills).
    pub billed_ms: u64,
    /// Bytes the function logged (CloudWatch Logs ingestion).
    pub log_bytes: u64,
}

/// One line of the bill.
#[derive(Debug, Clone, Serialize)]
pub struct CostLine {
    /// What is billed.
    pub item: String,
    /// How many units per message.
    pub per_message: f64,
    /// The unit it is billed in.
    pub unit: String,
    /// USD per million messages.
    pub usd_per_million: f64,
}

/// The bill of a run of `messages` message lifecycles.
#[derive(Debug, Clone, Serialize)]
pub struct CostTable {
    /// Lifecycles the run measured.
    pub messages: u64,
    /// The lines.
    pub lines: Vec<CostLine>,
    /// Their sum, USD per million messages.
    pub total_usd_per_million: f64,
}

impl CostTable {
    /// The bill of `messages` lifecycles that made `calls`, used `functions` and
    /// answered `http_requests` through API Gateway.
    pub fn of_run(
        messages: u64,
        calls: &[Call],
        functions: &[FunctionUse],
        http_requests: u64,
    ) -> Self {
        let n = messages.max(1) as f64;
        let mut lines = Vec::new();
        let mut line = |item: &str, total: f64, unit: &str, price: f64| {
            // `+ 0.0` turns a sum of nothing (-0.0) into 0.0.
            let per_message = total / n + 0.0;
            lines.push(CostLine {
                item: item.to_owned(),
                per_message,
                unit: unit.to_owned(),
                usd_per_million: per_message * price * 1e6,
            });
        };
        for f in functions {
            let gb_s = f.billed_ms as f64 / 1000.0 * f64::from(f.memory_mb) / 1024.0;
            line(
                &format!("Lambda {} ({} MB) compute", f.name, f.memory_mb),
                gb_s,
                "GB-s",
                prices::LAMBDA_ARM_GB_SECOND,
            );
            line(
                &format!("Lambda {} requests", f.name),
                f.invocations as f64,
                "requests",
                prices::LAMBDA_REQUEST,
            );
        }
        line(
            "API Gateway HTTP API",
            http_requests as f64,
            "requests",
            prices::HTTP_API_REQUEST,
        );
        let sum = |service: &str, value: &dyn Fn(&Call) -> f64| -> f64 {
            calls
                .iter()
                .filter(|c| c.service == service)
                .map(value)
                .sum()
        };
        let sqs_requests = sum("sqs", &|c| {
            c.request_bytes.div_ceil(64 * 1024).max(1) as f64
        });
        line(
            "SQS requests",
            sqs_requests,
            "requests",
            prices::SQS_REQUEST,
        );
        line(
            "DynamoDB writes (tables)",
            sum("dynamodb", &|c| c.write_units),
            "WRU",
            prices::DYNAMODB_WRITE_UNIT,
        );
        line(
            "DynamoDB writes (global indexes)",
            sum("dynamodb", &|c| c.index_write_units),
            "WRU",
            prices::DYNAMODB_WRITE_UNIT,
        );
        line(
            "DynamoDB reads",
            sum("dynamodb", &|c| c.read_units),
            "RRU",
            prices::DYNAMODB_READ_UNIT,
        );
        let events: f64 = calls
            .iter()
            .filter(|c| c.service == "events" && c.operation == "PutEvents")
            .map(|c| c.request_bytes.div_ceil(64 * 1024).max(1) as f64)
            .sum();
        line(
            "EventBridge events",
            events,
            "events",
            prices::EVENTBRIDGE_EVENT,
        );
        line(
            "Secrets Manager calls",
            sum("secretsmanager", &|_| 1.0),
            "calls",
            prices::SECRETS_CALL,
        );
        let log_gb = functions.iter().map(|f| f.log_bytes).sum::<u64>() as f64 / 1e9;
        line("CloudWatch Logs ingestion", log_gb, "GB", prices::LOGS_GB);
        let total_usd_per_million = lines.iter().map(|l| l.usd_per_million).sum();
        Self {
            messages,
            lines,
            total_usd_per_million,
        }
    }

    /// The table in Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| item | per message | unit | USD per million messages |\n| --- | ---: | --- | ---: |\n",
        );
        for l in &self.lines {
            out.push_str(&format!(
                "| {} | {:.4} | {} | {:.2} |\n",
                l.item, l.per_message, l.unit, l.usd_per_million
            ));
        }
        out.push_str(&format!(
            "| **total** | | | **{:.2}** |\n",
            self.total_usd_per_million
        ));
        out
    }
}

/// The memory size of each function in the SAM template (`XFunction:` then its
/// `MemorySize:`, a trailing `# comment` allowed), by lower-case name (`intake`,
/// `sender`, ...).
pub fn memory_sizes(template: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in template.lines() {
        if let Some(name) = line
            .strip_prefix("  ")
            .filter(|l| !l.starts_with(' '))
            .and_then(|l| l.strip_suffix("Function:"))
        {
            current = Some(name.to_ascii_lowercase());
        } else if let (Some(name), Some(size)) = (&current, line.trim().strip_prefix("MemorySize:"))
            && let Ok(mb) = size.split('#').next().unwrap_or_default().trim().parse()
        {
            out.push((name.clone(), mb));
            current = None;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(service: &str, operation: &str, w: f64, r: f64) -> Call {
        Call {
            phase: String::new(),
            service: service.into(),
            operation: operation.into(),
            status: 200,
            request_bytes: 100,
            write_units: w,
            index_write_units: 0.0,
            read_units: r,
        }
    }

    #[test]
    fn the_bill_divides_by_the_messages_and_prices_each_unit() {
        let calls = [
            call("dynamodb", "PutItem", 2.0, 0.0),
            call("dynamodb", "GetItem", 0.0, 1.0),
            call("sqs", "SendMessage", 0.0, 0.0),
            call("sqs", "DeleteMessage", 0.0, 0.0),
        ];
        let f = FunctionUse {
            name: "intake".into(),
            memory_mb: 1024,
            invocations: 2,
            billed_ms: 2000,
            log_bytes: 0,
        };
        let t = CostTable::of_run(2, &calls, &[f], 2);
        let get = |item: &str| {
            t.lines
                .iter()
                .find(|l| l.item.starts_with(item))
                .map(|l| l.usd_per_million)
        };
        // 1 GB-s per message.
        assert!((get("Lambda intake (1024 MB)").unwrap_or(0.0) - 13.3334).abs() < 1e-6);
        assert!((get("DynamoDB writes (tables)").unwrap_or(0.0) - 0.625).abs() < 1e-9);
        assert!((get("SQS requests").unwrap_or(0.0) - 0.40).abs() < 1e-9);
        assert!((get("API Gateway").unwrap_or(0.0) - 1.0).abs() < 1e-9);
        assert!(t.markdown().contains("**total**"));
    }

    #[test]
    fn memory_sizes_are_read_per_function() {
        let template = "Resources:\n  IntakeFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      MemorySize: 256\n  SenderFunction:\n    Properties:\n      # measured: 20 MiB\n      MemorySize: 512 # 4x the peak\n";
        assert_eq!(
            memory_sizes(template),
            vec![("intake".to_owned(), 256), ("sender".to_owned(), 512)]
        );
    }

    #[test]
    fn the_templates_memory_sizes_are_all_read() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml");
        let template = std::fs::read_to_string(path).unwrap_or_default();
        let names: Vec<String> = memory_sizes(&template)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        for f in [
            "intake",
            "sender",
            "webhook",
            "reconciler",
            "events",
            "delivery",
        ] {
            assert!(names.iter().any(|n| n == f), "{f} not in {names:?}");
        }
    }
}
