use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use sapine_core::clock::Clock;

/// Real time plus an offset that tests can move forward, to expire tokens and bans.
pub struct ManualClock {
    offset: Mutex<Duration>,
}

impl ManualClock {
    pub fn real_time() -> Self {
        Self {
            offset: Mutex::new(Duration::zero()),
        }
    }

    pub fn advance(&self, by: Duration) {
        if let Ok(mut offset) = self.offset.lock() {
            *offset += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
            + self
                .offset
                .lock()
                .map(|o| *o)
                .unwrap_or_else(|_| Duration::zero())
    }
}
