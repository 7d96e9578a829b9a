//! Admission in front of plugin calls: at most so many calls into
//! plugins run at once in the process, and the slots are shared fairly
//! between callers. Each caller (a job, through its
//! [`Runtime::own_turns`](crate::Runtime::own_turns)) has an account of
//! the call time its calls have held a slot. A free slot goes to the
//! waiting caller that has used the least, on a virtual clock that
//! starts a caller who has been idle at the present (start-time fair
//! queueing), so idling earns no credit. A job whose calls run long (up
//! to their deadline) waits while the others catch up, and a job that
//! restarts keeps its account. Callers of about equal use are not held
//! to a strict order (see [`SLACK_NANOS`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::Thread;

/// How far (in call time) a caller may be ahead of the least-used waiting
/// caller and still take a free slot at once instead of queueing. Callers
/// of about equal use then go straight in, rather than handing each slot
/// over through the OS scheduler (a wake-up per call, slow when there are
/// more runnable threads than cores); a caller further ahead, like one
/// whose calls ran to their deadline, waits its turn.
const SLACK_NANOS: u64 = 1_000_000;

/// A bounded number of slots for calls, shared fairly between accounts.
/// While nobody waits, a call takes and gives back its slot with atomics
/// alone; the queue's lock is taken only when callers wait.
#[derive(Debug)]
pub(crate) struct CallGate {
    /// Slots not held.
    free: AtomicUsize,
    /// Callers in the queue (its length, readable without its lock).
    waiting: AtomicUsize,
    /// The virtual time of the latest entry: where an idle caller starts.
    clock: AtomicU64,
    queue: Mutex<Queue>,
}

/// The CPU time one caller's calls have used holding a slot, on the
/// gate's virtual clock, in nanoseconds. CPU time rather than wall time:
/// a call whose thread the OS set aside while it held the slot is not
/// charged for the wait.
#[derive(Debug, Default)]
pub(crate) struct CallAccount {
    used: AtomicU64,
}

#[derive(Debug, Default)]
struct Queue {
    /// The callers waiting for a slot.
    waiters: Vec<Waiter>,
    /// The ticket the next waiter gets; ties in virtual time go in ticket
    /// order.
    next_ticket: u64,
}

#[derive(Debug)]
struct Waiter {
    /// Where the caller's account stood (or the clock, if later).
    start: u64,
    ticket: u64,
    thread: Thread,
}

/// A held slot; dropping it charges the call to its account and wakes
/// the waiting caller that has used least.
#[derive(Debug)]
pub(crate) struct CallSlot<'a> {
    gate: &'a CallGate,
    account: Arc<CallAccount>,
    start: u64,
    /// The calling thread's CPU time when it took the slot.
    cpu_at_entry: u64,
}

impl CallGate {
    /// A gate of `slots` slots (at least one).
    pub(crate) fn new(slots: usize) -> Self {
        CallGate {
            free: AtomicUsize::new(slots.max(1)),
            waiting: AtomicUsize::new(0),
            clock: AtomicU64::new(0),
            queue: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take a free slot, if there is one.
    fn try_take(&self) -> bool {
        self.free
            .try_update(Ordering::SeqCst, Ordering::SeqCst, |free| {
                free.checked_sub(1)
            })
            .is_ok()
    }

    /// Wait for a slot for a call charged to `account`: at once if one is
    /// free and no waiting caller has used much less, else once those
    /// have had theirs.
    pub(crate) fn enter(&self, account: &Arc<CallAccount>) -> CallSlot<'_> {
        let start = account
            .used
            .load(Ordering::Relaxed)
            .max(self.clock.load(Ordering::Relaxed));
        if !(self.waiting.load(Ordering::SeqCst) == 0 && self.try_take()) {
            self.wait_in_queue(start);
        }
        self.clock.fetch_max(start, Ordering::Relaxed);
        CallSlot {
            gate: self,
            account: Arc::clone(account),
            start,
            cpu_at_entry: thread_cpu_nanos(),
        }
    }

    /// Join the queue and take a slot once one is free and no waiting
    /// caller has used more than [`SLACK_NANOS`] less.
    fn wait_in_queue(&self, start: u64) {
        let mut queue = self.lock();
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiters.push(Waiter {
            start,
            ticket,
            thread: std::thread::current(),
        });
        // Counted before looking for a free slot, and a release counts
        // its slot before looking for waiters: one of the two sees the
        // other, so no slot is freed unseen by a waiter.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        loop {
            let within_slack = queue
                .waiters
                .iter()
                .all(|waiter| start <= waiter.start.saturating_add(SLACK_NANOS));
            if within_slack && self.try_take() {
                break;
            }
            drop(queue);
            // A release unparks the least-used waiter; an unpark that
            // comes before the park makes it return at once.
            std::thread::park();
            queue = self.lock();
        }
        queue.waiters.retain(|waiter| waiter.ticket != ticket);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        if self.free.load(Ordering::SeqCst) > 0 {
            queue.wake_least_used();
        }
    }
}

impl Queue {
    /// Wake the waiting caller that has used least (the first to come of
    /// equals), to take a free slot.
    fn wake_least_used(&self) {
        if let Some(waiter) = self
            .waiters
            .iter()
            .min_by_key(|waiter| (waiter.start, waiter.ticket))
        {
            waiter.thread.unpark();
        }
    }
}

