use super::*;

fn sym(s: &str) -> Symbol {
    Symbol::parse(s.as_bytes()).unwrap()
}

fn limits(strict: bool) -> RiskLimits {
    let mut btc = SymbolLimits::new(sym("BTC"), 100, 1_000_000);
    btc.min_price = 10;
    btc.max_price = 50_000;
    btc.collar_bps = 1_000; // ±10 %
    let aapl = SymbolLimits::new(sym("AAPL"), 10_000, 1_000_000_000);
    let mut accounts = HashMap::new();
    accounts.insert(
        "restricted".to_string(),
        AccountRules {
            allowed_symbols: Some(vec![sym("AAPL")]),
            allowed_sides: Side::Buy.mask(),
            allowed_types: OrderType::Limit.mask(),
            max_qty: Some(50),
            daily_notional_limit: 10_000,
            max_abs_position: 100,
            rate_per_sec: 2,
            rate_burst: 2,
            ..AccountRules::default()
        },
    );
    RiskLimits::new(
        10_000,
        1_000_000_000,
        strict,
        vec![btc, aapl],
        AccountRules::default(),
        accounts,
    )
}

fn input(symbol: &str, side: Option<Side>, qty: u64, price: Option<u64>) -> OrderInput<'_> {
    OrderInput {
        symbol: symbol.as_bytes(),
        side,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        qty,
        price,
        expire_at_ms: None,
    }
}

// Goal: each stateless check fires with its reason, in the contract's order.
#[test]
fn stateless_reasons() {
    let l = limits(true);
    let r = l.rules_for("anyone");
    let chk = |i: OrderInput<'_>| l.check(&i, r, 0).map(|_| ());
    assert_eq!(
        chk(input("BTC", None, 1, Some(100))),
        Err(Reason::InvalidSide)
    );
    assert_eq!(
        chk(input("BTC", Some(Side::Buy), 0, Some(100))),
        Err(Reason::InvalidQty)
    );
    assert_eq!(
        chk(input("BTC", Some(Side::Buy), 101, Some(100))),
        Err(Reason::InvalidQty)
    );
    assert_eq!(
        chk(input("NOPE", Some(Side::Buy), 1, Some(100))),
        Err(Reason::InvalidSymbol)
    );
    assert_eq!(
        chk(input("B TC", Some(Side::Buy), 1, Some(100))),
        Err(Reason::InvalidSymbol)
    );
    assert_eq!(
        chk(input("BTC", Some(Side::Buy), 1, None)),
        Err(Reason::InvalidPrice)
    );
    assert_eq!(
        chk(input("BTC", Some(Side::Buy), 1, Some(0))),
        Err(Reason::InvalidPrice)
    );
    assert_eq!(
        chk(input("BTC", Some(Side::Buy), 100, Some(20_000))),
        Err(Reason::RiskReject)
    );
    assert_eq!(
        chk(input("BTC", Some(Side::Buy), 1, Some(5))),
        Err(Reason::PriceTooLow)
    );
    assert_eq!(
        chk(input("BTC", Some(Side::Buy), 1, Some(60_000))),
        Err(Reason::PriceTooHigh)
    );
    assert_eq!(chk(input("btc", Some(Side::Buy), 1, Some(100))), Ok(()));
    // Side is checked first even when everything else is wrong too.
    assert_eq!(chk(input("", None, 0, None)), Err(Reason::InvalidSide));
}

// Goal: non-strict mode lets unknown symbols through with global limits.
#[test]
fn non_strict_symbols() {
    let l = limits(false);
    let c = l
        .check(
            &input("XYZ", Some(Side::Sell), 5, Some(7)),
            &l.default_rules,
            0,
        )
        .unwrap();
    assert_eq!(c.symbol_idx, 2);
    assert_eq!(c.notional, 35);
}

// Goal: per-account allowed symbols, sides, types and max qty are enforced.
#[test]
fn account_rules() {
    let l = limits(true);
    let r = l.rules_for("restricted");
    assert_eq!(
        l.check(&input("BTC", Some(Side::Buy), 1, Some(100)), r, 0)
            .unwrap_err(),
        Reason::SymbolNotAllowed
    );
    assert_eq!(
        l.check(&input("AAPL", Some(Side::Sell), 1, Some(100)), r, 0)
            .unwrap_err(),
        Reason::SideNotAllowed
    );
    let mut market = input("AAPL", Some(Side::Buy), 1, None);
    market.order_type = OrderType::Market;
    assert_eq!(l.check(&market, r, 0).unwrap_err(), Reason::TypeNotAllowed);
    assert_eq!(
        l.check(&input("AAPL", Some(Side::Buy), 51, Some(1)), r, 0)
            .unwrap_err(),
        Reason::InvalidQty
    );
}

