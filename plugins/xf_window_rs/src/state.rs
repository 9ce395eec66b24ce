//! The hot-swap state of xf_window_rs: byte for byte the format of the C
//! plugin `xf_window` (plugins/xf_window/xf_window.c, "OBSXW001"), so that
//! a swap in either direction hands the open windows over and the output
//! continues as if one plugin had run throughout.
//!
//! Little-endian u64 words unless noted:
//!
//! ```text
//! "OBSXW001"  window_ms  slide_ms  have_cur  cur_pane  last_seq  last_t_ns  n_active
//! n_active times:  key (the 8 symbol bytes)  last_pane
//!                  n_panes times:  id  n_trades (u32) n_quotes (u32)  volume
//!                                  min_e4  max_e4  pv low 64 bits  pv high 64 bits
//! ```
//!
//! Symbols are written in the order of the active list, which the
//! importer rebuilds in the same order: the order of the records emitted
//! after the swap depends on it. `n_panes` is window_ms / slide_ms of both
//! sides, which must agree (else the state is refused).

use observatory_stage::Error;

use crate::{Pane, Window, NO_PANE};

const MAGIC: &[u8; 8] = b"OBSXW001";
const HEADER_BYTES: usize = 8 * 8;
const PANE_BYTES: usize = 56;

fn put(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

/// The active state of `w` in the format above.
pub(crate) fn export(w: &Window) -> Vec<u8> {
    let per_sym = 16 + w.n_panes as usize * PANE_BYTES;
    let mut b = Vec::with_capacity(HEADER_BYTES + w.active.len() * per_sym);
    b.extend_from_slice(MAGIC);
    put(&mut b, u64::from(w.window_ms));
    put(&mut b, w.slide_ns / 1_000_000);
    put(&mut b, u64::from(w.have_cur));
    put(&mut b, w.cur_pane);
    put(&mut b, w.last_seq);
    put(&mut b, w.last_t_ns);
    put(&mut b, w.active.len() as u64);
    for &i in &w.active {
        put(&mut b, w.syms[i as usize].key);
        put(&mut b, w.syms[i as usize].last_pane);
        for p in w.ring(i) {
            put(&mut b, p.id);
            put(&mut b, u64::from(p.n_trades) | u64::from(p.n_quotes) << 32);
            put(&mut b, p.volume);
            put(&mut b, p.min_e4 as u64);
            put(&mut b, p.max_e4 as u64);
            put(&mut b, p.pv as u64);
            put(&mut b, (p.pv >> 64) as u64);
        }
    }
    b
}

/// Reads u64 words from a buffer whose length was checked beforehand.
struct Words<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Words<'a> {
    fn next(&mut self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buf[self.at..self.at + 8]);
        self.at += 8;
        u64::from_le_bytes(b)
    }
}

/// Replaces the state of `w` with `buf`, exported by either plugin with
/// the same window_ms and slide_ms; `Error::STATE` refuses it. On failure
/// `w` is left empty but usable.
pub(crate) fn import(w: &mut Window, buf: &[u8]) -> Result<(), Error> {
    if buf.len() < HEADER_BYTES || &buf[..8] != MAGIC {
        return Err(Error::STATE);
    }
    let mut r = Words { buf, at: 8 };
    let (win, slide, have_cur) = (r.next(), r.next(), r.next());
    let (cur, seq, t_ns, n_active) = (r.next(), r.next(), r.next(), r.next());
    let per_sym = 16 + w.n_panes as usize * PANE_BYTES;
    let body = buf.len() - HEADER_BYTES;
    if win != u64::from(w.window_ms)
        || slide.wrapping_mul(1_000_000) != w.slide_ns
        || n_active > u64::from(w.max_syms)
        || body % per_sym != 0
        || (body / per_sym) as u64 != n_active
    {
        return Err(Error::STATE);
    }
    w.clear_symbols();
    w.have_cur = false;
    for _ in 0..n_active {
        let (key, last) = (r.next(), r.next());
        let i = match w.symbol_index(key) {
            // A symbol listed twice is already active.
            Some(i) if w.syms[i as usize].active_pos.is_none() => i,
            _ => return corrupt(w),
        };
        w.syms[i as usize].last_pane = last;
        let n = w.n_panes as usize;
        for k in 0..n {
            let id = r.next();
            let counts = r.next();
            let volume = r.next();
            let min_e4 = r.next() as i64;
            let max_e4 = r.next() as i64;
            let (lo, hi) = (r.next(), r.next());
            // A pane must sit in the ring slot of its id.
            if id != NO_PANE && id % n as u64 != k as u64 {
                return corrupt(w);
            }
            w.panes[i as usize * n + k] = Pane {
                id,
                n_trades: counts as u32,
                n_quotes: (counts >> 32) as u32,
                volume,
                min_e4,
                max_e4,
                pv: u128::from(hi) << 64 | u128::from(lo),
            };
        }
        w.activate(i);
    }
    w.have_cur = have_cur != 0;
    w.cur_pane = cur;
    w.last_seq = seq;
    w.last_t_ns = t_ns;
    Ok(())
}

fn corrupt(w: &mut Window) -> Result<(), Error> {
    w.clear_symbols();
    w.have_cur = false;
    Err(Error::STATE)
}
