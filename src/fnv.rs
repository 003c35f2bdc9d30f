//! FNV-1a, the hasher of the maps looked up on every login and command: a few
//! instructions for a four-letter verb or a user name, where the default hasher's setup
//! costs more than the whole lookup.
//!
//! Only for maps whose keys the server's owner chose (the command table, the virtual
//! users): a client's input is looked up in them, never inserted, so it cannot steer
//! entries into one bucket.

use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a, 64 bits.
#[derive(Default)]
pub(crate) struct FnvHasher(u64);

impl Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = if self.0 == 0 { OFFSET_BASIS } else { self.0 };
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(PRIME);
        }
        self.0 = hash;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`FnvHasher`]s, for `HashMap<K, V, FnvBuildHasher>`.
pub(crate) type FnvBuildHasher = BuildHasherDefault<FnvHasher>;
