//! Creating and cancelling durable-path orders, and applying their journal outcomes.
//!
//! Both go through the account's shard engine, so one account's records reach the journal in
//! the order they were decided. The HTTP handler waits on a oneshot when the requested
//! durability needs it; the journal listener completes it after the fdatasync.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use switchyard_core::risk::OrderInput;
use switchyard_core::{OrderEvent, OrderId, OrderStatus, Reason, Transition};
use tokio::sync::oneshot;

use super::store::{IdemHit, Order};
use super::Durability;
use crate::clock::{mono_ns, wall_ms};
use crate::journal_health::Unavailable;
use crate::records::{
    order_ref, AmendRequested, OrderAccepted, OrderChange, KIND_AMEND_REQUESTED,
    KIND_CANCEL_REQUESTED, KIND_ORDER_ACCEPTED, KIND_ORDER_UPDATED,
};
use crate::state::{Account, DurableMeta, DurableOp, DurableTask, Gateway, Task};

/// A new order, queued for the journal.
#[derive(Debug)]
pub struct Created {
    pub order_id: OrderId,
    pub accept_seq: u64,
    /// Completed with `true` once durable, `false` if the journal failed (not for `volatile`).
    pub durable: Option<oneshot::Receiver<bool>>,
}

#[derive(Debug)]
pub enum Submitted {
    /// The key was seen within its TTL: the original order, nothing re-run.
    Existing(IdemHit),
    Created(Created),
}

/// Runs the durable path's checks (§2.3.3 steps 3–9) and queues the order.
#[allow(clippy::too_many_arguments)]
pub fn submit(
    gw: &Gateway,
    account: &Arc<Account>,
    input: &OrderInput<'_>,
    key: &str,
    client_order_id: Option<&str>,
    level: Durability,
    now_ns: u64,
    received_mono_ns: u64,
) -> Result<Submitted, Reason> {
    if !account.owned {
        return Err(Reason::AccountNotOwned);
    }
    account.risk.take_rate_token(&account.rules, now_ns)?;
    gw.durable_bp.check(&gw.cfg.orders)?;
    match gw.journal_health.admits(received_mono_ns) {
        Ok(()) => {}
        Err(Unavailable::LowDisk) => return Err(Reason::BackpressureDiskFree),
        Err(Unavailable::Failing) => return Err(Reason::DurableJournalUnavailable),
    }
    let mut part = gw.orders.lock(&account.id);
    if let Some(hit) = part.idempotent(&account.id, key, now_ns) {
        return Ok(Submitted::Existing(hit));
    }
    let refuse = |part: &mut super::store::PartGuard<'_>, r: Reason| {
        if let Some(cid) = client_order_id {
            part.client_rejected(&account.id, cid, now_ns);
        }
        Err(r)
    };
    if gw.global_killed.load(Ordering::Acquire) {
        return refuse(&mut part, Reason::GlobalKilled);
    }
    if account.killed.load(Ordering::Acquire) {
        return refuse(&mut part, Reason::AccountKilled);
    }
    if gw.orders.in_memory() >= gw.orders.max_in_memory {
        return refuse(&mut part, Reason::OrderStoreFull);
    }
    let checked = match gw.risk.check(input, &account.rules, now_ns / 1_000_000) {
        Ok(c) => c,
        Err(r) => return refuse(&mut part, r),
    };
    let reservation = match account.risk.reserve(&account.rules, &checked, now_ns) {
        Ok(r) => r,
        Err(r) => return refuse(&mut part, r),
    };
    let shard_no = gw.account_shard(&account.id);
    let shard = &gw.shards[shard_no as usize];
    let order_id = OrderId::new(shard_no, shard.next_order.fetch_add(1, Ordering::Relaxed));
    let accept_seq = gw.accept_seq.fetch_add(1, Ordering::Relaxed) + 1;
    let venue = gw.venues.route(&checked.order);
    let rec = OrderAccepted {
        order_id,
        accept_seq,
        received_at_ns: now_ns,
        order: checked.order,
        account_id: &account.id,
        idempotency_key: key,
        client_order_id,
        venue: venue.as_deref().map_or("", |v| &v.name),
    };
    let mut payload = Vec::with_capacity(96 + key.len());
    rec.encode(&mut payload);
    let (tx, rx) = match level {
        Durability::Volatile => (None, None),
        _ => {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        }
    };
    let task = Task::Durable(DurableTask {
        records: vec![(KIND_ORDER_ACCEPTED, payload)],
        meta: Some(DurableMeta {
            account: account.clone(),
            order_id,
            op: DurableOp::Accept(reservation),
            received_mono_ns,
            waiter: tx,
            replicated: level == Durability::Replicated,
            record_offset: 0,
        }),
    });
    gw.durable_bp.inflight.fetch_add(1, Ordering::Relaxed);
    let sent = gw.accepting.load(Ordering::Acquire) && shard.tx.try_send(task).is_ok();
    if !sent {
        gw.durable_bp.inflight.fetch_sub(1, Ordering::Relaxed);
        account.risk.release(&reservation);
        return refuse(&mut part, Reason::QueueReject);
    }
    let now_ms = now_ns / 1_000_000;
    let order = Order {
        id: order_id,
        accept_seq,
        account: account.clone(),
        client_order_id: client_order_id.map(Into::into),
        order: checked.order,
        symbol_idx: checked.symbol_idx,
        status: OrderStatus::Accepted,
        filled: 0,
        accepted_ns: now_ns,
        last_update_ms: now_ms,
        durable: false,
        cancel_pending: false,
        venue,
        sent: false,
        maybe_sent: false,
        venue_seq: 0,
        acked: false,
        amend: None,
    };
    // Published under the partition lock, so the durable event can never overtake it.
    order.publish(&gw.hub, "order_update");
    part.create(order, key, now_ns);
    Ok(Submitted::Created(Created {
        order_id,
        accept_seq,
        durable: rx,
    }))
}

