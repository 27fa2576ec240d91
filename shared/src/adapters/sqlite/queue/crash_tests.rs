//! A send acknowledged by the embedded queue survives `kill -9` of the process.
//!
//! The test re-runs this test binary as a child that sends messages and prints
//! each acknowledged id; the parent kills it mid-stream and checks every
//! acknowledged message is in the database.

use super::SqliteWorkQueue;
use crate::adapters::SystemClock;
use crate::adapters::sqlite::{SqliteDb, SqliteOptions};
use crate::ports::{QueueRef, WorkQueue};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const DB_ENV: &str = "WA_CRASH_TEST_DB";
const QUEUE: &str = "crash";
const ACKS_BEFORE_KILL: usize = 50;

/// The child's side: send forever, printing `acked <body>` after each commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run only as the child of acknowledged_sends_survive_a_process_kill"]
async fn crash_child_sends_until_killed() {
    let path = std::env::var(DB_ENV).expect("run by the crash test");
    let db = SqliteDb::open(path, SqliteOptions::default())
        .await
        .unwrap();
    let queue = SqliteWorkQueue::new(db, Arc::new(SystemClock))
        .await
        .unwrap();
    let q = queue
        .ensure_queue(QUEUE, &crate::queues::SEND.spec)
        .await
        .unwrap();
    // Several concurrent writers, as in the local pipeline.
    let senders: Vec<_> = (0..4)
        .map(|task| {
            let (queue, q) = (queue.clone(), q.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    let body = format!("{task}-{n}");
                    queue.send(&q, &body, Duration::ZERO).await.unwrap();
                    println!("acked {body}");
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
}

#[tokio::test]
async fn acknowledged_sends_survive_a_process_kill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wa.sqlite");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "adapters::sqlite::queue::crash_tests::crash_child_sends_until_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = BTreeSet::new();
    while acked.len() < ACKS_BEFORE_KILL {
        let line = lines.next().expect("child ended early").unwrap();
        if let Some(body) = line.strip_prefix("acked ") {
            acked.insert(body.to_owned());
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructors, no checkpoint.
    // Acknowledgements printed before the kill are still in the pipe.
    for line in lines.map_while(Result::ok) {
        if let Some(body) = line.strip_prefix("acked ") {
            acked.insert(body.to_owned());
        }
    }
    child.wait().unwrap();

    let db = SqliteDb::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    let queue = SqliteWorkQueue::new(db, Arc::new(SystemClock))
        .await
        .unwrap();
    let q = QueueRef::new(QUEUE);
    let mut stored = BTreeSet::new();
    loop {
        let got = queue
            .receive(&q, 10, Duration::from_secs(600), Duration::ZERO)
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        stored.extend(got.into_iter().map(|m| m.body));
    }
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "acknowledged sends lost after kill: {lost:?}"
    );
    assert!(stored.len() >= ACKS_BEFORE_KILL);
}
