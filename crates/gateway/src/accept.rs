//! The v3 accept path, shared by HTTP and binary TCP: kill switches → risk → durable admission
//! → shard watermarks → reservation → sequence number → `try_send` to the shard's engine.
//! First refusal wins (§2.3.1, with Switchyard's additions in their documented places). Nothing
//! here blocks or takes a lock in the steady state.

use std::sync::atomic::Ordering;

use switchyard_core::reason::ConfirmReason;
use switchyard_core::risk::OrderInput;
use switchyard_core::{ConfirmStatus, Reason};

use crate::clock::{mono_ns, mono_ns_if};
use crate::metrics::inc;
use crate::records::{KillCause, KillScope};
use crate::state::{Control, Gateway, OrderTask, Principal, Task};

/// Times the caller already measured, so stages can be attributed.
#[derive(Clone, Copy)]
pub struct Timing {
    pub received_at_ns: u64,
    pub received_mono_ns: u64,
    /// Whether this request's stages are timed (see `clock::sample_stages`).
    pub timed: bool,
}

/// Runs the whole accept path. Ok = the session sequence number (202 VOLATILE_ACCEPT).
pub fn submit(
    gw: &Gateway,
    p: &Principal,
    input: &OrderInput<'_>,
    t: Timing,
) -> Result<u64, Reason> {
    let result = submit_inner(gw, p, input, t);
    match result {
        Ok(_) => inc(&gw.metrics.accepted),
        Err(r) => gw.metrics.count_refusal(r),
    }
    result
}

fn submit_inner(
    gw: &Gateway,
    p: &Principal,
    input: &OrderInput<'_>,
    t: Timing,
) -> Result<u64, Reason> {
    let shard = &gw.shards[p.session.shard as usize];
    check_kills(gw, p, shard)?;

    let risk_start = mono_ns_if(t.timed);
    let checked = gw
        .risk
        .check(input, &p.account.rules, t.received_at_ns / 1_000_000)?;
    p.account
        .risk
        .take_rate_token(&p.account.rules, t.received_at_ns)?;
    let risk_done = mono_ns_if(t.timed);
    if t.timed {
        gw.metrics.stage_risk.record(risk_done - risk_start);
    }

    check_durable_admission(gw, shard, t.received_mono_ns)?;
    check_watermarks(gw, shard)?;

    let reservation = p
        .account
        .risk
        .reserve(&p.account.rules, &checked, t.received_at_ns)?;
    let enqueue_start = mono_ns_if(t.timed);
    if t.timed {
        gw.metrics
            .stage_risk_position
            .record(enqueue_start - risk_done);
    }
    let seq = p.session.assigned.fetch_add(1, Ordering::AcqRel) + 1;
    let task = Task::Order(OrderTask {
        session: p.session.clone(),
        account: p.account.clone(),
        seq,
        order: checked.order,
        received_at_ns: t.received_at_ns,
        received_mono_ns: t.received_mono_ns,
        reservation,
    });
    let sent = if gw.accepting.load(Ordering::Acquire) {
        shard.tx.try_send(task).map_err(|e| match e {
            crossbeam_channel::TrySendError::Full(_) => {
                (Reason::QueueFull, ConfirmReason::IngressQueueFull)
            }
            crossbeam_channel::TrySendError::Disconnected(_) => {
                (Reason::IngressClosed, ConfirmReason::IngressClosed)
            }
        })
    } else {
        Err((Reason::IngressClosed, ConfirmReason::IngressClosed))
    };
    if t.timed {
        gw.metrics.stage_enqueue.record(mono_ns() - enqueue_start);
    }
    match sent {
        Ok(()) => Ok(seq),
        Err((reason, confirm_reason)) => {
            // The sequence number is spent: record it as LOSS_SUSPECT so it is never silent.
            p.account.risk.release(&reservation);
            ingress_loss(gw, p, seq, confirm_reason, t);
            if reason == Reason::QueueFull {
                gw.kill(
                    KillScope::Shard,
                    shard.id.to_string(),
                    KillCause::QueueWatermark,
                    "ingress queue full",
                );
            }
            Err(reason)
        }
    }
}

fn check_kills(gw: &Gateway, p: &Principal, shard: &crate::state::Shard) -> Result<(), Reason> {
    if !p.account.owned {
        return Err(Reason::AccountNotOwned);
    }
    if gw.global_killed.load(Ordering::Acquire) {
        return Err(Reason::GlobalKilled);
    }
    if p.session.killed.load(Ordering::Acquire) {
        return Err(Reason::SessionKilled);
    }
    if shard.killed.load(Ordering::Acquire) && !crate::monitor::try_recover_shard(gw, shard) {
        return Err(Reason::ShardKilled);
    }
    if p.account.killed.load(Ordering::Acquire) {
        return Err(Reason::AccountKilled);
    }
    Ok(())
}

