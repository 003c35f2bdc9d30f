//! The timer scheduler: pyftpdlib's `_Scheduler`, a min-heap of deadlines with lazy
//! cancellation and lazy reset.
//!
//! Resetting a timer (the idle timeout, reset on every command) only moves the deadline
//! stored in its record; the heap entry is left where it is and, when it comes due, is
//! pushed again at the new deadline instead of firing. So a session that sends a thousand
//! commands within one timeout period costs one heap push, not a thousand.
//! Time is an input: every function takes `now`, so the logic is tested without sleeping.
//!
//! Every idle session holds a timer, so records are kept small: times are nanoseconds from
//! the scheduler's epoch (8 bytes where an `Instant` takes 16) and the owner-list links are
//! 32-bit keys. A record is 64 bytes plus a 24-byte heap entry.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use slab::Slab;

/// An owner of timers: something with a small, dense index (a handler's slab key) under
/// which the head of its timer list is kept. Two live owners never share an index.
pub trait TimerOwner: Copy + Eq {
    /// The owner's index.
    fn index(&self) -> usize;
}

impl TimerOwner for u32 {
    fn index(&self) -> usize {
        *self as usize
    }
}

impl TimerOwner for usize {
    fn index(&self) -> usize {
        *self
    }
}

/// Identifies one scheduled timer; stays unique even after the timer is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    key: usize,
    /// Never zero, so that `Option<TimerId>` takes no more room than a `TimerId`.
    gen: NonZeroU64,
}

/// A timer that came due: which one and on behalf of whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired<O> {
    /// The timer.
    pub id: TimerId,
    /// Its owner, as given to [`Timers::schedule`].
    pub owner: O,
}

/// A set of one-shot and periodic timers, each owned by an `O` (a handler's handle).
#[derive(Debug)]
pub struct Timers<O> {
    records: Slab<Record<O>>,
    heap: BinaryHeap<Reverse<(Tick, usize, NonZeroU64)>>,
    next_gen: NonZeroU64,
    /// What [`Tick`]s count from.
    epoch: Instant,
    /// Each owner's timers form a doubly linked list through their records, so that
    /// cancelling a closed handler's timers costs what it owns, not a scan of all. The
    /// lists' heads, by owner index (`Link::NONE` = none): 4 bytes per handler slot.
    first_owned: Vec<Link>,
}

#[derive(Debug)]
struct Record<O> {
    gen: NonZeroU64,
    owner: O,
    /// When the timer should fire.
    deadline: Tick,
    /// The deadline of this record's one live heap entry.
    queued: Tick,
    /// Nanoseconds.
    delay: i64,
    prev_owned: Link,
    next_owned: Link,
    periodic: bool,
}

/// A point in time: signed nanoseconds from the scheduler's epoch (a caller's `now` may
/// be older than the scheduler). Saturates some 292 years either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Tick(i64);

impl Tick {
    fn after(self, nanos: i64) -> Tick {
        Tick(self.0.saturating_add(nanos))
    }
}

/// A record key in an owner's list, or `NONE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Link(u32);

impl Link {
    const NONE: Link = Link(u32::MAX);

    fn of(key: usize) -> Link {
        let key = u32::try_from(key).ok().filter(|&k| k != u32::MAX);
        // A record takes 64 bytes: u32::MAX of them would not fit in memory.
        Link(key.expect("fewer than 2^32 - 1 timer records"))
    }

    fn key(self) -> Option<usize> {
        (self != Link::NONE).then_some(self.0 as usize)
    }
}

impl<O: TimerOwner> Default for Timers<O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O: TimerOwner> Timers<O> {
    /// An empty scheduler.
    pub fn new() -> Self {
        Timers {
            records: Slab::new(),
            heap: BinaryHeap::new(),
            next_gen: NonZeroU64::MIN,
            epoch: Instant::now(),
            first_owned: Vec::new(),
        }
    }