// Goal: the collar follows the reference price and is off while it is unknown.
#[test]
fn price_collar() {
    let l = limits(true);
    let r = &l.default_rules;
    assert!(l
        .check(&input("BTC", Some(Side::Buy), 1, Some(40_000)), r, 0)
        .is_ok());
    l.symbol(&sym("BTC"))
        .unwrap()
        .1
        .ref_price
        .store(1_000, Ordering::Relaxed);
    assert!(l
        .check(&input("BTC", Some(Side::Buy), 1, Some(1_100)), r, 0)
        .is_ok());
    assert!(l
        .check(&input("BTC", Some(Side::Buy), 1, Some(900)), r, 0)
        .is_ok());
    assert_eq!(
        l.check(&input("BTC", Some(Side::Buy), 1, Some(1_101)), r, 0)
            .unwrap_err(),
        Reason::PriceOutsideCollar
    );
    assert_eq!(
        l.check(&input("BTC", Some(Side::Buy), 1, Some(899)), r, 0)
            .unwrap_err(),
        Reason::PriceOutsideCollar
    );
}

// Goal: GTD needs a future expiry.
#[test]
fn gtd_expiry() {
    let l = limits(true);
    let mut i = input("BTC", Some(Side::Buy), 1, Some(100));
    i.time_in_force = TimeInForce::Gtd;
    assert_eq!(
        l.check(&i, &l.default_rules, 1_000).unwrap_err(),
        Reason::MissingExpireAt
    );
    i.expire_at_ms = Some(1_000);
    assert_eq!(
        l.check(&i, &l.default_rules, 1_000).unwrap_err(),
        Reason::ExpireAtInPast
    );
    i.expire_at_ms = Some(1_001);
    assert!(l.check(&i, &l.default_rules, 1_000).is_ok());
}

// Goal: the token bucket allows the burst, refuses the next, refills with time.
#[test]
fn rate_bucket() {
    let l = limits(true);
    let r = l.rules_for("restricted"); // 2/s, burst 2
    let a = AccountRisk::new(l.position_slots());
    let t0 = 10_000_000_000;
    assert!(a.take_rate_token(r, t0).is_ok());
    assert!(a.take_rate_token(r, t0).is_ok());
    assert_eq!(a.take_rate_token(r, t0), Err(Reason::RateLimited));
    assert!(a.take_rate_token(r, t0 + 500_000_000).is_ok());
    assert_eq!(
        a.take_rate_token(r, t0 + 500_000_000),
        Err(Reason::RateLimited)
    );
}

// Goal: daily notional and position limits are reserved exactly and released on rollback.
#[test]
fn stateful_limits() {
    let l = limits(true);
    let r = l.rules_for("restricted"); // daily 10_000, |position| ≤ 100
    let a = AccountRisk::new(l.position_slots());
    let now = 5 * NS_PER_DAY + 1;
    let c = l
        .check(&input("AAPL", Some(Side::Buy), 50, Some(100)), r, 0)
        .unwrap();
    let first = a.reserve(r, &c, now).unwrap(); // 5_000 notional, +50
    a.reserve(r, &c, now).unwrap(); // 10_000, +100
    assert_eq!(a.daily_notional(now), 10_000);
    assert_eq!(a.reserve(r, &c, now), Err(Reason::DailyNotionalLimit));
    assert_eq!(a.daily_notional(now), 10_000);
    a.release(&first);
    assert_eq!(a.position(1), 50);
    assert_eq!(a.daily_notional(now), 5_000);
    a.reserve(r, &c, now).unwrap();
    // A new day resets the notional but not the position.
    let tomorrow = now + NS_PER_DAY;
    assert_eq!(a.reserve(r, &c, tomorrow), Err(Reason::PositionLimit));
    assert_eq!(a.daily_notional(tomorrow), 0);
    assert_eq!(a.position(1), 100);
}

// Goal: concurrent reservations never exceed the position limit (the atomics are exact).
#[test]
fn concurrent_position_limit_is_exact() {
    let l = std::sync::Arc::new(limits(true));
    let a = std::sync::Arc::new(AccountRisk::new(l.position_slots()));
    let rules = AccountRules {
        max_abs_position: 1_000,
        ..AccountRules::default()
    };
    let accepted: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (l, a, rules) = (l.clone(), a.clone(), rules.clone());
                s.spawn(move || {
                    let c = l
                        .check(&input("AAPL", Some(Side::Buy), 7, Some(1)), &rules, 0)
                        .unwrap();
                    (0..1_000)
                        .filter(|_| a.reserve(&rules, &c, 1).is_ok())
                        .count() as u64
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(accepted, 1_000 / 7);
    assert_eq!(a.position(1), (1_000 / 7) * 7);
}
