//! The C callbacks behind the traits: one generic trampoline per callback,
//! instantiated for the plugin's type by `export_stage!`.
//!
//! Each trampoline turns raw pointers into the safe borrowed types, calls
//! the trait method inside `catch_unwind` (a panic must never unwind into
//! the host: it becomes `OBS_EPLUGIN`), and turns the result into an
//! `OBS_*` code. The instance is a `Box<Instance<T>>` from init to fini.

use std::ffi::CString;
use std::os::raw::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Once;

use crate::abi::*;
use crate::data::{Batch, Output, Request};
use crate::host::Host;
use crate::params::{leak_descs, Params};
use crate::{Error, Flow, Generator, Sink, Stage, Transform};

struct Instance<T> {
    host: Host,
    stage: T,
}

fn code(r: std::thread::Result<Result<(), Error>>) -> c_int {
    match r {
        Ok(Ok(())) => OBS_OK,
        Ok(Err(e)) => e.0,
        Err(_) => OBS_EPLUGIN,
    }
}

/// # Safety
/// `instance` must be what init_cb stored.
unsafe fn stage_of<'i, T>(instance: *mut c_void) -> &'i mut Instance<T> {
    &mut *(instance as *mut Instance<T>)
}

unsafe extern "C" fn init_cb<T: Stage>(
    host: *const ObsHost,
    params: *const ObsParams,
    instance: *mut *mut c_void,
) -> c_int {
    if host.is_null() || instance.is_null() {
        return OBS_EINVAL;
    }
    let r = catch_unwind(AssertUnwindSafe(|| {
        let p = Params::from_raw(params);
        let stage = T::init(Host::from_raw(host), &p)?;
        let boxed = Box::new(Instance { host: Host::from_raw(host), stage });
        *instance = Box::into_raw(boxed) as *mut c_void;
        Ok(())
    }));
    code(r)
}

unsafe extern "C" fn fini_cb<T: Stage>(instance: *mut c_void) {
    if !instance.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(instance as *mut Instance<T>))));
    }
}

unsafe extern "C" fn export_cb<T: Stage>(instance: *mut c_void, buf: *mut *mut c_void, len: *mut usize) -> c_int {
    let inst = stage_of::<T>(instance);
    code(catch_unwind(AssertUnwindSafe(|| {
        let bytes = inst.stage.export_state()?;
        let p = inst.host.alloc_copy(&bytes)?;
        *buf = p as *mut c_void;
        *len = bytes.len();
        Ok(())
    })))
}

unsafe extern "C" fn import_cb<T: Stage>(instance: *mut c_void, buf: *const c_void, len: usize) -> c_int {
    let inst = stage_of::<T>(instance);
    let bytes: &[u8] = if buf.is_null() || len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(buf as *const u8, len)
    };
    code(catch_unwind(AssertUnwindSafe(|| inst.stage.import_state(bytes))))
}

unsafe extern "C" fn generate_cb<T: Generator>(
    instance: *mut c_void,
    req: *const ObsGenRequest,
    out: *mut ObsOut,
) -> c_int {
    let inst = stage_of::<T>(instance);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let req = Request::from_raw(req);
        let mut out = Output::from_raw(out);
        inst.stage.generate(&req, &mut out)
    }));
    match r {
        Ok(Ok(Flow::More)) => OBS_OK,
        Ok(Ok(Flow::Done)) => OBS_DONE,
        Ok(Err(e)) => e.0,
        Err(_) => OBS_EPLUGIN,
    }
}

unsafe extern "C" fn generator_flush_cb<T: Generator>(instance: *mut c_void, _out: *mut ObsOut) -> c_int {
    let inst = stage_of::<T>(instance);
    code(catch_unwind(AssertUnwindSafe(|| Generator::flush(&mut inst.stage))))
}

