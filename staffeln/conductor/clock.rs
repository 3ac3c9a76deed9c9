//! The conductor's time. In production it is the system clock. Tests hand a
//! conductor an emulated clock that moves only when told
//! ([`Clock::advance`]), so that a day of cycles, a lease that runs out or a
//! retention run that waits half an hour take no real time, and no test
//! depends on the machine's speed.
//!
//! The conductor's loops wait with [`Clock::park_until`]; helpers (lease
//! renewal, delete waits) with [`Clock::sleep_until`]. On an emulated clock a
//! test can wait until every loop is parked with a deadline in the future
//! ([`Clock::settled`]): the conductors have done everything the current
//! moment asks of them, and time may move on.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDateTime, SubsecRound, Utc};
use tokio::sync::watch;

/// The system clock, or an emulated one shared by clones.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    emulated: Option<Arc<Emulated>>,
}

#[derive(Debug)]
struct Emulated {
    /// The emulated now; sleepers watch it.
    now: watch::Sender<DateTime<Utc>>,
    /// Loops parked on the clock: id → deadline.
    parked: Mutex<Parked>,
    /// Bumped whenever a loop parks or wakes.
    changes: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Parked {
    next_id: u64,
    deadlines: BTreeMap<u64, DateTime<Utc>>,
    /// A loop was woken ([`Clock::wake`]) and has not taken it yet: it
    /// still looks parked, but is about to run.
    woken: bool,
}

/// Unregisters a parked loop, also when its wait is cancelled.
struct ParkGuard<'a> {
    emulated: &'a Emulated,
    id: u64,
}

