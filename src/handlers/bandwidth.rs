//! Bandwidth caps shared by many transfers: one per user (all of that user's sessions)
//! and one per server (all sessions), for uploads and downloads separately.
//!
//! Each cap is a GCRA bucket: one "theoretical arrival time" (`tat`), the moment the bytes
//! reserved so far will have drained at the cap's rate. A transfer reserves its next chunk
//! (a twentieth of a second's worth) in every bucket that applies and sleeps until the
//! latest of the reserved starts; the chunk then moves without asking again. Every
//! reservation pushes `tat` on, so the sleepers of one bucket wake one after the other, a
//! chunk apart: a bucket's wake-ups number about `rate / chunk` a second however many
//! transfers share it, and none wakes to find nothing left.
//!
//! The buckets live in memory shared across `fork` ([`SharedWords`]) under the spin lock of
//! [`crate::limits`], so the caps hold across the threads of the multi-thread and
//! multi-loop models and across the processes of the multi-proc and pre-fork models. Times
//! are nanoseconds since an `Instant` taken before any fork (the monotonic clock is the
//! same in every process). Users are keyed by a 64-bit hash of their name in a table of
//! [`CAPACITY`] entries; an entry whose reservations have all drained is free for another
//! user.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::limits::lock_word;
use crate::sys::SharedWords;

/// Header words: the lock, the server's upload `tat` (two words), its download `tat`.
const HEADER: usize = 5;
/// Words per user entry: the key (two words), the upload `tat`, the download `tat`.
const ENTRY: usize = 6;
/// User entries (a power of two).
pub(crate) const CAPACITY: usize = 1024;
/// Entries looked at for one user before giving up (its cap is then not applied).
const PROBES: usize = 16;

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Uploads (`read_limit`).
    Upload,
    /// Downloads and listings (`write_limit`).
    Download,
}

impl Direction {
    /// The word of a `tat` pair in the header or an entry.
    fn offset(self) -> usize {
        match self {
            Direction::Upload => 1,
            Direction::Download => 3,
        }
    }
}

/// The caps of one transfer, in bytes per second (0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    pub(crate) server: u64,
    pub(crate) user: u64,
}

impl Caps {
    /// The chunk a transfer reserves at a time: a twentieth of a second at the tightest
    /// cap, between 4 KiB and 1 MiB.
    pub(crate) fn chunk(self) -> u64 {
        let tightest = [self.server, self.user]
            .into_iter()
            .filter(|&r| r > 0)
            .min()
            .unwrap_or(0);
        (tightest / 20).clamp(4096, 1 << 20)
    }

    pub(crate) fn any(self) -> bool {
        self.server > 0 || self.user > 0
    }
}

/// The shared buckets of one server.
pub(crate) struct Bandwidth {
    words: SharedWords,
    epoch: Instant,
}

impl Bandwidth {
    /// Maps the buckets; made once per server, before any fork.
    pub(crate) fn new() -> io::Result<Bandwidth> {
        Ok(Bandwidth {
            words: SharedWords::new(HEADER + CAPACITY * ENTRY)?,
            epoch: Instant::now(),
        })
    }

    /// Reserves `bytes` in the server's bucket and in the user's (`user_key`, from
    /// [`user_key`]) at the rates of `caps`; returns when the bytes may move. A bucket
    /// with nothing pending starts the reservation at `now`: an idle cap saves up no
    /// credit.
    pub(crate) fn reserve(
        &self,
        now: Instant,
        dir: Direction,
        user_key: u64,
        caps: Caps,
        bytes: u64,
    ) -> Instant {
        let now_ns = self.nanos(now);
        let w = self.words.words();
        let _lock = lock_word(&w[0]);
        let mut start = now_ns;
        if caps.server > 0 {
            let at = dir.offset();
            start = start.max(take(&w[at..at + 2], now_ns, cost(bytes, caps.server)));
        }
        if caps.user > 0 {
            if let Some(entry) = self.entry(user_key, now_ns) {
                let at = HEADER + entry * ENTRY + 2 + dir.offset() - 1;
                start = start.max(take(&w[at..at + 2], now_ns, cost(bytes, caps.user)));
            }
        }
        self.epoch + Duration::from_nanos(start)
    }

    /// Gives back `bytes` reserved but never moved (the transfer ended first).
    pub(crate) fn refund(&self, dir: Direction, user_key: u64, caps: Caps, bytes: u64) {
        let w = self.words.words();
        let _lock = lock_word(&w[0]);
        if caps.server > 0 {
            let at = dir.offset();
            give_back(&w[at..at + 2], cost(bytes, caps.server));
        }
        if caps.user > 0 {
            if let Some(entry) = self.find(user_key) {
                let at = HEADER + entry * ENTRY + 2 + dir.offset() - 1;
                give_back(&w[at..at + 2], cost(bytes, caps.user));
            }
        }
    }

    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The entry of `key`, if it has one. The lock is held.
    fn find(&self, key: u64) -> Option<usize> {
        let w = self.words.words();
        probe(key).find(|&i| read(&w[HEADER + i * ENTRY..]) == key)
    }

