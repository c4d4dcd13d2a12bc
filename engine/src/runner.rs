//! The runner: one thread, optionally pinned to a core, driving one agent (or a composite of
//! several) until told to stop, then draining it. It counts duty cycles, work and the longest
//! cycle into shm counters that `levictl stat` and the exporter read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use levibot_shm::ShmError;
use levibot_shm::codes::{counter_type, label};
use levibot_shm::counters::{Counter, CountersWriter};

use crate::agent::{Agent, AgentError};
use crate::idle::{IdleStrategy, Idler};

/// Duty cycles a stopping agent gets to drain its input: bounds the stop.
pub const DRAIN_CYCLES_MAX: usize = 1 << 20;

/// Where and how an agent runs. In config: `{ core = 2, idle = "busy_spin" }` (both optional:
/// not pinned, backoff).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunnerConfig {
    /// The core to pin the thread to (`None`: not pinned).
    #[serde(rename = "core")]
    pub core_id: Option<usize>,
    pub idle: IdleStrategy,
}

/// A layout or runner that cannot run on this machine.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("agent {role}: core {core_id} is not on this machine (cores: {available:?})")]
    NoSuchCore {
        role: String,
        core_id: usize,
        available: Vec<usize>,
    },
    #[error(
        "{spinning} agents busy-spin but the machine has {cores} cores: two spinners on one core \
         stall each other; use idle = \"yield\" or \"backoff\" for some"
    )]
    TooManySpinners { spinning: usize, cores: usize },
    #[error("agents {first} and {second} both busy-spin on core {core_id}")]
    SpinnersShareCore {
        first: String,
        second: String,
        core_id: usize,
    },
    #[error("agent {role}: could not pin its thread to core {core_id}")]
    PinFailed { role: String, core_id: usize },
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("agent {role}: its thread panicked")]
    Panicked { role: String },
    #[error("agent {role}: cannot spawn its thread: {source}")]
    Spawn {
        role: String,
        source: std::io::Error,
    },
    #[error("counters: {0}")]
    Counters(#[from] ShmError),
}

/// The ids of the cores this process may run on.
pub fn available_cores() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort_unstable();
    ids
}

/// Checks a layout before anything starts: every core exists, busy-spinning agents are no more
/// than the cores and never share one.
pub fn validate_layout(agents: &[(&str, RunnerConfig)]) -> Result<(), RunnerError> {
    let cores = available_cores();
    for (role, config) in agents {
        if let Some(core_id) = config.core_id
            && !cores.contains(&core_id)
        {
            return Err(RunnerError::NoSuchCore {
                role: role.to_string(),
                core_id,
                available: cores,
            });
        }
    }
    let spinners: Vec<&(&str, RunnerConfig)> =
        agents.iter().filter(|(_, c)| c.idle.spins()).collect();
    if spinners.len() > cores.len().max(1) {
        return Err(RunnerError::TooManySpinners {
            spinning: spinners.len(),
            cores: cores.len(),
        });
    }
    for (i, (first, a)) in spinners.iter().enumerate() {
        for (second, b) in &spinners[i + 1..] {
            if a.core_id.is_some() && a.core_id == b.core_id {
                return Err(RunnerError::SpinnersShareCore {
                    first: first.to_string(),
                    second: second.to_string(),
                    core_id: a.core_id.unwrap_or_default(),
                });
            }
        }
    }
    Ok(())
}

/// The counters one runner keeps (labels `agent.<role>.duty_cycles`, `.work`, `.cycle_ns_max`).
pub struct RunnerCounters {
    pub duty_cycles: Counter,
    pub work: Counter,
    pub cycle_ns_max: Counter,
}

impl RunnerCounters {
    pub fn allocate(writer: &CountersWriter, role: &str) -> Result<Self, ShmError> {
        Ok(RunnerCounters {
            duty_cycles: writer.allocate(
                &label::agent(role, label::AGENT_DUTY_CYCLES),
                counter_type::DUTY_CYCLES,
            )?,
            work: writer.allocate(&label::agent(role, label::AGENT_WORK), counter_type::WORK)?,
            cycle_ns_max: writer.allocate(
                &label::agent(role, label::AGENT_CYCLE_NS_MAX),
                counter_type::CYCLE_NS_MAX,
            )?,
        })
    }
}

/// A running agent.
pub struct RunnerHandle {
    role: String,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<(), AgentError>>,
}

impl RunnerHandle {
    pub fn role(&self) -> &str {
        &self.role
    }

    /// Asks the agent to stop without waiting: it drains, closes and its thread ends.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Stops the agent and waits for its drain and close.
    pub fn stop(self) -> Result<(), RunnerError> {
        self.request_stop();
        match self.thread.join() {
            Ok(result) => Ok(result?),
            Err(_) => Err(RunnerError::Panicked { role: self.role }),
        }
    }
}

/// Stops agents in the given order (upstream first, so that each downstream agent still runs
/// while the one before it drains into their ring), each drained before the next is stopped.
pub fn stop_in_order(handles: Vec<RunnerHandle>) -> Result<(), RunnerError> {
    let mut first_error = None;
    for handle in handles {
        if let Err(e) = handle.stop() {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Starts `agent` on its own thread, pinned as `config` says.
pub fn spawn<A: Agent + 'static>(
    mut agent: A,
    config: RunnerConfig,
    counters: Option<RunnerCounters>,
) -> Result<RunnerHandle, RunnerError> {
    let role = agent.role_name().to_owned();
    validate_layout(&[(&role, config)])?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let thread_role = role.clone();
    let thread = std::thread::Builder::new()
        .name(role.chars().take(15).collect())
        .spawn(move || {
            if let Some(core_id) = config.core_id
                && !core_affinity::set_for_current(core_affinity::CoreId { id: core_id })
            {
                return Err(AgentError {
                    role: thread_role,
                    reason: format!("could not pin to core {core_id}"),
                });
            }
            agent.on_start()?;
            run(&mut agent, config.idle, &thread_stop, counters.as_ref());
            agent.on_close();
            Ok(())
        })
        .map_err(|source| RunnerError::Spawn {
            role: role.clone(),
            source,
        })?;
    Ok(RunnerHandle { role, stop, thread })
}

/// The duty-cycle loop, then the drain.
fn run<A: Agent>(
    agent: &mut A,
    idle: IdleStrategy,
    stop: &AtomicBool,
    counters: Option<&RunnerCounters>,
) {
    let clock = quanta::Clock::new();
    let mut idler = Idler::new(idle);
    let mut cycle_ticks_max = 0u64;
    while !stop.load(Ordering::Acquire) {
        let start = clock.raw();
        let work = agent.do_work() + agent.do_deferred_work();
        let ticks = clock.raw().saturating_sub(start);
        if let Some(c) = counters {
            c.duty_cycles.increment();
            c.work.add(work as i64);
            // Converted to ns only when the maximum moves: a comparison per cycle, no more.
            if ticks > cycle_ticks_max {
                cycle_ticks_max = ticks;
                c.cycle_ns_max
                    .set_max(clock.delta_as_nanos(0, ticks) as i64);
            }
        }
        idler.idle(work);
    }
    for _ in 0..DRAIN_CYCLES_MAX {
        let work = agent.do_work() + agent.do_deferred_work();
        if let Some(c) = counters {
            c.work.add(work as i64);
        }
        if work == 0 {
            break;
        }
    }
}
