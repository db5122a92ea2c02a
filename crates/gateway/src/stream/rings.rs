//! The stream hub's replay rings: for each scope (an account, or one order of an account) the
//! ids of its recent events that are still in the replay log, oldest first.
//!
//! Every order publishes at least two events, so the dispatcher creates, appends to, prunes and
//! forgets one order ring per order, on a table as large as the replay log. That table is
//! where the dispatcher's time went (a cache miss for the bucket, one for a heap-allocated key
//! and its `memcmp`, one for a heap-allocated id list), so a scope is keyed by its 64-bit hash
//! and its first few ids live in the table entry itself: one miss and no allocation per order.
//!
//! Two scopes whose hashes collide share a ring. That is safe: the hub's replay checks each
//! event's own key before delivering it, and a shared ring can only reach its cap or lose ids
//! sooner, which leads to a `resync_required`, never to a gap.

use std::collections::{HashMap, VecDeque};

/// Slots of the table of forgotten scopes, by scope hash.
const GONE_SLOTS: usize = 4096;
/// Ids kept inside the table entry before a ring moves them to the heap.
const INLINE_IDS: usize = 4;

/// The rings of one kind of scope (accounts, or orders), each at most `cap` ids.
pub(super) struct Rings {
    /// Keyed by hashes already, so the table does not hash them again.
    map: HashMap<u64, Ring, nohash_hasher::BuildNoHashHasher<u64>>,
    /// Per slot of the scope hash: the newest id a forgotten scope of that slot had lost.
    /// A scope created again starts from it (collisions only cause extra resyncs).
    gone: Box<[u64]>,
    cap: usize,
}

impl Rings {
    pub(super) fn new(cap: usize) -> Rings {
        Rings {
            map: HashMap::default(),
            gone: vec![0; GONE_SLOTS].into_boxed_slice(),
            cap: cap.max(1),
        }
    }

    /// Scopes tracked.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// The ring of the scope with hash `h`, if it has events in the log.
    pub(super) fn get(&self, h: u64) -> Option<&Ring> {
        self.map.get(&h)
    }

    /// The newest id lost by a forgotten scope of `h`'s slot (0 = none).
    pub(super) fn gone(&self, h: u64) -> u64 {
        self.gone[slot(h)]
    }

    /// Appends `id` to scope `h`'s ring (created, remembering what a forgotten scope of the
    /// same slot lost, if new); returns the oldest id still in it.
    pub(super) fn push(&mut self, h: u64, id: u64) -> u64 {
        let gone = self.gone[slot(h)];
        let ring = self.map.entry(h).or_insert_with(|| Ring {
            ids: Ids::Inline {
                ids: [0; INLINE_IDS],
                len: 0,
            },
            lost_upto: gone,
        });
        ring.ids.push_back(id);
        if ring.ids.len() > self.cap {
            if let Some(old) = ring.ids.pop_front() {
                ring.lost_upto = ring.lost_upto.max(old);
            }
        }
        ring.oldest().unwrap_or(id)
    }

    /// The log dropped event `id` of scope `h`: drop it from the front of the ring; forget an
    /// emptied scope, remembering what it lost.
    pub(super) fn prune(&mut self, h: u64, id: u64) {
        let Some(ring) = self.map.get_mut(&h) else {
            return;
        };
        if ring.ids.front() == Some(id) {
            ring.ids.pop_front();
            ring.lost_upto = ring.lost_upto.max(id);
        }
        if ring.ids.is_empty() {
            let s = slot(h);
            self.gone[s] = self.gone[s].max(ring.lost_upto);
            self.map.remove(&h);
        } else {
            ring.ids.shrink();
        }
    }
}

fn slot(h: u64) -> usize {
    (h % GONE_SLOTS as u64) as usize
}

/// One scope's ring.
pub(super) struct Ring {
    ids: Ids,
    /// The newest id of this scope that is no longer available (0 = none).
    pub(super) lost_upto: u64,
}

impl Ring {
    pub(super) fn oldest(&self) -> Option<u64> {
        self.ids.front()
    }