    /// The entry of `key`, taking a free one (never used, or all drained by `now`) if it
    /// has none. The lock is held.
    fn entry(&self, key: u64, now_ns: u64) -> Option<usize> {
        if let Some(i) = self.find(key) {
            return Some(i);
        }
        let w = self.words.words();
        let free = probe(key).find(|&i| {
            let e = &w[HEADER + i * ENTRY..HEADER + (i + 1) * ENTRY];
            read(e) == 0 || (read(&e[2..]) <= now_ns && read(&e[4..]) <= now_ns)
        })?;
        let e = &w[HEADER + free * ENTRY..HEADER + (free + 1) * ENTRY];
        write(e, key);
        write(&e[2..], 0);
        write(&e[4..], 0);
        Some(free)
    }
}

/// The key of a user's entry: FNV-1a of the name, never 0 (0 marks a free entry).
pub(crate) fn user_key(username: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in username.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// The entries `key` may occupy.
fn probe(key: u64) -> impl Iterator<Item = usize> {
    let first = (key as usize) & (CAPACITY - 1);
    (0..PROBES).map(move |i| (first + i) & (CAPACITY - 1))
}

/// Nanoseconds that `bytes` take at `rate` bytes per second.
fn cost(bytes: u64, rate: u64) -> u64 {
    u64::try_from(u128::from(bytes) * 1_000_000_000 / u128::from(rate.max(1))).unwrap_or(u64::MAX)
}

/// Reserves `cost` in the bucket whose `tat` is `words`: returns the reservation's start.
fn take(words: &[AtomicU32], now_ns: u64, cost: u64) -> u64 {
    let start = read(words).max(now_ns);
    write(words, start.saturating_add(cost));
    start
}

fn give_back(words: &[AtomicU32], cost: u64) {
    write(words, read(words).saturating_sub(cost));
}

fn read(words: &[AtomicU32]) -> u64 {
    u64::from(words[0].load(Ordering::Relaxed)) << 32 | u64::from(words[1].load(Ordering::Relaxed))
}

fn write(words: &[AtomicU32], value: u64) {
    words[0].store((value >> 32) as u32, Ordering::Relaxed);
    words[1].store(value as u32, Ordering::Relaxed);
}

/// One transfer's share of the caps: the chunk reserved and not moved yet, and the sleep
/// until it may move. Dropping it gives back what was reserved and not moved.
pub(crate) struct CapShare {
    bandwidth: std::sync::Arc<Bandwidth>,
    dir: Direction,
    user_key: u64,
    caps: Caps,
    /// Bytes reserved and not moved yet.
    pub(crate) granted: u64,
    /// The loop timer the transfer sleeps on until its reservation starts.
    pub(crate) paused: Option<ioloop::TimerId>,
    /// It slept for its turn since the data timeout's last tick.
    pub(crate) waited: bool,
}

impl CapShare {
    pub(crate) fn new(
        bandwidth: std::sync::Arc<Bandwidth>,
        dir: Direction,
        username: &str,
        caps: Caps,
    ) -> CapShare {
        CapShare {
            bandwidth,
            dir,
            user_key: user_key(username),
            caps,
            granted: 0,
            paused: None,
            waited: false,
        }
    }

    /// Reserves the next chunk; returns how long to wait before moving it (zero: now).
    pub(crate) fn reserve(&mut self, now: Instant) -> Duration {
        let chunk = self.caps.chunk();
        let at = self
            .bandwidth
            .reserve(now, self.dir, self.user_key, self.caps, chunk);
        self.granted += chunk;
        at.saturating_duration_since(now)
    }

    /// Counts `moved` bytes against the reservation.
    pub(crate) fn spent(&mut self, moved: u64) {
        self.granted = self.granted.saturating_sub(moved);
    }
}

impl Drop for CapShare {
    fn drop(&mut self) {
        if self.granted > 0 {
            self.bandwidth
                .refund(self.dir, self.user_key, self.caps, self.granted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    /// `takers` transfers of users `user_of(i)` share the caps for `span` on a simulated
    /// clock. Each reserves a chunk, sleeps until its start, moves it at once (a link far
    /// faster than the cap) and reserves the next. Returns the bytes each moved and the
    /// number of wake-ups from a sleep.
    fn share(
        takers: usize,
        caps: impl Fn(usize) -> Caps,
        user_of: impl Fn(usize) -> String,
        span: Duration,
    ) -> (Vec<u64>, u64) {
        let bandwidth = std::sync::Arc::new(Bandwidth::new().unwrap());
        let start = bandwidth.epoch;
        let mut shares: Vec<CapShare> = (0..takers)
            .map(|i| {
                CapShare::new(
                    std::sync::Arc::clone(&bandwidth),
                    Direction::Download,
                    &user_of(i),
                    caps(i),
                )
            })
            .collect();
        let mut moved = vec![0u64; takers];
        let mut wakeups = 0u64;
        // (when, taker): the next moment each taker runs.
        let mut queue: BinaryHeap<Reverse<(Instant, usize)>> =
            (0..takers).map(|i| Reverse((start, i))).collect();
        while let Some(Reverse((now, i))) = queue.pop() {
            if now - start >= span {
                break;
            }
            let s = &mut shares[i];
            if s.granted == 0 {
                let wait = s.reserve(now);
                if !wait.is_zero() {
                    wakeups += 1;
                    queue.push(Reverse((now + wait, i)));
                    continue;
                }
            }
            // The chunk moves now, landing within `span` only if it starts before it.
            moved[i] += s.granted;
            s.spent(s.granted);
            queue.push(Reverse((now + Duration::from_micros(10), i)));
        }
        (moved, wakeups)
    }

    fn off(bytes: u64, rate: u64, span: Duration) -> f64 {
        let achieved = bytes as f64 / span.as_secs_f64();
        (achieved - rate as f64).abs() / rate as f64
    }

    #[test]
    fn a_shared_server_cap_holds_within_a_tenth_over_five_seconds_without_a_storm() {
        let span = Duration::from_secs(5);
        for (takers, rate) in [(1, 1 << 20), (2, 1 << 20), (10, 10 << 20), (1000, 10 << 20)] {
            let caps = Caps {
                server: rate,
                user: 0,
            };
            let (moved, wakeups) = share(takers, |_| caps, |i| format!("u{i}"), span);
            let total: u64 = moved.iter().sum();
            assert!(
                off(total, rate, span) < 0.10,
                "{takers} takers at {rate}: {total} B"
            );
            // About rate / chunk wake-ups a second for the bucket, whatever the takers.
            let bound = 5 * rate / caps.chunk() + takers as u64;
            assert!(wakeups <= bound, "{takers} takers: {wakeups} > {bound}");
            // Fair: every taker moved something once there are few enough of them.
            if takers <= 10 {
                let least = moved.iter().min().copied().unwrap_or(0);
                assert!(least * takers as u64 * 10 >= total * 8, "{moved:?}");
            }
        }
    }

    #[test]
    fn a_user_cap_is_shared_by_that_users_transfers_only() {
        let span = Duration::from_secs(5);
        let rate = 1 << 20;
        let caps = Caps {
            server: 0,
            user: rate,
        };
        // Four transfers of alice, two of bob: each user gets its cap.
        let user = |i: usize| if i < 4 { "alice" } else { "bob" }.to_string();
        let (moved, _) = share(6, |_| caps, user, span);
        let alice: u64 = moved[..4].iter().sum();
        let bob: u64 = moved[4..].iter().sum();
        assert!(off(alice, rate, span) < 0.10, "alice {alice}");
        assert!(off(bob, rate, span) < 0.10, "bob {bob}");
    }

    #[test]
    fn the_tightest_of_user_and_server_caps_wins() {
        let span = Duration::from_secs(5);
        // Two users capped at 1 MiB/s each under a server cap of 1.5 MiB/s.
        let caps = Caps {
            server: 3 << 19,
            user: 1 << 20,
        };
        let (moved, _) = share(4, |_| caps, |i| format!("u{}", i % 2), span);
        let total: u64 = moved.iter().sum();
        assert!(off(total, 3 << 19, span) < 0.10, "{total}");
        // A user capped at 256 KiB/s beside one bound only by the server cap.
        let caps = |i: usize| Caps {
            server: 1 << 20,
            user: if i == 0 { 1 << 18 } else { 0 },
        };
        // The server's turns go a chunk each, and the capped user's chunks are smaller
        // (a twentieth of a second at its cap): it stays under its cap, the other takes
        // the rest, and together they fill the server's cap.
        let (moved, _) = share(2, caps, |i| format!("u{i}"), span);
        assert!(
            moved[0] as f64 <= 1.1 * 5.0 * f64::from(1 << 18),
            "{moved:?}"
        );
        assert!(moved[0] * 10 > moved[1], "{moved:?}");
        assert!(off(moved[0] + moved[1], 1 << 20, span) < 0.10, "{moved:?}");
    }

    #[test]
    fn a_refund_gives_back_what_was_not_moved() {
        let bandwidth = std::sync::Arc::new(Bandwidth::new().unwrap());
        let now = Instant::now();
        let caps = Caps {
            server: 1 << 20,
            user: 0,
        };
        let mut a = CapShare::new(
            std::sync::Arc::clone(&bandwidth),
            Direction::Upload,
            "a",
            caps,
        );
        assert_eq!(a.reserve(now), Duration::ZERO);
        drop(a); // nothing moved: the whole chunk goes back
        let mut b = CapShare::new(
            std::sync::Arc::clone(&bandwidth),
            Direction::Upload,
            "b",
            caps,
        );
        assert_eq!(b.reserve(now), Duration::ZERO);
        // The download bucket is another one.
        let mut c = CapShare::new(bandwidth, Direction::Download, "c", caps);
        assert_eq!(c.reserve(now), Duration::ZERO);
        assert!(!b.reserve(now).is_zero());
    }
}
