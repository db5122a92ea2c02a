//! Startup: rebuild the gateway from the journal (§3.11, fixing §8.9 and §8.14).
//!
//! Every accepted order in the journal is durable by definition; replay restores the confirm
//! store, each session (its shard and its last sequence number), each shard's order-id counter,
//! each account's risk state (today's notional, projected positions) and the kill switches.
//! If the journal does not end with a clean-shutdown record, the process crashed: orders
//! acknowledged but not journaled may exist, so each session's sequence jumps by
//! `V3_SEQ_RESTART_GAP` and no number handed out before the crash is ever reused. The numbers
//! a restarted gateway starts from are journaled before it hands any out ([`RestartFloor`],
//! [`restart_floor_records`]), and replay takes them as floors: an incarnation that crashed
//! before journaling anything of its own still moves the next one past its numbers.

use std::collections::{BTreeSet, HashMap};

use switchyard_core::risk::Checked;
use switchyard_core::{ConfirmStatus, NewOrder, OrderStatus};
use switchyard_journal::Record;

use crate::orders::Order;
use crate::records::{
    AmendRequested, ExecutionRecord, KillSwitchChange, OrderAccepted, OrderChange, PayloadError,
    RestartFloor, V3DurableRejected, V3OrderAccepted, VenueSent, KIND_AMEND_REQUESTED,
    KIND_CANCEL_REQUESTED, KIND_CANCEL_SENT, KIND_CLEAN_SHUTDOWN, KIND_EXECUTION_REPORT,
    KIND_KILL_SWITCH, KIND_ORDER_ACCEPTED, KIND_ORDER_SENT, KIND_ORDER_UPDATED, KIND_REPLACE_SENT,
    KIND_RESTART_FLOOR, KIND_V3_DURABLE_REJECTED, KIND_V3_ORDER_ACCEPTED,
};
use crate::state::Gateway;

/// What replay found, for logs, `/stats` and tests.
#[derive(Debug, Default, Clone)]
pub struct ReplayStats {
    pub records: u64,
    pub orders: u64,
    pub rejections: u64,
    pub kill_changes: u64,
    pub sessions: usize,
    pub clean_shutdown: bool,
    pub lost_on_restart: u64,
    /// Next order-id counter per shard.
    pub next_order: Vec<u64>,
    /// Durable-path orders and changes replayed; the next `acceptSeq` starts after this.
    pub durable_orders: u64,
    pub durable_changes: u64,
    pub max_accept_seq: u64,
    /// Venue records: messages sent, execution reports, amends.
    pub venue_sent: u64,
    pub execution_reports: u64,
    pub amends: u64,
}

/// Folds journal records into the gateway. Call for every record, then `finish`.
pub struct Replayer<'a> {
    gw: &'a Gateway,
    stats: ReplayStats,
    /// session id → highest journaled seq.
    max_seq: HashMap<String, u64>,
    /// session id → highest seq an earlier incarnation may have handed out (`RestartFloor`).
    floor_seq: HashMap<String, u64>,
    last_kind: u16,
    error: Option<(u64, PayloadError)>,
}

