//! The C ABI of `observatory/stage.h`, mirrored field for field.
//!
//! These are the raw structs the host and a plugin exchange. Plugin code
//! never touches them: the safe types of this crate (`Batch`, `Output`,
//! `Host`, `Params`) wrap them. They are public so that the layout test
//! (`tests/abi_layout.rs`) can compare every size and offset with what a C
//! compiler computes from the header, and for the rare plugin that needs a
//! field the safe layer does not expose yet.

use std::os::raw::{c_char, c_int, c_void};

/// "OBST" in ASCII: first field of every descriptor.
pub const OBS_STAGE_MAGIC: u32 = 0x4f42_5354;
/// The ABI this crate mirrors.
pub const OBS_ABI_MAJOR: u16 = 1;
pub const OBS_ABI_MINOR: u16 = 2;

pub const OBS_OK: c_int = 0;
pub const OBS_DONE: c_int = 1;
pub const OBS_EINVAL: c_int = -1;
pub const OBS_ENOMEM: c_int = -2;
pub const OBS_EIO: c_int = -3;
pub const OBS_EABI: c_int = -4;
pub const OBS_ENOENT: c_int = -5;
pub const OBS_ESTATE: c_int = -6;
pub const OBS_EPLUGIN: c_int = -7;
pub const OBS_ECONFIG: c_int = -8;
pub const OBS_EAGAIN: c_int = -9;

pub const OBS_KIND_GENERATOR: u32 = 1;
pub const OBS_KIND_TRANSFORM: u32 = 2;
pub const OBS_KIND_SINK: u32 = 3;

pub const OBS_PARAM_INT: u32 = 1;
pub const OBS_PARAM_DOUBLE: u32 = 2;
pub const OBS_PARAM_BOOL: u32 = 3;
pub const OBS_PARAM_STRING: u32 = 4;

pub const OBS_LOG_ERROR: c_int = 0;
pub const OBS_LOG_WARN: c_int = 1;
pub const OBS_LOG_INFO: c_int = 2;
pub const OBS_LOG_DEBUG: c_int = 3;

pub const OBS_COUNTER_PLAIN: c_int = 0;
pub const OBS_COUNTER_ERROR: c_int = 1;

pub const OBS_STAGE_SOURCE: u32 = 1;

/// `obs_record`: a borrowed byte span with its sequence number and intended time.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ObsRecord {
    pub data: *const u8,
    pub len: u32,
    pub key: u32,
    pub seq: u64,
    pub t_intended_ns: u64,
}

/// `obs_batch`: a read-only vector of records, borrowed for one callback.
#[repr(C)]
#[derive(Debug)]
pub struct ObsBatch {
    pub records: *const ObsRecord,
    pub n_records: u32,
    pub reserved: u32,
}

pub type GrowFn = unsafe extern "C" fn(out: *mut ObsOut, n_records: u32, n_bytes: u64) -> c_int;

/// `obs_out`: a record vector over a host-owned arena.
#[repr(C)]
#[derive(Debug)]
pub struct ObsOut {
    pub records: *mut ObsRecord,
    pub n_records: u32,
    pub cap_records: u32,
    pub arena: *mut u8,
    pub arena_used: u64,
    pub arena_cap: u64,
    pub n_passed: u32,
    pub reserved: u32,
    pub grow: Option<GrowFn>,
    pub host_private: *mut c_void,
}

/// `obs_param_desc`: one declared parameter.
#[repr(C)]
#[derive(Debug)]
pub struct ObsParamDesc {
    pub name: *const c_char,
    pub type_: u32,
    pub reserved: u32,
    pub default_value: *const c_char,
    pub min: f64,
    pub max: f64,
    pub help: *const c_char,
}

/// `obs_param_value`: a validated parameter value.
#[repr(C)]
#[derive(Debug)]
pub struct ObsParamValue {
    pub name: *const c_char,
    pub type_: u32,
    pub is_default: u32,
    pub i: i64,
    pub d: f64,
    pub s: *const c_char,
}

/// `obs_params`: the values given to init, in declaration order.
#[repr(C)]
#[derive(Debug)]
pub struct ObsParams {
    pub values: *const ObsParamValue,
    pub n_values: u32,
    pub reserved: u32,
}

pub type LogFn = unsafe extern "C" fn(h: *const ObsHost, level: c_int, fmt: *const c_char, ...);
pub type CounterRegisterFn =
    unsafe extern "C" fn(h: *const ObsHost, name: *const c_char, kind: c_int, help: *const c_char) -> c_int;
