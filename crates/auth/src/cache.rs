//! Verified-token cache: lets a client that reuses its token skip the HMAC
//! and JSON work on every order after the first.
//!
//! # Design
//!
//! * **Thread-local, no locks.** Each thread keeps its own small map per
//!   verifier instance (`thread_local!`), so a hit touches only memory the
//!   thread owns plus one atomic load (the key-ring generation) and a few
//!   relaxed counter bumps. The cost is that a token seen on two threads is
//!   verified once per thread, which is cheap compared with a shared lock on
//!   every request.
//! * **Keyed by an ahash of the token, confirmed by the full bytes.** The
//!   64-bit hash only picks the slot; a hit also requires the stored token
//!   to equal the presented one byte for byte, so a hash collision can cause
//!   a miss but never a wrong identity. The hasher is randomly keyed per
//!   thread, so collisions cannot be aimed.
//! * **Bounded by two generations.** Entries go into a "young" map; when it
//!   holds half the per-thread bound, the "old" map is dropped whole and the
//!   young one becomes old. That evicts the oldest half in one step, keeps
//!   the bound strict, and a hit in the old map moves the entry back to
//!   young, so tokens in active use survive (a cheap approximation of LRU).
//! * **Validity re-checked on every hit.** Only tokens that just verified
//!   are cached. A hit re-checks `exp`/`nbf` against the cached numbers and
//!   compares the entry's key-ring generation with the verifier's current
//!   one: any rotation or revocation bumps the generation, turning every
//!   older entry into a miss, on every thread, from that moment on.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};

use crate::error::AuthError;
use crate::token::Policy;
use crate::Identity;

/// Per-thread bound used when the configured capacity is large: the total
/// is spread over an assumed 8 worker threads, but never below this.
const MIN_PER_THREAD: usize = 1024;

/// Threads the configured capacity is assumed to be shared between.
const ASSUMED_THREADS: usize = 8;

/// Hands out verifier instance ids; never reused, so a slot left behind by a
/// dropped verifier can never be mistaken for a live one.
static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CACHES: RefCell<ThreadCaches> = RefCell::new(ThreadCaches::new());
}

/// Cache counters, readable at any time via [`crate::Verifier::cache_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache (including ones that found the
    /// cached token expired or not yet valid).
    pub hits: u64,
    /// Lookups that had to run full verification.
    pub misses: u64,
    /// Entries added after a successful full verification.
    pub inserts: u64,
    /// Entries dropped: to stay within the bound, or because they went
    /// stale (older key-ring generation, or expired).
    pub evictions: u64,
}

/// Shared counters. Aligned to their own cache lines so that bumping them
/// does not keep invalidating the line holding the verifier's generation,
/// which every hit reads.
#[derive(Default)]
#[repr(align(128))]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
    evictions: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }
}

/// What a cache lookup found.
pub(crate) enum Probe {
    /// A valid cached identity.
    Hit(Arc<Identity>),
    /// A cached token that is no longer (or not yet) acceptable.
    Fail(AuthError),
    /// Not cached; carries the token hash to insert with, when the
    /// thread-local storage was usable.
    Miss(Option<u64>),
}

/// One verifier's handle on the per-thread caches.
pub(crate) struct TokenCache {
    instance: u64,
    /// Slots hold a `Weak` to this so other threads can tell the verifier
    /// is gone and drop its slot.
    alive: Arc<()>,
    per_thread: usize,
    counters: Counters,
}

impl TokenCache {
    /// `None` when `capacity` is 0, which disables caching.
    pub fn new(capacity: usize) -> Option<TokenCache> {
        if capacity == 0 {
            return None;
        }
        Some(TokenCache {
            instance: NEXT_INSTANCE.fetch_add(1, Relaxed),
            alive: Arc::new(()),
            per_thread: per_thread_bound(capacity),
            counters: Counters::default(),
        })
    }

    /// Looks `token` up; on a hit re-checks generation and time.
    pub fn get(&self, token: &[u8], generation: u64, policy: &Policy, now: u64) -> Probe {
        let probe = self.with_slot(|hasher, slot| {
            let hash = hasher.hash_one(token);
            slot.probe(hash, token, generation, policy, now, &self.counters)
        });
        let probe = probe.unwrap_or(Probe::Miss(None));
        match probe {
            Probe::Miss(_) => Counters::bump(&self.counters.misses, 1),
            _ => Counters::bump(&self.counters.hits, 1),
        }
        probe
    }

    /// Caches a freshly verified identity under `hash` (from [`Self::get`]).
    pub fn put(&self, hash: u64, token: &[u8], generation: u64, identity: Arc<Identity>) {
        let entry = Entry {
            token: token.into(),
            generation,
            identity,
        };
        let inserted = self.with_slot(|_, slot| slot.store(hash, entry, &self.counters));
        if inserted.is_some() {
            Counters::bump(&self.counters.inserts, 1);
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.counters.hits.load(Relaxed),
            misses: self.counters.misses.load(Relaxed),
            inserts: self.counters.inserts.load(Relaxed),
            evictions: self.counters.evictions.load(Relaxed),
        }
    }

