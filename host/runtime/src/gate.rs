//! Admission in front of plugin calls: at most so many calls into
//! plugins run at once in the process, and callers waiting for a turn get
//! one in the order they came. A job's thread makes one call at a time,
//! so a job that has just had its turn queues behind every job already
//! waiting: jobs share the slots in turn, however often each one calls,
//! and a call that runs long (up to its deadline) holds one slot while
//! the others go on through the rest.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};

/// A bounded number of slots for calls, granted first come, first served.
#[derive(Debug)]
pub(crate) struct CallGate {
    state: Mutex<GateState>,
    turn: Condvar,
}

#[derive(Debug)]
struct GateState {
    /// Slots not held.
    free: usize,
    /// Tickets of the callers waiting, in the order they came.
    waiting: VecDeque<u64>,
    /// The ticket the next caller gets.
    next_ticket: u64,
}

/// A held slot; dropping it lets the next caller in.
#[derive(Debug)]
pub(crate) struct CallSlot<'a> {
    gate: &'a CallGate,
}

impl CallGate {
    /// A gate of `slots` slots (at least one).
    pub(crate) fn new(slots: usize) -> Self {
        CallGate {
            state: Mutex::new(GateState {
                free: slots.max(1),
                waiting: VecDeque::new(),
                next_ticket: 0,
            }),
            turn: Condvar::new(),
        }
    }

    /// Wait for a slot: when one is free and every caller that came
    /// before has had one.
    pub(crate) fn enter(&self) -> CallSlot<'_> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push_back(ticket);
        while !(state.free > 0 && state.waiting.front() == Some(&ticket)) {
            state = self
                .turn
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.waiting.pop_front();
        state.free -= 1;
        // The next in line may find a slot free too.
        if state.free > 0 && !state.waiting.is_empty() {
            self.turn.notify_all();
        }
        CallSlot { gate: self }
    }
}

impl Drop for CallSlot<'_> {
    fn drop(&mut self) {
        let mut state = self
            .gate
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.free += 1;
        if !state.waiting.is_empty() {
            self.gate.turn.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    use super::*;

    #[test]
    fn no_more_calls_than_slots_run_at_once() {
        let gate = Arc::new(CallGate::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, running, most) = (gate.clone(), running.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _slot = gate.enter();
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

    #[test]
    fn waiting_callers_get_their_turn_in_the_order_they_came() {
        let gate = Arc::new(CallGate::new(1));
        let held = gate.enter();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for caller in 0..4 {
            let queued = Arc::new(Barrier::new(2));
            let (shared, order, q) = (gate.clone(), order.clone(), queued.clone());
            threads.push(std::thread::spawn(move || {
                q.wait();
                let _slot = shared.enter();
                order.lock().unwrap().push(caller);
            }));
            queued.wait();
            // Let the caller reach its place in line before the next one.
            while gate.state.lock().unwrap().waiting.len() < caller + 1 {
                std::thread::yield_now();
            }
        }
        drop(held);
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
    }
}