unsafe extern "C" fn process_cb<T: Transform>(instance: *mut c_void, input: *const ObsBatch, out: *mut ObsOut) -> c_int {
    let inst = stage_of::<T>(instance);
    code(catch_unwind(AssertUnwindSafe(|| {
        let batch = Batch::from_raw(input);
        let mut out = Output::from_raw(out);
        inst.stage.process(batch, &mut out)
    })))
}

unsafe extern "C" fn transform_flush_cb<T: Transform>(instance: *mut c_void, out: *mut ObsOut) -> c_int {
    let inst = stage_of::<T>(instance);
    if out.is_null() {
        return OBS_EINVAL;
    }
    code(catch_unwind(AssertUnwindSafe(|| {
        let mut out = Output::from_raw(out);
        Transform::flush(&mut inst.stage, &mut out)
    })))
}

unsafe extern "C" fn consume_cb<T: Sink>(instance: *mut c_void, input: *const ObsBatch) -> c_int {
    let inst = stage_of::<T>(instance);
    code(catch_unwind(AssertUnwindSafe(|| inst.stage.consume(Batch::from_raw(input)))))
}

unsafe extern "C" fn sink_flush_cb<T: Sink>(instance: *mut c_void, _out: *mut ObsOut) -> c_int {
    let inst = stage_of::<T>(instance);
    code(catch_unwind(AssertUnwindSafe(|| Sink::flush(&mut inst.stage))))
}

// One stage per cdylib, so one descriptor per copy of this crate.
static DESC: AtomicPtr<ObsStageDesc> = AtomicPtr::new(ptr::null_mut());
static DESC_ONCE: Once = Once::new();

fn leak_str(s: &str) -> *const std::os::raw::c_char {
    CString::new(s.replace('\0', "")).unwrap_or_default().into_raw()
}

fn build<T: Stage>(kind: u32, fill: fn(&mut ObsStageDesc)) -> *const ObsStageDesc {
    DESC_ONCE.call_once(|| {
        let (params, n_params) = leak_descs(&T::params());
        let mut d = ObsStageDesc {
            magic: OBS_STAGE_MAGIC,
            abi_major: OBS_ABI_MAJOR,
            abi_minor: OBS_ABI_MINOR,
            struct_size: std::mem::size_of::<ObsStageDesc>() as u32,
            kind,
            name: leak_str(T::NAME),
            version: leak_str(T::VERSION),
            description: leak_str(T::DESCRIPTION),
            params,
            n_params,
            reserved: 0,
            init: Some(init_cb::<T>),
            generate: None,
            process: None,
            consume: None,
            flush: None,
            fini: Some(fini_cb::<T>),
            export_state: None,
            import_state: None,
            flags: 0,
            reserved2: 0,
            delivered: None,
        };
        if T::STATE {
            d.export_state = Some(export_cb::<T>);
            d.import_state = Some(import_cb::<T>);
        }
        fill(&mut d);
        DESC.store(Box::into_raw(Box::new(d)), Ordering::Release);
    });
    DESC.load(Ordering::Acquire)
}

/// The descriptor of a generator type (used by `export_stage!`).
pub fn generator_desc<T: Generator>() -> *const ObsStageDesc {
    build::<T>(OBS_KIND_GENERATOR, |d| {
        d.generate = Some(generate_cb::<T>);
        d.flush = Some(generator_flush_cb::<T>);
    })
}

/// The descriptor of a transform type (used by `export_stage!`).
pub fn transform_desc<T: Transform>() -> *const ObsStageDesc {
    build::<T>(OBS_KIND_TRANSFORM, |d| {
        d.process = Some(process_cb::<T>);
        d.flush = Some(transform_flush_cb::<T>);
    })
}

/// The descriptor of a sink type (used by `export_stage!`).
pub fn sink_desc<T: Sink>() -> *const ObsStageDesc {
    build::<T>(OBS_KIND_SINK, |d| {
        d.consume = Some(consume_cb::<T>);
        d.flush = Some(sink_flush_cb::<T>);
    })
}
