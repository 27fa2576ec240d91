//! The ports every operator command works through, on AWS or on a SQLite file.
//!
//! A command is written once against [`Directory`], [`MessageStore`] and
//! [`WorkQueue`]; only the AWS-only steps of tenant provisioning (event source
//! mapping, secret, alarm) look at [`Backend::aws`].

use super::config::{AwsSettings, BackendArgs, FileConfig};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wa_shared::adapters::aws::{SdkConfig, load_sdk_config};
use wa_shared::adapters::sqlite::{SqliteDb, SqliteOptions};
use wa_shared::adapters::{
    DynamoCostLedger, DynamoDirectory, DynamoMessageStore, SqliteCostLedger, SqliteDirectory,
    SqliteMessageStore, SqliteWorkQueue, SqsWorkQueue, SystemClock,
};
use wa_shared::ports::{CostLedger, Directory, MessageStore, WorkQueue};

/// How a command opens a SQLite file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// The file must exist (read and repair commands).
    Existing,
    /// Create the file (and its folder) if needed (`wa tenants add`).
    Create,
    /// Never write to disk: a missing file reads as an empty database (`--dry-run`).
    DryRun,
}

/// The AWS side: SDK configuration and stack outputs.
#[derive(Debug, Clone)]
pub struct Aws {
    /// From the standard sources; `AWS_ENDPOINT_URL` redirects it (moto).
    pub sdk: SdkConfig,
    /// The stack outputs.
    pub settings: AwsSettings,
}

enum Place {
    Aws(Box<Aws>),
    Sqlite {
        path: PathBuf,
        directory: Arc<SqliteDirectory>,
        store: Arc<SqliteMessageStore>,
        costs: Arc<SqliteCostLedger>,
    },
}

/// The opened backend.
pub struct Backend {
    place: Place,
    queue: Arc<dyn WorkQueue>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Backend {
    /// AWS unless `--data` names a SQLite file.
    pub async fn open(args: &BackendArgs, open: Open) -> anyhow::Result<Self> {
        match &args.data {
            Some(path) => Self::sqlite(path, open).await,
            None => {
                let file = FileConfig::load(args.config.as_deref())?;
                let settings = AwsSettings::resolve(&args.aws, &file.aws)?;
                Ok(Self::aws(load_sdk_config().await, settings))
            }
        }
    }

    /// The AWS backend.
    pub fn aws(sdk: SdkConfig, settings: AwsSettings) -> Self {
        let queue: Arc<dyn WorkQueue> = Arc::new(SqsWorkQueue::new(&sdk));
        Self {
            place: Place::Aws(Box::new(Aws { sdk, settings })),
            queue,
        }
    }

    async fn sqlite(path: &Path, open: Open) -> anyhow::Result<Self> {
        let exists = path.exists();
        let db = match open {
            Open::Existing if !exists => anyhow::bail!(
                "no SQLite file at {} (wa dev creates it; so does wa tenants add --data {})",
                path.display(),
                path.display()
            ),
            Open::DryRun if !exists => SqliteDb::open_in_memory().await?,
            _ => {
                if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(folder)
                        .with_context(|| format!("creating {}", folder.display()))?;
                }
                SqliteDb::open(path, SqliteOptions::default())
                    .await
                    .with_context(|| format!("opening {}", path.display()))?
            }
        };
        let directory = Arc::new(SqliteDirectory::new(db.clone()).await?);
        let store = Arc::new(SqliteMessageStore::new(db.clone()).await?);
        let costs = Arc::new(SqliteCostLedger::new(db.clone()).await?);
        let queue: Arc<dyn WorkQueue> =
            Arc::new(SqliteWorkQueue::new(db, Arc::new(SystemClock)).await?);
        Ok(Self {
            place: Place::Sqlite {
                path: path.to_owned(),
                directory,
                store,
                costs,
            },
            queue,
        })
    }

    /// One line saying where the command works.
    pub fn describe(&self) -> String {
        match &self.place {
            Place::Aws(aws) => match aws.settings.directory_table() {
                Ok(table) => format!("AWS (directory table {table})"),
                Err(_) => "AWS".to_owned(),
            },
            Place::Sqlite { path, .. } => format!("SQLite file {}", path.display()),
        }
    }

    /// The AWS side, when the backend is AWS.
    pub fn aws_side(&self) -> Option<&Aws> {
        match &self.place {
            Place::Aws(aws) => Some(aws),
            Place::Sqlite { .. } => None,
        }
    }

    /// The directory (tenants, API keys, templates).
    pub fn directory(&self) -> anyhow::Result<Arc<dyn Directory>> {
        match &self.place {
            Place::Sqlite { directory, .. } => Ok(directory.clone()),
            Place::Aws(aws) => Ok(Arc::new(DynamoDirectory::new(
                &aws.sdk,
                aws.settings.directory_table()?,
            ))),
        }
    }

    /// The message store.
    pub fn store(&self) -> anyhow::Result<Arc<dyn MessageStore>> {
        match &self.place {
            Place::Sqlite { store, .. } => Ok(store.clone()),
            Place::Aws(aws) => Ok(Arc::new(DynamoMessageStore::new(
                &aws.sdk,
                aws.settings.messages_table()?,
            ))),
        }
    }

    /// The tenants' cost ledger (counted by the webhook).
    pub fn costs(&self) -> anyhow::Result<Arc<dyn CostLedger>> {
        match &self.place {
            Place::Sqlite { costs, .. } => Ok(costs.clone()),
            Place::Aws(aws) => Ok(Arc::new(DynamoCostLedger::new(
                &aws.sdk,
                aws.settings.quotas_table()?,
            ))),
        }
    }

    /// The tenants' work queues.
    pub fn queue(&self) -> Arc<dyn WorkQueue> {
        self.queue.clone()
    }
}
