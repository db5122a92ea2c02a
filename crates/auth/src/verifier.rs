//! The [`Verifier`]: configuration, the current key ring, the claim policy
//! and the token cache, behind one `Send + Sync` value shared via `Arc`.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::cache::{CacheStats, Probe, TokenCache};
use crate::error::{AuthError, ConfigError};
use crate::keyring::KeyRing;
use crate::token::{self, Policy, MAX_TOKEN_LEN};

/// Default tolerance for clock differences between issuer and gateway.
pub const DEFAULT_CLOCK_SKEW_SEC: u64 = 30;

/// Default verified-token cache capacity (entries, meant as the total over
/// the worker threads; see [`AuthConfig::cache_capacity`]).
pub const DEFAULT_CACHE_CAPACITY: usize = 65_536;

/// Authentication settings, usually filled from the gateway configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// `JWT_HS256_SECRET`: the default key, for tokens without `kid`.
    /// Empty means no default key.
    pub secret: String,
    /// Named keys, `"kid1:secret1,kid2:base64:..."`; may be empty.
    pub keys: String,
    /// Required `iss`, if any. `Some("")` counts as not configured.
    pub issuer: Option<String>,
    /// Required `aud` element, if any. `Some("")` counts as not configured.
    pub audience: Option<String>,
    /// Seconds of tolerance applied to `exp` and `nbf`.
    pub clock_skew_sec: u64,
    /// Verified-token cache capacity; 0 disables the cache. Each thread
    /// gets `capacity / 8` entries (at least 1024, or `capacity` itself if
    /// smaller), so the total holds for up to 8 worker threads.
    pub cache_capacity: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            secret: String::new(),
            keys: String::new(),
            issuer: None,
            audience: None,
            clock_skew_sec: DEFAULT_CLOCK_SKEW_SEC,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}

/// Secrets are replaced by a marker so configs can be logged safely.
impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &str| {
            if s.is_empty() {
                "<empty>"
            } else {
                "<redacted>"
            }
        };
        f.debug_struct("AuthConfig")
            .field("secret", &redact(&self.secret))
            .field("keys", &redact(&self.keys))
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("clock_skew_sec", &self.clock_skew_sec)
            .field("cache_capacity", &self.cache_capacity)
            .finish()
    }
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// `accountId` claim, else `sub`.
    pub account_id: Box<str>,
    /// `sub` claim, else the account id.
    pub session_id: Box<str>,
    /// Expiry (seconds since the epoch), kept so cache hits can re-check it.
    pub exp: u64,
    /// Not-before, if the token had one.
    pub nbf: Option<u64>,
    /// Space-separated OAuth-style scopes; empty if none.
    pub scopes: Box<str>,
    /// The `kid` the token was verified with, if it named one.
    pub kid: Option<Box<str>>,
}

impl Identity {
    /// Whether `scope` is one of the token's space-separated scopes (exact,
    /// case-sensitive match, as OAuth specifies).
    pub fn has_scope(&self, scope: &str) -> bool {
        !scope.is_empty() && self.scopes.split_ascii_whitespace().any(|s| s == scope)
    }
}

/// A key ring together with the generation number it was installed under.
struct RingState {
    ring: KeyRing,
    generation: u64,
}

/// Verifies bearer tokens. Cheap to share (`Arc<Verifier>`); all methods
/// take `&self`.
pub struct Verifier {
    /// Read on cache misses only; replaced whole by `rotate`/`revoke`.
    ring: RwLock<Arc<RingState>>,
    /// Mirror of the ring's generation, read on every cache hit.
    generation: AtomicU64,
    /// Mirror of "the ring holds some key", so `authenticate` can answer
    /// `SecretNotConfigured` without taking the lock.
    configured: AtomicBool,
    policy: Policy,
    cache: Option<TokenCache>,
}

impl Verifier {
    /// Builds a verifier from configuration. An empty secret and key list is
    /// not an error here: the reference behaviour is that every protected
    /// call then fails with [`AuthError::SecretNotConfigured`].
    pub fn new(cfg: &AuthConfig) -> Result<Self, ConfigError> {
        let ring = KeyRing::parse(&cfg.secret, &cfg.keys)?;
        let policy = Policy {
            issuer: non_empty(cfg.issuer.as_deref()),
            audience: non_empty(cfg.audience.as_deref()),
            skew: cfg.clock_skew_sec,
        };
        Ok(Verifier {
            configured: AtomicBool::new(!ring.is_empty()),
            ring: RwLock::new(Arc::new(RingState {
                ring,
                generation: 0,
            })),
            generation: AtomicU64::new(0),
            policy,
            cache: TokenCache::new(cfg.cache_capacity),
        })
    }

    /// Full verification, no cache.
    pub fn verify(&self, token: &str, now_sec: u64) -> Result<Identity, AuthError> {
        self.verify_uncached(token.as_bytes(), now_sec)
    }