#[derive(Debug)]
pub enum CancelOutcome {
    NotFound,
    /// Already FILLED, CANCELED or REJECTED (409 `ORDER_FINAL`).
    Final,
    /// A cancel was requested before; nothing new is journaled.
    AlreadyRequested,
    /// Queued; completed with `true` once durable.
    Requested(oneshot::Receiver<bool>),
}

/// Requests a cancel: journals `CancelRequested`; once durable the order's venue gets the
/// CANCEL and its answer decides. An order with no venue (none configured) is cancelled by the
/// gateway itself: `CancelRequested` and `OrderUpdated{CANCELED}` are journaled together.
pub fn cancel(gw: &Gateway, account: &Arc<Account>, id: OrderId) -> Result<CancelOutcome, Reason> {
    let mut part = gw.orders.lock(&account.id);
    let Some(o) = part.get_mut(&account.id, id) else {
        return Ok(CancelOutcome::NotFound);
    };
    if o.status.is_final() {
        return Ok(CancelOutcome::Final);
    }
    if o.status == OrderStatus::CancelRequested || o.cancel_pending {
        return Ok(CancelOutcome::AlreadyRequested);
    }
    let change = |status| {
        let mut p = Vec::with_capacity(32 + account.id.len());
        OrderChange {
            order_id: id,
            status,
            filled: o.filled,
            account_id: &account.id,
        }
        .encode(&mut p);
        p
    };
    let mut records = vec![(KIND_CANCEL_REQUESTED, change(OrderStatus::CancelRequested))];
    if o.venue.is_none() {
        records.push((KIND_ORDER_UPDATED, change(OrderStatus::Canceled)));
    }
    let (tx, rx) = oneshot::channel();
    let task = Task::Durable(DurableTask {
        records,
        meta: Some(DurableMeta {
            account: account.clone(),
            order_id: id,
            op: DurableOp::Cancel,
            received_mono_ns: mono_ns(),
            waiter: Some(tx),
            replicated: false,
            record_offset: 0,
        }),
    });
    let shard = &gw.shards[id.shard() as usize % gw.shards.len()];
    if !gw.accepting.load(Ordering::Acquire) || shard.tx.try_send(task).is_err() {
        return Err(Reason::QueueReject);
    }
    o.cancel_pending = true;
    Ok(CancelOutcome::Requested(rx))
}

#[derive(Debug)]
pub enum AmendOutcome {
    NotFound,
    /// Queued; completed with `true` once durable.
    Requested(oneshot::Receiver<bool>),
}