    /// Schedules a timer for `owner` at `now + delay`; a periodic one re-arms itself
    /// every `delay` after firing.
    pub fn schedule(&mut self, owner: O, now: Instant, delay: Duration, periodic: bool) -> TimerId {
        let gen = self.next_gen;
        self.next_gen = self.next_gen.saturating_add(1);
        let delay = nanos(delay);
        let deadline = self.tick(now).after(delay);
        let next_owned = self.head(owner.index());
        let key = self.records.insert(Record {
            gen,
            owner,
            deadline,
            queued: deadline,
            delay,
            periodic,
            prev_owned: Link::NONE,
            next_owned: next_owned.map_or(Link::NONE, Link::of),
        });
        if let Some(next) = next_owned {
            self.records[next].prev_owned = Link::of(key);
        }
        self.set_head(owner.index(), Some(key));
        self.heap.push(Reverse((deadline, key, gen)));
        TimerId { key, gen }
    }

    /// Cancels a timer; cancelling one that already fired or was cancelled does nothing.
    pub fn cancel(&mut self, id: TimerId) {
        if self.record(id).is_some() {
            self.remove_record(id.key);
            self.compact();
        }
    }

    /// Pushes a timer's deadline to `now + delay` (its own delay): no heap work.
    /// Returns false when the timer no longer exists.
    pub fn reset(&mut self, id: TimerId, now: Instant) -> bool {
        let now = self.tick(now);
        let Some(rec) = self.records.get_mut(id.key).filter(|r| r.gen == id.gen) else {
            return false;
        };
        let delay = rec.delay;
        Self::move_deadline(&mut self.heap, id, rec, now, delay);
        true
    }

    /// Gives a timer a new delay counted from `now`. Returns false when it no longer exists.
    pub fn reschedule(&mut self, id: TimerId, now: Instant, delay: Duration) -> bool {
        let now = self.tick(now);
        let Some(rec) = self.records.get_mut(id.key).filter(|r| r.gen == id.gen) else {
            return false;
        };
        Self::move_deadline(&mut self.heap, id, rec, now, nanos(delay));
        true
    }

    /// Cancels every timer owned by `owner` (a closed handler's).
    pub fn cancel_owned_by(&mut self, owner: O) {
        let mut next = self.head(owner.index());
        self.set_head(owner.index(), None);
        while let Some(key) = next {
            next = self.records.remove(key).next_owned.key();
        }
        self.compact();
    }

    /// True while the timer exists (scheduled and not yet fired, or periodic).
    pub fn is_active(&self, id: TimerId) -> bool {
        self.record(id).is_some()
    }

    /// The number of live timers.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when no timer is live.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Time until the next heap entry is due (zero if overdue), or None if there is none.
    /// A reset timer may make this early: the loop then wakes, re-queues it, and sleeps again.
    pub fn next_delay(&mut self, now: Instant) -> Option<Duration> {
        let now = self.tick(now);
        while let Some(&Reverse((at, key, gen))) = self.heap.peek() {
            if self.is_live_entry(at, key, gen) {
                let wait = u64::try_from(at.0.saturating_sub(now.0)).unwrap_or(0);
                return Some(Duration::from_nanos(wait));
            }
            self.heap.pop();
        }
        None
    }

    /// Collects the timers due at `now` into `due`, in deadline order, without firing
    /// them; call [`fire`](Self::fire) for each. Re-queues the ones that were reset on the
    /// way. Timers scheduled while the collected ones fire wait for the next pass, even
    /// with a zero delay (as pyftpdlib's scheduler collects before it calls).
    pub fn collect_due(&mut self, now: Instant, due: &mut Vec<TimerId>) {
        let now = self.tick(now);
        let mut requeue = Vec::new();
        while let Some(&Reverse((at, key, gen))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            if !self.is_live_entry(at, key, gen) {
                continue;
            }
            if self.records[key].deadline > now {
                requeue.push(key);
            } else {
                due.push(TimerId { key, gen });
            }
        }
        for key in requeue {
            self.requeue(key);
        }
    }

