//! Keyed window state owned by the host, with memory accounting.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt};

use crate::WindowError;

/// A window `[start, end)`, ms.
pub(crate) type Window = (i64, i64);

/// A group's key, as comparable bytes.
pub(crate) type Key = Box<[u8]>;

/// One window and key: a group.
pub(crate) type Group = (Window, Key);

/// Bytes of bookkeeping counted per group on top of its key and state.
const ENTRY_OVERHEAD: usize = 64;

/// The state of one (window, key) group.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entry {
    /// The accumulator's opaque state.
    pub(crate) state: Vec<u8>,
    /// Whether the window's result has been emitted.
    pub(crate) fired: bool,
}

/// Every open group's state, ordered by window end so that the watermark
/// closes windows in order, with the bytes it holds counted against a
/// quota.
#[derive(Debug)]
pub struct StateStore {
    /// (end, start) → key → entry.
    windows: BTreeMap<(i64, i64), HashMap<Key, Entry>>,
    /// Session windows per key: start → end.
    sessions: HashMap<Key, BTreeMap<i64, i64>>,
    bytes: usize,
    quota: usize,
}

impl StateStore {
    /// An empty store that may hold up to `quota` bytes.
    pub fn new(quota: usize) -> Self {
        StateStore {
            windows: BTreeMap::new(),
            sessions: HashMap::new(),
            bytes: 0,
            quota,
        }
    }

    /// Bytes held: keys, states and bookkeeping.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of open (window, key) groups.
    pub fn groups(&self) -> usize {
        self.windows.values().map(HashMap::len).sum()
    }

    /// Every group: window, key and entry, in window order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (Window, &[u8], &Entry)> {
        self.windows.iter().flat_map(|(&(end, start), groups)| {
            groups
                .iter()
                .map(move |(key, entry)| ((start, end), key.as_ref(), entry))
        })
    }

    /// Drop every group.
    pub(crate) fn clear(&mut self) {
        self.windows.clear();
        self.sessions.clear();
        self.bytes = 0;
    }

    pub(crate) fn get(&self, window: Window, key: &[u8]) -> Option<&Entry> {
        self.windows.get(&(window.1, window.0))?.get(key)
    }

    /// Store `state` for the group, keeping its `fired` flag.
    pub(crate) fn put(
        &mut self,
        window: Window,
        key: &[u8],
        state: Vec<u8>,
        fired: bool,
    ) -> Result<(), WindowError> {
        let groups = self.windows.entry((window.1, window.0)).or_default();
        let new_size = state.len();
        let old_size = match groups.get_mut(key) {
            Some(entry) => {
                let old = entry.state.len();
                entry.state = state;
                entry.fired = fired;
                old
            }
            None => {
                groups.insert(key.into(), Entry { state, fired });
                self.bytes += key.len() + ENTRY_OVERHEAD;
                0
            }
        };
        self.bytes = self.bytes + new_size - old_size;
        if self.bytes > self.quota {
            return Err(WindowError::StateQuota {
                used: self.bytes,
                quota: self.quota,
            });
        }
        Ok(())
    }

    /// Record that the group's result has been emitted.
    pub(crate) fn mark_fired(&mut self, window: Window, key: &[u8]) {
        if let Some(entry) = self
            .windows
            .get_mut(&(window.1, window.0))
            .and_then(|groups| groups.get_mut(key))
        {
            entry.fired = true;
        }
    }

    /// Remove a group, returning its entry.
    pub(crate) fn remove(&mut self, window: Window, key: &[u8]) -> Option<Entry> {
        let slot = (window.1, window.0);
        let groups = self.windows.get_mut(&slot)?;
        let entry = groups.remove(key)?;
        if groups.is_empty() {
            self.windows.remove(&slot);
        }
        self.bytes -= key.len() + ENTRY_OVERHEAD + entry.state.len();
        if let Some(sessions) = self.sessions.get_mut(key) {
            sessions.remove(&window.0);
            if sessions.is_empty() {
                self.sessions.remove(key);
            }
        }
        Some(entry)
    }

    /// Record a session window of `key` (its state is stored with `put`).
    pub(crate) fn add_session(&mut self, key: &[u8], window: Window) {
        self.sessions
            .entry(key.into())
            .or_default()
            .insert(window.0, window.1);
    }

    /// The session windows of `key` that intersect `[start, end]`.
    pub(crate) fn sessions_touching(&self, key: &[u8], window: Window) -> Vec<Window> {
        let Some(sessions) = self.sessions.get(key) else {
            return Vec::new();
        };
        sessions
            .range(..=window.1)
            .filter(|&(_, &end)| end >= window.0)
            .map(|(&start, &end)| (start, end))
            .collect()
    }

    /// Every group of windows ending at or before `time`, in window order
    /// and, within a window, in key order.
    pub(crate) fn ending_by(&self, time: i64) -> Vec<Group> {
        let mut due = Vec::new();
        for (&(end, start), groups) in self.windows.range(..=(time, i64::MAX)) {
            let mut keys: Vec<&Box<[u8]>> = groups.keys().collect();
            keys.sort_unstable();
            due.extend(keys.into_iter().map(|key| ((start, end), key.clone())));
        }
        due
    }
}
