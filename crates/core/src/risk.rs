//! Pre-trade risk (§3.3): the stateless checks every ingress runs in parallel, and the
//! per-account stateful limits (rate, daily notional, position) kept in atomics so that they are
//! exact without a lock on the order path.
//!
//! Evaluation order, first failure wins — the reference's v3 order first, then the checks it
//! configured but never enforced:
//!
//! 1. side (`INVALID_SIDE`);
//! 2. quantity against min(global, symbol, account) (`INVALID_QTY`);
//! 3. symbol syntax / strict table (`INVALID_SYMBOL`);
//! 4. LIMIT price present (`INVALID_PRICE`);
//! 5. notional against min(global, symbol, account) (`RISK_REJECT`);
//! 6. the account's allowed symbols, sides, types;
//! 7. min/max price, price collar;
//! 8. GTD expiry.
//!
//! Then, stateful and reserved atomically: rate, daily notional, absolute position.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::reason::Reason;
use crate::types::{NewOrder, OrderType, Side, Symbol, TimeInForce};

/// Daily notional is packed with its UTC day into one atomic; 48 bits bound what can be counted.
pub const DAILY_NOTIONAL_MAX: u64 = (1 << 48) - 1;
const NS_PER_DAY: u64 = 86_400 * 1_000_000_000;

/// Limits of one symbol. `ref_price` is atomic so a reference price can be moved at run time
/// (by an operator now, by venue top-of-book later) without rebuilding the table.
#[derive(Debug)]
pub struct SymbolLimits {
    pub symbol: Symbol,
    pub max_qty: u64,
    pub max_notional: u64,
    /// 0 = no minimum.
    pub min_price: u64,
    /// 0 = no maximum.
    pub max_price: u64,
    /// Reference price for the collar; 0 = unknown (collar not applied).
    pub ref_price: AtomicU64,
    /// Allowed distance from the reference price in basis points; 0 = collar off.
    pub collar_bps: u32,
}

impl SymbolLimits {
    pub fn new(symbol: Symbol, max_qty: u64, max_notional: u64) -> SymbolLimits {
        SymbolLimits {
            symbol,
            max_qty,
            max_notional,
            min_price: 0,
            max_price: 0,
            ref_price: AtomicU64::new(0),
            collar_bps: 0,
        }
    }
}

/// Rules that differ per account. `None`/0 fields fall back to the global rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRules {
    /// `None` = every symbol of the table (or any, when symbols are not strict).
    pub allowed_symbols: Option<Vec<Symbol>>,
    /// Bit mask of `Side::mask()`; 0b11 = both.
    pub allowed_sides: u8,
    /// Bit mask of `OrderType::mask()`; 0b11 = both.
    pub allowed_types: u8,
    pub max_qty: Option<u64>,
    pub max_notional: Option<u64>,
    pub min_price: u64,
    pub max_price: u64,
    /// Sum of accepted notional per UTC day; 0 = unlimited.
    pub daily_notional_limit: u64,
    /// Largest absolute projected position per symbol; 0 = unlimited.
    pub max_abs_position: u64,
    /// Token-bucket rate in orders per second; 0 = unlimited.
    pub rate_per_sec: u32,
    /// Bucket size (burst); at least 1 when a rate is set.
    pub rate_burst: u32,
}

impl Default for AccountRules {
    fn default() -> Self {
        AccountRules {
            allowed_symbols: None,
            allowed_sides: 0b11,
            allowed_types: 0b11,
            max_qty: None,
            max_notional: None,
            min_price: 0,
            max_price: 0,
            daily_notional_limit: 0,
            max_abs_position: 0,
            rate_per_sec: 0,
            rate_burst: 0,
        }
    }
}

/// The whole risk configuration, built once at startup and shared read-only.
#[derive(Debug)]
pub struct RiskLimits {
    pub max_order_qty: u64,
    pub max_notional: u64,
    /// Unknown symbols are refused (`V3_RISK_STRICT_SYMBOLS`).
    pub strict_symbols: bool,
    symbols: Vec<SymbolLimits>,
    index: HashMap<Symbol, u16>,
    /// Rules for accounts without an entry of their own.
    pub default_rules: AccountRules,
    accounts: HashMap<String, AccountRules>,
}

/// Result of the stateless checks: the validated order and what the stateful ones need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub order: NewOrder,
    /// Index into the symbol table; `symbol_count()` for symbols outside it.
    pub symbol_idx: u16,
    /// Notional used for daily limits: qty × price, or qty × reference price for MARKET.
    pub notional: u64,
}