    /// Fires one collected timer: returns its owner, or None if it was cancelled or reset
    /// since it was collected. A one-shot timer is gone afterwards; a periodic one is
    /// re-armed one period from `now`.
    pub fn fire(&mut self, id: TimerId, now: Instant) -> Option<O> {
        let now = self.tick(now);
        let rec = self.records.get_mut(id.key).filter(|r| r.gen == id.gen)?;
        if rec.deadline > now {
            self.requeue(id.key);
            return None;
        }
        let owner = rec.owner;
        if rec.periodic {
            rec.deadline = now.after(rec.delay);
            self.requeue(id.key);
        } else {
            self.remove_record(id.key);
        }
        Some(owner)
    }

    /// Pops and fires the next timer due at `now`, if any (collect and fire in one step;
    /// for callers that do not schedule from inside callbacks).
    pub fn pop_expired(&mut self, now: Instant) -> Option<Expired<O>> {
        loop {
            let mut due = Vec::with_capacity(1);
            self.collect_one(now, &mut due);
            let id = due.pop()?;
            if let Some(owner) = self.fire(id, now) {
                return Some(Expired { id, owner });
            }
        }
    }

    fn collect_one(&mut self, now: Instant, due: &mut Vec<TimerId>) {
        let now = self.tick(now);
        while let Some(&Reverse((at, key, gen))) = self.heap.peek() {
            if at > now {
                return;
            }
            self.heap.pop();
            if self.is_live_entry(at, key, gen) {
                due.push(TimerId { key, gen });
                return;
            }
        }
    }

    /// Sets a record's deadline to `now + delay`. Later than its heap entry: nothing else
    /// (the entry re-queues it when it comes due). Earlier: that entry goes stale and a
    /// new one takes over.
    fn move_deadline(
        heap: &mut BinaryHeap<Reverse<(Tick, usize, NonZeroU64)>>,
        id: TimerId,
        rec: &mut Record<O>,
        now: Tick,
        delay: i64,
    ) {
        rec.delay = delay;
        rec.deadline = now.after(delay);
        if rec.deadline < rec.queued {
            rec.queued = rec.deadline;
            heap.push(Reverse((rec.deadline, id.key, id.gen)));
        }
    }

    fn tick(&self, t: Instant) -> Tick {
        match t.checked_duration_since(self.epoch) {
            Some(d) => Tick(nanos(d)),
            None => Tick(-nanos(self.epoch.duration_since(t))),
        }
    }

    fn head(&self, index: usize) -> Option<usize> {
        self.first_owned.get(index).and_then(|l| l.key())
    }

    fn set_head(&mut self, index: usize, key: Option<usize>) {
        if index >= self.first_owned.len() {
            if key.is_none() {
                return;
            }
            self.first_owned.resize(index + 1, Link::NONE);
        }
        self.first_owned[index] = key.map_or(Link::NONE, Link::of);
    }

    /// Removes a record, unlinking it from its owner's list.
    fn remove_record(&mut self, key: usize) {
        let rec = self.records.remove(key);
        match rec.prev_owned.key() {
            Some(prev) => self.records[prev].next_owned = rec.next_owned,
            None => self.set_head(rec.owner.index(), rec.next_owned.key()),
        }
        if let Some(next) = rec.next_owned.key() {
            self.records[next].prev_owned = rec.prev_owned;
        }
    }

    fn requeue(&mut self, key: usize) {
        let rec = &mut self.records[key];
        rec.queued = rec.deadline;
        self.heap.push(Reverse((rec.deadline, key, rec.gen)));
    }

    fn record(&self, id: TimerId) -> Option<&Record<O>> {
        self.records.get(id.key).filter(|r| r.gen == id.gen)
    }

    fn is_live_entry(&self, at: Tick, key: usize, gen: NonZeroU64) -> bool {
        self.records
            .get(key)
            .is_some_and(|r| r.gen == gen && r.queued == at)
    }

