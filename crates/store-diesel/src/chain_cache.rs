//! [`ChainCache`]: the resolution chains a store read lately, kept for at most a TTL so the
//! gateway's hot path (one chain read per call) rarely reaches the database.
//!
//! # The rule
//!
//! - An entry is a [`ChainSnapshot`] as `load_chain` returned it: configs with their SEALED
//!   secrets and task assignments. Nothing here is ever plaintext; secrets are opened per
//!   call, after the lookup.
//! - A write that can change any chain (every config and task-assignment write, key
//!   rotation) bumps the cache's generation once it is over, committed or not, also when
//!   the caller gives up half-way ([`ChainCache::invalidate_on_drop`]).
//! - A read takes a [`Ticket`] (the generation and the time) BEFORE it queries, and its
//!   result is stored only if the generation is still the ticket's. The entry is tagged
//!   with the ticket's generation and time.
//! - A lookup serves an entry only if it is of the current generation and younger than the
//!   TTL (measured from before its read began).
//!
//! So a change made through this store handle is seen by the very next read on it: the
//! write bumped the generation before it returned, which retires every entry, including
//! one a racing read stores with an older ticket. A change made by another process (another
//! handle on the same database) is seen once the entries read before it have aged past the
//! TTL: at most [`MAX_TTL`] (1 s) after it committed.
//!
//! The cache is bounded: a fixed number of shards, each holding at most a fixed number of
//! entries; a full shard drops its retired entries first, then an arbitrary one.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use llm_settings_domain::{ChainQuery, ChainSnapshot};

/// How long an entry is served unless configured otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(1);
/// The longest TTL allowed: a change made by another process must be seen within it.
pub const MAX_TTL: Duration = Duration::from_secs(1);

/// Shards of the map (each behind its own lock).
const SHARDS: usize = 16;
/// Entries a shard holds at most: 16 × 256 = 4096 chains in all.
const PER_SHARD: usize = 256;

/// A chain read and when its read began.
#[derive(Debug)]
struct Entry {
    generation: u64,
    read_at: Instant,
    snapshot: ChainSnapshot,
}

/// What a read records before it queries: see the module's rule.
#[derive(Debug, Clone, Copy)]
#[must_use = "a ticket is handed back to `put`"]
pub struct Ticket {
    generation: u64,
    read_at: Instant,
}

/// Recently read chains of one store handle; see the module documentation.
#[derive(Debug)]
pub struct ChainCache {
    ttl: Duration,
    generation: AtomicU64,
    hasher: RandomState,
    shards: Box<[Mutex<HashMap<ChainQuery, Entry>>]>,
}

impl Default for ChainCache {
    fn default() -> Self {
        Self::new(DEFAULT_TTL)
    }
}

impl ChainCache {
    /// A cache serving entries for `ttl` (at most [`MAX_TTL`]); zero disables it.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl: ttl.min(MAX_TTL),
            generation: AtomicU64::new(0),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// How long an entry is served; zero when the cache is off.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    fn shard(&self, query: &ChainQuery) -> MutexGuard<'_, HashMap<ChainQuery, Entry>> {
        let index = (self.hasher.hash_one(query) % SHARDS as u64) as usize;
        // A panic while holding the lock leaves at worst a missing or retired entry.
        self.shards[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn current(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The chain of `query`, if an entry of the current generation younger than the TTL
    /// holds it.
    pub fn get(&self, query: &ChainQuery) -> Option<ChainSnapshot> {
        if !self.enabled() {
            return None;
        }
        let generation = self.current();
        let shard = self.shard(query);
        let entry = shard.get(query)?;
        (entry.generation == generation && entry.read_at.elapsed() < self.ttl)
            .then(|| entry.snapshot.clone())
    }

    /// Taken by a read before it queries, and handed to [`ChainCache::put`] with its result.
    pub fn ticket(&self) -> Ticket {
        Ticket {
            generation: self.current(),
            read_at: Instant::now(),
        }
    }

    /// Stores what a read that took `ticket` returned, unless a write ended since the
    /// ticket was taken (the result may predate it).
    pub fn put(&self, query: ChainQuery, ticket: Ticket, snapshot: &ChainSnapshot) {
        if !self.enabled() || self.current() != ticket.generation {
            return;
        }
        let mut shard = self.shard(&query);
        if shard.len() >= PER_SHARD && !shard.contains_key(&query) {
            let (generation, ttl) = (self.current(), self.ttl);
            shard.retain(|_, e| e.generation == generation && e.read_at.elapsed() < ttl);
            if shard.len() >= PER_SHARD {
                if let Some(victim) = shard.keys().next().cloned() {
                    shard.remove(&victim);
                }
            }
        }
        // Another read of the same chain may have stored a younger result meanwhile.
        if let Some(held) = shard.get(&query) {
            if held.generation == ticket.generation && held.read_at >= ticket.read_at {
                return;
            }
        }
        shard.insert(
            query,
            Entry {
                generation: ticket.generation,
                read_at: ticket.read_at,
                snapshot: snapshot.clone(),
            },
        );
    }

    /// Retires every entry: called once a write that may change a chain is over.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// A guard that calls [`ChainCache::invalidate`] when dropped: held across a write, it
    /// retires the entries once the write is over, however it ends (committed, failed, or
    /// abandoned by its caller half-way).
    pub fn invalidate_on_drop(&self) -> Invalidation<'_> {
        Invalidation(self)
    }
}

/// See [`ChainCache::invalidate_on_drop`].
#[derive(Debug)]
#[must_use = "the entries are retired when the guard is dropped"]
pub struct Invalidation<'a>(&'a ChainCache);

