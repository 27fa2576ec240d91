//! The sandbox's shared state: configuration, the mutable core (catalogs, limits,
//! fault generators, id counters) behind one lock so decisions are taken in one
//! order, the recorder behind another, and the webhook queue.
//!
//! Lock order: `core` before `recorder`, never the other way; neither is held across
//! an `.await`.

use super::SandboxError;
use super::config::{PhoneNumberConfig, SandboxConfig};
use super::faults::Faults;
use super::limits::Limits;
use super::recording::Recorder;
use super::send::phone_digits;
use super::webhooks::{NumberMeta, Scheduled};
use base64::Engine;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::time::Instant;
use wa_shared::domain::template::TemplateCatalog;

/// State shared by the HTTP handlers, the webhook scheduler and the handle.
#[derive(Debug)]
pub struct Shared {
    /// The configuration as loaded.
    pub config: SandboxConfig,
    /// When the sandbox was built; recorded times are relative to it.
    pub started: Instant,
    /// Phone numbers by id; more can be added while serving ([`Shared::add_phone_number`]).
    phones: RwLock<HashMap<String, PhoneNumberConfig>>,
    /// The templates every WABA starts with.
    base_catalog: TemplateCatalog,
    /// Digits of recipients whose sends fail by webhook with 131026.
    pub failing: HashSet<String>,
    /// Mutable decision state.
    pub core: Mutex<Core>,
    recorder: Mutex<Recorder>,
    webhook_url: RwLock<Option<String>>,
    /// Phone numbers whose access token is expired until the instant given (sends
    /// answer 190 until then: [`Shared::expire_token`]).
    pub expired_tokens: Mutex<HashMap<String, Instant>>,
    /// `(phone number id, wa_id)` pairs whose user stopped marketing (131050).
    pub marketing_stops: Mutex<HashSet<(String, String)>>,
    /// Users at Meta's per-user marketing cap (131049).
    pub marketing_capped: Mutex<HashSet<String>>,
    /// Feed of the webhook scheduler: each message of the channel is a group of items
    /// that reach the scheduler together (the statuses of one send).
    pub queue: mpsc::UnboundedSender<Vec<Scheduled>>,
    /// Client of the webhook receiver.
    pub http: reqwest::Client,
    /// Distinguishes this sandbox's wamids from another run's.
    instance: u32,
}

/// What sends change.
#[derive(Debug)]
pub struct Core {
    /// One catalog per WABA id.
    pub catalogs: HashMap<String, TemplateCatalog>,
    /// Throughput, pair rate and windows.
    pub limits: Limits,
    /// Seeded fault generators.
    pub faults: Faults,
    next_wamid: u64,
    next_trace: u64,
}

impl Core {
    /// A fresh wamid for a message to `recipient`.
    pub fn next_wamid(&mut self, instance: u32, recipient: &str) -> String {
        self.next_wamid += 1;
        let raw = format!("SBX{instance:08X}{:012X}{recipient}", self.next_wamid);
        format!(
            "wamid.{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// A fresh `fbtrace_id`.
    pub fn next_trace(&mut self) -> String {
        self.next_trace += 1;
        format!("Sbx{:020X}", self.next_trace)
    }
}

impl Shared {
    /// Build the state; the webhook queue's receiver goes to the scheduler.
    pub fn new(
        config: SandboxConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<Vec<Scheduled>>), SandboxError> {
        config.validate()?;
        let catalog = config.templates.load()?;
        let phones: HashMap<String, PhoneNumberConfig> = config
            .phone_numbers
            .iter()
            .map(|p| (p.id.clone(), p.clone()))
            .collect();
        let catalogs = phones
            .values()
            .map(|p| (p.waba_id.clone(), catalog.clone()))
            .collect();
        let base_catalog = catalog;
        let failing = config
            .failing_recipients
            .iter()
            .filter_map(|r| phone_digits(r))
            .collect();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.webhook.timeout_ms))
            .build()
            .map_err(|e| SandboxError::Config(format!("webhook client: {e}")))?;
        let instance = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(0);
        let (queue, receiver) = mpsc::unbounded_channel();
        let core = Core {
            catalogs,
            limits: Limits::new(config.limits.clone()),
            faults: Faults::new(config.faults.clone(), config.seed),
            next_wamid: 0,
            next_trace: 0,
        };
        let shared = Self {
            started: Instant::now(),
            phones: RwLock::new(phones),
            base_catalog,
            failing,
            core: Mutex::new(core),
            recorder: Mutex::new(Recorder::new(config.recording.clone())),
            webhook_url: RwLock::new(config.webhook.url.clone()),
            expired_tokens: Mutex::new(HashMap::new()),
            marketing_stops: Mutex::new(HashSet::new()),
            marketing_capped: Mutex::new(HashSet::new()),
            queue,
            http,
            instance,
            config,
        };
        Ok((shared, receiver))
    }

