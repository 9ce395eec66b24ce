//! Host services as safe methods: logging, counters, clocks, the seed.
//!
//! A `Host` is handed to `init` and may be kept in the instance: the host
//! table it wraps stays valid until `fini`, and the instance is dropped
//! inside `fini`. Services added in ABI 1.2 return `None` (or do nothing)
//! when an older host does not offer them.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;

use crate::abi::{self, ObsHost};
use crate::Error;

/// Log levels of `Host::log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

/// A counter registered in init; add to it with `Host::add`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter(i32);

/// Whether a counter reports an error reason of the stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterKind {
    Plain,
    Error,
}

/// The host services of one stage instance.
pub struct Host {
    raw: *const ObsHost,
}

// The table is valid until fini, which also drops the instance holding this
// handle, possibly on another thread than init: moving the handle is fine.
unsafe impl Send for Host {}

fn c_text(s: &str) -> CString {
    // Interior NUL bytes would cut the text short; show them instead.
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

fn str_of(p: *const c_char) -> &'static str {
    if p.is_null() {
        return "";
    }
    // SAFETY: the host's strings are NUL-terminated and live until fini,
    // longer than any instance that could read them.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("")
}

impl Host {
    /// # Safety
    /// `raw` must be the table given to init.
    pub(crate) unsafe fn from_raw(raw: *const ObsHost) -> Host {
        Host { raw }
    }

    fn table(&self) -> &ObsHost {
        // SAFETY: valid from init until fini (see the type's comment).
        unsafe { &*self.raw }
    }

    fn has_1_2(&self) -> bool {
        self.table().struct_size as usize >= abi::OBS_HOST_SIZE_1_2
    }

    /// The stage's name in the pipeline.
    pub fn stage_name(&self) -> &str {
        str_of(self.table().stage_name)
    }
    /// The .so this instance was loaded from.
    pub fn plugin_path(&self) -> &str {
        str_of(self.table().plugin_path)
    }
    /// Per-stage seed derived from the run's seed: use it for every random choice.
    pub fn seed(&self) -> u64 {
        self.table().seed
    }
    /// Configured records per batch.
    pub fn batch_size(&self) -> u32 {
        self.table().batch_size
    }

    /// One log line at `level`.
    pub fn log(&self, level: Level, msg: &str) {
        if let Some(log) = self.table().log {
            let text = c_text(msg);
            // SAFETY: "%s" with one NUL-terminated string argument.
            unsafe { log(self.raw, level as i32, b"%s\0".as_ptr() as *const c_char, text.as_ptr()) };
        }
    }
    pub fn error(&self, msg: &str) {
        self.log(Level::Error, msg)
    }
    pub fn warn(&self, msg: &str) {
        self.log(Level::Warn, msg)
    }
    pub fn info(&self, msg: &str) {
        self.log(Level::Info, msg)
    }
    pub fn debug(&self, msg: &str) {
        self.log(Level::Debug, msg)
    }

    /// Registers a counter (from init only). `name` matches `[a-z0-9_]+`.
    pub fn counter(&self, name: &str, kind: CounterKind, help: &str) -> Result<Counter, Error> {
        let reg = self.table().counter_register.ok_or(Error::PLUGIN)?;
        let (n, h) = (c_text(name), c_text(help));
        let k = match kind {
            CounterKind::Plain => abi::OBS_COUNTER_PLAIN,
            CounterKind::Error => abi::OBS_COUNTER_ERROR,
        };
        // SAFETY: valid strings for the call; the host copies them.
        let id = unsafe { reg(self.raw, n.as_ptr(), k, h.as_ptr()) };
        if id < 0 {
            Err(Error(id))
        } else {
            Ok(Counter(id))
        }
    }

    /// Adds `delta` to a counter. Cheap; add per batch when you can.
    pub fn add(&self, counter: Counter, delta: u64) {
        if let Some(add) = self.table().counter_add {
            // SAFETY: a counter id this host returned.
            unsafe { add(self.raw, counter.0, delta) };
        }
    }

    /// CLOCK_MONOTONIC in nanoseconds, the clock of intended times.
    pub fn now_ns(&self) -> u64 {
        match self.table().now_ns {
            // SAFETY: no arguments.
            Some(now) => unsafe { now() },
            None => 0,
        }
    }

    /// CLOCK_REALTIME - CLOCK_MONOTONIC at the start of the run (ABI 1.2).
    pub fn wall_offset_ns(&self) -> Option<i64> {
        if self.has_1_2() {
            Some(self.table().wall_offset_ns)
        } else {
            None
        }
    }

    /// Reports time spent waiting for something outside the pipeline (ABI 1.2).
    pub fn blocked_add(&self, ns: u64) {
        if self.has_1_2() {
            if let Some(f) = self.table().blocked_add {
                // SAFETY: stage thread, as documented.
                unsafe { f(self.raw, ns) };
            }
        }
    }

    /// Allocates `len` bytes with the host's accounted allocator and copies
    /// `bytes` there: the buffer export_state hands over (the host frees it).
    pub(crate) fn alloc_copy(&self, bytes: &[u8]) -> Result<*mut u8, Error> {
        let alloc = self.table().alloc.ok_or(Error::NOMEM)?;
        // SAFETY: a plain allocation; at least one byte so NULL means failure.
        let p = unsafe { alloc(self.raw, bytes.len().max(1)) } as *mut u8;
        if p.is_null() {
            return Err(Error::NOMEM);
        }
        // SAFETY: p has room for bytes.len() bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
        Ok(p)
    }
}
