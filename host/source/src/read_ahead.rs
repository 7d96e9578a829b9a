//! Reading ahead: an iterator (a file's parser, say) run on a thread of
//! its own, so that the next chunk is parsed while the job works on this
//! one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

use crate::ordered::WorkerLost;

/// The items of an iterator that a thread of its own produces, at most
/// `depth` ahead of the reader; a thread that stops before the iterator's
/// end (a parser that panics) is an error, not a quiet end. Dropping it
/// stops the thread after the item it is producing.
#[derive(Debug)]
pub(crate) struct ReadAhead<T> {
    items: Receiver<T>,
    /// Set once the thread has given the iterator's last item.
    finished: Arc<AtomicBool>,
    /// Items taken.
    taken: u64,
    lost: bool,
}

impl<T: Send + 'static> ReadAhead<T> {
    /// Start producing `items` on a thread named `name`.
    pub(crate) fn start(
        name: &str,
        depth: usize,
        items: impl Iterator<Item = T> + Send + 'static,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = sync_channel(depth);
        let finished = Arc::new(AtomicBool::new(false));
        let done = Arc::clone(&finished);
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                for item in items {
                    if sender.send(item).is_err() {
                        return;
                    }
                }
                done.store(true, Ordering::Release);
            })?;
        Ok(ReadAhead {
            items: receiver,
            finished,
            taken: 0,
            lost: false,
        })
    }
}

impl<B: Send + 'static> ReadAhead<Result<B, String>> {
    /// The reads, with a thread that stopped early as one more read error.
    pub(crate) fn reads(self) -> impl Iterator<Item = Result<B, String>> + Send {
        self.map(|read| read.unwrap_or_else(|lost| Err(format!("reading stopped: {lost}"))))
    }
}

impl<T> Iterator for ReadAhead<T> {
    type Item = Result<T, WorkerLost>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.lost {
            return None;
        }
        match self.items.recv() {
            Ok(item) => {
                self.taken += 1;
                Some(Ok(item))
            }
            Err(_) if self.finished.load(Ordering::Acquire) => None,
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
    fn gives_every_item_in_order_and_stops_when_dropped() {
        let all: Vec<u32> = ReadAhead::start("test", 1, 0..1000)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        let (produced, seen) = sync_channel::<u32>(100);
        let counting = (0..u32::MAX).inspect(move |i| {
            let _ = produced.try_send(*i);
        });
        let mut ahead = ReadAhead::start("test", 2, counting).unwrap();
        assert_eq!(ahead.next(), Some(Ok(0)));
        drop(ahead);
        std::thread::sleep(std::time::Duration::from_millis(50));
        // Item 0 was read; 1 and 2 waited in the channel, 3 in the send
        // that failed: the thread made no more.
        assert!(seen.try_iter().count() <= 4);
    }

    #[test]
    fn a_thread_that_stops_early_is_an_error_not_an_end() {
        let panics_at_3 = (0..10u32).inspect(|i| assert!(*i != 3, "a parser's bug"));
        let items: Vec<_> = ReadAhead::start("test", 1, panics_at_3).unwrap().collect();
        let expected: Vec<Result<u32, WorkerLost>> =
            (0..3).map(Ok).chain([Err(WorkerLost(3))]).collect();
        assert_eq!(items, expected);
    }
}