impl<'a> Replayer<'a> {
    pub fn new(gw: &'a Gateway) -> Replayer<'a> {
        Replayer {
            gw,
            stats: ReplayStats {
                next_order: vec![1; gw.shards.len()],
                ..ReplayStats::default()
            },
            max_seq: HashMap::new(),
            floor_seq: HashMap::new(),
            last_kind: 0,
            error: None,
        }
    }

    pub fn apply(&mut self, r: Record<'_>) {
        self.stats.records += 1;
        self.last_kind = r.kind;
        let res = match r.kind {
            KIND_V3_ORDER_ACCEPTED => self.order(r.payload, r.time_ns),
            KIND_V3_DURABLE_REJECTED => self.rejected(r.payload, r.time_ns),
            KIND_ORDER_ACCEPTED => self.durable_order(r.payload),
            KIND_CANCEL_REQUESTED | KIND_ORDER_UPDATED => {
                self.durable_change(r.kind, r.payload, r.time_ns)
            }
            KIND_ORDER_SENT | KIND_CANCEL_SENT | KIND_REPLACE_SENT => {
                self.venue_sent(r.kind, r.payload, r.time_ns)
            }
            KIND_EXECUTION_REPORT => self.execution_report(r.payload, r.time_ns),
            KIND_AMEND_REQUESTED => self.amend(r.payload, r.time_ns),
            KIND_KILL_SWITCH => KillSwitchChange::decode(r.payload).map(|k| {
                self.stats.kill_changes += 1;
                self.gw.apply_kill(&k);
            }),
            KIND_RESTART_FLOOR => RestartFloor::decode(r.payload).map(|f| self.floor(&f)),
            _ => Ok(()),
        };
        if let (Err(e), None) = (res, &self.error) {
            self.error = Some((r.seq, e));
        }
    }

    fn order(&mut self, payload: &[u8], at_ns: u64) -> Result<(), PayloadError> {
        let o = V3OrderAccepted::decode(payload)?;
        self.stats.orders += 1;
        let gw = self.gw;
        let session = gw.session(o.session_id, Some(o.shard));
        gw.shards[session.shard as usize]
            .confirm
            .lock()
            .durable(session.idx, o.session_seq);
        let max = self.max_seq.entry(o.session_id.to_string()).or_insert(0);
        *max = (*max).max(o.session_seq);
        self.accepted(o.account_id, o.order_id, o.order, at_ns);
        Ok(())
    }

    /// What every accepted order restores: the shard's order-id counter and the account's risk
    /// state. Returns the account and the order's position slot.
    fn accepted(
        &mut self,
        account_id: &str,
        id: switchyard_core::OrderId,
        order: NewOrder,
        at_ns: u64,
    ) -> (std::sync::Arc<crate::state::Account>, u16) {
        if let Some(next) = self.stats.next_order.get_mut(id.shard() as usize) {
            *next = (*next).max(id.counter() + 1);
        }
        let gw = self.gw;
        let account = gw.account(account_id);
        let symbol_idx = gw
            .risk
            .symbol(&order.symbol)
            .map_or(gw.risk.symbols().len() as u16, |(i, _)| i);
        let checked = Checked {
            order,
            symbol_idx,
            notional: (order.qty as u128 * order.price as u128).min(u64::MAX as u128) as u64,
        };
        account.risk.replay_accept(&checked, at_ns);
        (account, symbol_idx)
    }

    /// A durable-path order: back into the order store with its idempotency key (unless the
    /// key has expired) and into the account's risk state.
    fn durable_order(&mut self, payload: &[u8]) -> Result<(), PayloadError> {
        let o = OrderAccepted::decode(payload)?;
        self.stats.durable_orders += 1;
        self.stats.max_accept_seq = self.stats.max_accept_seq.max(o.accept_seq);
        let order = o.order;
        let (account, symbol_idx) =
            self.accepted(o.account_id, o.order_id, order, o.received_at_ns);
        let gw = self.gw;
        let at_ms = o.received_at_ns / 1_000_000;
        let mut part = gw.orders.lock(o.account_id);
        part.create(
            Order {
                id: o.order_id,
                accept_seq: o.accept_seq,
                account: account.clone(),
                client_order_id: o.client_order_id.map(Into::into),
                order,
                symbol_idx,
                status: OrderStatus::Accepted,
                filled: 0,
                accepted_ns: o.received_at_ns,
                last_update_ms: at_ms,
                durable: true,
                cancel_pending: false,
                venue: gw.venues.by_name(o.venue),
                sent: false,
                maybe_sent: true,
                venue_seq: 0,
                acked: false,
                amend: None,
            },
            o.idempotency_key,
            o.received_at_ns,
        );
        Ok(())
    }

    /// A journaled change of a durable-path order. A cancel request and a final status (the
    /// gateway's own cancel of an order no venue holds, or the end a report brought) are taken
    /// as recorded; a live status is not: `OrderUpdated` records the status when its report was
    /// applied, which may predate a cancel request journaled before it but applied only once
    /// durable, and the reports themselves are replayed through `apply_report`. Only its fill
    /// total counts then, through the transition table.
    fn durable_change(
        &mut self,
        kind: u16,
        payload: &[u8],
        at_ns: u64,
    ) -> Result<(), PayloadError> {
        let c = OrderChange::decode(kind, payload)?;
        self.stats.durable_changes += 1;
        let mut part = self.gw.orders.lock(c.account_id);
        if let Some(o) = part.get_mut(c.account_id, c.order_id) {
            let was_final = o.status.is_final();
            if !was_final && (kind == KIND_CANCEL_REQUESTED || c.status.is_final()) {
                o.status = c.status;
                o.filled = o.filled.max(c.filled);
            } else if !was_final && c.filled > o.filled {
                let fill = switchyard_core::OrderEvent::Fill {
                    filled_total: c.filled,
                };
                crate::orders::apply_event(o, fill, at_ns / 1_000_000);
            }
            o.last_update_ms = at_ns / 1_000_000;
            if !was_final && o.status.is_final() {
                // As the live paths end an order (`apply_report`, `cancel_without_venue`).
                o.release_open();
            }
        }
        Ok(())
    }

    /// `OrderSent` marks the order as held by its venue; `CancelSent`/`ReplaceSent` only
    /// document what went out (the pending request itself is restored from its own record).
    fn venue_sent(&mut self, kind: u16, payload: &[u8], at_ns: u64) -> Result<(), PayloadError> {
        let v = VenueSent::decode(kind, payload)?;
        self.stats.venue_sent += 1;
        if kind == KIND_ORDER_SENT {
            let mut part = self.gw.orders.lock(v.account_id);
            if let Some(o) = part.get_mut(v.account_id, v.order_id) {
                o.sent = true;
                crate::orders::apply_event(o, switchyard_core::OrderEvent::Sent, at_ns / 1_000_000);
            }
        }
        Ok(())
    }

    /// An execution report: applied exactly as the session applied it, and its sequence
    /// number rebuilds the venue's "applied without a gap" watermark.
    fn execution_report(&mut self, payload: &[u8], at_ns: u64) -> Result<(), PayloadError> {
        let r = ExecutionRecord::decode(payload)?;
        self.stats.execution_reports += 1;
        if let Some(link) = self.gw.venues.links.iter().find(|l| &*l.name == r.venue) {
            link.replayed_seq(r.venue_seq);
        }
        if !r.account_id.is_empty() {
            let mut part = self.gw.orders.lock(r.account_id);
            if let Some(o) = part.get_mut(r.account_id, r.order_id) {
                crate::venues::apply_report(o, &r, at_ns / 1_000_000);
            }
        }
        Ok(())
    }

    /// An amend: pending again with the position it reserved; an order no venue holds takes
    /// its new terms at once, as it did live.
    fn amend(&mut self, payload: &[u8], at_ns: u64) -> Result<(), PayloadError> {
        let a = AmendRequested::decode(payload)?;
        self.stats.amends += 1;
        let mut part = self.gw.orders.lock(a.account_id);
        if let Some(o) = part.get_mut(a.account_id, a.order_id) {
            if o.status.is_final() {
                return Ok(());
            }
            // The live path refuses an amend while another is pending, so an earlier one still
            // pending here was settled by a record a failed commit lost (a venue's answer is
            // applied before it is journaled, and not written again when its commit fails).
            // Its answer is unknown: take it as refused, as the live path does when it gives
            // up on an amend, and give back what it reserved. A venue that did apply it says
            // so in its status report after the restart.
            o.drop_amend();
            let extra_qty = a.qty.saturating_sub(o.order.qty);
            let price = if a.price > 0 { a.price } else { o.order.price };
            let old_notional = o.order.qty as u128 * o.order.price as u128;
            let new_notional = a.qty as u128 * price as u128;
            let extra = Checked {
                order: NewOrder {
                    qty: extra_qty,
                    ..o.order
                },
                symbol_idx: o.symbol_idx,
                notional: new_notional
                    .saturating_sub(old_notional)
                    .min(u64::MAX as u128) as u64,
            };
            o.account.risk.replay_accept(&extra, at_ns);
            o.amend = Some(crate::orders::PendingAmend {
                qty: a.qty,
                price: a.price,
                reserved_qty: extra_qty,
                durable: true,
            });
            if o.venue.is_none() {
                crate::orders::amend_without_venue(o, at_ns / 1_000_000);
            }
        }
        Ok(())
    }

    fn rejected(&mut self, payload: &[u8], at_ns: u64) -> Result<(), PayloadError> {
        let r = V3DurableRejected::decode(payload)?;
        self.stats.rejections += 1;
        let session = self.gw.session(r.session_id, None);
        self.gw.shards[session.shard as usize]
            .confirm
            .lock()
            .set_exception(
                session.idx,
                r.session_seq,
                ConfirmStatus::DurableRejected,
                switchyard_core::reason::ConfirmReason::from_u8(r.reason),
                0,
                at_ns,
            );
        let max = self.max_seq.entry(r.session_id.to_string()).or_insert(0);
        *max = (*max).max(r.session_seq);
        Ok(())
    }

    /// Where an earlier incarnation started numbering: nothing below is handed out again.
    fn floor(&mut self, f: &RestartFloor<'_>) {
        self.stats.max_accept_seq = self.stats.max_accept_seq.max(f.accept_seq);
        for (next, floor) in self.stats.next_order.iter_mut().zip(&f.next_order) {
            *next = (*next).max(*floor);
        }
        for (id, seq) in &f.sessions {
            let floor = self.floor_seq.entry(id.to_string()).or_insert(0);
            *floor = (*floor).max(*seq);
        }
    }

    /// Seals every session: sequence numbers continue (past a gap after a crash), orders lost
    /// in a crash are marked, nothing is invented. `recovered` is the journal's recovery
    /// report: a journal that has segments but no record (a gateway that died before its
    /// first commit) is a crash too, only one without segments is new.
    pub fn finish(
        mut self,
        recovered: &switchyard_journal::RecoveryReport,
    ) -> Result<ReplayStats, PayloadError> {
        if let Some((seq, e)) = self.error {
            tracing::error!(seq, %e, "journal record could not be decoded");
            return Err(e);
        }
        let clean = recovered.segments == 0 || self.last_kind == KIND_CLEAN_SHUTDOWN;
        self.stats.clean_shutdown = clean;
        let gap = if clean {
            0
        } else {
            self.gw.cfg.v3.seq_restart_gap
        };
        let now = crate::clock::wall_ns();
        let ids: BTreeSet<&String> = self.max_seq.keys().chain(self.floor_seq.keys()).collect();
        for id in &ids {
            let session = self.gw.session(id, None);
            let max = self.max_seq.get(*id).copied().unwrap_or(0);
            let floor = self.floor_seq.get(*id).copied().unwrap_or(0);
            let next_start = max.max(floor) + 1 + gap;
            self.stats.lost_on_restart += self.gw.shards[session.shard as usize]
                .confirm
                .lock()
                .seal_after_restart(session.idx, max, next_start, now);
            session
                .assigned
                .store(next_start - 1, std::sync::atomic::Ordering::Release);
        }
        self.stats.sessions = ids.len();
        // Durable-path ids and acceptSeq handed out in volatile answers before a crash may not
        // be in the journal; they are never reused.
        for next in &mut self.stats.next_order {
            *next += gap;
        }
        self.gw.accept_seq.store(
            self.stats.max_accept_seq + gap,
            std::sync::atomic::Ordering::Release,
        );
        Ok(self.stats)
    }
}

/// The `RestartFloor` records of a gateway whose numbering is set (after replay, and after
/// the shards' order-id counters are stored): to be made durable before anything is
/// numbered whenever the journal did not end cleanly.
pub fn restart_floor_records(gw: &Gateway) -> switchyard_journal::BatchBuf {
    use std::sync::atomic::Ordering::Acquire;
    // Far below the journal's 1 MiB payload limit, whatever the ids.
    const CHUNK: usize = 2_048;
    let mut sessions: Vec<(Box<str>, u64)> = gw
        .sessions_snapshot()
        .iter()
        .map(|s| (s.id.clone(), s.assigned.load(Acquire)))
        .collect();
    sessions.sort();
    let mut buf = switchyard_journal::BatchBuf::with_capacity(256);
    let now = crate::clock::wall_ns();
    let mut first = true;
    let mut chunks = sessions.chunks(CHUNK);
    loop {
        let chunk = chunks.next();
        if chunk.is_none() && !first {
            break;
        }
        let rec = RestartFloor {
            accept_seq: if first {
                gw.accept_seq.load(Acquire)
            } else {
                0
            },
            next_order: if first {
                gw.shards
                    .iter()
                    .map(|s| s.next_order.load(Acquire))
                    .collect()
            } else {
                Vec::new()
            },
            sessions: chunk
                .unwrap_or_default()
                .iter()
                .map(|(id, seq)| (&**id, *seq))
                .collect(),
        };
        let pushed = buf.push_with(KIND_RESTART_FLOOR, now, |out| rec.encode(out));
        debug_assert!(pushed.is_ok());
        first = false;
    }
    buf
}

#[cfg(test)]
mod tests {
    use switchyard_core::{NewOrder, OrderId, OrderType, Side, Symbol, TimeInForce};
    use switchyard_journal::Record;

