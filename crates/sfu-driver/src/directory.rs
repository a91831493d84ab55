//! Which worker owns each id (routers, transports, producers, consumers,
//! ICE ufrags), and the state the handle and the workers share on the
//! control path (never on the datagram path).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::mpsc::UnboundedSender;
use vtp_sfu::engine::EngineError;

use crate::DriverEvent;

/// Which kind of id a directory entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdKind {
    Router,
    Transport,
    Producer,
    Consumer,
}

impl IdKind {
    fn name(self) -> &'static str {
        match self {
            IdKind::Router => "router",
            IdKind::Transport => "transport",
            IdKind::Producer => "producer",
            IdKind::Consumer => "consumer",
        }
    }

    /// The engine's "unknown …" error for this kind.
    pub fn not_found(self, id: &str) -> EngineError {
        let id = id.to_owned();
        match self {
            IdKind::Router => EngineError::UnknownRouter(id),
            IdKind::Transport => EngineError::UnknownTransport(id),
            IdKind::Producer => EngineError::UnknownProducer(id),
            IdKind::Consumer => EngineError::UnknownConsumer(id),
        }
    }
}

/// Which worker owns each id (ids are unique per kind across the driver),
/// and the ICE ufrags in use.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    routers: HashMap<String, usize>,
    transports: HashMap<String, usize>,
    producers: HashMap<String, usize>,
    consumers: HashMap<String, usize>,
    /// ICE ufrag → worker (unique across workers; the TCP listener routes
    /// by it).
    ufrags: HashMap<String, usize>,
}

impl Directory {
    fn map(&mut self, kind: IdKind) -> &mut HashMap<String, usize> {
        match kind {
            IdKind::Router => &mut self.routers,
            IdKind::Transport => &mut self.transports,
            IdKind::Producer => &mut self.producers,
            IdKind::Consumer => &mut self.consumers,
        }
    }

    pub fn lookup(&mut self, kind: IdKind, id: &str) -> Option<usize> {
        self.map(kind).get(id).copied()
    }

    /// Claims `id` for `worker`, or `DuplicateId`.
    pub fn reserve(&mut self, kind: IdKind, id: &str, worker: usize) -> Result<(), EngineError> {
        let map = self.map(kind);
        if map.contains_key(id) {
            return Err(EngineError::DuplicateId {
                what: kind.name(),
                id: id.to_owned(),
            });
        }
        map.insert(id.to_owned(), worker);
        Ok(())
    }

    pub fn release(&mut self, kind: IdKind, id: &str) {
        self.map(kind).remove(id);
    }

    /// Claims a ufrag for `worker`; false when it is in use.
    pub fn claim_ufrag(&mut self, ufrag: &str, worker: usize) -> bool {
        if self.ufrags.contains_key(ufrag) {
            return false;
        }
        self.ufrags.insert(ufrag.to_owned(), worker);
        true
    }

    pub fn release_ufrag(&mut self, ufrag: &str) {
        self.ufrags.remove(ufrag);
    }

    /// The worker whose transport answers to a local ufrag.
    pub fn ufrag_worker(&self, ufrag: &str) -> Option<usize> {
        self.ufrags.get(ufrag).copied()
    }

    /// Routers per worker plus transports per worker: the load used to pin
    /// a new router.
    pub fn load(&self, workers: usize) -> Vec<usize> {
        let mut load = vec![0; workers];
        for &w in self.routers.values().chain(self.transports.values()) {
            if let Some(l) = load.get_mut(w) {
                *l += 1;
            }
        }
        load
    }
}

/// State shared by the handle and the workers (control path only).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub directory: Mutex<Directory>,
    pub subscribers: Mutex<Vec<UnboundedSender<DriverEvent>>>,
}

impl Shared {
    pub fn directory(&self) -> MutexGuard<'_, Directory> {
        // A panic elsewhere never leaves the maps half-updated.
        self.directory.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribers(&self) -> MutexGuard<'_, Vec<UnboundedSender<DriverEvent>>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_reserves_once_and_counts_load() {
        let mut dir = Directory::default();
        dir.reserve(IdKind::Router, "r1", 0).unwrap();
        let err = dir.reserve(IdKind::Router, "r1", 1).unwrap_err();
        assert_eq!(err.code(), "conflict");
        dir.reserve(IdKind::Transport, "t1", 1).unwrap();
        dir.reserve(IdKind::Transport, "t2", 1).unwrap();
        // The same id may name objects of different kinds.
        dir.reserve(IdKind::Producer, "r1", 1).unwrap();
        assert_eq!(dir.load(3), vec![1, 2, 0]);
        assert_eq!(dir.lookup(IdKind::Transport, "t2"), Some(1));
        dir.release(IdKind::Transport, "t2");
        assert_eq!(dir.lookup(IdKind::Transport, "t2"), None);
        assert_eq!(IdKind::Consumer.not_found("x").code(), "not_found");
    }
}
