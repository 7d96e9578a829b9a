//! Work spread over threads in order: the items of an iterator, handed to
//! several workers in turn, each on a thread of its own, and their results
//! taken back in the items' order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

/// A worker thread stopped (it panicked) before its item's result was
/// taken: the items from there on are not done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a worker thread stopped (it panicked) before item {0} (from 0) was done")]
pub(crate) struct WorkerLost(pub(crate) u64);

/// The results of mapping an iterator's items on worker threads, in the
/// items' order; a worker that stops early is an error, not a quiet end.
/// Dropping it stops the threads after the item each is on.
#[derive(Debug)]
pub(crate) struct OrderedMap<O> {
    results: Vec<Receiver<O>>,
    /// The worker whose result comes next.
    next: usize,
    /// Results taken.
    taken: u64,
    /// The items handed out, once all are ([`u64::MAX`] until then).
    fed: Arc<AtomicU64>,
    /// Set once a result was missing: nothing comes after it.
    lost: bool,
}

impl<O: Send + 'static> OrderedMap<O> {
    /// Start handing `items` to `workers` in turn, on threads named after
    /// `name`; each worker keeps its state across the items it gets.
    pub(crate) fn start<I, W>(
        name: &str,
        items: impl Iterator<Item = I> + Send + 'static,
        workers: Vec<W>,
    ) -> std::io::Result<Self>
    where
        I: Send + 'static,
        W: FnMut(I) -> O + Send + 'static,
    {
        let mut inputs = Vec::with_capacity(workers.len());
        let mut results = Vec::with_capacity(workers.len());
        for (index, mut work) in workers.into_iter().enumerate() {
            let (input, items) = sync_channel::<I>(1);
            let (result, taken) = sync_channel(1);
            std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || {
                    for item in items {
                        if result.send(work(item)).is_err() {
                            break;
                        }
                    }
                })?;
            inputs.push(input);
            results.push(taken);
        }
        let fed = Arc::new(AtomicU64::new(u64::MAX));
        let feed_count = fed.clone();
        std::thread::Builder::new()
            .name(format!("{name}-feed"))
            .spawn(move || {
                let mut count = 0;
                for (input, item) in inputs.iter().cycle().zip(items) {
                    if input.send(item).is_err() {
                        // A worker is gone: the count stays unknown.
                        return;
                    }
                    count += 1;
                }
                // Before the inputs close, which is how the workers, and
                // then the reader, learn of the end.
                feed_count.store(count, Ordering::Release);
            })?;
        Ok(OrderedMap {
            results,
            next: 0,
            taken: 0,
            fed,
            lost: false,
        })
    }
}

impl<O> Iterator for OrderedMap<O> {
    type Item = Result<O, WorkerLost>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.lost {
            return None;
        }
        match self.results.get(self.next)?.recv() {
            Ok(result) => {
                self.next = (self.next + 1) % self.results.len();
                self.taken += 1;
                Some(Ok(result))
            }
            Err(_) if self.fed.load(Ordering::Acquire) == self.taken => None,
            Err(_) => {
                self.lost = true;
                Some(Err(WorkerLost(self.taken)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_the_items_order_whatever_each_worker_takes() {
        let workers = (0..3u64)
            .map(|worker| {
                move |item: u64| {
                    // Later workers are slower: order must not follow speed.
                    std::thread::sleep(std::time::Duration::from_micros(worker * 200));
                    (item, item * 2)
                }
            })
            .collect();
        let results: Vec<_> = OrderedMap::start("test", 0..100u64, workers)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(results, (0..100).map(|i| (i, i * 2)).collect::<Vec<_>>());
    }

    #[test]
    fn workers_keep_their_state() {
        let workers = (0..2)
            .map(|_| {
                let mut seen = 0;
                move |_: u32| {
                    seen += 1;
                    seen
                }
            })
            .collect();
        let results: Vec<_> = OrderedMap::start("test", 0..6, workers)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(results, vec![1, 1, 2, 2, 3, 3]);
    }

    #[test]
    fn a_worker_that_stops_early_is_an_error_not_an_end() {
        let workers = (0..2)
            .map(|_| {
                |item: u32| {
                    assert!(item != 5, "a worker fails on item 5");
                    item
                }
            })
            .collect();
        let results: Vec<_> = OrderedMap::start("test", 0..10, workers).unwrap().collect();
        let expected: Vec<Result<u32, WorkerLost>> =
            (0..5).map(Ok).chain([Err(WorkerLost(5))]).collect();
        assert_eq!(results, expected);
    }
}
