//! Exact `max_cons` / `max_cons_per_ip` accounting when several loops accept on the same
//! port: the threads of the multi-loop model or the processes of the pre-fork model.
//!
//! The counts live in memory shared across `fork` ([`SharedWords`]), guarded by a spin
//! lock whose critical sections are a few dozen instructions with no system call. Each
//! accepting loop is an *owner*; the per-IP table is keyed by (IP, owner) so that the
//! supervisor can give back everything a crashed worker process held
//! ([`SharedLimits::release_owner`]).

use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::sys::{self, SharedWords};

/// Why a session was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_cons` sessions are running (or the per-IP table is full).
    Total,
    /// `max_cons_per_ip` sessions from this address are running.
    PerIp,
}

/// Words per table entry: the IPv6 (or mapped IPv4) address, owner + 1 (0 = free), count.
const ENTRY: usize = 6;
/// Header words: the lock, the total, the entries in use.
const HEADER: usize = 3;

/// Session counts shared by every accepting loop of one server.
pub(crate) struct SharedLimits {
    words: SharedWords,
    owners: usize,
    /// Entries in the per-IP table (a power of two, or 0 when there is no per-IP limit).
    capacity: usize,
    max_cons: usize,
    max_cons_per_ip: usize,
    /// See [`SharedLimits::with_share`].
    share: Option<usize>,
}

impl SharedLimits {
    /// Counts for `owners` accepting loops. A limit of 0 means unlimited.
    pub(crate) fn new(
        owners: usize,
        max_cons: usize,
        max_cons_per_ip: usize,
    ) -> io::Result<SharedLimits> {
        let capacity = match (max_cons_per_ip, max_cons) {
            (0, _) => 0,
            // A load factor of at most one half keeps probes short.
            (_, 0) => 1 << 16,
            (_, n) => (2 * n).max(1024).next_power_of_two(),
        };
        let words = SharedWords::new(HEADER + owners + capacity * ENTRY)?;
        Ok(SharedLimits {
            words,
            owners,
            capacity,
            max_cons,
            max_cons_per_ip,
            share: None,
        })
    }