/// Decoded request fields before validation (what the HTTP and binary decoders produce).
#[derive(Debug, Clone, Copy)]
pub struct OrderInput<'a> {
    pub symbol: &'a [u8],
    /// `None` when the wire value was not BUY/SELL (reported as `INVALID_SIDE`).
    pub side: Option<Side>,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub qty: u64,
    pub price: Option<u64>,
    pub expire_at_ms: Option<u64>,
}

impl RiskLimits {
    pub fn new(
        max_order_qty: u64,
        max_notional: u64,
        strict_symbols: bool,
        symbols: Vec<SymbolLimits>,
        default_rules: AccountRules,
        accounts: HashMap<String, AccountRules>,
    ) -> RiskLimits {
        let index = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (s.symbol, i as u16))
            .collect();
        RiskLimits {
            max_order_qty,
            max_notional,
            strict_symbols,
            symbols,
            index,
            default_rules,
            accounts,
        }
    }

    pub fn symbols(&self) -> &[SymbolLimits] {
        &self.symbols
    }

    /// Number of slots per-account position arrays need (table plus one "other" slot).
    pub fn position_slots(&self) -> usize {
        self.symbols.len() + 1
    }

    pub fn symbol(&self, sym: &Symbol) -> Option<(u16, &SymbolLimits)> {
        // Small tables (the default has six symbols) are faster to scan than to hash.
        if self.symbols.len() <= 16 {
            let idx = self.symbols.iter().position(|s| s.symbol == *sym)?;
            return Some((idx as u16, &self.symbols[idx]));
        }
        let idx = *self.index.get(sym)?;
        Some((idx, &self.symbols[idx as usize]))
    }

    /// The rules for an account (its own entry or the defaults).
    pub fn rules_for(&self, account: &str) -> &AccountRules {
        self.accounts.get(account).unwrap_or(&self.default_rules)
    }

    /// Stateless checks in the contract's order. `now_ms` is only used for GTD expiry.
    pub fn check(
        &self,
        input: &OrderInput<'_>,
        rules: &AccountRules,
        now_ms: u64,
    ) -> Result<Checked, Reason> {
        let side = input.side.ok_or(Reason::InvalidSide)?;
        let symbol = Symbol::parse(input.symbol).ok();
        let entry = symbol.as_ref().and_then(|s| self.symbol(s));
        let limits = entry.map(|(_, l)| l);

        let max_qty = min_opt(
            self.max_order_qty
                .min(limits.map_or(u64::MAX, |l| l.max_qty)),
            rules.max_qty,
        );
        if input.qty == 0 || input.qty > max_qty {
            return Err(Reason::InvalidQty);
        }
        let symbol = symbol.ok_or(Reason::InvalidSymbol)?;
        if entry.is_none() && self.strict_symbols {
            return Err(Reason::InvalidSymbol);
        }
        let is_limit = input.order_type == OrderType::Limit;
        let price = match (is_limit, input.price) {
            (true, Some(p)) if p > 0 => p,
            (true, _) => return Err(Reason::InvalidPrice),
            (false, _) => 0,
        };
        let max_notional = min_opt(
            self.max_notional
                .min(limits.map_or(u64::MAX, |l| l.max_notional)),
            rules.max_notional,
        );
        let notional = input.qty as u128 * price as u128;
        if notional > max_notional as u128 {
            return Err(Reason::RiskReject);
        }
        self.check_account_rules(&symbol, side, input.order_type, rules)?;
        if is_limit {
            check_price(price, limits, rules, &self.default_rules)?;
        }
        check_expiry(input, now_ms)?;

        let symbol_idx = entry.map_or(self.symbols.len() as u16, |(i, _)| i);
        let notional = if is_limit {
            notional as u64
        } else {
            let reference = limits.map_or(0, |l| l.ref_price.load(Ordering::Relaxed));
            (input.qty as u128 * reference as u128).min(u64::MAX as u128) as u64
        };
        Ok(Checked {
            order: NewOrder {
                symbol,
                side,
                order_type: input.order_type,
                time_in_force: input.time_in_force,
                qty: input.qty,
                price,
                expire_at_ms: input.expire_at_ms,
            },
            symbol_idx,
            notional,
        })
    }

    fn check_account_rules(
        &self,
        symbol: &Symbol,
        side: Side,
        order_type: OrderType,
        rules: &AccountRules,
    ) -> Result<(), Reason> {
        if let Some(allowed) = &rules.allowed_symbols {
            if !allowed.contains(symbol) {
                return Err(Reason::SymbolNotAllowed);
            }
        }
        let sides = rules.allowed_sides & self.default_rules.allowed_sides;
        if sides & side.mask() == 0 {
            return Err(Reason::SideNotAllowed);
        }
        let types = rules.allowed_types & self.default_rules.allowed_types;
        if types & order_type.mask() == 0 {
            return Err(Reason::TypeNotAllowed);
        }
        Ok(())
    }
}