    use super::*;
    use crate::server::unit_gateway;

    /// A one-shard gateway routing to one venue (`sim`) that is never connected.
    fn gateway() -> Gateway {
        unit_gateway(|cfg| cfg.venues.transport = "tcp".into()).0
    }

    fn replay(gw: &Gateway, records: &[(u16, Vec<u8>)]) {
        let mut r = Replayer::new(gw);
        for (i, (kind, payload)) in records.iter().enumerate() {
            r.apply(Record {
                seq: i as u64 + 1,
                time_ns: 1_000_000_000,
                kind: *kind,
                payload,
            });
        }
    }

    // Goal: replay rebuilds the position an account held live when a failed commit lost the
    // venue's answer to an amend (stress simulation seeds 1626 and 1988): the next amend finds
    // the earlier one still pending and must not add its reservation on top.
    #[test]
    fn an_amend_whose_answer_was_lost_gives_back_its_reservation() {
        let gw = gateway();
        let id = OrderId::new(0, 1);
        let order = NewOrder {
            symbol: Symbol::parse(b"AAPL").unwrap(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::Gtc,
            qty: 19,
            price: 100,
            expire_at_ms: None,
        };
        let mut accepted = Vec::new();
        OrderAccepted {
            order_id: id,
            accept_seq: 1,
            received_at_ns: 1_000_000_000,
            order,
            account_id: "acct",
            idempotency_key: "key-1",
            client_order_id: None,
            venue: "sim",
        }
        .encode(&mut accepted);
        let amend = |qty| {
            let mut p = Vec::new();
            AmendRequested {
                order_id: id,
                qty,
                price: 0,
                account_id: "acct",
            }
            .encode(&mut p);
            (KIND_AMEND_REQUESTED, p)
        };
        // Amend to 31 (12 reserved), its REPLACE_REJECTED lost, then amend to 28 (9 reserved).
        replay(
            &gw,
            &[(KIND_ORDER_ACCEPTED, accepted), amend(31), amend(28)],
        );
        let (slot, _) = gw.risk.symbol(&order.symbol).unwrap();
        let account = gw.account("acct");
        assert_eq!(
            account.risk.position(slot as usize),
            28,
            "19 held + 9 reserved"
        );
        let part = gw.orders.lock("acct");
        let o = part.get("acct", id).unwrap();
        let a = o.amend.expect("the later amend pends");
        assert_eq!((o.order.qty, a.qty, a.reserved_qty), (19, 28, 9));
    }
}
