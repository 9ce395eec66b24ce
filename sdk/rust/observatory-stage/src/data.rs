//! Records in and records out: the borrowed input batch and the host-owned
//! output, with lifetimes that encode the ABI's rules.
//!
//! Everything a callback receives is borrowed for the duration of the call.
//! Here that is the lifetime `'a` of `Batch<'a>`, `Record<'a>` and
//! `Output<'a>`: the compiler refuses to keep a record, its bytes or the
//! output past the callback that received them. `Output::pass` takes only a
//! `Record<'a>` of the same call (the host keeps that batch alive until the
//! output is consumed), and a `Reservation` borrows the output mutably, so
//! no other emit, reserve or pass can move the arena while the reserved
//! bytes are being written.

use std::marker::PhantomData;

use crate::abi::{ObsBatch, ObsGenRequest, ObsOut, ObsRecord, OBS_OK};
use crate::Error;

/// One input record, borrowed for the callback.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    raw: &'a ObsRecord,
}

impl<'a> Record<'a> {
    /// The record's bytes.
    pub fn data(&self) -> &'a [u8] {
        if self.raw.len == 0 || self.raw.data.is_null() {
            return &[];
        }
        // SAFETY: the host guarantees `len` readable bytes at `data` while
        // the batch is borrowed, which `'a` bounds.
        unsafe { std::slice::from_raw_parts(self.raw.data, self.raw.len as usize) }
    }
    /// Sequence number, assigned by the generator stage.
    pub fn seq(&self) -> u64 {
        self.raw.seq
    }
    /// When the record was meant to be sent (CLOCK_MONOTONIC ns).
    pub fn t_intended_ns(&self) -> u64 {
        self.raw.t_intended_ns
    }
    /// Key hash, 0 for none.
    pub fn key(&self) -> u32 {
        self.raw.key
    }
}

/// A read-only batch of records, borrowed for one callback.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    records: &'a [ObsRecord],
}

impl<'a> Batch<'a> {
    /// # Safety
    /// `raw` must point to a valid batch for `'a`.
    pub(crate) unsafe fn from_raw(raw: *const ObsBatch) -> Batch<'a> {
        let b = &*raw;
        let records = if b.n_records == 0 || b.records.is_null() {
            &[][..]
        } else {
            std::slice::from_raw_parts(b.records, b.n_records as usize)
        };
        Batch { records }
    }
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }
    /// True when the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    /// The i-th record, if any.
    pub fn get(&self, i: usize) -> Option<Record<'a>> {
        self.records.get(i).map(|raw| Record { raw })
    }
    /// The records in order.
    pub fn iter(&self) -> impl Iterator<Item = Record<'a>> + 'a {
        self.records.iter().map(|raw| Record { raw })
    }
}

/// What the host asks a generator for: `len()` records with
/// `seq = first_seq() + i` and intended time `t_intended_ns(i)`.
pub struct Request<'a> {
    n_records: u32,
    first_seq: u64,
    times: &'a [u64],
}

impl<'a> Request<'a> {
    /// # Safety
    /// `raw` must point to a valid request for `'a`.
    pub(crate) unsafe fn from_raw(raw: *const ObsGenRequest) -> Request<'a> {
        let r = &*raw;
        let times = if r.t_intended_ns.is_null() || r.n_records == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(r.t_intended_ns, r.n_records as usize)
        };
        Request { n_records: r.n_records, first_seq: r.first_seq, times }
    }
    /// How many records to emit.
    pub fn len(&self) -> usize {
        self.n_records as usize
    }
    /// True when nothing is asked for.
    pub fn is_empty(&self) -> bool {
        self.n_records == 0
    }
    /// Sequence number of the first record.
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }
    /// Intended time of record `i` (0 when the host gave none).
    pub fn t_intended_ns(&self, i: usize) -> u64 {
        self.times.get(i).copied().unwrap_or(0)
    }
}

/// The output of one callback: records copied into the host's arena, or
/// input records passed through untouched. Invariant in `'a` so that only
/// records of this call's batch can be passed.
pub struct Output<'a> {
    raw: *mut ObsOut,
    _call: PhantomData<fn(&'a ()) -> &'a ()>,
}

