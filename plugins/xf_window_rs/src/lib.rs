//! xf_window_rs - per-symbol sliding-window statistics over binary ticks,
//! the Rust port of `xf_window` (plugins/xf_window/xf_window.c; the
//! contract is in docs/plugins.md, "xf_window"). It emits the same window
//! records in the same order, counts the same errors, and reads and writes
//! the same hot-swap state, so either plugin can take over from the other
//! in a running pipeline (`tests/rust/test_window_equiv.c` holds it to
//! that on generated ticks; `tests/rust/test_window_swap.c` swaps C ->
//! Rust -> C under load).
//!
//! Time is cut into panes of `slide_ms`; a window is `window_ms` long and
//! ends on a pane boundary. When a tick of a later pane arrives every
//! boundary it passes is closed: each symbol with a tick in that window
//! gets one `market_window` record. A tick older than the current pane is
//! late (counted, dropped). `flush` closes what is left.
//!
//! Output order is part of the contract (a consumer comparing runs sees
//! records, not sets), so the list of active symbols is kept exactly as
//! the C plugin keeps it: appended on a symbol's first tick in the newest
//! window, and on removal the last entry moves into the freed place.
//! The state is in state.rs.

mod state;

use std::collections::HashMap;

use observatory_stage::{
    export_stage, Batch, Counter, CounterKind, Error, Host, Output, Param, Params, Stage, Transform,
};

/// Bound on window_ms / slide_ms, as in the C plugin.
const MAX_PANES: i64 = 1024;
/// A pane slot that holds nothing.
const NO_PANE: u64 = u64::MAX;
const TICK_LEN: usize = 48;
const WINDOW_LEN: usize = 64;
const MARKET_TRADE: u8 = 1;
const MARKET_QUOTE: u8 = 2;
const MARKET_WINDOW: u8 = 3;

/// Partial aggregate of one symbol over one pane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pane {
    /// ts_ns / slide_ns of the ticks in it, or NO_PANE.
    id: u64,
    n_trades: u32,
    n_quotes: u32,
    volume: u64,
    min_e4: i64,
    max_e4: i64,
    /// Sum of trade price_e4 * qty.
    pv: u128,
}

const EMPTY_PANE: Pane = Pane { id: NO_PANE, n_trades: 0, n_quotes: 0, volume: 0, min_e4: 0, max_e4: 0, pv: 0 };

struct Symbol {
    /// The 8 symbol bytes, as a little-endian word (the C plugin's key).
    key: u64,
    /// Newest pane with a tick.
    last_pane: u64,
    /// Index in the active list, if active.
    active_pos: Option<u32>,
}

/// The fields of a binary tick (plugins/common/market.h) this stage reads.
struct Tick {
    ts_ns: u64,
    px_e4: i64,
    ask_e4: i64,
    qty: u32,
    key: u64,
    kind: u8,
}

fn u64_at(d: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[off..off + 8]);
    u64::from_le_bytes(b)
}

fn u32_at(d: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&d[off..off + 4]);
    u32::from_le_bytes(b)
}

impl Tick {
    /// A trade or quote tick, or None for anything else (a window record,
    /// a record of another length or kind).
    fn read(d: &[u8]) -> Option<Tick> {
        if d.len() != TICK_LEN || (d[40] != MARKET_TRADE && d[40] != MARKET_QUOTE) {
            return None;
        }
        Some(Tick {
            ts_ns: u64_at(d, 0),
            px_e4: u64_at(d, 8) as i64,
            ask_e4: u64_at(d, 16) as i64,
            qty: u32_at(d, 24),
            key: u64_at(d, 32),
            kind: d[40],
        })
    }
}

pub(crate) struct Window {
    host: Host,
    slide_ns: u64,
    window_ms: u32,
    n_panes: u32,
    max_syms: u32,
    syms: Vec<Symbol>,
    /// n_panes per symbol: symbol i owns [i * n_panes, (i + 1) * n_panes).
    panes: Vec<Pane>,
    index: HashMap<u64, u32>,
    /// Indexes of the symbols with a tick in the newest window.
    active: Vec<u32>,
    have_cur: bool,
    /// Pane of the newest tick; earlier boundaries are closed.
    cur_pane: u64,
    last_seq: u64,
    last_t_ns: u64,
    c_bad: Counter,
    c_late: Counter,
    c_full: Counter,
}

impl Stage for Window {
    const NAME: &'static str = "xf_window_rs";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str =
        "per-symbol sliding windows (count, volume, VWAP, min, max) over binary ticks (Rust port of xf_window)";
    const STATE: bool = true;