    /// The ids above `n`, oldest first.
    pub(super) fn after(&self, n: u64) -> impl Iterator<Item = u64> + '_ {
        let (a, b) = self.ids.as_slices();
        a.iter().chain(b).copied().skip_while(move |&id| id <= n)
    }
}

/// A small double-ended queue of ids: inline while short, a `VecDeque` once longer.
enum Ids {
    Inline { ids: [u64; INLINE_IDS], len: u8 },
    Heap(VecDeque<u64>),
}

impl Ids {
    fn len(&self) -> usize {
        match self {
            Ids::Inline { len, .. } => usize::from(*len),
            Ids::Heap(d) => d.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn front(&self) -> Option<u64> {
        match self {
            Ids::Inline { ids, len } => (*len > 0).then_some(ids[0]),
            Ids::Heap(d) => d.front().copied(),
        }
    }

    fn as_slices(&self) -> (&[u64], &[u64]) {
        match self {
            Ids::Inline { ids, len } => (&ids[..usize::from(*len)], &[]),
            Ids::Heap(d) => d.as_slices(),
        }
    }

    fn push_back(&mut self, id: u64) {
        match self {
            Ids::Inline { ids, len } if usize::from(*len) < INLINE_IDS => {
                ids[usize::from(*len)] = id;
                *len += 1;
            }
            Ids::Inline { ids, .. } => {
                let mut d = VecDeque::with_capacity(2 * INLINE_IDS);
                d.extend(ids.iter().copied());
                d.push_back(id);
                *self = Ids::Heap(d);
            }
            Ids::Heap(d) => d.push_back(id),
        }
    }

    fn pop_front(&mut self) -> Option<u64> {
        match self {
            Ids::Inline { ids, len } => {
                if *len == 0 {
                    return None;
                }
                let first = ids[0];
                ids.copy_within(1..usize::from(*len), 0);
                *len -= 1;
                Some(first)
            }
            Ids::Heap(d) => d.pop_front(),
        }
    }

    /// Keeps a once-busy scope from holding its peak capacity forever.
    fn shrink(&mut self) {
        if let Ids::Heap(d) = self {
            if d.capacity() > 16 && d.len() < d.capacity() / 4 {
                d.shrink_to(d.len() * 2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a ring keeps the newest `cap` ids in order across the inline/heap boundary,
    // remembers the newest one it dropped, and `after` skips what a client has seen.
    #[test]
    fn a_ring_keeps_its_newest_ids_in_order() {
        let mut r = Rings::new(6);
        for id in 1..=10 {
            r.push(7, id);
        }
        let ring = r.get(7).unwrap();
        assert_eq!(ring.after(0).collect::<Vec<_>>(), [5, 6, 7, 8, 9, 10]);
        assert_eq!(ring.after(8).collect::<Vec<_>>(), [9, 10]);
        assert_eq!((ring.oldest(), ring.lost_upto), (Some(5), 4));
    }

    // Goal: pruning the log's oldest ids empties a ring from the front (inline and heap), and
    // a forgotten scope's losses carry over to a scope of the same slot created later.
    #[test]
    fn pruning_forgets_an_empty_scope_and_remembers_its_losses() {
        for n in [3u64, 9] {
            let mut r = Rings::new(100);
            for id in 1..=n {
                r.push(42, id);
            }
            r.prune(42, 99); // not at the front: nothing happens
            assert_eq!(r.get(42).unwrap().oldest(), Some(1));
            for id in 1..n {
                r.prune(42, id);
                assert_eq!(r.get(42).unwrap().oldest(), Some(id + 1));
            }
            r.prune(42, n);
            assert!(r.get(42).is_none());
            assert_eq!(r.len(), 0);
            assert_eq!(r.gone(42 + GONE_SLOTS as u64), n);
            r.push(42 + GONE_SLOTS as u64, n + 1);
            assert_eq!(r.get(42 + GONE_SLOTS as u64).unwrap().lost_upto, n);
        }
    }

    // Goal: a table entry stays as small as docs/architecture.md says (~64 B with the key and
    // the table's slack), so tracked orders cost what the memory bound assumes.
    #[test]
    fn a_ring_with_its_ids_inline_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Ring>(), 48);
    }
}