impl Drop for Invalidation<'_> {
    fn drop(&mut self) {
        self.0.invalidate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_settings_domain::{ModelName, Owner, ProviderId, TaskAssignment, TaskName, UserId};

    fn query(user: &str) -> ChainQuery {
        ChainQuery {
            owners: vec![
                Owner::User(UserId::parse(user).expect("user")),
                Owner::Global,
            ],
            provider: None,
            task: None,
        }
    }

    /// A snapshot told apart by its number of assignments.
    fn snapshot(n: usize) -> ChainSnapshot {
        let assignment = TaskAssignment {
            task: TaskName::parse("summarize").expect("task"),
            provider: ProviderId::lookup("openai").expect("provider"),
            model: ModelName::parse("gpt-4o-mini").expect("model"),
        };
        ChainSnapshot {
            configs: Vec::new(),
            assignments: vec![(Owner::Global, assignment); n],
        }
    }

    #[test]
    fn a_read_is_served_until_a_write_ends() {
        let cache = ChainCache::new(Duration::from_secs(1));
        assert_eq!(cache.get(&query("a")), None);
        cache.put(query("a"), cache.ticket(), &snapshot(1));
        assert_eq!(cache.get(&query("a")), Some(snapshot(1)));
        assert_eq!(cache.get(&query("b")), None, "per query");
        cache.invalidate();
        assert_eq!(cache.get(&query("a")), None, "retired by the write");
    }

    #[test]
    fn a_read_racing_a_write_never_stores_stale_data() {
        let cache = ChainCache::new(Duration::from_secs(1));
        // The read takes its ticket, the write ends, the read (which may have seen the old
        // state) comes back: nothing is stored.
        let ticket = cache.ticket();
        cache.invalidate();
        cache.put(query("a"), ticket, &snapshot(1));
        assert_eq!(cache.get(&query("a")), None);

        // The read stores before the write ends (still with the old generation): the entry
        // is retired as the write ends.
        let ticket = cache.ticket();
        cache.put(query("a"), ticket, &snapshot(1));
        assert_eq!(cache.get(&query("a")), Some(snapshot(1)));
        {
            let _writing = cache.invalidate_on_drop();
        }
        assert_eq!(cache.get(&query("a")), None);

        // A read that began after the write is stored and served.
        cache.put(query("a"), cache.ticket(), &snapshot(2));
        assert_eq!(cache.get(&query("a")), Some(snapshot(2)));

        // A slow read with an older ticket does not overwrite a younger result.
        let old = cache.ticket();
        std::thread::sleep(Duration::from_millis(2));
        cache.put(query("a"), cache.ticket(), &snapshot(3));
        cache.put(query("a"), old, &snapshot(4));
        assert_eq!(cache.get(&query("a")), Some(snapshot(3)));
    }

    #[test]
    fn racing_reads_and_writes_on_threads_never_serve_an_old_state() {
        // The "database" is a counter; each write bumps it and then the generation. A read
        // takes its ticket, reads the counter, and stores it. Whoever looks up after a write
        // ended must see at least that write's value.
        use std::sync::atomic::AtomicUsize;
        use std::sync::Arc;
        let cache = Arc::new(ChainCache::new(Duration::from_secs(1)));
        let state = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (cache, state) = (cache.clone(), state.clone());
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        let ticket = cache.ticket();
                        let seen = state.load(Ordering::SeqCst);
                        std::thread::yield_now();
                        cache.put(query("a"), ticket, &snapshot(seen));
                    }
                })
            })
            .collect();
        for _ in 0..500 {
            let written = {
                let _writing = cache.invalidate_on_drop();
                state.fetch_add(1, Ordering::SeqCst) + 1
            };
            if let Some(hit) = cache.get(&query("a")) {
                assert!(hit.assignments.len() >= written, "a stale chain was served");
            }
            std::thread::yield_now();
        }
        for reader in readers {
            reader.join().expect("reader");
        }
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = ChainCache::new(Duration::from_millis(30));
        cache.put(query("a"), cache.ticket(), &snapshot(1));
        assert!(cache.get(&query("a")).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&query("a")), None);
    }

    #[test]
    fn zero_disables_and_the_ttl_is_capped() {
        let off = ChainCache::new(Duration::ZERO);
        off.put(query("a"), off.ticket(), &snapshot(1));
        assert_eq!(off.get(&query("a")), None);
        assert_eq!(ChainCache::new(Duration::from_secs(5)).ttl(), MAX_TTL);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = ChainCache::new(Duration::from_secs(1));
        for i in 0..(SHARDS * PER_SHARD * 2) {
            cache.put(query(&format!("u{i}")), cache.ticket(), &snapshot(0));
        }
        let held: usize = cache
            .shards
            .iter()
            .map(|s| s.lock().expect("shard").len())
            .sum();
        assert!(held <= SHARDS * PER_SHARD, "{held} entries");
    }
}