fn min_opt(a: u64, b: Option<u64>) -> u64 {
    b.map_or(a, |b| a.min(b))
}

/// Effective minimum is the highest of the configured minimums, maximum the lowest maximum.
fn check_price(
    price: u64,
    limits: Option<&SymbolLimits>,
    rules: &AccountRules,
    global: &AccountRules,
) -> Result<(), Reason> {
    let mins = [
        global.min_price,
        rules.min_price,
        limits.map_or(0, |l| l.min_price),
    ];
    let min = mins.into_iter().max().unwrap_or(0);
    let max = [
        global.max_price,
        rules.max_price,
        limits.map_or(0, |l| l.max_price),
    ]
    .into_iter()
    .filter(|&m| m > 0)
    .min()
    .unwrap_or(u64::MAX);
    if price < min {
        return Err(Reason::PriceTooLow);
    }
    if price > max {
        return Err(Reason::PriceTooHigh);
    }
    if let Some(l) = limits {
        let reference = l.ref_price.load(Ordering::Relaxed);
        if l.collar_bps > 0 && reference > 0 {
            let band = reference as u128 * l.collar_bps as u128 / 10_000;
            let lo = (reference as u128).saturating_sub(band);
            let hi = reference as u128 + band;
            if (price as u128) < lo || price as u128 > hi {
                return Err(Reason::PriceOutsideCollar);
            }
        }
    }
    Ok(())
}

fn check_expiry(input: &OrderInput<'_>, now_ms: u64) -> Result<(), Reason> {
    if input.time_in_force != TimeInForce::Gtd {
        return Ok(());
    }
    match input.expire_at_ms {
        None => Err(Reason::MissingExpireAt),
        Some(at) if at <= now_ms => Err(Reason::ExpireAtInPast),
        Some(_) => Ok(()),
    }
}

/// Stateful risk of one account: a GCRA token bucket, the day's notional and the projected
/// position per symbol, each a single atomic updated by compare-and-swap or fetch-add, so that
/// ingress threads check and reserve exactly without taking a lock.
#[derive(Debug)]
pub struct AccountRisk {
    /// GCRA "theoretical arrival time" in ns; 0 = bucket full.
    rate_tat_ns: AtomicU64,
    /// UTC day number in the top 16 bits, notional used that day in the low 48.
    daily: AtomicU64,
    /// Projected net position per symbol slot: +qty for every accepted BUY, −qty for SELL,
    /// until venue reports release what was not filled (issue 4).
    positions: Box<[AtomicI64]>,
}

/// What a successful reservation took, so that it can be given back if the order is not
/// enqueued after all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    day: u64,
    notional: u64,
    slot: u16,
    signed_qty: i64,
}

impl AccountRisk {
    pub fn new(position_slots: usize) -> AccountRisk {
        AccountRisk {
            rate_tat_ns: AtomicU64::new(0),
            daily: AtomicU64::new(0),
            positions: (0..position_slots).map(|_| AtomicI64::new(0)).collect(),
        }
    }