/// Durable admission, Switchyard's simpler replacement of the reference's lane controller:
/// the journal's health (disk reserve, failed commits: `journal_health`), the oldest
/// not-yet-durable order's age (optional gates) and the journal backlog (records handed to
/// the journal and not yet fdatasync'ed) against soft/hard percentages.
fn check_durable_admission(
    gw: &Gateway,
    shard: &crate::state::Shard,
    now_mono_ns: u64,
) -> Result<(), Reason> {
    if gw.journal_health.admits(now_mono_ns).is_err() {
        return Err(Reason::JournalUnavailable);
    }
    let v3 = &gw.cfg.v3;
    let age_us = shard.oldest_inflight_age_us(now_mono_ns);
    if v3.durable_confirm_hard_reject_age_us > 0 && age_us >= v3.durable_confirm_hard_reject_age_us
    {
        return Err(Reason::DurableConfirmAgeHard);
    }
    if v3.durable_confirm_soft_reject_age_us > 0 && age_us >= v3.durable_confirm_soft_reject_age_us
    {
        return Err(Reason::DurableConfirmAgeSoft);
    }
    let backlog = gw.journal_backlog.load(Ordering::Relaxed);
    let util = backlog * 100 / v3.durable_backlog_capacity;
    if util >= v3.durable_hard_reject_pct {
        return Err(Reason::DurableBackpressureHard);
    }
    if util >= v3.durable_soft_reject_pct {
        return Err(Reason::DurableBackpressureSoft);
    }
    Ok(())
}

/// Shard ingress watermarks (§3.5): SOFT → 429, HARD → 503, KILL → shard killed.
fn check_watermarks(gw: &Gateway, shard: &crate::state::Shard) -> Result<(), Reason> {
    let v3 = &gw.cfg.v3;
    let util = shard.utilization_pct();
    if util >= v3.kill_reject_pct {
        gw.kill(
            KillScope::Shard,
            shard.id.to_string(),
            KillCause::QueueWatermark,
            "ingress queue at kill watermark",
        );
        return Err(Reason::QueueKilled);
    }
    if util >= v3.hard_reject_pct {
        return Err(Reason::BackpressureHard);
    }
    if util >= v3.soft_reject_pct {
        return Err(Reason::BackpressureSoft);
    }
    Ok(())
}

fn ingress_loss(gw: &Gateway, p: &Principal, seq: u64, reason: ConfirmReason, t: Timing) {
    let shard = &gw.shards[p.session.shard as usize];
    let now = crate::clock::wall_ns();
    let mut c = shard.confirm.lock();
    c.set_exception(
        p.session.idx,
        seq,
        ConfirmStatus::LossSuspect,
        reason,
        t.received_at_ns,
        now,
    );
    drop(c);
    inc(&gw.metrics.loss_suspect);
    let _ = gw.control.try_send(Control::Loss(p.session.clone()));
}

#[cfg(test)]
mod tests {
    //! V3_QUEUE_FULL and V3_INGRESS_CLOSED cannot be reached deterministically over the wire:
    //! the kill watermark trips before a queue can be full, and a queue is closed only while
    //! the process shuts down. Here a small gateway is built directly and its shard queue is
    //! made full or closed at the moment of the send.

    use switchyard_core::risk::OrderInput;
    use switchyard_core::{OrderType, Side, TimeInForce};

    use super::*;
    use crate::server::{unit_gateway, ShardQueues};
    use crate::state::Principal;

    fn gateway() -> (Gateway, ShardQueues, crossbeam_channel::Receiver<Control>) {
        unit_gateway(|cfg| cfg.v3.ingress_queue_capacity = 16)
    }

    fn principal(gw: &Gateway) -> Principal {
        Principal {
            session: gw.session("unit-session", None),
            account: gw.account("unit-account"),
        }
    }