pub type CounterAddFn = unsafe extern "C" fn(h: *const ObsHost, id: c_int, delta: u64);
pub type NowFn = unsafe extern "C" fn() -> u64;
pub type AllocFn = unsafe extern "C" fn(h: *const ObsHost, size: usize) -> *mut c_void;
pub type ReallocFn = unsafe extern "C" fn(h: *const ObsHost, p: *mut c_void, size: usize) -> *mut c_void;
pub type FreeFn = unsafe extern "C" fn(h: *const ObsHost, p: *mut c_void);
pub type BlockedAddFn = unsafe extern "C" fn(h: *const ObsHost, ns: u64);
pub type HoldFn = unsafe extern "C" fn(h: *const ObsHost) -> u64;
pub type ReleaseFn = unsafe extern "C" fn(h: *const ObsHost, token: u64);

/// `obs_host`: the host services table, valid from init until fini returns.
#[repr(C)]
#[derive(Debug)]
pub struct ObsHost {
    pub struct_size: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub stage_name: *const c_char,
    pub plugin_path: *const c_char,
    pub seed: u64,
    pub batch_size: u32,
    pub reserved: u32,
    pub log: Option<LogFn>,
    pub counter_register: Option<CounterRegisterFn>,
    pub counter_add: Option<CounterAddFn>,
    pub now_ns: Option<NowFn>,
    pub alloc: Option<AllocFn>,
    pub realloc: Option<ReallocFn>,
    pub free: Option<FreeFn>,
    pub host_private: *mut c_void,
    // ABI 1.2: present when struct_size >= OBS_HOST_SIZE_1_2.
    pub wall_offset_ns: i64,
    pub blocked_add: Option<BlockedAddFn>,
    pub hold: Option<HoldFn>,
    pub release: Option<ReleaseFn>,
}

/// `OBS_HOST_SIZE_1_2`: struct_size of a host table that has the 1.2 services.
pub const OBS_HOST_SIZE_1_2: usize = std::mem::size_of::<ObsHost>();

/// `obs_gen_request`: what the host asks a generator for.
#[repr(C)]
#[derive(Debug)]
pub struct ObsGenRequest {
    pub n_records: u32,
    pub reserved: u32,
    pub first_seq: u64,
    pub t_intended_ns: *const u64,
    pub ticket: u64,
}

pub type InitFn =
    unsafe extern "C" fn(host: *const ObsHost, params: *const ObsParams, instance: *mut *mut c_void) -> c_int;
pub type GenerateFn = unsafe extern "C" fn(instance: *mut c_void, req: *const ObsGenRequest, out: *mut ObsOut) -> c_int;
pub type ProcessFn = unsafe extern "C" fn(instance: *mut c_void, input: *const ObsBatch, out: *mut ObsOut) -> c_int;
pub type ConsumeFn = unsafe extern "C" fn(instance: *mut c_void, input: *const ObsBatch) -> c_int;
pub type FlushFn = unsafe extern "C" fn(instance: *mut c_void, out: *mut ObsOut) -> c_int;
pub type FiniFn = unsafe extern "C" fn(instance: *mut c_void);
pub type ExportStateFn = unsafe extern "C" fn(instance: *mut c_void, buf: *mut *mut c_void, len: *mut usize) -> c_int;
pub type ImportStateFn = unsafe extern "C" fn(instance: *mut c_void, buf: *const c_void, len: usize) -> c_int;
pub type DeliveredFn = unsafe extern "C" fn(instance: *mut c_void, ticket: u64);

/// `obs_stage_desc`: what `obs_stage_entry` returns.
#[repr(C)]
#[derive(Debug)]
pub struct ObsStageDesc {
    pub magic: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub struct_size: u32,
    pub kind: u32,
    pub name: *const c_char,
    pub version: *const c_char,
    pub description: *const c_char,
    pub params: *const ObsParamDesc,
    pub n_params: u32,
    pub reserved: u32,
    pub init: Option<InitFn>,
    pub generate: Option<GenerateFn>,
    pub process: Option<ProcessFn>,
    pub consume: Option<ConsumeFn>,
    pub flush: Option<FlushFn>,
    pub fini: Option<FiniFn>,
    pub export_state: Option<ExportStateFn>,
    pub import_state: Option<ImportStateFn>,
    // ABI 1.2
    pub flags: u32,
    pub reserved2: u32,
    pub delivered: Option<DeliveredFn>,
}

// The descriptor is built once, never mutated, and its pointers refer to
// memory that lives as long as the plugin (which the host never unloads).
unsafe impl Sync for ObsStageDesc {}
unsafe impl Send for ObsStageDesc {}

/// `obs_key_hash()`: FNV-1a over the bytes, never 0.
pub fn key_hash(data: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for &b in data {
        h ^= b as u32;
        h = h.wrapping_mul(16_777_619);
    }
    if h == 0 {
        1
    } else {
        h
    }
}