    /// Drops stale heap entries once they outnumber the live ones (as pyftpdlib does past
    /// 512 cancellations), so many short sessions with long timeouts do not grow the heap.
    fn compact(&mut self) {
        let live = self.records.len();
        if self.heap.len() > 512 && self.heap.len() > 2 * live {
            let records = &self.records;
            self.heap.retain(|&Reverse((at, key, gen))| {
                records
                    .get(key)
                    .is_some_and(|r| r.gen == gen && r.queued == at)
            });
        }
    }
}

/// A duration in nanoseconds, saturated to `i64::MAX` (292 years).
fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn drain(t: &mut Timers<u32>, now: Instant) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(e) = t.pop_expired(now) {
            out.push(e.owner);
        }
        out
    }

    #[test]
    fn fire_in_deadline_order() {
        let t0 = Instant::now();
        let mut t = Timers::<u32>::new();
        t.schedule(3, t0, ms(30), false);
        t.schedule(1, t0, ms(10), false);
        t.schedule(2, t0, ms(20), false);
        assert_eq!(drain(&mut t, t0 + ms(5)), Vec::<u32>::new());
        assert_eq!(t.next_delay(t0), Some(ms(10)));
        assert_eq!(drain(&mut t, t0 + ms(30)), vec![1, 2, 3]);
        assert!(t.is_empty());
        assert_eq!(t.next_delay(t0), None);
    }

    #[test]
    fn zero_delay_fires_on_next_pass() {
        let t0 = Instant::now();
        let mut t = Timers::<u32>::new();
        t.schedule(7, t0, Duration::ZERO, false);
        assert_eq!(drain(&mut t, t0), vec![7]);
    }

    #[test]
    fn cancelled_timer_never_fires() {
        let t0 = Instant::now();
        let mut t = Timers::<u32>::new();
        let a = t.schedule(1, t0, ms(10), false);
        t.schedule(2, t0, ms(10), false);
        t.cancel(a);
        t.cancel(a); // twice is harmless
        assert!(!t.is_active(a));
        assert_eq!(drain(&mut t, t0 + ms(10)), vec![2]);
    }

    #[test]
    fn reset_postpones_without_heap_pushes() {
        let t0 = Instant::now();
        let mut t = Timers::<u32>::new();
        let id = t.schedule(1, t0, ms(100), false);
        for i in 1..=1000 {
            assert!(t.reset(id, t0 + ms(i)));
        }
        assert_eq!(t.heap.len(), 1, "a reset must not push");
        assert_eq!(drain(&mut t, t0 + ms(100)), Vec::<u32>::new());
        assert_eq!(drain(&mut t, t0 + ms(1099)), Vec::<u32>::new());
        assert_eq!(drain(&mut t, t0 + ms(1100)), vec![1]);
    }

    #[test]
    fn reschedule_earlier_fires_earlier() {
        let t0 = Instant::now();
        let mut t = Timers::<u32>::new();
        let id = t.schedule(1, t0, ms(100), false);
        assert!(t.reschedule(id, t0, ms(10)));
        assert_eq!(drain(&mut t, t0 + ms(10)), vec![1]);
        // The stale entry at 100 ms fires nothing.
        assert_eq!(drain(&mut t, t0 + ms(200)), Vec::<u32>::new());
    }

    #[test]
    fn periodic_rearms_until_cancelled() {
        let t0 = Instant::now();
        let mut t = Timers::<u32>::new();
        let id = t.schedule(5, t0, ms(10), true);
        assert_eq!(drain(&mut t, t0 + ms(10)), vec![5]);
        assert_eq!(drain(&mut t, t0 + ms(15)), Vec::<u32>::new());
        assert_eq!(drain(&mut t, t0 + ms(20)), vec![5]);
        t.cancel(id);
        assert_eq!(drain(&mut t, t0 + ms(100)), Vec::<u32>::new());
    }

    #[test]
    fn cancel_owned_by_drops_only_that_owner() {
        let t0 = Instant::now();
        let mut t = Timers::<u32>::new();
        t.schedule(1, t0, ms(1), false);
        t.schedule(2, t0, ms(1), true);
        t.schedule(1, t0, ms(2), true);
        t.cancel_owned_by(1);
        assert_eq!(t.len(), 1);
        assert_eq!(drain(&mut t, t0 + ms(5)), vec![2]);
    }

    #[test]
    fn stale_entries_are_compacted() {
        let t0 = Instant::now();
        let mut t = Timers::<u32>::new();
        let ids: Vec<_> = (0..2000)
            .map(|i| t.schedule(i, t0, ms(300), false))
            .collect();
        for id in &ids[..1900] {
            t.cancel(*id);
        }
        assert!(t.heap.len() <= 2 * 100 + 512, "heap len {}", t.heap.len());
        assert_eq!(drain(&mut t, t0 + ms(300)).len(), 100);
    }

    #[test]
    fn zero_delay_periodic_fires_once_per_pass() {
        let t0 = Instant::now();
        let mut t = Timers::<u32>::new();
        t.schedule(1, t0, Duration::ZERO, true);
        let mut due = Vec::new();
        t.collect_due(t0, &mut due);
        assert_eq!(due.len(), 1);
        assert_eq!(t.fire(due[0], t0), Some(1));
        let mut again = Vec::new();
        t.collect_due(t0, &mut again);
        assert_eq!(again.len(), 1, "re-armed for the next pass, not this one");
    }

    #[test]
    fn cancelled_after_collection_does_not_fire() {
        let t0 = Instant::now();
        let mut t = Timers::<u32>::new();
        let a = t.schedule(1, t0, ms(1), false);
        let b = t.schedule(2, t0, ms(1), false);
        let mut due = Vec::new();
        t.collect_due(t0 + ms(1), &mut due);
        assert_eq!(due.len(), 2);
        t.cancel(b);
        assert_eq!(t.fire(a, t0 + ms(1)), Some(1));
        assert_eq!(t.fire(b, t0 + ms(1)), None);
    }

    #[test]
    fn owner_lists_survive_removal_in_any_order() {
        let t0 = Instant::now();
        let mut t = Timers::<u32>::new();
        let ids: Vec<_> = (0..6)
            .map(|i| t.schedule(i % 2, t0, ms(i as u64 + 1), false))
            .collect();
        t.cancel(ids[2]); // middle of owner 0's list
        assert_eq!(t.pop_expired(t0 + ms(1)).map(|e| e.owner), Some(0)); // its tail
        t.cancel(ids[4]); // its head
        t.cancel_owned_by(1);
        assert!(t.is_empty());
        assert!(t.first_owned.iter().all(|&k| k == Link::NONE));
        let again = t.schedule(0, t0, ms(1), false);
        t.cancel_owned_by(0);
        assert!(!t.is_active(again));
    }

    #[test]
    fn records_stay_small() {
        // One per idle session: see the module docs.
        assert_eq!(std::mem::size_of::<Record<[u64; 2]>>(), 64);
        assert_eq!(std::mem::size_of::<Option<TimerId>>(), 16);
    }

    #[test]
    fn times_before_the_epoch_keep_their_order() {
        let t0 = Instant::now();
        let mut t = Timers::<u32>::new();
        let late = t0 + ms(50);
        t.schedule(2, late, ms(10), false);
        t.schedule(1, t0, ms(10), false);
        assert_eq!(t.next_delay(t0), Some(ms(10)));
        assert_eq!(drain(&mut t, late + ms(10)), vec![1, 2]);
    }

    #[test]
    fn ids_are_not_reused() {
        let t0 = Instant::now();
        let mut t = Timers::<u32>::new();
        let a = t.schedule(1, t0, ms(1), false);
        t.cancel(a);
        let b = t.schedule(1, t0, ms(1), false);
        assert_ne!(a, b);
        t.cancel(a);
        assert!(t.is_active(b));
    }
}
