//! How long a driver takes to answer its device's interrupt: from the line
//! being raised with nothing pending to the driver's acknowledgement, as a
//! running mean.  A device that can hold work back a little (the NIC's
//! receive side) uses it to hand over what comes while the driver is
//! already at work on the last interrupt, rather than raise another.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Each answer's weight in the mean: 1/8, so a few slow ones do not
/// swing it.
const WEIGHT_SHIFT: u32 = 3;

#[derive(Debug)]
pub struct ResponseTime {
    epoch: Instant,
    /// When the unanswered interrupt was raised, in ns since `epoch` plus
    /// one; 0 when there is none.
    raised: AtomicU64,
    /// The mean, in ns.
    mean: AtomicU64,
}

impl Default for ResponseTime {
    fn default() -> Self {
        ResponseTime {
            epoch: Instant::now(),
            raised: AtomicU64::new(0),
            mean: AtomicU64::new(0),
        }
    }
}

impl ResponseTime {
    /// The line was raised with no reason pending before.
    pub fn raised(&self) {
        self.raised.store(self.now() + 1, Ordering::Relaxed);
    }

    /// The driver acknowledged the interrupt.
    pub fn answered(&self) {
        let raised = self.raised.swap(0, Ordering::Relaxed);
        if raised == 0 {
            return;
        }
        let took = self.now().saturating_sub(raised - 1) as i64;
        let _ = self
            .mean
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |mean| {
                let mean = mean as i64;
                Some((mean + ((took - mean) >> WEIGHT_SHIFT)) as u64)
            });
    }

    /// The mean so far; zero before the first answer.
    pub fn mean(&self) -> Duration {
        Duration::from_nanos(self.mean.load(Ordering::Relaxed))
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_follows_the_answers_and_ignores_acknowledgements_of_nothing() {
        let response = ResponseTime::default();
        response.answered();
        assert_eq!(response.mean(), Duration::ZERO, "nothing was raised");
        for _ in 0..40 {
            response.raised();
            std::thread::sleep(Duration::from_millis(1));
            response.answered();
        }
        let mean = response.mean();
        assert!(
            mean >= Duration::from_micros(900) && mean < Duration::from_millis(50),
            "{mean:?}"
        );
        response.answered();
        assert_eq!(
            response.mean(),
            mean,
            "a second acknowledgement counts once"
        );
        for _ in 0..40 {
            response.raised();
            response.answered();
        }
        assert!(response.mean() < mean / 10, "{:?}", response.mean());
    }
}