/// Requests an amend of an open order's size and/or limit price (`qty` is the new total,
/// filled part included). Risk runs again on the new terms; a larger size reserves the extra
/// position and notional now (given back if the venue refuses). Journals `AmendRequested`;
/// once durable the venue gets a REPLACE and its REPLACED or REPLACE_REJECTED decides. With
/// no venue the gateway applies the new terms itself.
pub fn amend(
    gw: &Gateway,
    account: &Arc<Account>,
    id: OrderId,
    qty: Option<u64>,
    price: Option<u64>,
) -> Result<AmendOutcome, Reason> {
    let now_ns = crate::clock::wall_ns();
    let mut part = gw.orders.lock(&account.id);
    let Some(o) = part.get_mut(&account.id, id) else {
        return Ok(AmendOutcome::NotFound);
    };
    if o.status.is_final() {
        return Err(Reason::OrderFinal);
    }
    if o.status == OrderStatus::CancelRequested || o.cancel_pending {
        return Err(Reason::CancelPending);
    }
    if o.amend.is_some() {
        return Err(Reason::AmendPending);
    }
    if price.is_some() && o.order.order_type == switchyard_core::OrderType::Market {
        return Err(Reason::AmendNotAllowed);
    }
    let new_qty = qty.unwrap_or(o.order.qty);
    let new_price = price.unwrap_or(o.order.price);
    if (new_qty, new_price) == (o.order.qty, o.order.price) {
        return Err(Reason::InvalidAmend);
    }
    if new_qty <= o.filled {
        return Err(Reason::InvalidQty);
    }
    let n = &o.order;
    let symbol = n.symbol;
    let input = OrderInput {
        symbol: symbol.as_bytes(),
        side: Some(n.side),
        order_type: n.order_type,
        time_in_force: n.time_in_force,
        qty: new_qty,
        price: (n.order_type != switchyard_core::OrderType::Market).then_some(new_price),
        expire_at_ms: n.expire_at_ms,
    };
    let checked = gw.risk.check(&input, &account.rules, now_ns / 1_000_000)?;
    // Reserve only what grows: extra size (position) and extra notional (daily limit).
    let old_notional = (n.qty as u128 * n.price as u128).min(u64::MAX as u128) as u64;
    let extra_qty = new_qty.saturating_sub(n.qty);
    let extra = switchyard_core::risk::Checked {
        order: switchyard_core::NewOrder {
            qty: extra_qty,
            ..checked.order
        },
        symbol_idx: o.symbol_idx,
        notional: checked.notional.saturating_sub(old_notional),
    };
    let reservation = account.risk.reserve(&account.rules, &extra, now_ns)?;
    let pending = super::PendingAmend {
        qty: new_qty,
        price: if price.is_some() { new_price } else { 0 },
        reserved_qty: extra_qty,
        durable: false,
    };
    let mut payload = Vec::with_capacity(32 + account.id.len());
    AmendRequested {
        order_id: id,
        qty: pending.qty,
        price: pending.price,
        account_id: &account.id,
    }
    .encode(&mut payload);
    let (tx, rx) = oneshot::channel();
    let task = Task::Durable(DurableTask {
        records: vec![(KIND_AMEND_REQUESTED, payload)],
        meta: Some(DurableMeta {
            account: account.clone(),
            order_id: id,
            op: DurableOp::Amend(pending),
            received_mono_ns: mono_ns(),
            waiter: Some(tx),
            replicated: false,
            record_offset: 0,
        }),
    });
    let shard = &gw.shards[id.shard() as usize % gw.shards.len()];
    if !gw.accepting.load(Ordering::Acquire) || shard.tx.try_send(task).is_err() {
        account.risk.release(&reservation);
        return Err(Reason::QueueReject);
    }
    // Blocks a second amend or a cancel until this one is durable and applied.
    o.amend = Some(pending);
    Ok(AmendOutcome::Requested(rx))
}