    /// The per-thread entry bound in force.
    pub fn per_thread(&self) -> usize {
        self.per_thread
    }

    /// Runs `f` on this thread's slot for this verifier. `None` only while
    /// the thread is being torn down (thread-locals already destroyed), in
    /// which case the caller just skips the cache.
    fn with_slot<R>(&self, f: impl FnOnce(&ahash::RandomState, &mut Slot) -> R) -> Option<R> {
        CACHES
            .try_with(|caches| {
                let mut caches = caches.try_borrow_mut().ok()?;
                let ThreadCaches { hasher, slots } = &mut *caches;
                Some(f(hasher, slot_for(slots, self)))
            })
            .ok()
            .flatten()
    }
}

impl Drop for TokenCache {
    /// Frees this thread's slot now; other threads drop theirs the next time
    /// they create a slot (see [`slot_for`]).
    fn drop(&mut self) {
        let instance = self.instance;
        let _ = CACHES.try_with(|caches| {
            if let Ok(mut caches) = caches.try_borrow_mut() {
                caches.slots.retain(|s| s.instance != instance);
            }
        });
    }
}

/// Small capacities are honoured exactly (they are mostly tests); large ones
/// are split over [`ASSUMED_THREADS`] with a floor of [`MIN_PER_THREAD`].
fn per_thread_bound(capacity: usize) -> usize {
    if capacity <= MIN_PER_THREAD {
        capacity
    } else {
        (capacity / ASSUMED_THREADS).max(MIN_PER_THREAD)
    }
}

/// Finds or creates this verifier's slot. Creating one is also when slots of
/// dropped verifiers are cleared out, which keeps the list short.
fn slot_for<'s>(slots: &'s mut Vec<Slot>, cache: &TokenCache) -> &'s mut Slot {
    let found = slots.iter().position(|s| s.instance == cache.instance);
    let index = match found {
        Some(i) => i,
        None => {
            slots.retain(|s| s.owner.strong_count() > 0);
            slots.push(Slot::new(cache));
            slots.len() - 1
        }
    };
    &mut slots[index]
}

struct ThreadCaches {
    hasher: ahash::RandomState,
    slots: Vec<Slot>,
}

impl ThreadCaches {
    fn new() -> ThreadCaches {
        ThreadCaches {
            hasher: ahash::RandomState::new(),
            slots: Vec::new(),
        }
    }
}

struct Entry {
    token: Box<[u8]>,
    generation: u64,
    identity: Arc<Identity>,
}

/// The keys are already ahash outputs, so the map must not hash them again.
type Map = HashMap<u64, Entry, nohash_hasher::BuildNoHashHasher<u64>>;

/// One verifier's entries on one thread.
struct Slot {
    instance: u64,
    owner: Weak<()>,
    /// Size at which `young` is retired; total entries stay ≤ 2 × this.
    half: usize,
    young: Map,
    old: Map,
}

/// Outcome of comparing one stored entry with the presented token.
enum Check {
    /// Different token under the same hash.
    Other,
    /// Same token, but from an older key ring, or expired for good.
    Drop(Option<AuthError>),
    /// Same token, currently acceptable or not (yet).
    Keep(Result<Arc<Identity>, AuthError>),
}

impl Slot {
    fn new(cache: &TokenCache) -> Slot {
        Slot {
            instance: cache.instance,
            owner: Arc::downgrade(&cache.alive),
            half: (cache.per_thread / 2).max(1),
            young: Map::default(),
            old: Map::default(),
        }
    }

    fn probe(
        &mut self,
        hash: u64,
        token: &[u8],
        generation: u64,
        policy: &Policy,
        now: u64,
        counters: &Counters,
    ) -> Probe {
        if let Some(entry) = self.young.get(&hash) {
            return match check(entry, token, generation, policy, now) {
                Check::Other => Probe::Miss(Some(hash)),
                Check::Keep(result) => into_probe(result),
                Check::Drop(reason) => {
                    self.young.remove(&hash);
                    Counters::bump(&counters.evictions, 1);
                    reason.map_or(Probe::Miss(Some(hash)), Probe::Fail)
                }
            };
        }
        self.probe_old(hash, token, generation, policy, now, counters)
    }

    /// A hit in the old generation is moved to the young one so that tokens
    /// still in use are not evicted at the next retirement.
    fn probe_old(
        &mut self,
        hash: u64,
        token: &[u8],
        generation: u64,
        policy: &Policy,
        now: u64,
        counters: &Counters,
    ) -> Probe {
        let Some(entry) = self.old.remove(&hash) else {
            return Probe::Miss(Some(hash));
        };
        match check(&entry, token, generation, policy, now) {
            Check::Other => {
                self.old.insert(hash, entry);
                Probe::Miss(Some(hash))
            }
            Check::Drop(reason) => {
                Counters::bump(&counters.evictions, 1);
                reason.map_or(Probe::Miss(Some(hash)), Probe::Fail)
            }
            Check::Keep(result) => {
                self.store(hash, entry, counters);
                into_probe(result)
            }
        }
    }

