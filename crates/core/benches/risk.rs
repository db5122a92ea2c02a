//! Goal: cost of pre-trade risk on the hot path — the stateless checks in the contract's order,
//! the stateful reservation (daily notional and position, one CAS / fetch-add each) and the
//! GCRA rate-limit token — with limits switched on so every branch runs.

use std::collections::HashMap;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use switchyard_core::risk::{AccountRisk, AccountRules, OrderInput, RiskLimits, SymbolLimits};
use switchyard_core::{OrderType, Side, Symbol, TimeInForce};

fn limits() -> RiskLimits {
    let symbols = ["AAPL", "MSFT", "NVDA", "BTC", "ETH", "SOL"]
        .iter()
        .map(|s| {
            let mut l =
                SymbolLimits::new(Symbol::parse(s.as_bytes()).unwrap(), 10_000, 1_000_000_000);
            l.min_price = 1;
            l.max_price = 1_000_000;
            l.collar_bps = 5_000;
            l.ref_price
                .store(15_000, std::sync::atomic::Ordering::Relaxed);
            l
        })
        .collect();
    RiskLimits::new(
        10_000,
        1_000_000_000,
        true,
        symbols,
        AccountRules::default(),
        HashMap::new(),
    )
}

fn bench(c: &mut Criterion) {
    let l = limits();
    let rules = AccountRules {
        daily_notional_limit: u64::MAX >> 17,
        max_abs_position: u64::MAX >> 2,
        rate_per_sec: 1_000_000_000,
        rate_burst: 1_000_000,
        ..AccountRules::default()
    };
    let input = OrderInput {
        symbol: b"AAPL",
        side: Some(Side::Buy),
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        qty: 100,
        price: Some(15_000),
        expire_at_ms: None,
    };
    c.bench_function("risk/stateless_check", |b| {
        b.iter(|| black_box(l.check(black_box(&input), &rules, 0).unwrap()))
    });
    let account = AccountRisk::new(l.position_slots());
    let checked = l.check(&input, &rules, 0).unwrap();
    let mut now = 1_000_000_000u64;
    c.bench_function("risk/rate_token_and_reserve", |b| {
        b.iter(|| {
            now += 1_000;
            account.take_rate_token(&rules, now).unwrap();
            let r = account.reserve(&rules, black_box(&checked), now).unwrap();
            account.release(&r);
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