    /// Counts a new session of `owner` from `ip`, unless a limit refuses it.
    pub(crate) fn acquire(&self, owner: usize, ip: IpAddr) -> Result<(), Refusal> {
        let _lock = self.lock();
        let w = self.words.words();
        let total = w[1].load(Ordering::Relaxed) as usize;
        if self.max_cons > 0 && total >= self.max_cons {
            return Err(Refusal::Total);
        }
        let key = ip_words(ip);
        if self.capacity > 0 {
            let from_ip: usize = (0..self.owners)
                .filter_map(|o| self.find(&key, o).map(|i| self.count(i)))
                .sum();
            if from_ip >= self.max_cons_per_ip {
                return Err(Refusal::PerIp);
            }
            if self.find(&key, owner).is_none() && self.used() * 4 >= self.capacity * 3 {
                return Err(Refusal::Total);
            }
            let slot = self.find_or_insert(&key, owner);
            self.entry(slot)[5].fetch_add(1, Ordering::Relaxed);
        }
        w[1].store(total as u32 + 1, Ordering::Relaxed);
        w[HEADER + owner].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Forgets a session counted by [`SharedLimits::acquire`].
    pub(crate) fn release(&self, owner: usize, ip: IpAddr) {
        let _lock = self.lock();
        let w = self.words.words();
        if w[HEADER + owner].load(Ordering::Relaxed) == 0 {
            return;
        }
        w[HEADER + owner].fetch_sub(1, Ordering::Relaxed);
        w[1].fetch_sub(1, Ordering::Relaxed);
        if self.capacity > 0 {
            if let Some(i) = self.find(&ip_words(ip), owner) {
                if self.entry(i)[5].fetch_sub(1, Ordering::Relaxed) == 1 {
                    self.remove(i);
                }
            }
        }
    }

    /// Forgets every session of `owner` (its process ended without telling).
    pub(crate) fn release_owner(&self, owner: usize) {
        let _lock = self.lock();
        let w = self.words.words();
        let held = w[HEADER + owner].swap(0, Ordering::Relaxed);
        w[1].fetch_sub(held, Ordering::Relaxed);
        // Removing shifts later entries back, so rescan from the start until clean.
        let mut i = 0;
        while i < self.capacity {
            if self.entry(i)[4].load(Ordering::Relaxed) == owner as u32 + 1 {
                self.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Gives each owner a share: the sessions it takes while another owner holds fewer.
    /// Pre-fork workers race for each client on one listener and the busiest wins most
    /// often: without a share one filled its descriptors (and refused clients) while
    /// others held half as many.
    pub(crate) fn with_share(mut self, share: usize) -> SharedLimits {
        self.share = Some(share);
        self
    }

    /// Whether `owner`, holding `held` sessions, has its share while another owner has
    /// room: it should leave the next clients to the others.
    pub(crate) fn leave_to_others(&self, owner: usize, held: usize) -> bool {
        let Some(share) = self.share else {
            return false;
        };
        let w = self.words.words();
        held >= share
            && (0..self.owners)
                .filter(|&o| o != owner)
                .any(|o| (w[HEADER + o].load(Ordering::Relaxed) as usize) < share)
    }

    /// Sessions counted now (all owners).
    pub(crate) fn total(&self) -> usize {
        self.words.words()[1].load(Ordering::Relaxed) as usize
    }

    fn lock(&self) -> LockGuard<'_> {
        lock_word(&self.words.words()[0])
    }

    fn entry(&self, i: usize) -> &[AtomicU32] {
        let start = HEADER + self.owners + i * ENTRY;
        &self.words.words()[start..start + ENTRY]
    }

    fn count(&self, i: usize) -> usize {
        self.entry(i)[5].load(Ordering::Relaxed) as usize
    }

    fn used(&self) -> usize {
        self.words.words()[2].load(Ordering::Relaxed) as usize
    }

    fn home(&self, key: &[u32; 4], owner: usize) -> usize {
        // FNV-1a over the address words and the owner.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for word in key.iter().copied().chain([owner as u32]) {
            h ^= u64::from(word);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        (h as usize) & (self.capacity - 1)
    }

    fn find(&self, key: &[u32; 4], owner: usize) -> Option<usize> {
        let mut i = self.home(key, owner);
        for _ in 0..self.capacity {
            let e = self.entry(i);
            let tag = e[4].load(Ordering::Relaxed);
            if tag == 0 {
                return None;
            }
            if tag == owner as u32 + 1 && (0..4).all(|k| e[k].load(Ordering::Relaxed) == key[k]) {
                return Some(i);
            }
            i = (i + 1) & (self.capacity - 1);
        }
        None
    }

    /// The caller checked that the table has room.
    fn find_or_insert(&self, key: &[u32; 4], owner: usize) -> usize {
        if let Some(i) = self.find(key, owner) {
            return i;
        }
        let mut i = self.home(key, owner);
        while self.entry(i)[4].load(Ordering::Relaxed) != 0 {
            i = (i + 1) & (self.capacity - 1);
        }
        let e = self.entry(i);
        for (k, word) in key.iter().enumerate() {
            e[k].store(*word, Ordering::Relaxed);
        }
        e[4].store(owner as u32 + 1, Ordering::Relaxed);
        e[5].store(0, Ordering::Relaxed);
        self.words.words()[2].fetch_add(1, Ordering::Relaxed);
        i
    }

    /// Frees entry `i` and shifts back the entries of its probe run (no tombstones).
    fn remove(&self, mut hole: usize) {
        let mask = self.capacity - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let e = self.entry(j);
            let tag = e[4].load(Ordering::Relaxed);
            if tag == 0 {
                break;
            }
            let key = [0, 1, 2, 3].map(|k| e[k].load(Ordering::Relaxed));
            let home = self.home(&key, tag as usize - 1);
            // Move j into the hole unless its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                let to = self.entry(hole);
                for k in 0..ENTRY {
                    to[k].store(e[k].load(Ordering::Relaxed), Ordering::Relaxed);
                }
                hole = j;
            }
        }
        let e = self.entry(hole);
        for word in e {
            word.store(0, Ordering::Relaxed);
        }
        self.words.words()[2].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes the spin lock held in `lock` (0 = free, else the holder's thread id), shared by
/// threads and forked processes alike; the guard frees it.
pub(crate) fn lock_word(lock: &AtomicU32) -> LockGuard<'_> {
    let me = sys::thread_id();
    let mut since: Option<Instant> = None;
    let mut spins = 0u32;
    loop {
        match lock.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return LockGuard { lock },
            Err(holder) => {
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                    continue;
                }
                std::thread::yield_now();
                // A holder killed inside its few-instruction critical section would
                // block every other loop forever: take the lock over from the dead.
                let started = *since.get_or_insert_with(Instant::now);
                if holder != 0
                    && started.elapsed() > Duration::from_millis(500)
                    && !sys::task_exists(holder)
                {
                    let _ = lock.compare_exchange(holder, 0, Ordering::AcqRel, Ordering::Relaxed);
                    since = None;
                }
            }
        }
    }
}

pub(crate) struct LockGuard<'a> {
    lock: &'a AtomicU32,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.store(0, Ordering::Release);
    }
}