impl<'a> Output<'a> {
    /// # Safety
    /// `raw` must point to a valid obs_out for `'a`.
    pub(crate) unsafe fn from_raw(raw: *mut ObsOut) -> Output<'a> {
        Output { raw, _call: PhantomData }
    }

    /// Records in the output so far (emitted and passed).
    pub fn len(&self) -> usize {
        // SAFETY: raw is valid for 'a.
        unsafe { (*self.raw).n_records as usize }
    }
    /// True when nothing was output yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes room for one record of `len` bytes (obs_out_reserve). grow()
    /// may rewrite *raw, so no Rust reference to it is held across the call.
    fn room(&mut self, len: u64) -> Result<*mut u8, Error> {
        let need = (len + 7) & !7u64;
        // SAFETY: raw is valid for 'a; fields are read and written through
        // the raw pointer only.
        unsafe {
            let o = self.raw;
            if (*o).n_records == (*o).cap_records || (*o).arena_cap - (*o).arena_used < need {
                let grow = (*o).grow.ok_or(Error::NOMEM)?;
                if grow(o, 1, len) != OBS_OK {
                    return Err(Error::NOMEM);
                }
            }
            Ok((*o).arena.add((*o).arena_used as usize))
        }
    }

    fn commit_raw(&mut self, len: u64, seq: u64, t_intended_ns: u64) {
        // SAFETY: room() made space for one record and `len` bytes.
        unsafe {
            let o = self.raw;
            let r = (*o).records.add((*o).n_records as usize);
            r.write(ObsRecord {
                data: (*o).arena.add((*o).arena_used as usize),
                len: len as u32,
                key: 0,
                seq,
                t_intended_ns,
            });
            (*o).n_records += 1;
            (*o).arena_used += (len + 7) & !7u64;
        }
    }

    /// Copies `data` into the arena as a new record (obs_out_emit).
    /// Fails with `Error::NOMEM` when the batch bound is reached.
    pub fn emit(&mut self, data: &[u8], seq: u64, t_intended_ns: u64) -> Result<(), Error> {
        if data.len() > u32::MAX as usize {
            return Err(Error::INVAL);
        }
        let p = self.room(data.len() as u64)?;
        if !data.is_empty() {
            // SAFETY: room() returned `data.len()` writable bytes.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        }
        self.commit_raw(data.len() as u64, seq, t_intended_ns);
        Ok(())
    }

    /// Reserves `len` bytes to build a record in place (obs_out_reserve).
    /// The bytes start zeroed; finish with `Reservation::commit`. While the
    /// reservation lives, the output cannot be used otherwise.
    pub fn reserve(&mut self, len: usize) -> Result<Reservation<'_, 'a>, Error> {
        if len > u32::MAX as usize {
            return Err(Error::INVAL);
        }
        let mut ptr = self.room(len as u64)?;
        if len == 0 || ptr.is_null() {
            // Slices need a non-null pointer even when empty.
            ptr = std::ptr::NonNull::dangling().as_ptr();
        } else {
            // SAFETY: `len` writable bytes at ptr; zeroing makes them initialised.
            unsafe { std::ptr::write_bytes(ptr, 0, len) };
        }
        Ok(Reservation { out: self, ptr, len })
    }

    /// Passes an input record of this call downstream without copying it
    /// (obs_out_pass).
    pub fn pass(&mut self, rec: &Record<'a>) -> Result<(), Error> {
        // SAFETY: as in room(); grow() may rewrite *raw.
        unsafe {
            let o = self.raw;
            if (*o).n_records == (*o).cap_records {
                let grow = (*o).grow.ok_or(Error::NOMEM)?;
                if grow(o, 1, 0) != OBS_OK {
                    return Err(Error::NOMEM);
                }
            }
            (*o).records.add((*o).n_records as usize).write(*rec.raw);
            (*o).n_records += 1;
            (*o).n_passed += 1;
        }
        Ok(())
    }

    /// Sets the key hash of the record output last (obs_out_set_key).
    /// Returns `Error::INVAL` when nothing was output yet.
    pub fn set_key(&mut self, key: u32) -> Result<(), Error> {
        // SAFETY: n_records > 0 means records[n_records - 1] is ours.
        unsafe {
            let o = self.raw;
            if (*o).n_records == 0 {
                return Err(Error::INVAL);
            }
            (*(*o).records.add((*o).n_records as usize - 1)).key = key;
        }
        Ok(())
    }
}

/// Bytes reserved in the output arena, writable until `commit`.
pub struct Reservation<'o, 'a> {
    out: &'o mut Output<'a>,
    ptr: *mut u8,
    len: usize,
}

impl<'o, 'a> Reservation<'o, 'a> {
    /// Appends the record: the first `len` bytes written (at most what was
    /// reserved; more is `Error::INVAL`, and nothing is appended).
    pub fn commit(self, len: usize, seq: u64, t_intended_ns: u64) -> Result<(), Error> {
        if len > self.len {
            return Err(Error::INVAL);
        }
        self.out.commit_raw(len as u64, seq, t_intended_ns);
        Ok(())
    }
}

impl std::ops::Deref for Reservation<'_, '_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` initialised bytes, exclusively ours while `out` is borrowed.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl std::ops::DerefMut for Reservation<'_, '_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}
