//! Banning brute-forcers (proftpd's mod_ban, fail2ban's jail): after `after` failed logins
//! from one address within `window`, that address is refused at connect, with a 421, for
//! `ban_time`.
//!
//! The failures are counted in memory shared across `fork` ([`SharedWords`]), so every
//! session counts, whichever loop, thread or process serves it: the multi-loop threads,
//! the pre-fork workers and the multi-proc children all see one table. It is a fixed
//! open-addressing table guarded by the same spin lock as the session limits; an entry
//! whose window and ban are over is reused in place, so nothing is ever removed and probe
//! runs stay intact. Times are seconds of the system-wide monotonic clock, the same in
//! every process.

use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::config::BanPolicy;
use crate::limits::{ip_words, lock_word};
use crate::sys::SharedWords;

/// Words per entry: the address (4), failures in the window, the window's start, the end
/// of the ban (0 = none), and a used tag.
const ENTRY: usize = 8;
const FAILURES: usize = 4;
const WINDOW_START: usize = 5;
const BANNED_UNTIL: usize = 6;
const USED: usize = 7;
/// Header words: the lock.
const HEADER: usize = 1;
/// Addresses tracked at once. 16,384 × 32 bytes: 512 KiB of address space, of which only
/// the pages touched are ever paid for.
const CAPACITY: usize = 1 << 14;

/// What a failed login did to its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Counted; not (yet) banned.
    Counted,
    /// This failure reached the limit: the address is banned from now on.
    Banned,
    /// The address is on the allow list, or the table is full of live entries.
    NotCounted,
}

/// The ban table of one server, shared by all its loops and processes.
pub(crate) struct Bans {
    policy: BanPolicy,
    words: SharedWords,
}

impl Bans {
    /// An empty table for `policy`.
    pub(crate) fn new(policy: BanPolicy) -> io::Result<Bans> {
        Ok(Bans {
            policy,
            words: SharedWords::new(HEADER + CAPACITY * ENTRY)?,
        })
    }

    /// The policy.
    pub(crate) fn policy(&self) -> &BanPolicy {
        &self.policy
    }

    /// How long `ip` stays banned, if it is.
    pub(crate) fn banned(&self, ip: IpAddr) -> Option<Duration> {
        self.banned_at(ip, now_secs())
    }

    /// Counts a failed login from `ip`.
    pub(crate) fn failed_login(&self, ip: IpAddr) -> Failure {
        self.failed_login_at(ip, now_secs())
    }

    fn banned_at(&self, ip: IpAddr, now: u32) -> Option<Duration> {
        if self.allowed(ip) {
            return None;
        }
        let key = ip_words(ip);
        let _lock = lock_word(&self.words.words()[0]);
        let e = self.entry(self.find(&key)?);
        let until = e[BANNED_UNTIL].load(Ordering::Relaxed);
        (until > now).then(|| Duration::from_secs(u64::from(until - now)))
    }

    fn failed_login_at(&self, ip: IpAddr, now: u32) -> Failure {
        if self.allowed(ip) || self.policy.after == 0 {
            return Failure::NotCounted;
        }
        let key = ip_words(ip);
        let window = secs(self.policy.window);
        let _lock = lock_word(&self.words.words()[0]);
        let Some(i) = self.find(&key).or_else(|| self.claim(&key, now)) else {
            return Failure::NotCounted;
        };
        let e = self.entry(i);
        if e[BANNED_UNTIL].load(Ordering::Relaxed) > now {
            // Still banned (a session that was open before the ban): nothing to add.
            return Failure::Counted;
        }
        let started = e[WINDOW_START].load(Ordering::Relaxed);
        let failures = if now.saturating_sub(started) >= window {
            e[WINDOW_START].store(now, Ordering::Relaxed);
            1
        } else {
            e[FAILURES].load(Ordering::Relaxed).saturating_add(1)
        };
        if failures >= self.policy.after {
            let until = now.saturating_add(secs(self.policy.ban_time).max(1));
            e[BANNED_UNTIL].store(until, Ordering::Relaxed);
            e[FAILURES].store(0, Ordering::Relaxed);
            e[WINDOW_START].store(now, Ordering::Relaxed);
            return Failure::Banned;
        }
        e[FAILURES].store(failures, Ordering::Relaxed);
        Failure::Counted
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        self.policy.allow.iter().any(|net| net.contains(ip))
    }

    fn entry(&self, i: usize) -> &[AtomicU32] {
        let start = HEADER + i * ENTRY;
        &self.words.words()[start..start + ENTRY]
    }

    fn home(key: &[u32; 4]) -> usize {
        // FNV-1a over the address words.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for word in key {
            h ^= u64::from(*word);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        (h as usize) & (CAPACITY - 1)
    }

    /// The entry of `key`: probes from its home until a never-used slot.
    fn find(&self, key: &[u32; 4]) -> Option<usize> {
        let mut i = Self::home(key);
        for _ in 0..CAPACITY {
            let e = self.entry(i);
            if e[USED].load(Ordering::Relaxed) == 0 {
                return None;
            }
            if (0..4).all(|k| e[k].load(Ordering::Relaxed) == key[k]) {
                return Some(i);
            }
            i = (i + 1) & (CAPACITY - 1);
        }
        None
    }

