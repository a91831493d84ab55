//! Which recordings' files are in use, per recording: readers of the
//! local folder share it, an upload or a deletion holds it alone. See
//! `storage` for why.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

/// Which recordings' files are in use, so that an upload (which removes
/// the local folder at its end) or a deletion never pulls files from under
/// a reader, and an upload never races a deletion (which would leave
/// objects behind). Entries live only while claimed.
#[derive(Debug, Default)]
pub(super) struct InUse(Mutex<HashMap<Uuid, Holders>>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Use {
    /// Reading the local folder (many at once).
    Shared,
    /// Moving or removing the files (alone).
    Exclusive,
}

#[derive(Debug)]
enum Holders {
    Readers(usize),
    Writer,
}

/// A claim on a recording's files, released on drop.
#[derive(Debug)]
pub(super) struct Claim {
    table: Arc<InUse>,
    id: Uuid,
}

impl InUse {
    /// `None` when the recording is held in a way that excludes `how`.
    pub(super) fn claim(self: &Arc<Self>, id: Uuid, how: Use) -> Option<Claim> {
        let mut table = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match (table.get_mut(&id), how) {
            (None, Use::Shared) => {
                table.insert(id, Holders::Readers(1));
            }
            (None, Use::Exclusive) => {
                table.insert(id, Holders::Writer);
            }
            (Some(Holders::Readers(n)), Use::Shared) => *n += 1,
            (Some(_), _) => return None,
        }
        Some(Claim {
            table: self.clone(),
            id,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut table = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        let last = match table.get_mut(&self.id) {
            Some(Holders::Readers(n)) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => true,
        };
        if last {
            table.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_exclude_each_other_and_end_on_drop() {
        let table = Arc::new(InUse::default());
        let id = Uuid::new_v4();
        let reader = table.claim(id, Use::Shared).unwrap();
        let second_reader = table.claim(id, Use::Shared).unwrap();
        assert!(table.claim(id, Use::Exclusive).is_none(), "readers hold it");
        drop(reader);
        assert!(table.claim(id, Use::Exclusive).is_none(), "one reader left");
        drop(second_reader);
        let writer = table.claim(id, Use::Exclusive).unwrap();
        assert!(table.claim(id, Use::Shared).is_none());
        assert!(table.claim(id, Use::Exclusive).is_none());
        assert!(
            table.claim(Uuid::new_v4(), Use::Exclusive).is_some(),
            "per recording"
        );
        drop(writer);
        assert!(
            table.0.lock().unwrap().is_empty(),
            "nothing kept once released"
        );
    }
}
