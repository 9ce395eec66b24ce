//! One JSON tick, parsed by serde_json straight from the record's bytes.
//!
//! The top-level object is walked by a serde `Visitor`: keys are decoded
//! as `Text` (a `#[serde(borrow)] Cow<str>`, a borrow of the input unless
//! the key holds escapes), and every value is taken as a `&RawValue`, the
//! value's own text inside the record. Nothing is copied and nothing is
//! allocated for a tick without escapes. The schema is applied only after
//! the whole text has parsed, because jansson (xf_json_jansson, which this
//! parser must agree with) does the same: a syntax error anywhere wins over
//! a schema error anywhere, and a repeated key keeps its last value (so the
//! visitor keeps the last value per key instead of using a derived struct,
//! which refuses duplicates).
//!
//! serde_json accepts a few texts jansson 2.14 refuses; `audit` checks each
//! value for them: nesting deeper than 2048, integers beyond int64, reals
//! that overflow to infinity, `\u0000` and unpaired surrogate escapes (which
//! serde_json only rejects when it decodes a string, not when it skips one).
//! And one jansson quirk is reproduced: jansson reads one byte past a number
//! or a literal and pushes it back, and a pushed-back NUL byte is lost, so
//! one NUL byte right after a number or true/false/null is ignored. Only a
//! record that fails to parse and holds a NUL byte takes that path (a copy
//! with those bytes blanked, parsed again).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Length of the binary tick.
pub const TICK_LEN: usize = 48;
const MARKET_TRADE: u8 = 1;
const MARKET_QUOTE: u8 = 2;
const SYM_MAX: usize = 8;
const PX_MAX_E4: i64 = 10_000_000_000_000;
const PX_MAX_INT: i64 = 1_000_000_000;
/// jansson's JSON_PARSER_MAX_DEPTH: a value's depth counts the containers
/// around it plus itself (the top-level object is depth 1).
const MAX_DEPTH: usize = 2048;

/// The binary tick of plugins/common/market.h.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Tick {
    ts_ns: u64,
    px_e4: i64,
    ask_e4: i64,
    qty: u32,
    ask_qty: u32,
    sym: [u8; SYM_MAX],
    kind: u8,
    side: u8,
}

impl Tick {
    /// Writes the 48 little-endian bytes of market_tick (padding zero).
    pub fn write_to(&self, b: &mut [u8]) {
        b[0..8].copy_from_slice(&self.ts_ns.to_le_bytes());
        b[8..16].copy_from_slice(&self.px_e4.to_le_bytes());
        b[16..24].copy_from_slice(&self.ask_e4.to_le_bytes());
        b[24..28].copy_from_slice(&self.qty.to_le_bytes());
        b[28..32].copy_from_slice(&self.ask_qty.to_le_bytes());
        b[32..40].copy_from_slice(&self.sym);
        b[40] = self.kind;
        b[41] = self.side;
        for x in &mut b[42..48] {
            *x = 0;
        }
    }
}

/// What became of one record.
pub enum Verdict {
    Ok(Tick),
    Parse,
    Schema,
}

/// A decoded string that borrows from the input when it has no escapes.
#[derive(serde::Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

// The keys of the schema (union of trade and quote keys), as bits.
const K_TYPE: u32 = 0;
const K_SYM: u32 = 1;
const K_TS: u32 = 2;
const K_PX: u32 = 3;
const K_QTY: u32 = 4;
const K_SIDE: u32 = 5;
const K_BID: u32 = 6;
const K_ASK: u32 = 7;
const K_BSZ: u32 = 8;
const K_ASZ: u32 = 9;
const KEYS: [&str; 10] = ["type", "sym", "ts", "px", "qty", "side", "bid", "ask", "bsz", "asz"];
const TRADE_KEYS: u32 = bits(&[K_TYPE, K_SYM, K_TS, K_PX, K_QTY, K_SIDE]);
const QUOTE_KEYS: u32 = bits(&[K_TYPE, K_SYM, K_TS, K_BID, K_ASK, K_BSZ, K_ASZ]);

const fn bits(keys: &[u32]) -> u32 {
    let mut b = 0;
    let mut i = 0;
    while i < keys.len() {
        b |= 1 << keys[i];
        i += 1;
    }
    b
}

