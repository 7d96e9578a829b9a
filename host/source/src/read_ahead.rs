//! Reading ahead: an iterator (a file's parser, say) run on a thread of
//! its own, so that the next chunk is parsed while the job works on this
//! one.

use std::sync::mpsc::{Receiver, sync_channel};

/// The items of an iterator that a thread of its own produces, at most
/// `depth` ahead of the reader. Dropping it stops the thread after the
/// item it is producing.
#[derive(Debug)]
pub(crate) struct ReadAhead<T> {
    items: Receiver<T>,
}

impl<T: Send + 'static> ReadAhead<T> {
    /// Start producing `items` on a thread named `name`.
    pub(crate) fn start(
        name: &str,
        depth: usize,
        items: impl Iterator<Item = T> + Send + 'static,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = sync_channel(depth);
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                for item in items {
                    if sender.send(item).is_err() {
                        break;
                    }
                }
            })?;
        Ok(ReadAhead { items: receiver })
    }
}

impl<T> Iterator for ReadAhead<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.items.recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_every_item_in_order_and_stops_when_dropped() {
        let all: Vec<u32> = ReadAhead::start("test", 1, 0..1000).unwrap().collect();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        let (produced, seen) = sync_channel::<u32>(100);
        let counting = (0..u32::MAX).inspect(move |i| {
            let _ = produced.try_send(*i);
        });
        let mut ahead = ReadAhead::start("test", 2, counting).unwrap();
        assert_eq!(ahead.next(), Some(0));
        drop(ahead);
        std::thread::sleep(std::time::Duration::from_millis(50));
        // Item 0 was read; 1 and 2 waited in the channel, 3 in the send
        // that failed: the thread made no more.
        assert!(seen.try_iter().count() <= 4);
    }
}
