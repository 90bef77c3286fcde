//! Time is injected. Production reads the system clock; tests and the simulator use a
//! manual clock that only an admin call moves, and only forward.

use jiff::Timestamp;
use std::sync::Mutex;

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
    /// The manual clock behind this one, if it is manual.
    fn as_manual(&self) -> Option<&ManualClock> {
        None
    }
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock to `to`; refuses to go back. Returns the instant it left. This runs
    /// no time-driven work (`Engine::advance_clock` does): tests use it to stand between
    /// two runs of the jobs.
    pub fn advance(&self, to: Timestamp) -> Result<Timestamp, Timestamp> {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        if to < *now {
            return Err(*now);
        }
        let from = *now;
        *now = to;
        Ok(from)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn as_manual(&self) -> Option<&ManualClock> {
        Some(self)
    }
}

/// Microseconds since the epoch, as the store keeps instants.
pub fn to_us(t: Timestamp) -> i64 {
    t.as_microsecond()
}

/// The instant of a stored microsecond count. Stored values were written from valid
/// timestamps, so a failure here means a corrupt database.
pub fn from_us(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
}
