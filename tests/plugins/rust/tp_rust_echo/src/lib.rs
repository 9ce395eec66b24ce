//! tp_rust_echo - an Observatory stage plugin written in Rust.
//!
//! Proves the ABI in core/include/observatory/stage.h is usable from a
//! language other than C: the structs are mirrored with #[repr(C)], the one
//! exported symbol is `obs_stage_entry` (a cdylib exports only #[no_mangle]
//! items), and every record is passed through by reference exactly like the
//! C helper obs_out_pass() does, including the host's grow() slow path.
//! Only the fields this plugin touches are given real types; the rest are
//! opaque pointers of the right size.

use core::ffi::{c_char, c_void};
use core::ptr;

const OBS_STAGE_MAGIC: u32 = 0x4f42_5354;
const OBS_ABI_MAJOR: u16 = 1;
const OBS_ABI_MINOR: u16 = 0;
const OBS_KIND_TRANSFORM: u32 = 2;
const OBS_OK: i32 = 0;
const OBS_EINVAL: i32 = -1;
const OBS_ENOMEM: i32 = -2;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ObsRecord {
    data: *const u8,
    len: u32,
    flags: u32,
    seq: u64,
    t_intended_ns: u64,
}

#[repr(C)]
pub struct ObsBatch {
    records: *const ObsRecord,
    n_records: u32,
    reserved: u32,
}

type GrowFn = unsafe extern "C" fn(out: *mut ObsOut, n_records: u32, n_bytes: u64) -> i32;

#[repr(C)]
pub struct ObsOut {
    records: *mut ObsRecord,
    n_records: u32,
    cap_records: u32,
    arena: *mut u8,
    arena_used: u64,
    arena_cap: u64,
    n_passed: u32,
    reserved: u32,
    grow: Option<GrowFn>,
    host_private: *mut c_void,
}

type InitFn = unsafe extern "C" fn(*const c_void, *const c_void, *mut *mut c_void) -> i32;
type GenerateFn = unsafe extern "C" fn(*mut c_void, *const c_void, *mut ObsOut) -> i32;
type ProcessFn = unsafe extern "C" fn(*mut c_void, *const ObsBatch, *mut ObsOut) -> i32;
type ConsumeFn = unsafe extern "C" fn(*mut c_void, *const ObsBatch) -> i32;
type FlushFn = unsafe extern "C" fn(*mut c_void, *mut ObsOut) -> i32;
type FiniFn = unsafe extern "C" fn(*mut c_void);
type ExportFn = unsafe extern "C" fn(*mut c_void, *mut *mut c_void, *mut usize) -> i32;
type ImportFn = unsafe extern "C" fn(*mut c_void, *const c_void, usize) -> i32;

#[repr(C)]
pub struct ObsStageDesc {
    magic: u32,
    abi_major: u16,
    abi_minor: u16,
    struct_size: u32,
    kind: u32,
    name: *const c_char,
    version: *const c_char,
    description: *const c_char,
    params: *const c_void,
    n_params: u32,
    reserved: u32,
    init: Option<InitFn>,
    generate: Option<GenerateFn>,
    process: Option<ProcessFn>,
    consume: Option<ConsumeFn>,
    flush: Option<FlushFn>,
    fini: Option<FiniFn>,
    export_state: Option<ExportFn>,
    import_state: Option<ImportFn>,
}

// The descriptor is immutable and its pointers refer to static strings.
unsafe impl Sync for ObsStageDesc {}

// The layout must match stage.h on LP64 (checked by the host, too: it
// refuses a struct_size smaller than it needs).
const _: () = assert!(core::mem::size_of::<ObsStageDesc>() == 120);
const _: () = assert!(core::mem::size_of::<ObsOut>() == 64);
const _: () = assert!(core::mem::size_of::<ObsRecord>() == 32);

struct Echo {
    seen: u64,
}

unsafe extern "C" fn echo_init(
    _host: *const c_void,
    _params: *const c_void,
    instance: *mut *mut c_void,
) -> i32 {
    if instance.is_null() {
        return OBS_EINVAL;
    }
    *instance = Box::into_raw(Box::new(Echo { seen: 0 })) as *mut c_void;
    OBS_OK
}

/// obs_out_pass() from stage.h, through raw pointers only: grow() may
/// rewrite *out, so no Rust reference to it is held across the call.
unsafe fn out_pass(out: *mut ObsOut, rec: &ObsRecord) -> i32 {
    if (*out).n_records == (*out).cap_records {
        match (*out).grow {
            Some(grow) if grow(out, 1, 0) == 0 => {}
            _ => return OBS_ENOMEM,
        }
    }
    let n = (*out).n_records as usize;
    ptr::write((*out).records.add(n), *rec);
    (*out).n_records += 1;
    (*out).n_passed += 1;
    OBS_OK
}

unsafe extern "C" fn echo_process(instance: *mut c_void, input: *const ObsBatch, out: *mut ObsOut) -> i32 {
    let echo = &mut *(instance as *mut Echo);
    let batch = &*input;
    let records: &[ObsRecord] = if batch.n_records == 0 {
        &[]
    } else {
        core::slice::from_raw_parts(batch.records, batch.n_records as usize)
    };
    for r in records {
        let rc = out_pass(out, r);
        if rc != OBS_OK {
            return rc;
        }
        echo.seen += 1;
    }
    OBS_OK
}

unsafe extern "C" fn echo_fini(instance: *mut c_void) {
    if !instance.is_null() {
        drop(Box::from_raw(instance as *mut Echo));
    }
}

static DESC: ObsStageDesc = ObsStageDesc {
    magic: OBS_STAGE_MAGIC,
    abi_major: OBS_ABI_MAJOR,
    abi_minor: OBS_ABI_MINOR,
    struct_size: core::mem::size_of::<ObsStageDesc>() as u32,
    kind: OBS_KIND_TRANSFORM,
    name: c"tp_rust_echo".as_ptr(),
    version: c"1.0.0".as_ptr(),
    description: c"pass-through transform written in Rust".as_ptr(),
    params: ptr::null(),
    n_params: 0,
    reserved: 0,
    init: Some(echo_init),
    generate: None,
    process: Some(echo_process),
    consume: None,
    flush: None,
    fini: Some(echo_fini),
    export_state: None,
    import_state: None,
};

/// The plugin's only exported symbol.
#[no_mangle]
pub extern "C" fn obs_stage_entry() -> *const ObsStageDesc {
    &DESC
}