    /// The phone number `id`, if the sandbox serves it.
    pub fn phone(&self, id: &str) -> Option<PhoneNumberConfig> {
        let phones = self.phones.read().unwrap_or_else(|e| e.into_inner());
        phones.get(id).cloned()
    }

    /// The phone numbers of a WABA.
    pub fn phones_of_waba(&self, waba_id: &str) -> Vec<PhoneNumberConfig> {
        let phones = self.phones.read().unwrap_or_else(|e| e.into_inner());
        phones
            .values()
            .filter(|p| p.waba_id == waba_id)
            .cloned()
            .collect()
    }

    /// Serve another phone number from now on (a tenant added while running). Its WABA
    /// gets the configured templates if it has no catalog yet. Returns `false` when
    /// the id is already served (nothing changes).
    pub fn add_phone_number(&self, phone: PhoneNumberConfig) -> Result<bool, SandboxError> {
        if phone.id.is_empty() || phone.waba_id.is_empty() {
            return Err(SandboxError::Invalid(
                "a phone number needs an id and a WABA id".into(),
            ));
        }
        let mut core = self.core();
        let mut phones = self.phones.write().unwrap_or_else(|e| e.into_inner());
        if phones.contains_key(&phone.id) {
            return Ok(false);
        }
        core.catalogs
            .entry(phone.waba_id.clone())
            .or_insert_with(|| self.base_catalog.clone());
        phones.insert(phone.id.clone(), phone);
        Ok(true)
    }

    /// The core, even if a panicking thread poisoned the lock (its state is still usable).
    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` on the recorder.
    pub fn with_recorder<T>(&self, f: impl FnOnce(&mut Recorder) -> T) -> T {
        let mut r = self.recorder.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut r)
    }

    /// Whether request and webhook bodies are recorded.
    pub fn recorder_keeps_bodies(&self) -> bool {
        self.with_recorder(|r| r.keeps_bodies())
    }

    /// The current webhook receiver.
    pub fn webhook_url(&self) -> Option<String> {
        self.webhook_url
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Point webhooks elsewhere (or nowhere).
    pub fn set_webhook_url(&self, url: Option<String>) {
        *self.webhook_url.write().unwrap_or_else(|e| e.into_inner()) = url;
    }

    /// Milliseconds since start.
    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// This sandbox's instance tag (part of every wamid).
    pub fn instance(&self) -> u32 {
        self.instance
    }

    /// `metadata` and `entry.id` of a phone number.
    pub fn number_meta(&self, phone: &PhoneNumberConfig) -> NumberMeta {
        NumberMeta {
            phone_number_id: phone.id.clone(),
            display_phone_number: phone.display_phone_number.clone(),
            waba_id: phone.waba_id.clone(),
        }
    }

    /// Queue something for the webhook scheduler.
    pub fn schedule(&self, due: Instant, item: super::webhooks::Outgoing) {
        self.schedule_all(vec![Scheduled { due, item }]);
    }

    /// Queue items that the scheduler must see together: it never posts one of them
    /// before it knows the others, so an item due earlier is never posted later.
    pub fn schedule_all(&self, items: Vec<Scheduled>) {
        if items.is_empty() {
            return;
        }
        // The receiver only goes away at shutdown, when nothing is posted anyway.
        let _ = self.queue.send(items);
    }
}

/// Unix seconds now plus `offset`.
pub fn unix_seconds(offset: Duration) -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| (d + offset).as_secs())
        .unwrap_or(0)
}