    /// Token bucket (as GCRA): `rate` per second with room for `burst`; starts full.
    pub fn take_rate_token(&self, rules: &AccountRules, now_ns: u64) -> Result<(), Reason> {
        if rules.rate_per_sec == 0 {
            return Ok(());
        }
        let interval = 1_000_000_000 / rules.rate_per_sec as u64;
        let tolerance = interval * (rules.rate_burst.max(1) as u64 - 1);
        let mut tat = self.rate_tat_ns.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now_ns);
            if start > now_ns + tolerance {
                return Err(Reason::RateLimited);
            }
            match self.rate_tat_ns.compare_exchange_weak(
                tat,
                start + interval,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => tat = actual,
            }
        }
    }

    /// Reserves daily notional and position for `c`, or refuses without changing anything.
    pub fn reserve(
        &self,
        rules: &AccountRules,
        c: &Checked,
        now_ns: u64,
    ) -> Result<Reservation, Reason> {
        let day = now_ns / NS_PER_DAY;
        if rules.daily_notional_limit > 0 {
            self.add_daily(day, c.notional, Some(rules.daily_notional_limit))?;
        }
        let slot = (c.symbol_idx as usize).min(self.positions.len() - 1);
        let signed_qty = match c.order.side {
            Side::Buy => c.order.qty as i64,
            Side::Sell => -(c.order.qty as i64),
        };
        let pos = &self.positions[slot];
        let before = pos.fetch_add(signed_qty, Ordering::AcqRel);
        let after = before + signed_qty;
        let limit = rules.max_abs_position;
        // Orders that bring the position closer to flat are always allowed.
        if limit > 0 && after.unsigned_abs() > limit && after.unsigned_abs() > before.unsigned_abs()
        {
            pos.fetch_sub(signed_qty, Ordering::AcqRel);
            if rules.daily_notional_limit > 0 {
                self.sub_daily(day, c.notional);
            }
            return Err(Reason::PositionLimit);
        }
        Ok(Reservation {
            day,
            notional: if rules.daily_notional_limit > 0 {
                c.notional
            } else {
                0
            },
            slot: slot as u16,
            signed_qty,
        })
    }

    /// Gives a reservation back (the order was not enqueued).
    pub fn release(&self, r: &Reservation) {
        self.positions[r.slot as usize].fetch_sub(r.signed_qty, Ordering::AcqRel);
        if r.notional > 0 {
            self.sub_daily(r.day, r.notional);
        }
    }

    /// Restores state from the journal on startup: an order accepted on `day_ns`'s day.
    /// An order's unfilled remainder will never trade (cancelled, rejected, expired): its
    /// quantity leaves the projected position. Daily notional stays used (it was submitted).
    pub fn close_open(&self, symbol_idx: u16, side: Side, open_qty: u64) {
        let slot = (symbol_idx as usize).min(self.positions.len() - 1);
        let q = open_qty.min(i64::MAX as u64) as i64;
        let signed = if side == Side::Buy { q } else { -q };
        self.positions[slot].fetch_sub(signed, Ordering::AcqRel);
    }

    pub fn replay_accept(&self, c: &Checked, at_ns: u64) {
        let _ = self.add_daily(at_ns / NS_PER_DAY, c.notional, None);
        let slot = (c.symbol_idx as usize).min(self.positions.len() - 1);
        let q = c.order.qty as i64;
        let signed = if c.order.side == Side::Buy { q } else { -q };
        self.positions[slot].fetch_add(signed, Ordering::AcqRel);
    }

    pub fn position(&self, slot: usize) -> i64 {
        self.positions
            .get(slot)
            .map_or(0, |p| p.load(Ordering::Acquire))
    }

    /// Notional used on `day` (0 for any other day).
    pub fn daily_notional(&self, now_ns: u64) -> u64 {
        let v = self.daily.load(Ordering::Acquire);
        if v >> 48 == (now_ns / NS_PER_DAY) & 0xFFFF {
            v & DAILY_NOTIONAL_MAX
        } else {
            0
        }
    }

    fn add_daily(&self, day: u64, notional: u64, limit: Option<u64>) -> Result<(), Reason> {
        let tag = day & 0xFFFF;
        let mut cur = self.daily.load(Ordering::Relaxed);
        loop {
            let used = if cur >> 48 == tag {
                cur & DAILY_NOTIONAL_MAX
            } else {
                0
            };
            let next = used.saturating_add(notional).min(DAILY_NOTIONAL_MAX);
            if limit.is_some_and(|l| next > l) {
                return Err(Reason::DailyNotionalLimit);
            }
            match self.daily.compare_exchange_weak(
                cur,
                (tag << 48) | next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => cur = actual,
            }
        }
    }

    fn sub_daily(&self, day: u64, notional: u64) {
        let tag = day & 0xFFFF;
        let _ = self
            .daily
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |cur| {
                // A new day started meanwhile: nothing of the old day to give back.
                (cur >> 48 == tag)
                    .then(|| (tag << 48) | (cur & DAILY_NOTIONAL_MAX).saturating_sub(notional))
            });
    }
}

#[cfg(test)]
mod tests;
