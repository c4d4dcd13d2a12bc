//! Agents (as in Agrona/Aeron): each pipeline stage is an `Agent` whose `do_work` does a bounded
//! amount of work and says how much; a runner drives it on a pinned thread and idles it when it
//! did none. Several agents fuse into one with [`Composite`] (static dispatch: the fused layout
//! pays no virtual call between stages).

/// Why an agent could not start.
#[derive(Debug, thiserror::Error)]
#[error("agent {role}: {reason}")]
pub struct AgentError {
    pub role: String,
    pub reason: String,
}

/// One stage of the pipeline.
pub trait Agent: Send {
    /// A short name for logs and counter labels (`feed`, `strategy`, `risk`, `gateway`).
    fn role_name(&self) -> &str;

    /// Called once on the agent's own thread before the first `do_work` (cold path: may
    /// allocate, open files, pre-fault memory).
    fn on_start(&mut self) -> Result<(), AgentError> {
        Ok(())
    }

    /// Does a bounded amount of work; returns how much (0 lets the runner idle). Hot path: no
    /// allocation, no lock, no syscall but socket I/O, no formatting.
    fn do_work(&mut self) -> usize;

    /// Work that may wait until every agent fused with this one has done its `do_work`: the
    /// runner calls it after `do_work`, and a [`Composite`] after all its parts' `do_work`, so
    /// that journaling what a message caused never delays the next stage of that message.
    /// Same rules as `do_work`; returns how much it did.
    fn do_deferred_work(&mut self) -> usize {
        0
    }

    /// Called once on the agent's thread after the last `do_work` (after the drain).
    fn on_close(&mut self) {}
}

/// Two agents run one after the other on one thread, as one agent. Nest it (or use
/// [`composite!`](crate::composite)) to fuse more.
pub struct Composite<A, B> {
    pub first: A,
    pub second: B,
    role: String,
}

impl<A: Agent, B: Agent> Composite<A, B> {
    pub fn new(first: A, second: B) -> Self {
        let role = format!("{}+{}", first.role_name(), second.role_name());
        Composite {
            first,
            second,
            role,
        }
    }
}

impl<A: Agent, B: Agent> Agent for Composite<A, B> {
    fn role_name(&self) -> &str {
        &self.role
    }

    fn on_start(&mut self) -> Result<(), AgentError> {
        self.first.on_start()?;
        self.second.on_start()
    }

    #[inline]
    fn do_work(&mut self) -> usize {
        self.first.do_work() + self.second.do_work()
    }

    #[inline]
    fn do_deferred_work(&mut self) -> usize {
        self.first.do_deferred_work() + self.second.do_deferred_work()
    }

    fn on_close(&mut self) {
        self.first.on_close();
        self.second.on_close();
    }
}

/// Fuses agents in order into one: `composite!(decode, strategy, risk, encode)`.
#[macro_export]
macro_rules! composite {
    ($a:expr $(,)?) => { $a };
    ($a:expr, $($rest:expr),+ $(,)?) => {
        $crate::agent::Composite::new($a, $crate::composite!($($rest),+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter {
        name: &'static str,
        left: usize,
        started: bool,
        closed: bool,
    }

    impl Agent for Counter {
        fn role_name(&self) -> &str {
            self.name
        }
        fn on_start(&mut self) -> Result<(), AgentError> {
            self.started = true;
            Ok(())
        }
        fn do_work(&mut self) -> usize {
            if self.left == 0 {
                return 0;
            }
            self.left -= 1;
            1
        }
        fn on_close(&mut self) {
            self.closed = true;
        }
    }

    fn counter(name: &'static str, left: usize) -> Counter {
        Counter {
            name,
            left,
            started: false,
            closed: false,
        }
    }

    #[test]
    fn composite_runs_every_agent_and_sums_their_work() {
        let mut fused = composite!(counter("a", 2), counter("b", 1), counter("c", 3));
        assert_eq!(fused.role_name(), "a+b+c");
        fused.on_start().unwrap();
        let work: Vec<usize> = (0..4).map(|_| fused.do_work()).collect();
        assert_eq!(work, vec![3, 2, 1, 0]);
        fused.on_close();
        assert!(fused.first.started && fused.second.second.closed);
    }
}
