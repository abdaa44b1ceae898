//! The keyward processes: four slots (three sharing one `KEYWARD_HOME`, one with its own), each
//! running one instance at a time (`P2#3`: slot 2, third start). Whoever changes a slot's process
//! (kill, restart, stop) holds its `control` lock; clients and pollers read `live`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::Rng;
use rustix::process::Signal;
use serde_json::Value;
use tokio::process::Child;

use crate::procs::{self, KeywardSetup};
use crate::timeline::now_ms;

/// How long a graceful stop may take before it is cut short: bounds a hang only.
const TERM_PATIENCE: Duration = Duration::from_secs(60);

pub(crate) struct Slot {
    pub(crate) index: usize,
    pub(crate) keyward_home: PathBuf,
    /// `A` (shared by three slots) or `B`.
    pub(crate) store: &'static str,
    pub(crate) control: tokio::sync::Mutex<Control>,
    live: Mutex<Live>,
}

#[derive(Default)]
pub(crate) struct Control {
    child: Option<Child>,
    generation: u32,
    /// The crash point the running instance was started with.
    pub(crate) armed: Option<&'static str>,
}

/// What clients and pollers see of a slot.
#[derive(Clone, Debug, Default)]
pub(crate) struct Live {
    /// `None` while the slot has no process accepting requests.
    pub(crate) url: Option<String>,
    pub(crate) name: String,
    pub(crate) stopped: bool,
}

/// Every instance that ever ran, for the report and the forensics.
#[derive(Clone, Debug)]
pub(crate) struct InstanceRecord {
    pub(crate) name: String,
    pub(crate) slot: usize,
    pub(crate) store: &'static str,
    pub(crate) log: PathBuf,
    pub(crate) ended_ms: Option<i64>,
    /// How it ended: `kill -9`, `crash at after-answer`, `SIGTERM`, `exited unexpectedly`, ...
    pub(crate) ended_by: Option<String>,
}

