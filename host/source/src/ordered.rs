//! Work spread over threads in order: the items of an iterator, handed to
//! several workers in turn, each on a thread of its own, and their results
//! taken back in the items' order.

use std::sync::mpsc::{Receiver, sync_channel};

/// The results of mapping an iterator's items on worker threads, in the
/// items' order. Dropping it stops the threads after the item each is on.
#[derive(Debug)]
pub(crate) struct OrderedMap<O> {
    results: Vec<Receiver<O>>,
    /// The worker whose result comes next.
    next: usize,
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
        std::thread::Builder::new()
            .name(format!("{name}-feed"))
            .spawn(move || {
                for (input, item) in inputs.iter().cycle().zip(items) {
                    if input.send(item).is_err() {
                        break;
                    }
                }
            })?;
        Ok(OrderedMap { results, next: 0 })
    }
}

impl<O> Iterator for OrderedMap<O> {
    type Item = O;

    fn next(&mut self) -> Option<O> {
        let result = self.results.get(self.next)?.recv().ok()?;
        self.next = (self.next + 1) % self.results.len();
        Some(result)
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
            .collect();
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
        let results: Vec<_> = OrderedMap::start("test", 0..6, workers).unwrap().collect();
        assert_eq!(results, vec![1, 1, 2, 2, 3, 3]);
    }
}