    fn params() -> Vec<Param> {
        vec![
            Param::int("window_ms", 1000)
                .range(1.0, 86400000.0)
                .help("window length in ms of event time; a multiple of slide_ms"),
            Param::int("slide_ms", 250)
                .range(1.0, 86400000.0)
                .help("distance between window ends in ms; window_ms / slide_ms must be at most 1024"),
            Param::int("max_symbols", 100000)
                .range(1.0, 10000000.0)
                .help("most symbols tracked; ticks of further symbols are dropped"),
        ]
    }

    fn init(host: Host, params: &Params<'_>) -> Result<Self, Error> {
        let win = params.int("window_ms")?;
        let slide = params.int("slide_ms")?;
        let max = params.int("max_symbols")?;
        if win < 1 || slide < 1 || max < 1 || win > 86400000 || max > 10000000 {
            host.error("xf_window_rs: invalid parameters");
            return Err(Error::INVAL);
        }
        if win % slide != 0 || win / slide > MAX_PANES {
            host.error(&format!(
                "xf_window_rs: window_ms ({}) must be a multiple of slide_ms ({}), at most {} times it",
                win, slide, MAX_PANES
            ));
            return Err(Error::INVAL);
        }
        let c_bad = host.counter("bad_record", CounterKind::Error, "records that are not binary ticks")?;
        let c_late = host.counter("late_tick", CounterKind::Error, "ticks older than the current pane, dropped")?;
        let c_full =
            host.counter("symbol_limit", CounterKind::Error, "ticks dropped because max_symbols was reached")?;
        Ok(Window {
            host,
            slide_ns: slide as u64 * 1_000_000,
            window_ms: win as u32,
            n_panes: (win / slide) as u32,
            max_syms: max as u32,
            syms: Vec::new(),
            panes: Vec::new(),
            index: HashMap::new(),
            active: Vec::new(),
            have_cur: false,
            cur_pane: 0,
            last_seq: 0,
            last_t_ns: 0,
            c_bad,
            c_late,
            c_full,
        })
    }

    fn export_state(&mut self) -> Result<Vec<u8>, Error> {
        Ok(state::export(self))
    }

    fn import_state(&mut self, buf: &[u8]) -> Result<(), Error> {
        state::import(self, buf)
    }
}

impl Window {
    /// Forgets every symbol (the tables of a fresh instance).
    fn clear_symbols(&mut self) {
        self.syms.clear();
        self.panes.clear();
        self.index.clear();
        self.active.clear();
    }

    /// Finds or adds the symbol `key`; None when max_symbols is reached.
    fn symbol_index(&mut self, key: u64) -> Option<u32> {
        if let Some(&i) = self.index.get(&key) {
            return Some(i);
        }
        if self.syms.len() as u32 == self.max_syms {
            return None;
        }
        let i = self.syms.len() as u32;
        self.syms.push(Symbol { key, last_pane: NO_PANE, active_pos: None });
        self.panes.extend(std::iter::repeat(EMPTY_PANE).take(self.n_panes as usize));
        self.index.insert(key, i);
        Some(i)
    }

    fn ring(&self, i: u32) -> &[Pane] {
        let n = self.n_panes as usize;
        &self.panes[i as usize * n..(i as usize + 1) * n]
    }

    fn activate(&mut self, i: u32) {
        if self.syms[i as usize].active_pos.is_none() {
            self.syms[i as usize].active_pos = Some(self.active.len() as u32);
            self.active.push(i);
        }
    }

    /// Removes active[pos]; the last active symbol takes its place.
    fn deactivate(&mut self, pos: usize) {
        let i = self.active.swap_remove(pos);
        if pos < self.active.len() {
            let moved = self.active[pos];
            self.syms[moved as usize].active_pos = Some(pos as u32);
        }
        self.syms[i as usize].active_pos = None;
    }