    /// A slot for `key`, which has none: the first on its probe run that is free or
    /// stale (its window and its ban over), or None when every slot is live.
    fn claim(&self, key: &[u32; 4], now: u32) -> Option<usize> {
        let window = secs(self.policy.window);
        let mut i = Self::home(key);
        for _ in 0..CAPACITY {
            let e = self.entry(i);
            let free = e[USED].load(Ordering::Relaxed) == 0;
            let stale = e[BANNED_UNTIL].load(Ordering::Relaxed) <= now
                && now.saturating_sub(e[WINDOW_START].load(Ordering::Relaxed)) >= window;
            if free || stale {
                for (k, word) in key.iter().enumerate() {
                    e[k].store(*word, Ordering::Relaxed);
                }
                e[FAILURES].store(0, Ordering::Relaxed);
                e[WINDOW_START].store(now, Ordering::Relaxed);
                e[BANNED_UNTIL].store(0, Ordering::Relaxed);
                e[USED].store(1, Ordering::Relaxed);
                return Some(i);
            }
            i = (i + 1) & (CAPACITY - 1);
        }
        None
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// Seconds of CLOCK_MONOTONIC (system-wide, so the same in every process), from 1.
fn now_secs() -> u32 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u32::try_from(t.tv_sec)
        .unwrap_or(u32::MAX)
        .saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IpNet;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn bans(after: u32, allow: Vec<IpNet>) -> Bans {
        Bans::new(BanPolicy {
            after,
            window: Duration::from_secs(60),
            ban_time: Duration::from_secs(100),
            allow,
        })
        .expect("map")
    }

    #[test]
    fn the_nth_failure_in_the_window_bans_for_the_ban_time() {
        let b = bans(3, Vec::new());
        let a = ip("10.0.0.1");
        assert_eq!(b.failed_login_at(a, 1000), Failure::Counted);
        assert_eq!(b.failed_login_at(a, 1010), Failure::Counted);
        assert_eq!(b.banned_at(a, 1010), None);
        assert_eq!(b.failed_login_at(a, 1020), Failure::Banned);
        assert_eq!(b.banned_at(a, 1020), Some(Duration::from_secs(100)));
        // The same address in its IPv6-mapped form is the same client.
        assert!(b.banned_at(ip("::ffff:10.0.0.1"), 1050).is_some());
        assert_eq!(b.banned_at(ip("10.0.0.2"), 1050), None);
        assert_eq!(b.banned_at(a, 1120), None);
    }

    #[test]
    fn failures_outside_the_window_start_a_new_count() {
        let b = bans(2, Vec::new());
        let a = ip("10.0.0.1");
        assert_eq!(b.failed_login_at(a, 1000), Failure::Counted);
        assert_eq!(b.failed_login_at(a, 1061), Failure::Counted);
        assert_eq!(b.failed_login_at(a, 1062), Failure::Banned);
    }

    #[test]
    fn the_allow_list_is_never_counted() {
        let b = bans(1, vec!["10.1.0.0/16".parse().expect("net")]);
        assert_eq!(b.failed_login_at(ip("10.1.2.3"), 1000), Failure::NotCounted);
        assert_eq!(b.banned_at(ip("10.1.2.3"), 1000), None);
        assert_eq!(b.failed_login_at(ip("10.2.2.3"), 1000), Failure::Banned);
    }

    #[test]
    fn a_full_table_reuses_stale_entries_and_keeps_live_ones() {
        let b = bans(2, Vec::new());
        let addr = |i: usize| ip(&format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255));
        for i in 0..CAPACITY {
            assert_eq!(b.failed_login_at(addr(i), 1000), Failure::Counted);
        }
        // Every slot is live: a new address is not counted, a known one still is.
        assert_eq!(b.failed_login_at(addr(CAPACITY), 1001), Failure::NotCounted);
        assert_eq!(b.failed_login_at(addr(7), 1001), Failure::Banned);
        // Once the windows are over, stale slots take new addresses; the ban stays.
        assert_eq!(b.failed_login_at(addr(CAPACITY), 1100), Failure::Counted);
        assert!(b.banned_at(addr(7), 1100).is_some());
    }

    #[test]
    #[allow(unsafe_code)]
    fn the_table_is_shared_with_a_forked_child() {
        let b = bans(2, Vec::new());
        let a = ip("10.9.9.9");
        assert_eq!(b.failed_login(a), Failure::Counted);
        // SAFETY: the child only touches the shared mapping and exits with _exit.
        match unsafe { libc::fork() } {
            0 => {
                let code = i32::from(b.failed_login(a) != Failure::Banned);
                // SAFETY: ends the child without running the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            pid if pid > 0 => {
                let mut status = 0;
                // SAFETY: waits for the child just forked.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                assert_eq!(libc::WEXITSTATUS(status), 0);
                assert!(b.banned(a).is_some(), "the child's ban is not seen");
            }
            _ => panic!("fork failed"),
        }
    }
}