    /// Cached verification: on a hit re-checks exp/nbf and the ring
    /// generation only; on a miss verifies fully and caches the result if
    /// the token is valid. The returned `Arc` is shared with the cache.
    pub fn verify_cached(&self, token: &[u8], now_sec: u64) -> Result<Arc<Identity>, AuthError> {
        // Oversized tokens are rejected by full verification; hashing and
        // storing them first would be wasted work.
        let Some(cache) = self.cache.as_ref().filter(|_| token.len() <= MAX_TOKEN_LEN) else {
            return self.verify_uncached(token, now_sec).map(Arc::new);
        };
        let generation = self.generation.load(Ordering::Acquire);
        match cache.get(token, generation, &self.policy, now_sec) {
            Probe::Hit(identity) => Ok(identity),
            Probe::Fail(err) => Err(err),
            Probe::Miss(hash) => {
                let state = self.state();
                let identity = Arc::new(token::verify(token, &state.ring, &self.policy, now_sec)?);
                if let Some(hash) = hash {
                    // Tagged with the generation of the ring actually used,
                    // so a rotation racing with this insert still wins.
                    cache.put(hash, token, state.generation, Arc::clone(&identity));
                }
                Ok(identity)
            }
        }
    }

    /// Extracts the token from an `Authorization` header value:
    /// `Bearer <jwt>`, scheme case-insensitive, surrounding spaces and tabs
    /// trimmed. Anything else, or an empty token, is `MissingBearerToken`.
    pub fn bearer(header: Option<&[u8]>) -> Result<&[u8], AuthError> {
        const SCHEME: &[u8] = b"bearer";
        let value = trim(header.ok_or(AuthError::MissingBearerToken)?);
        let (scheme, rest) = value.split_at(value.len().min(SCHEME.len()));
        let separated = rest.first().is_some_and(|b| is_space(*b));
        if !scheme.eq_ignore_ascii_case(SCHEME) || !separated {
            return Err(AuthError::MissingBearerToken);
        }
        let token = trim(rest);
        if token.is_empty() {
            return Err(AuthError::MissingBearerToken);
        }
        Ok(token)
    }

    /// The whole request check in the order the reference uses: secret
    /// configured, then bearer header, then (cached) token verification.
    pub fn authenticate(
        &self,
        header: Option<&[u8]>,
        now_sec: u64,
    ) -> Result<Arc<Identity>, AuthError> {
        if !self.configured.load(Ordering::Acquire) {
            return Err(AuthError::SecretNotConfigured);
        }
        self.verify_cached(Self::bearer(header)?, now_sec)
    }

    /// Installs a new key ring atomically. Every token cached under the old
    /// ring is re-verified on its next use, on every thread.
    pub fn rotate(&self, ring: KeyRing) {
        self.replace_ring(|_| Some(ring));
    }

    /// Removes the key `kid`; its tokens fail from this call on, cached or
    /// not. Returns whether the key was present.
    pub fn revoke(&self, kid: &str) -> bool {
        self.replace_ring(|current| {
            let mut ring = current.clone();
            ring.remove(kid).then_some(ring)
        })
    }

    /// Adds (or replaces) the key `kid` without disturbing the others.
    pub fn add_key(&self, kid: &str, secret: &[u8]) -> Result<(), ConfigError> {
        let mut result = Ok(());
        self.replace_ring(|current| {
            let mut ring = current.clone();
            result = ring.insert(kid, secret);
            result.is_ok().then_some(ring)
        });
        result
    }

    /// A copy of the key ring in force, e.g. to derive the next one.
    pub fn key_ring(&self) -> KeyRing {
        self.state().ring.clone()
    }

    /// Number of ring replacements so far (0 for the initial ring).
    pub fn ring_generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Cache counters (all zero when the cache is disabled).
    pub fn cache_stats(&self) -> CacheStats {
        self.cache
            .as_ref()
            .map(TokenCache::stats)
            .unwrap_or_default()
    }

    /// Entries each thread may cache (0 when the cache is disabled).
    pub fn cache_per_thread(&self) -> usize {
        self.cache.as_ref().map_or(0, TokenCache::per_thread)
    }

    fn verify_uncached(&self, token: &[u8], now_sec: u64) -> Result<Identity, AuthError> {
        token::verify(token, &self.state().ring, &self.policy, now_sec)
    }

    /// The current ring; the lock is held only long enough to clone an Arc.
    fn state(&self) -> Arc<RingState> {
        Arc::clone(&self.ring.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Swaps in the ring `make` returns (if any) under the write lock, then
    /// publishes the new generation. Returns whether a swap happened.
    fn replace_ring(&self, make: impl FnOnce(&KeyRing) -> Option<KeyRing>) -> bool {
        let mut guard = self.ring.write().unwrap_or_else(PoisonError::into_inner);
        let Some(ring) = make(&guard.ring) else {
            return false;
        };
        let generation = guard.generation + 1;
        self.configured.store(!ring.is_empty(), Ordering::Release);
        *guard = Arc::new(RingState { ring, generation });
        // Published while still holding the lock, so concurrent rotations
        // cannot leave the mirror behind the ring.
        self.generation.store(generation, Ordering::Release);
        true
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("ring", &self.state().ring)
            .field("generation", &self.ring_generation())
            .field("policy", &self.policy)
            .field("cache_per_thread", &self.cache_per_thread())
            .finish()
    }
}

fn non_empty(s: Option<&str>) -> Option<Box<str>> {
    s.filter(|s| !s.is_empty()).map(Box::from)
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_space(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_space(*last) {
            break;
        }
        s = rest;
    }
    s
}