/// The journal made a durable-path batch durable: apply each item and answer its waiter (a
/// `replicated` one waits on for the outbox). `first_seq` is the batch's first record's
/// sequence number. Runs on the journal writer thread; one partition lock per item, no I/O.
pub fn apply_durable(gw: &Gateway, meta: DurableMeta, first_seq: u64) {
    let now_ms = wall_ms();
    let account = &meta.account;
    let mut part = gw.orders.lock(&account.id);
    let found = part.get_mut(&account.id, meta.order_id);
    match meta.op {
        DurableOp::Accept(_) => {
            gw.durable_bp.inflight.fetch_sub(1, Ordering::Relaxed);
            gw.durable_bp.committed.fetch_add(1, Ordering::Relaxed);
            gw.metrics
                .durable_ack
                .record(mono_ns().saturating_sub(meta.received_mono_ns));
            let latency_us = mono_ns().saturating_sub(meta.received_mono_ns) / 1_000;
            if let Some(o) = found {
                o.durable = true;
                // Only a durable order goes to a venue: a crash can never leave a venue
                // holding an order the gateway does not know.
                if let Some(link) = &o.venue {
                    link.track(o.id, account.clone());
                    link.send(crate::venues::Cmd::New(o.id));
                }
                let id = order_ref(o.id);
                let data = format!(
                    r#"{{"eventType":"OrderAccepted","orderId":"{id}","durableLatencyUs":{latency_us}}}"#
                );
                gw.hub
                    .publish(&account.id, Some(&id), "order_durable", data.into());
            }
        }
        DurableOp::Cancel => {
            if let Some(o) = found {
                o.cancel_pending = false;
                if apply_event(o, OrderEvent::CancelRequested, now_ms) {
                    o.publish(&gw.hub, "order_update");
                }
                match &o.venue {
                    Some(link) => link.send(crate::venues::Cmd::Cancel(o.id)),
                    None => {
                        cancel_without_venue(gw, o, now_ms);
                    }
                }
            }
        }
        DurableOp::Amend(a) => {
            // The amend was stored on the order when requested. A report may have settled it
            // since (the order filled or was cancelled, and its reservation was given back
            // then): only one still pending goes on.
            if let Some(o) = found.filter(|o| o.amend.is_some()) {
                let a = crate::orders::PendingAmend { durable: true, ..a };
                match &o.venue {
                    Some(link) => {
                        o.amend = Some(a);
                        link.send(crate::venues::Cmd::Replace(o.id));
                    }
                    None => {
                        o.amend = Some(a);
                        amend_without_venue(o, now_ms);
                        o.publish(&gw.hub, "order_update");
                    }
                }
            }
        }
    }
    drop(part);
    if let Some(w) = meta.waiter {
        if meta.replicated {
            gw.outbox_waiters
                .register(first_seq + meta.record_offset as u64, w);
        } else {
            let _ = w.send(true);
        }
    }
}

/// The gateway's own cancel of an order no venue holds (its `OrderUpdated{CANCELED}` is
/// journaled by the caller); true if the order moved.
pub(crate) fn cancel_without_venue(gw: &Gateway, o: &mut Order, now_ms: u64) -> bool {
    let event = OrderEvent::Canceled {
        filled_total: o.filled,
    };
    if !apply_event(o, event, now_ms) {
        return false;
    }
    o.release_open();
    o.publish(&gw.hub, "order_update");
    true
}

/// The new terms of an amend no venue has to confirm (replay does the same).
pub(crate) fn amend_without_venue(o: &mut Order, now_ms: u64) {
    let Some(a) = o.amend else {
        return;
    };
    let rec = crate::records::ExecutionRecord {
        order_id: o.id,
        venue_seq: 0,
        filled_delta: 0,
        filled_total: o.filled,
        price: 0,
        qty: a.qty,
        limit_price: a.price,
        status: switchyard_protocol::venue::ExecStatus::Replaced,
        status_report: false,
        account_id: "",
        venue: "",
        reason: "",
    };
    crate::venues::apply_report(o, &rec, now_ms);
}

/// Moves an order through the state machine; true if it moved. Illegal events are logged and
/// ignored (they can only come from a bug or a confused venue, never from a client).
pub fn apply_event(o: &mut Order, event: OrderEvent, now_ms: u64) -> bool {
    o.last_update_ms = now_ms;
    match switchyard_core::state::transition(o.status, o.filled, o.order.qty, event) {
        Ok(Transition::Moved { status, filled }) => {
            o.status = status;
            o.filled = filled;
            true
        }
        Ok(Transition::Unchanged) => false,
        Err(e) => {
            tracing::warn!(order = o.id.0, %e, "order event ignored");
            false
        }
    }
}

/// The journal could not write a durable-path batch: undo what it would have made true.
pub fn fail_durable(gw: &Gateway, meta: DurableMeta) {
    let account = &meta.account;
    let mut part = gw.orders.lock(&account.id);
    match meta.op {
        DurableOp::Accept(reservation) => {
            gw.durable_bp.inflight.fetch_sub(1, Ordering::Relaxed);
            // Rolled back with its key, so that a retry with the same key creates it anew.
            if let Some(mut o) = part.remove(&account.id, meta.order_id, None) {
                account.risk.release(&reservation);
                // An amend requested meanwhile fails with it (same batch or later) and finds
                // no order: give back what it reserved now.
                o.drop_amend();
            }
        }
        DurableOp::Cancel => {
            if let Some(o) = part.get_mut(&account.id, meta.order_id) {
                o.cancel_pending = false;
            }
        }
        DurableOp::Amend(_) => {
            // Given back once: a report that settled the amend meanwhile gave it back already.
            if let Some(o) = part.get_mut(&account.id, meta.order_id) {
                o.drop_amend();
            }
        }
    }
    drop(part);
    if let Some(w) = meta.waiter {
        let _ = w.send(false);
    }
}