    /// Closes the boundary at pane `j`: emits the window [j - n_panes, j)
    /// of every active symbol, then deactivates the symbols that will have
    /// nothing in the next window.
    fn close_boundary(&mut self, j: u64, seq: u64, t_ns: u64, out: &mut Output<'_>) -> Result<(), Error> {
        let mut pos = 0;
        while pos < self.active.len() {
            let i = self.active[pos];
            let (mut n_trades, mut n_quotes, mut volume, mut pv) = (0u32, 0u32, 0u64, 0u128);
            let (mut min_e4, mut max_e4) = (i64::MAX, i64::MIN);
            for p in self.ring(i) {
                if p.id == NO_PANE || p.id >= j || p.id.wrapping_add(u64::from(self.n_panes)) < j {
                    continue;
                }
                n_trades = n_trades.wrapping_add(p.n_trades);
                n_quotes = n_quotes.wrapping_add(p.n_quotes);
                volume = volume.wrapping_add(p.volume);
                pv = pv.wrapping_add(p.pv);
                min_e4 = min_e4.min(p.min_e4);
                max_e4 = max_e4.max(p.max_e4);
            }
            if n_trades.wrapping_add(n_quotes) > 0 {
                // Round half up; prices are positive.
                let vwap_e4 = if volume != 0 {
                    (pv.wrapping_add(u128::from(volume / 2)) / u128::from(volume)) as i64
                } else {
                    0
                };
                let mut rec = [0u8; WINDOW_LEN];
                rec[0..8].copy_from_slice(&j.wrapping_mul(self.slide_ns).to_le_bytes());
                rec[8..16].copy_from_slice(&vwap_e4.to_le_bytes());
                rec[16..24].copy_from_slice(&min_e4.to_le_bytes());
                rec[24..32].copy_from_slice(&max_e4.to_le_bytes());
                rec[32..40].copy_from_slice(&self.syms[i as usize].key.to_le_bytes());
                rec[40] = MARKET_WINDOW;
                rec[44..48].copy_from_slice(&self.window_ms.to_le_bytes());
                rec[48..52].copy_from_slice(&n_trades.to_le_bytes());
                rec[52..56].copy_from_slice(&n_quotes.to_le_bytes());
                rec[56..64].copy_from_slice(&volume.to_le_bytes());
                out.emit(&rec, seq, t_ns)?;
            }
            // The next window is [j + 1 - n_panes, j + 1).
            if self.syms[i as usize].last_pane.wrapping_add(u64::from(self.n_panes)) <= j {
                self.deactivate(pos); // moves another symbol to pos
            } else {
                pos += 1;
            }
        }
        Ok(())
    }

    /// Closes boundaries cur_pane + 1 ..= to_pane (stopping early when no
    /// symbol is active) and makes to_pane current.
    fn advance(&mut self, to_pane: u64, seq: u64, t_ns: u64, out: &mut Output<'_>) -> Result<(), Error> {
        let mut j = self.cur_pane.wrapping_add(1);
        while j <= to_pane && !self.active.is_empty() {
            self.close_boundary(j, seq, t_ns, out)?;
            j += 1;
        }
        self.cur_pane = to_pane;
        Ok(())
    }

    fn add_tick(&mut self, i: u32, pane_id: u64, t: &Tick) {
        let n = self.n_panes as usize;
        let p = &mut self.panes[i as usize * n + (pane_id % self.n_panes as u64) as usize];
        if p.id != pane_id {
            *p = Pane { id: pane_id, min_e4: i64::MAX, max_e4: i64::MIN, ..EMPTY_PANE };
        }
        let px = if t.kind == MARKET_TRADE {
            p.n_trades = p.n_trades.wrapping_add(1);
            p.volume = p.volume.wrapping_add(u64::from(t.qty));
            p.pv = p.pv.wrapping_add(u128::from(t.px_e4 as u64) * u128::from(t.qty));
            t.px_e4
        } else {
            p.n_quotes = p.n_quotes.wrapping_add(1);
            t.px_e4.wrapping_add(t.ask_e4) / 2
        };
        p.min_e4 = p.min_e4.min(px);
        p.max_e4 = p.max_e4.max(px);
        self.syms[i as usize].last_pane = pane_id;
        self.activate(i);
    }
}

impl Transform for Window {
    fn process<'a>(&mut self, input: Batch<'a>, out: &mut Output<'a>) -> Result<(), Error> {
        let (mut n_bad, mut n_late, mut n_full) = (0u64, 0u64, 0u64);
        let mut rc = Ok(());
        for r in input.iter() {
            let t = match Tick::read(r.data()) {
                Some(t) => t,
                None => {
                    n_bad += 1;
                    continue;
                }
            };
            let pane_id = t.ts_ns / self.slide_ns;
            if !self.have_cur {
                self.have_cur = true;
                self.cur_pane = pane_id;
            } else if pane_id < self.cur_pane {
                n_late += 1;
                continue;
            } else if pane_id > self.cur_pane {
                if let Err(e) = self.advance(pane_id, r.seq(), r.t_intended_ns(), out) {
                    rc = Err(e);
                    break;
                }
            }
            let i = match self.symbol_index(t.key) {
                Some(i) => i,
                None => {
                    n_full += 1;
                    continue;
                }
            };
            self.add_tick(i, pane_id, &t);
            self.last_seq = r.seq();
            self.last_t_ns = r.t_intended_ns();
        }
        if n_bad > 0 {
            self.host.add(self.c_bad, n_bad);
        }
        if n_late > 0 {
            self.host.add(self.c_late, n_late);
        }
        if n_full > 0 {
            self.host.add(self.c_full, n_full);
        }
        rc
    }

    /// Emits every window that still holds a tick.
    fn flush(&mut self, out: &mut Output<'_>) -> Result<(), Error> {
        if !self.have_cur {
            return Ok(());
        }
        let to = self.cur_pane.wrapping_add(u64::from(self.n_panes));
        let (seq, t_ns) = (self.last_seq, self.last_t_ns);
        self.advance(to, seq, t_ns, out)
    }
}

export_stage!(transform Window);
