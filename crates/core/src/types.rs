//! Value types of the order domain. Prices and quantities are integers in minor units: no
//! floating point anywhere on the order path.

use std::fmt;

/// Longest symbol the gateway accepts (the reference's v3 risk limit).
pub const SYMBOL_MAX_LEN: usize = 8;

/// A venue-independent instrument name, stored inline (no allocation per order).
///
/// Invariant: 1..=8 bytes of `[A-Z0-9_.-]`, upper-cased on construction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol {
    bytes: [u8; SYMBOL_MAX_LEN],
    len: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolError {
    Empty,
    TooLong,
    BadChar,
}

impl Symbol {
    /// Parses and upper-cases a symbol; rejects anything outside `[A-Z0-9_.-]{1,8}`.
    pub fn parse(raw: &[u8]) -> Result<Symbol, SymbolError> {
        if raw.is_empty() {
            return Err(SymbolError::Empty);
        }
        if raw.len() > SYMBOL_MAX_LEN {
            return Err(SymbolError::TooLong);
        }
        let mut bytes = [0u8; SYMBOL_MAX_LEN];
        for (dst, &b) in bytes.iter_mut().zip(raw) {
            let up = b.to_ascii_uppercase();
            if !(up.is_ascii_uppercase() || up.is_ascii_digit() || matches!(up, b'_' | b'.' | b'-'))
            {
                return Err(SymbolError::BadChar);
            }
            *dst = up;
        }
        Ok(Symbol {
            bytes,
            len: raw.len() as u8,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII, so this cannot fail.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Side {
    Buy = 1,
    Sell = 2,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// The binary protocol's encoding (1 = BUY, 2 = SELL).
    pub fn from_code(code: u8) -> Option<Side> {
        match code {
            1 => Some(Side::Buy),
            2 => Some(Side::Sell),
            _ => None,
        }
    }

    /// Case-insensitive, as the reference parses it.
    pub fn parse(s: &str) -> Option<Side> {
        if s.eq_ignore_ascii_case("BUY") {
            Some(Side::Buy)
        } else if s.eq_ignore_ascii_case("SELL") {
            Some(Side::Sell)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }

    /// Bit used in allowed-side masks.
    pub fn mask(self) -> u8 {
        self as u8
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OrderType {
    Limit = 1,
    Market = 2,
}

impl OrderType {
    pub fn from_code(code: u8) -> Option<OrderType> {
        match code {
            1 => Some(OrderType::Limit),
            2 => Some(OrderType::Market),
            _ => None,
        }
    }

    pub fn parse(s: &str) -> Option<OrderType> {
        if s.eq_ignore_ascii_case("LIMIT") {
            Some(OrderType::Limit)
        } else if s.eq_ignore_ascii_case("MARKET") {
            Some(OrderType::Market)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderType::Limit => "LIMIT",
            OrderType::Market => "MARKET",
        }
    }

    pub fn mask(self) -> u8 {
        self as u8
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TimeInForce {
    /// Good till cancelled: the reference's default.
    Gtc = 1,
    /// Good till date: needs `expireAt`.
    Gtd = 2,
    /// Immediate or cancel: what is not filled at once is cancelled (venues, issue 4).
    Ioc = 3,
}

impl TimeInForce {
    pub fn parse(s: &str) -> Option<TimeInForce> {
        if s.eq_ignore_ascii_case("GTC") {
            Some(TimeInForce::Gtc)
        } else if s.eq_ignore_ascii_case("GTD") {
            Some(TimeInForce::Gtd)
        } else if s.eq_ignore_ascii_case("IOC") {
            Some(TimeInForce::Ioc)
        } else {
            None
        }
    }

    pub fn from_code(code: u8) -> Option<TimeInForce> {
        match code {
            1 => Some(TimeInForce::Gtc),
            2 => Some(TimeInForce::Gtd),
            3 => Some(TimeInForce::Ioc),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "GTC",
            TimeInForce::Gtd => "GTD",
            TimeInForce::Ioc => "IOC",
        }
    }
}

/// Gateway-assigned order id: the shard in the top 16 bits, a per-shard counter below, so ids
/// are unique without coordination between shards and continue after a restart (replay finds
/// each shard's highest counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(pub u64);

impl OrderId {
    pub const SHARD_SHIFT: u32 = 48;

    pub fn new(shard: u16, counter: u64) -> OrderId {
        debug_assert!(counter < 1 << Self::SHARD_SHIFT);
        OrderId(((shard as u64) << Self::SHARD_SHIFT) | counter)
    }

    pub fn shard(self) -> u16 {
        (self.0 >> Self::SHARD_SHIFT) as u16
    }

    pub fn counter(self) -> u64 {
        self.0 & ((1 << Self::SHARD_SHIFT) - 1)
    }
}

/// An order as it arrives, after decoding and before risk. `price` is 0 for MARKET (the
/// reference ignores a MARKET order's price).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOrder {
    pub symbol: Symbol,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub qty: u64,
    pub price: u64,
    /// Epoch milliseconds, only for GTD.
    pub expire_at_ms: Option<u64>,
}

impl NewOrder {
    /// qty × price without overflow: u128 because both factors are client-chosen u64s.
    pub fn notional(&self) -> u128 {
        self.qty as u128 * self.price as u128
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: symbols are upper-cased and limited to the reference's syntax.
    #[test]
    fn symbol_parse_rules() {
        assert_eq!(Symbol::parse(b"btc").unwrap().as_str(), "BTC");
        assert_eq!(Symbol::parse(b"BRK.B-1_").unwrap().as_str(), "BRK.B-1_");
        assert_eq!(Symbol::parse(b""), Err(SymbolError::Empty));
        assert_eq!(Symbol::parse(b"ABCDEFGHI"), Err(SymbolError::TooLong));
        assert_eq!(Symbol::parse(b"AB CD"), Err(SymbolError::BadChar));
        assert_eq!(Symbol::parse("É".as_bytes()), Err(SymbolError::BadChar));
    }

    // Goal: order ids keep shard and counter apart.
    #[test]
    fn order_id_roundtrip() {
        let id = OrderId::new(7, 123_456);
        assert_eq!(id.shard(), 7);
        assert_eq!(id.counter(), 123_456);
    }
}