impl Drop for CallSlot<'_> {
    fn drop(&mut self) {
        let used = thread_cpu_nanos().saturating_sub(self.cpu_at_entry);
        // Added to what the account stands at, not to this call's start:
        // a job's tasks may hold slots at once, and each call counts.
        let _ = self
            .account
            .used
            .try_update(Ordering::Relaxed, Ordering::Relaxed, |stood| {
                Some(stood.max(self.start).saturating_add(used))
            });
        self.gate.free.fetch_add(1, Ordering::SeqCst);
        if self.gate.waiting.load(Ordering::SeqCst) > 0 {
            self.gate.lock().wake_least_used();
        }
    }
}

/// The CPU time the calling thread has used, in nanoseconds.
fn thread_cpu_nanos() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let seconds = u64::try_from(now.tv_sec).unwrap_or_default();
    let nanos = u64::try_from(now.tv_nsec).unwrap_or_default();
    seconds.saturating_mul(1_000_000_000).saturating_add(nanos)
}

#[cfg(test)]
mod tests {
    use std::sync::{Barrier, Mutex};
    use std::time::{Duration, Instant};

    use super::*;

    /// Keep the CPU busy for `time`, as a call holding a slot would.
    fn busy(time: Duration) {
        let until = Instant::now() + time;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn no_more_calls_than_slots_run_at_once() {
        let gate = Arc::new(CallGate::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, running, most) = (gate.clone(), running.clone(), most.clone());
                std::thread::spawn(move || {
                    let account = Arc::new(CallAccount::default());
                    for _ in 0..50 {
                        let _slot = gate.enter(&account);
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(100));
                        running.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    /// Queue `callers` (account, label) behind a held slot, one at a
    /// time, and return the labels in the order they got the slot.
    fn order_of_grants(
        gate: &Arc<CallGate>,
        callers: Vec<(Arc<CallAccount>, usize)>,
    ) -> Vec<usize> {
        let held = gate.enter(&Arc::new(CallAccount::default()));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for (queued, (account, label)) in callers.into_iter().enumerate() {
            let ready = Arc::new(Barrier::new(2));
            let (shared, order, r) = (gate.clone(), order.clone(), ready.clone());
            threads.push(std::thread::spawn(move || {
                r.wait();
                let _slot = shared.enter(&account);
                order.lock().unwrap().push(label);
            }));
            ready.wait();
            // Let the caller reach its place in line before the next one.
            while gate.lock().waiters.len() < queued + 1 {
                std::thread::yield_now();
            }
        }
        drop(held);
        for thread in threads {
            thread.join().unwrap();
        }
        Arc::try_unwrap(order).unwrap().into_inner().unwrap()
    }

    #[test]
    fn calls_of_one_account_at_the_same_time_all_count() {
        let gate = CallGate::new(2);
        let account = Arc::new(CallAccount::default());
        let (first, second) = (gate.enter(&account), gate.enter(&account));
        let before = thread_cpu_nanos();
        busy(Duration::from_millis(20));
        let spent = thread_cpu_nanos() - before;
        drop(first);
        drop(second);
        // Both slots are this thread's, so each is charged the time spent:
        // twice it on the account, where keeping one call's would be once.
        let used = account.used.load(Ordering::Relaxed);
        assert!(
            used >= spent * 3 / 2,
            "{used} ns on the account, {spent} ns spent"
        );
    }

    #[test]
    fn callers_with_equal_use_get_their_turn_in_the_order_they_came() {
        let gate = Arc::new(CallGate::new(1));
        let callers = (0..4).map(|label| (Arc::new(CallAccount::default()), label));
        assert_eq!(order_of_grants(&gate, callers.collect()), [0, 1, 2, 3]);
    }

    #[test]
    fn a_caller_that_has_used_more_waits_behind_those_that_used_less() {
        let gate = Arc::new(CallGate::new(1));
        let heavy = Arc::new(CallAccount::default());
        // The heavy caller's first call holds the slot for 50 ms.
        drop({
            let slot = gate.enter(&heavy);
            busy(Duration::from_millis(50));
            slot
        });
        let light = Arc::new(CallAccount::default());
        // It comes first but has used more than the light callers.
        let callers = vec![(heavy, 0), (light.clone(), 1), (light, 2)];
        assert_eq!(order_of_grants(&gate, callers), [1, 2, 0]);
    }

    #[test]
    fn a_long_caller_gets_its_share_of_the_time_not_of_the_turns() {
        let gate = Arc::new(CallGate::new(1));
        let calls = |hold: Duration| {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let account = Arc::new(CallAccount::default());
                let until = Instant::now() + Duration::from_millis(600);
                let mut calls = 0u32;
                while Instant::now() < until {
                    let _slot = gate.enter(&account);
                    busy(hold);
                    calls += 1;
                }
                calls
            })
        };
        // Three short callers: while one runs, the others wait, so a slot
        // that comes free always has a short caller to choose over the
        // long one.
        let long = calls(Duration::from_millis(20));
        let short: Vec<_> = (0..3).map(|_| calls(Duration::from_millis(1))).collect();
        let long = long.join().unwrap();
        let short: Vec<u32> = short.into_iter().map(|c| c.join().unwrap()).collect();
        // Taking turns call for call, each would make about as many calls
        // (≈ 26); sharing the time, each short caller makes ≈ 20 per long
        // call.
        for calls in short {
            assert!(
                calls >= 5 * long,
                "short calls {calls}, long calls {long}: turns were shared by call, not by time"
            );
        }
    }
}