/// The members of the top-level object: the last value of each schema key.
#[derive(Default)]
struct Members<'a> {
    values: [Option<&'a RawValue>; 10],
    unknown: bool,
}

/// A parsed top-level value: jansson (without JSON_DECODE_ANY) takes only
/// an object or an array there.
enum Top<'a> {
    Object(Members<'a>),
    Array,
}

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object or array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
        let mut m = Members::default();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            if key.0.contains('\0') {
                return Err(de::Error::custom("\\u0000 in a key"));
            }
            audit(value.get(), 2).map_err(de::Error::custom)?;
            match KEYS.iter().position(|k| *k == key.0) {
                Some(i) => m.values[i] = Some(value),
                None => m.unknown = true,
            }
        }
        Ok(Top::Object(m))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top<'de>, A::Error> {
        while let Some(value) = seq.next_element::<&'de RawValue>()? {
            audit(value.get(), 2).map_err(de::Error::custom)?;
        }
        Ok(Top::Array)
    }
}

/// Checks one value that serde_json accepted for what jansson refuses (see
/// the file comment). `depth` is the depth of the value itself.
fn audit(text: &str, depth: usize) -> Result<(), &'static str> {
    let b = text.as_bytes();
    let mut open = 0usize; // containers opened inside this value
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if matches!(c, b'[' | b'{' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') && depth + open > MAX_DEPTH {
            return Err("nested too deep");
        }
        match c {
            b'[' | b'{' => {
                open += 1;
                i += 1;
            }
            b']' | b'}' => {
                open -= 1;
                i += 1;
            }
            b'"' => i = audit_string(b, i + 1)?,
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                    i += 1;
                }
                number(&text[start..i])?;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Scans a string body from `i` (after the opening quote); returns the index
/// after the closing quote.
fn audit_string(b: &[u8], mut i: usize) -> Result<usize, &'static str> {
    while i < b.len() {
        match b[i] {
            b'"' => return Ok(i + 1),
            b'\\' if b.get(i + 1) == Some(&b'u') => {
                let cp = hex4(b, i + 2)?;
                i += 6;
                if cp == 0 {
                    return Err("\\u0000 in a string");
                }
                if (0xdc00..0xe000).contains(&cp) {
                    return Err("unpaired low surrogate");
                }
                if (0xd800..0xdc00).contains(&cp) {
                    if b.get(i) != Some(&b'\\') || b.get(i + 1) != Some(&b'u') {
                        return Err("unpaired high surrogate");
                    }
                    let lo = hex4(b, i + 2)?;
                    if !(0xdc00..0xe000).contains(&lo) {
                        return Err("unpaired high surrogate");
                    }
                    i += 6;
                }
            }
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    Err("unterminated string")
}

fn hex4(b: &[u8], i: usize) -> Result<u32, &'static str> {
    let s = b.get(i..i + 4).ok_or("short \\u escape")?;
    let s = std::str::from_utf8(s).map_err(|_| "bad \\u escape")?;
    u32::from_str_radix(s, 16).map_err(|_| "bad \\u escape")
}

/// A JSON number as jansson reads it: an integer (no fraction, no exponent)
/// must fit int64, a real must not overflow.
enum Num {
    Int(i64),
    Real(f64),
}

fn number(text: &str) -> Result<Num, &'static str> {
    if text.bytes().any(|c| matches!(c, b'.' | b'e' | b'E')) {
        match text.parse::<f64>() {
            Ok(d) if d.is_finite() => Ok(Num::Real(d)),
            _ => Err("real out of range"),
        }
    } else {
        text.parse::<i64>().map(Num::Int).map_err(|_| "integer out of range")
    }
}

/// Parses one record.
pub fn parse_tick(data: &[u8]) -> Verdict {
    match serde_json::from_slice::<Top<'_>>(data) {
        Ok(top) => schema(top),
        Err(_) if data.contains(&0) => {
            let copy = drop_pushed_back_nuls(data);
            match serde_json::from_slice::<Top<'_>>(&copy) {
                Ok(top) => schema(top),
                Err(_) => Verdict::Parse,
            }
        }
        Err(_) => Verdict::Parse,
    }
}

