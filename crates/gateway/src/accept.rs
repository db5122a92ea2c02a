//! The v3 accept path, shared by HTTP and binary TCP: kill switches → risk → durable admission
//! → shard watermarks → reservation → sequence number → `try_send` to the shard's engine.
//! First refusal wins (§2.3.1, with Switchyard's additions in their documented places). Nothing
//! here blocks or takes a lock in the steady state.

use std::sync::atomic::Ordering;

use switchyard_core::reason::ConfirmReason;
use switchyard_core::risk::OrderInput;
use switchyard_core::{ConfirmStatus, Reason};

use crate::clock::mono_ns;
use crate::metrics::inc;
use crate::records::{KillCause, KillScope};
use crate::state::{Control, Gateway, OrderTask, Principal, Task};

/// Times the caller already measured, so stages can be attributed.
#[derive(Clone, Copy)]
pub struct Timing {
    pub received_at_ns: u64,
    pub received_mono_ns: u64,
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

    let risk_start = mono_ns();
    let checked = gw
        .risk
        .check(input, &p.account.rules, t.received_at_ns / 1_000_000)?;
    p.account
        .risk
        .take_rate_token(&p.account.rules, t.received_at_ns)?;
    let risk_done = mono_ns();
    gw.metrics.stage_risk.record(risk_done - risk_start);

    check_durable_admission(gw, shard)?;
    check_watermarks(gw, shard)?;

    let reservation = p
        .account
        .risk
        .reserve(&p.account.rules, &checked, t.received_at_ns)?;
    let enqueue_start = mono_ns();
    gw.metrics
        .stage_risk_position
        .record(enqueue_start - risk_done);
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
    gw.metrics.stage_enqueue.record(mono_ns() - enqueue_start);
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
/// the oldest not-yet-durable order's age (optional gates) and the journal backlog (records
/// handed to the journal and not yet fdatasync'ed) against soft/hard percentages.
fn check_durable_admission(gw: &Gateway, shard: &crate::state::Shard) -> Result<(), Reason> {
    let v3 = &gw.cfg.v3;
    let age_us = shard.oldest_inflight_us.load(Ordering::Relaxed);
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
    let _ = gw
        .control
        .try_send(Control::Loss(p.session.clone(), p.session.shard));
}
