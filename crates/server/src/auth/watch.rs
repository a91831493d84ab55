//! Which accounts an administrator changed while their holders may be
//! connected: a generation per account, bumped on every change of role,
//! disabling or deletion. A long-lived connection remembers the
//! generation it last checked and reads the account again from the store
//! only when it moved, so a change takes effect on the next event
//! without a store read per event.
//!
//! In-process: on several API nodes each one only sees its own changes
//! (as with the in-process bus).

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

#[derive(Debug, Default)]
pub struct AccountWatch {
    /// Only accounts changed since start-up; bounded by the number of
    /// accounts (an entry is a few bytes).
    generations: Mutex<HashMap<Uuid, u64>>,
}

impl AccountWatch {
    /// Marks the account as changed.
    pub fn changed(&self, user: Uuid) {
        let mut generations = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        *generations.entry(user).or_insert(0) += 1;
    }

    /// The account's generation: 0 until it is first changed.
    pub fn generation(&self, user: Uuid) -> u64 {
        self.generations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_move_per_account() {
        let watch = AccountWatch::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(watch.generation(a), 0);
        watch.changed(a);
        watch.changed(a);
        assert_eq!((watch.generation(a), watch.generation(b)), (2, 0));
    }
}