/// The record with a space for each NUL byte that directly follows, outside
/// a string, the last character of a number or of true/false/null: the
/// bytes jansson loses when it pushes them back.
fn drop_pushed_back_nuls(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let (mut in_str, mut esc) = (false, false);
    for (i, &c) in data.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else if c == b'"' {
            in_str = true;
        } else if c == 0 && i > 0 && data[i - 1].is_ascii_alphanumeric() {
            // A space, not nothing: the token still ends here ("4\05" is
            // two numbers to jansson, not 45).
            out.push(b' ');
            continue;
        }
        out.push(c);
    }
    out
}

/// The decoded text of a string value, or None for any other value.
fn string<'a>(v: Option<&'a RawValue>) -> Option<Cow<'a, str>> {
    let v = v?;
    if !v.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<Text<'a>>(v.get()).ok().map(|t| t.0)
}

fn num(v: Option<&RawValue>) -> Option<Num> {
    let t = v?.get();
    if t.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        number(t).ok()
    } else {
        None
    }
}

/// A non-negative JSON integer no larger than max.
fn uint(v: Option<&RawValue>, max: u64) -> Option<u64> {
    match num(v)? {
        Num::Int(i) if i >= 0 && i as u64 <= max => Some(i as u64),
        _ => None,
    }
}

/// A price, by the rules of market.h (market_price_from_int/_double).
fn price(v: Option<&RawValue>) -> Option<i64> {
    match num(v)? {
        Num::Int(i) if (1..=PX_MAX_INT).contains(&i) => Some(i * 10_000),
        Num::Int(_) => None,
        Num::Real(d) => {
            let x = d * 10_000.0;
            if !(x >= 0.5 && x < PX_MAX_E4 as f64 + 0.5) {
                return None;
            }
            let r = round_half_even(x);
            if (x - r).abs() > r * (2.0f64).powi(-50) {
                return None;
            }
            Some(r as i64)
        }
    }
}

/// C's nearbyint() in the default rounding mode (ties to even), without
/// f64::round_ties_even (Rust 1.77).
fn round_half_even(x: f64) -> f64 {
    let r = x.round(); // ties away from zero
    if (r - x).abs() == 0.5 && r % 2.0 != 0.0 {
        r - (r - x).signum()
    } else {
        r
    }
}

fn sym_ok(s: &str) -> bool {
    (1..=SYM_MAX).contains(&s.len())
        && s.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
}

/// Applies the schema of docs/plugins.md to a parsed record.
fn schema(top: Top<'_>) -> Verdict {
    match top {
        Top::Array => Verdict::Schema,
        Top::Object(m) => tick(&m).map_or(Verdict::Schema, Verdict::Ok),
    }
}

fn tick(m: &Members<'_>) -> Option<Tick> {
    let v = |k: u32| m.values[k as usize];
    let trade = match string(v(K_TYPE))?.as_ref() {
        "trade" => true,
        "quote" => false,
        _ => return None,
    };
    let present = (0..10u32).filter(|&k| v(k).is_some()).fold(0, |b, k| b | 1 << k);
    if m.unknown || present != if trade { TRADE_KEYS } else { QUOTE_KEYS } {
        return None;
    }
    let mut t = Tick::default();
    let sym = string(v(K_SYM))?;
    if !sym_ok(&sym) {
        return None;
    }
    t.sym[..sym.len()].copy_from_slice(sym.as_bytes());
    t.ts_ns = uint(v(K_TS), i64::MAX as u64)?;
    if trade {
        t.kind = MARKET_TRADE;
        t.px_e4 = price(v(K_PX))?;
        t.qty = uint(v(K_QTY), u32::MAX as u64)? as u32;
        let side = string(v(K_SIDE))?;
        if side != "B" && side != "S" {
            return None;
        }
        t.side = side.as_bytes()[0];
    } else {
        t.kind = MARKET_QUOTE;
        t.px_e4 = price(v(K_BID))?;
        t.ask_e4 = price(v(K_ASK))?;
        t.qty = uint(v(K_BSZ), u32::MAX as u64)? as u32;
        t.ask_qty = uint(v(K_ASZ), u32::MAX as u64)? as u32;
    }
    Some(t)
}