/// An address as four words, IPv4 as its IPv6-mapped form.
pub(crate) fn ip_words(ip: IpAddr) -> [u32; 4] {
    let v6 = match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let o = v6.octets();
    [0, 1, 2, 3].map(|k| u32::from_be_bytes([o[4 * k], o[4 * k + 1], o[4 * k + 2], o[4 * k + 3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn total_limit_is_exact_across_owners() {
        let l = SharedLimits::new(3, 4, 0).expect("map");
        for owner in [0, 1, 2, 0] {
            assert_eq!(l.acquire(owner, ip("10.0.0.1")), Ok(()));
        }
        assert_eq!(l.acquire(1, ip("10.0.0.2")), Err(Refusal::Total));
        l.release(2, ip("10.0.0.1"));
        assert_eq!(l.acquire(1, ip("10.0.0.2")), Ok(()));
        assert_eq!(l.total(), 4);
    }

    #[test]
    fn an_owner_at_its_share_leaves_clients_to_one_with_room() {
        let l = SharedLimits::new(3, 0, 0).expect("map").with_share(2);
        for owner in [0, 0, 1, 1] {
            assert_eq!(l.acquire(owner, ip("10.0.0.1")), Ok(()));
        }
        // Owner 2 has room: 0 and 1, at their share, leave the next clients to it.
        assert!(l.leave_to_others(0, 2));
        assert!(l.leave_to_others(1, 2));
        assert!(!l.leave_to_others(2, 0));
        assert!(!l.leave_to_others(0, 1));
        l.acquire(2, ip("10.0.0.1")).expect("room");
        l.acquire(2, ip("10.0.0.1")).expect("room");
        // Everyone at its share: each takes clients again (up to max_cons or its
        // descriptors), rather than none of them.
        for owner in 0..3 {
            assert!(!l.leave_to_others(owner, 2));
        }
        l.release(1, ip("10.0.0.1"));
        assert!(l.leave_to_others(0, 2));
        // Without a share (multi-loop), never.
        let unshared = SharedLimits::new(2, 0, 0).expect("map");
        unshared.acquire(0, ip("10.0.0.1")).expect("room");
        assert!(!unshared.leave_to_others(0, 1_000_000));
    }

    #[test]
    fn per_ip_limit_sums_every_owner() {
        let l = SharedLimits::new(2, 0, 2).expect("map");
        assert_eq!(l.acquire(0, ip("10.0.0.1")), Ok(()));
        assert_eq!(l.acquire(1, ip("::ffff:10.0.0.1")), Ok(()));
        assert_eq!(l.acquire(0, ip("10.0.0.1")), Err(Refusal::PerIp));
        assert_eq!(l.acquire(1, ip("10.0.0.9")), Ok(()));
        l.release(1, ip("10.0.0.1"));
        assert_eq!(l.acquire(0, ip("10.0.0.1")), Ok(()));
    }

    #[test]
    fn a_dead_owner_gives_everything_back() {
        let l = SharedLimits::new(2, 10, 3).expect("map");
        for i in 0..5 {
            assert_eq!(l.acquire(1, ip(&format!("10.0.1.{i}"))), Ok(()));
        }
        assert_eq!(l.acquire(0, ip("10.0.1.1")), Ok(()));
        l.release_owner(1);
        assert_eq!(l.total(), 1);
        assert_eq!(l.used(), 1);
        // 10.0.1.1 still has owner 0's session.
        assert_eq!(l.acquire(1, ip("10.0.1.1")), Ok(()));
        assert_eq!(l.acquire(1, ip("10.0.1.1")), Ok(()));
        assert_eq!(l.acquire(1, ip("10.0.1.1")), Err(Refusal::PerIp));
    }

    #[test]
    fn removal_keeps_colliding_entries_reachable() {
        let l = SharedLimits::new(4, 0, 100).expect("map");
        let addrs: Vec<IpAddr> = (0..2000)
            .map(|i| ip(&format!("10.{}.{}.1", i / 250, i % 250)))
            .collect();
        for (i, a) in addrs.iter().enumerate() {
            assert_eq!(l.acquire(i % 4, *a), Ok(()));
        }
        for (i, a) in addrs.iter().enumerate().step_by(2) {
            l.release(i % 4, *a);
        }
        for (i, a) in addrs.iter().enumerate() {
            let found = l.find(&ip_words(*a), i % 4).is_some();
            assert_eq!(found, i % 2 == 1, "entry {i}");
        }
        assert_eq!(l.total(), 1000);
    }

    #[test]
    fn threads_contending_never_overshoot() {
        let l = std::sync::Arc::new(SharedLimits::new(4, 50, 0).expect("map"));
        let handles: Vec<_> = (0..4)
            .map(|owner| {
                let l = std::sync::Arc::clone(&l);
                std::thread::spawn(move || {
                    let mut got = 0;
                    for _ in 0..1000 {
                        if l.acquire(owner, ip("127.0.0.1")).is_ok() {
                            got += 1;
                        }
                    }
                    got
                })
            })
            .collect();
        let granted: usize = handles.into_iter().map(|h| h.join().expect("thread")).sum();
        assert_eq!(granted, 50);
        assert_eq!(l.total(), 50);
    }
}