pub(crate) struct Fleet {
    pub(crate) slots: Vec<Arc<Slot>>,
    setup: KeywardSetup,
    logs: PathBuf,
    http: reqwest::Client,
    instances: Mutex<Vec<InstanceRecord>>,
    /// The latest `/healthz` counters of every instance.
    counters: Mutex<BTreeMap<String, Value>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Slot {
    pub(crate) fn live(&self) -> Live {
        lock(&self.live).clone()
    }

    fn set_live(&self, change: impl FnOnce(&mut Live)) {
        change(&mut lock(&self.live));
    }
}

impl Fleet {
    pub(crate) fn new(
        setup: KeywardSetup,
        logs: PathBuf,
        homes: &[(PathBuf, &'static str)],
    ) -> Result<Self> {
        let slots = homes
            .iter()
            .enumerate()
            .map(|(i, (home, store))| {
                Arc::new(Slot {
                    index: i + 1,
                    keyward_home: home.clone(),
                    store,
                    control: tokio::sync::Mutex::new(Control::default()),
                    live: Mutex::new(Live::default()),
                })
            })
            .collect();
        Ok(Self {
            slots,
            setup,
            logs,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .pool_max_idle_per_host(0)
                .build()?,
            instances: Mutex::new(Vec::new()),
            counters: Mutex::new(BTreeMap::new()),
        })
    }

    /// Starts a new instance in `slot` (whose control the caller holds).
    pub(crate) async fn start(
        &self,
        slot: &Slot,
        control: &mut Control,
        crash_at: Option<&'static str>,
    ) -> Result<()> {
        control.generation += 1;
        let name = format!("P{}#{}", slot.index, control.generation);
        let log = self
            .logs
            .join(format!("keyward-{name}.log").replace('#', "-"));
        lock(&self.instances).push(InstanceRecord {
            name: name.clone(),
            slot: slot.index,
            store: slot.store,
            log: log.clone(),
            ended_ms: None,
            ended_by: None,
        });
        match procs::start_keyward(&self.setup, &slot.keyward_home, &log, crash_at).await {
            Ok((child, url)) => {
                control.child = Some(child);
                control.armed = crash_at;
                slot.set_live(|live| {
                    *live = Live {
                        url: Some(url),
                        name,
                        stopped: false,
                    }
                });
                Ok(())
            }
            Err(e) => {
                let how = match crash_at {
                    Some(point) if format!("{e:#}").contains("KEYWARD_CRASH_AT") => {
                        format!("crash at {point}")
                    }
                    _ => "did not start".to_owned(),
                };
                self.ended(&name, &how);
                Err(e.context(format!("starting {name}")))
            }
        }
    }

    fn ended(&self, name: &str, how: &str) {
        if let Some(record) = lock(&self.instances).iter_mut().find(|r| r.name == name) {
            record.ended_ms.get_or_insert(now_ms());
            record.ended_by.get_or_insert_with(|| how.to_owned());
        }
    }

    /// Takes the slot out of the clients' rotation and returns the instance's name.
    fn take_down(&self, slot: &Slot) -> String {
        let mut name = String::new();
        slot.set_live(|live| {
            live.url = None;
            live.stopped = false;
            name = live.name.clone();
        });
        name
    }

    /// kill -9 (after a last scrape of its counters).
    pub(crate) async fn kill(&self, slot: &Slot, control: &mut Control) -> Result<String> {
        self.scrape_slot(slot).await;
        let name = self.take_down(slot);
        if let Some(mut child) = control.child.take() {
            procs::kill9(&mut child).await?;
        }
        self.ended(&name, "kill -9");
        Ok(name)
    }

    /// SIGTERM and a graceful exit; `Ok(false)` if it had to be killed after all.
    pub(crate) async fn terminate(&self, slot: &Slot, control: &mut Control) -> Result<bool> {
        self.scrape_slot(slot).await;
        let name = self.take_down(slot);
        let graceful = match control.child.take() {
            Some(mut child) => procs::terminate(&mut child, TERM_PATIENCE).await?,
            None => true,
        };
        self.ended(
            &name,
            if graceful {
                "SIGTERM"
            } else {
                "SIGTERM, then kill -9"
            },
        );
        Ok(graceful)
    }

    pub(crate) fn stop(&self, slot: &Slot, control: &Control) -> Result<()> {
        let pid = control
            .child
            .as_ref()
            .and_then(Child::id)
            .context("no process to stop")?;
        procs::signal(pid, Signal::STOP)?;
        slot.set_live(|live| live.stopped = true);
        Ok(())
    }

    pub(crate) fn resume(&self, slot: &Slot, control: &Control) -> Result<()> {
        if let Some(pid) = control.child.as_ref().and_then(Child::id) {
            procs::signal(pid, Signal::CONT)?;
        }
        slot.set_live(|live| live.stopped = false);
        Ok(())
    }

    /// Waits up to `patience` for the instance to exit by itself (a crash point); the exit
    /// status and when it was seen.
    pub(crate) async fn wait_exit(
        &self,
        slot: &Slot,
        control: &mut Control,
        patience: Duration,
    ) -> Result<Option<(ExitStatus, i64)>> {
        let Some(child) = control.child.as_mut() else {
            return Ok(None);
        };
        match tokio::time::timeout(patience, child.wait()).await {
            Ok(status) => {
                let status = status?;
                let seen = now_ms();
                if let Some(pid) = child.id() {
                    procs::forget(pid);
                }
                control.child = None;
                let name = self.take_down(slot);
                let how = match control.armed {
                    Some(point) => format!("crash at {point}"),
                    None => format!("exited by itself ({status})"),
                };
                self.ended(&name, &how);
                Ok(Some((status, seen)))
            }
            Err(_) => Ok(None),
        }
    }

    /// Whether the instance exited on its own since the last look (not through the soak).
    pub(crate) fn exited_by_itself(&self, slot: &Slot, control: &mut Control) -> Option<String> {
        let child = control.child.as_mut()?;
        let status = child.try_wait().ok().flatten()?;
        control.child = None;
        let name = self.take_down(slot);
        self.ended(&name, &format!("exited by itself ({status})"));
        Some(format!("{name} exited by itself ({status})"))
    }

    /// A random slot's running instance: `(slot, name, url)`. A stopped one is left alone (the
    /// requests it had when it froze wait for it; new ones would only pile up behind them).
    pub(crate) fn pick(&self, rng: &mut StdRng) -> Option<(usize, String, String)> {
        let live: Vec<(usize, String, String)> = self
            .slots
            .iter()
            .filter_map(|slot| {
                let live = slot.live();
                if live.stopped {
                    return None;
                }
                Some((slot.index, live.name, live.url?))
            })
            .collect();
        if live.is_empty() {
            return None;
        }
        live.get(rng.random_range(0..live.len())).cloned()
    }

    /// `GET /healthz` of a slot's instance, keeping its counters; `None` when it does not answer
    /// (stopped, gone, or between instances).
    pub(crate) async fn scrape_slot(&self, slot: &Slot) -> Option<(String, Value)> {
        let live = slot.live();
        if live.stopped {
            return None;
        }
        let url = live.url?;
        let health: Value = self
            .http
            .get(format!("{url}/healthz"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        if let Some(counters) = health.get("counters") {
            lock(&self.counters).insert(live.name.clone(), counters.clone());
        }
        Some((live.name, health))
    }

    /// Each refresh counter summed over every instance that ran (each at its last scrape).
    pub(crate) fn counter_totals(&self) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        for counters in lock(&self.counters).values() {
            for (name, value) in counters.as_object().into_iter().flatten() {
                *totals.entry(name.clone()).or_default() += value.as_u64().unwrap_or(0);
            }
        }
        totals
    }

    pub(crate) fn instances(&self) -> Vec<InstanceRecord> {
        lock(&self.instances).clone()
    }

    /// Kills every instance (the end of the run, or an error).
    pub(crate) async fn shutdown(&self) {
        for slot in &self.slots {
            let mut control = slot.control.lock().await;
            let _ = self.resume(slot, &control);
            if control.child.is_some() {
                let _ = self.terminate(slot, &mut control).await;
            }
        }
    }
}