    /// Inserts into the young generation, retiring it first if full.
    fn store(&mut self, hash: u64, entry: Entry, counters: &Counters) {
        if self.old.remove(&hash).is_some() {
            Counters::bump(&counters.evictions, 1);
        }
        if self.young.len() >= self.half && !self.young.contains_key(&hash) {
            Counters::bump(&counters.evictions, self.old.len() as u64);
            std::mem::swap(&mut self.young, &mut self.old);
            // Reuses the retired map's allocation for the new young one.
            self.young.clear();
        }
        if self.young.insert(hash, entry).is_some() {
            Counters::bump(&counters.evictions, 1);
        }
    }
}

fn check(entry: &Entry, token: &[u8], generation: u64, policy: &Policy, now: u64) -> Check {
    if *entry.token != *token {
        return Check::Other;
    }
    if entry.generation != generation {
        return Check::Drop(None);
    }
    let id = &entry.identity;
    match policy.check_times(id.exp, id.nbf, now) {
        Ok(()) => Check::Keep(Ok(Arc::clone(id))),
        // Expiry is permanent: free the slot while reporting the error.
        Err(AuthError::TokenExpired) => Check::Drop(Some(AuthError::TokenExpired)),
        Err(e) => Check::Keep(Err(e)),
    }
}

fn into_probe(result: Result<Arc<Identity>, AuthError>) -> Probe {
    match result {
        Ok(id) => Probe::Hit(id),
        Err(e) => Probe::Fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(exp: u64) -> Arc<Identity> {
        Arc::new(Identity {
            account_id: "a".into(),
            session_id: "a".into(),
            exp,
            nbf: None,
            scopes: "".into(),
            kid: None,
        })
    }

    fn policy() -> Policy {
        Policy {
            issuer: None,
            audience: None,
            skew: 0,
        }
    }

    fn hash_of(cache: &TokenCache, token: &[u8]) -> u64 {
        match cache.get(token, 0, &policy(), 0) {
            Probe::Miss(Some(h)) => h,
            _ => panic!("expected a miss"),
        }
    }

    // Goal: the per-thread bound honours small capacities and spreads large ones.
    #[test]
    fn per_thread_bounds() {
        assert_eq!(per_thread_bound(16), 16);
        assert_eq!(per_thread_bound(1024), 1024);
        assert_eq!(per_thread_bound(4096), 1024);
        assert_eq!(per_thread_bound(65_536), 8192);
        assert!(TokenCache::new(0).is_none());
    }

    // Goal: the cache never holds more than its bound, and counts what it drops.
    #[test]
    fn stays_bounded() {
        let cache = TokenCache::new(8).unwrap();
        for i in 0..100u32 {
            let token = i.to_le_bytes();
            let h = hash_of(&cache, &token);
            cache.put(h, &token, 0, identity(10));
        }
        let held = cache.with_slot(|_, s| s.young.len() + s.old.len()).unwrap();
        assert!(held <= 8, "held {held}");
        let stats = cache.stats();
        assert_eq!(stats.inserts, 100);
        assert_eq!(stats.evictions, 100 - held as u64);
    }

    // Goal: a token in active use survives retirements thanks to promotion.
    #[test]
    fn active_token_survives_eviction() {
        let cache = TokenCache::new(8).unwrap();
        let hot = b"hot-token";
        let h = hash_of(&cache, hot);
        cache.put(h, hot, 0, identity(10));
        for i in 0..100u32 {
            let token = i.to_le_bytes();
            let h = hash_of(&cache, &token);
            cache.put(h, &token, 0, identity(10));
            assert!(
                matches!(cache.get(hot, 0, &policy(), 0), Probe::Hit(_)),
                "lost at {i}"
            );
        }
    }

    // Goal: equal hashes with different bytes are a miss, never a wrong hit.
    #[test]
    fn hash_collision_is_a_miss() {
        let cache = TokenCache::new(8).unwrap();
        cache.put(42, b"token-a", 0, identity(10));
        let probe =
            cache.with_slot(|_, s| s.probe(42, b"token-b", 0, &policy(), 0, &cache.counters));
        assert!(matches!(probe, Some(Probe::Miss(Some(42)))));
        let probe =
            cache.with_slot(|_, s| s.probe(42, b"token-a", 0, &policy(), 0, &cache.counters));
        assert!(matches!(probe, Some(Probe::Hit(_))));
    }

    // Goal: dropping a verifier's cache frees its slot on this thread, and
    // slots of dropped caches are pruned when another cache arrives.
    #[test]
    fn slots_are_reclaimed() {
        let count = || CACHES.with(|c| c.borrow().slots.len());
        let before = count();
        let a = TokenCache::new(4).unwrap();
        let h = hash_of(&a, b"x");
        a.put(h, b"x", 0, identity(10));
        assert_eq!(count(), before + 1);
        drop(a);
        assert_eq!(count(), before);
    }
}