impl Drop for ParkGuard<'_> {
    fn drop(&mut self) {
        self.emulated.parked().deadlines.remove(&self.id);
        self.emulated.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Emulated {
    fn parked(&self) -> MutexGuard<'_, Parked> {
        self.parked.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn wait_for(&self, at: DateTime<Utc>) {
        let mut now = self.now.subscribe();
        // The sender lives as long as `self`: the wait ends only when time comes.
        let _ = now.wait_for(|now| *now >= at).await;
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { emulated: None }
    }

    /// An emulated clock standing at `start` until it is advanced.
    /// (`start` is cut to microseconds, the database's precision.)
    pub fn emulated(start: DateTime<Utc>) -> Clock {
        Clock {
            emulated: Some(Arc::new(Emulated {
                now: watch::Sender::new(start.trunc_subsecs(6)),
                parked: Mutex::new(Parked::default()),
                changes: watch::Sender::new(0),
            })),
        }
    }

    pub fn is_emulated(&self) -> bool {
        self.emulated.is_some()
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.emulated {
            None => Utc::now(),
            Some(e) => *e.now.borrow(),
        }
    }

    /// Waits until `at` (at once when it has passed).
    pub async fn sleep_until(&self, at: DateTime<Utc>) {
        match &self.emulated {
            None => sleep_system(at).await,
            Some(e) => e.wait_for(at).await,
        }
    }

    /// Waits for `d`.
    pub async fn sleep(&self, d: StdDuration) {
        let at = Duration::from_std(d).ok().and_then(|d| self.now().checked_add_signed(d));
        self.sleep_until(at.unwrap_or(DateTime::<Utc>::MAX_UTC)).await;
    }

    /// What a loop of the conductor calls when it has nothing to do before
    /// `at` (`None`: before something else wakes it). The same as
    /// [`Clock::sleep_until`], and on an emulated clock the wait counts for
    /// [`Clock::settled`].
    pub async fn park_until(&self, at: Option<DateTime<Utc>>) {
        let Some(e) = &self.emulated else {
            match at {
                Some(at) => sleep_system(at).await,
                None => std::future::pending().await,
            }
            return;
        };
        let deadline = at.unwrap_or(DateTime::<Utc>::MAX_UTC);
        if deadline <= self.now() {
            return;
        }
        let _guard = {
            let mut parked = e.parked();
            let id = parked.next_id;
            parked.next_id += 1;
            parked.deadlines.insert(id, deadline);
            ParkGuard { emulated: e, id }
        };
        e.changes.send_modify(|n| *n = n.wrapping_add(1));
        e.wait_for(deadline).await;
    }

    /// Now as the database stores it (UTC, microseconds).
    pub fn db_now(&self) -> NaiveDateTime {
        self.now().naive_utc().trunc_subsecs(6)
    }

    /// Moves an emulated clock forward by `by`. Returns false (and changes
    /// nothing) for the system clock, which cannot be moved.
    pub fn advance(&self, by: Duration) -> bool {
        match &self.emulated {
            Some(e) => {
                e.now.send_modify(|now| *now += by.max(Duration::zero()));
                true
            }
            None => false,
        }
    }

    /// Moves an emulated clock forward to `at` (never back).
    pub fn advance_to(&self, at: DateTime<Utc>) {
        if let Some(e) = &self.emulated {
            e.now.send_modify(|now| *now = (*now).max(at));
        }
    }

    /// Wakes the loop waiting on `notify` (an event or a trigger for it). On
    /// an emulated clock the wake counts as work in progress until the loop
    /// takes it ([`Clock::took_wake`]): [`Clock::settled`] does not take the
    /// woken loop, still parked for an instant, for one with nothing to do.
    pub fn wake(&self, notify: &tokio::sync::Notify) {
        if let Some(e) = &self.emulated {
            e.parked().woken = true;
            e.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
        notify.notify_one();
    }

    /// The loop woken by [`Clock::wake`] runs now.
    pub fn took_wake(&self) {
        if let Some(e) = &self.emulated {
            e.parked().woken = false;
            e.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// The earliest deadline of the parked loops, if any.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let e = self.emulated.as_ref()?;
        e.parked().deadlines.values().min().copied()
    }

    /// Waits (at most `limit` of real time) until at least `loops` loops are
    /// parked on this emulated clock and none of them is due: each has done
    /// what the current moment asks. The error says how many were parked and
    /// until when. Always `Ok` on the system clock.
    pub async fn settled(&self, loops: usize, limit: StdDuration) -> Result<(), String> {
        let Some(e) = &self.emulated else {
            return Ok(());
        };
        let mut changes = e.changes.subscribe();
        let mut now = e.now.subscribe();
        let check = || {
            let now = self.now();
            let parked = e.parked();
            let waiting = parked.deadlines.values().filter(|d| **d > now).count();
            (waiting >= loops && waiting == parked.deadlines.len() && !parked.woken, parked.deadlines.len(), waiting)
        };
        let wait = async {
            loop {
                if check().0 {
                    return;
                }
                tokio::select! {
                    _ = changes.changed() => {}
                    _ = now.changed() => {}
                }
            }
        };
        match tokio::time::timeout(limit, wait).await {
            Ok(()) => Ok(()),
            Err(_) => {
                let (_, parked, waiting) = check();
                Err(format!(
                    "after {} s, {parked} of {loops} loops are parked, {waiting} of them until after {}",
                    limit.as_secs_f64(),
                    self.now().to_rfc3339()
                ))
            }
        }
    }
}

async fn sleep_system(at: DateTime<Utc>) {
    if let Ok(d) = (at - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
    }

    #[tokio::test]
    async fn an_emulated_clock_wakes_sleepers_when_it_reaches_their_time() {
        let clock = Clock::emulated(t0());
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move {
                clock.park_until(Some(t0() + Duration::seconds(30))).await;
                clock.now()
            })
        };
        clock.settled(1, StdDuration::from_secs(5)).await.unwrap();
        assert_eq!(clock.next_deadline(), Some(t0() + Duration::seconds(30)));
        clock.advance(Duration::seconds(10));
        clock.settled(1, StdDuration::from_secs(5)).await.unwrap();
        assert!(!sleeper.is_finished());
        clock.advance_to(t0() + Duration::seconds(45));
        assert_eq!(sleeper.await.unwrap(), t0() + Duration::seconds(45));
        assert_eq!(clock.next_deadline(), None, "a woken loop is no longer parked");
        clock.advance_to(t0());
        assert_eq!(clock.now(), t0() + Duration::seconds(45), "never back");
    }

    #[tokio::test]
    async fn a_woken_loop_is_not_settled_until_it_took_its_wake() {
        let clock = Clock::emulated(t0());
        let notify = Arc::new(tokio::sync::Notify::new());
        clock.wake(&notify);
        // A loop that parks without taking the wake.
        let parked = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.park_until(Some(t0() + Duration::seconds(30))).await })
        };
        let err = clock.settled(1, StdDuration::from_millis(100)).await.unwrap_err();
        assert!(err.contains("1 of 1 loops are parked"), "parked but woken is not settled: {err}");
        clock.took_wake();
        clock.settled(1, StdDuration::from_secs(5)).await.unwrap();
        parked.abort();
    }

    #[tokio::test]
    async fn settled_reports_loops_that_do_not_park() {
        let clock = Clock::emulated(t0());
        let err = clock.settled(2, StdDuration::from_millis(50)).await.unwrap_err();
        assert!(err.contains("0 of 2 loops are parked"), "{err}");
        assert!(Clock::system().settled(2, StdDuration::from_millis(1)).await.is_ok());
    }
}