    fn order() -> OrderInput<'static> {
        OrderInput {
            symbol: b"AAPL",
            side: Some(Side::Buy),
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::Gtc,
            qty: 7,
            price: Some(100),
            expire_at_ms: None,
        }
    }

    fn timing() -> Timing {
        Timing {
            received_at_ns: crate::clock::wall_ns(),
            received_mono_ns: crate::clock::mono_ns(),
            timed: true,
        }
    }

    /// The confirm store's answer for `seq` of the unit session.
    fn confirm_of(gw: &Gateway, p: &Principal, seq: u64) -> (ConfirmStatus, ConfirmReason) {
        let assigned = p.session.assigned.load(Ordering::Acquire);
        let a = gw.shards[0]
            .confirm
            .lock()
            .query(p.session.idx, seq, assigned);
        (a.status, a.reason)
    }

    // Goal: a send that finds the queue full is V3_QUEUE_FULL: shard killed, seq LOSS_SUSPECT.
    #[test]
    fn full_queue_is_queue_full() {
        // The race between the watermark check and the send is modelled by a zero-capacity
        // queue, which always reads depth 0 and never takes a message: 503 KILLED, code 2202,
        // the shard killed, the spent number LOSS_SUSPECT / V3_INGRESS_QUEUE_FULL, the monitor
        // told (kill to journal, loss to escalate), the risk reservation given back.
        let (mut gw, _queues, control_rx) = gateway();
        let (tx, _rx) = crossbeam_channel::bounded(0);
        gw.shards[0].tx = tx;
        let p = principal(&gw);
        assert_eq!(gw.shards[0].utilization_pct(), 0);
        let r = submit(&gw, &p, &order(), timing());
        assert_eq!(r, Err(Reason::QueueFull));
        assert_eq!(
            (
                Reason::QueueFull.http_status(),
                Reason::QueueFull.verdict().as_str()
            ),
            (503, "KILLED")
        );
        assert_eq!(Reason::QueueFull.tcp_code(), 2202);
        assert!(gw.shards[0].killed.load(Ordering::Acquire));
        assert_eq!(
            confirm_of(&gw, &p, 1),
            (ConfirmStatus::LossSuspect, ConfirmReason::IngressQueueFull)
        );
        let msgs: Vec<Control> = control_rx.try_iter().collect();
        assert!(msgs.iter().any(
            |m| matches!(m, Control::Loss(s) if s.id.as_ref() == "unit-session" && s.shard == 0)
        ));
        assert!(msgs.iter().any(|m| matches!(m, Control::Kill(k, None)
            if k.scope == KillScope::Shard && k.on && k.cause == KillCause::QueueWatermark)));
        assert_eq!(
            p.account.risk.position(0),
            0,
            "the reservation was given back"
        );
        // The next order meets the shard kill switch first.
        assert_eq!(
            submit(&gw, &p, &order(), timing()),
            Err(Reason::ShardKilled)
        );
        // The refused number stays spent: sequence numbers are never reused.
        assert_eq!(p.session.assigned.load(Ordering::Acquire), 1);
        assert_eq!(gw.metrics.loss_suspect.load(Ordering::Relaxed), 1);
    }

    // Goal: a queue whose engine is gone is V3_INGRESS_CLOSED, the spent seq LOSS_SUSPECT.
    #[test]
    fn disconnected_queue_is_ingress_closed() {
        // 503 KILLED, code 2203. Unlike the reference (§2.3.1 row 18) the shard is not killed:
        // a closed queue only happens at shutdown, and a journaled kill would outlive the
        // restart.
        let (gw, queues, control_rx) = gateway();
        drop(queues);
        let p = principal(&gw);
        assert_eq!(
            submit(&gw, &p, &order(), timing()),
            Err(Reason::IngressClosed)
        );
        assert_eq!(Reason::IngressClosed.tcp_code(), 2203);
        assert_eq!(Reason::IngressClosed.verdict().as_str(), "KILLED");
        assert_eq!(
            confirm_of(&gw, &p, 1),
            (ConfirmStatus::LossSuspect, ConfirmReason::IngressClosed)
        );
        assert!(!gw.shards[0].killed.load(Ordering::Acquire));
        assert!(control_rx
            .try_iter()
            .any(|m| matches!(m, Control::Loss(..))));
        assert_eq!(p.account.risk.position(0), 0);
    }

    // Goal: once shutdown began, orders that pass the checks are V3_INGRESS_CLOSED, not queued.
    #[test]
    fn shutdown_is_ingress_closed() {
        let (gw, queues, _control_rx) = gateway();
        gw.accepting.store(false, Ordering::Release);
        let p = principal(&gw);
        for seq in 1..=3 {
            assert_eq!(
                submit(&gw, &p, &order(), timing()),
                Err(Reason::IngressClosed)
            );
            assert_eq!(
                confirm_of(&gw, &p, seq),
                (ConfirmStatus::LossSuspect, ConfirmReason::IngressClosed)
            );
        }
        assert!(queues[0].0.is_empty(), "nothing was enqueued");
        // Refusals before the enqueue (here a kill switch) spend no number.
        gw.global_killed.store(true, Ordering::Release);
        assert_eq!(
            submit(&gw, &p, &order(), timing()),
            Err(Reason::GlobalKilled)
        );
        assert_eq!(p.session.assigned.load(Ordering::Acquire), 3);
    }
}
