//! The trampolines end to end, through the C descriptor, with a minimal host
//! written here: parameters from the declared defaults, an obs_out whose
//! grow() really reallocates (so the arena moves under the plugin), counters,
//! state export into host-allocated memory and import into a new instance.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;

use observatory_stage::abi::*;
use observatory_stage::{
    export_stage, Batch, Counter, CounterKind, Error, Host, Output, Param, Params, Stage, Transform,
};

/// Upper-cases records holding a lower-case letter, passes the others
/// through, skips those longer than max_len (counted), and carries a count
/// of records seen across a hot swap.
struct Upper {
    host: Host,
    max_len: usize,
    too_long: Counter,
    seen: u64,
}

impl Stage for Upper {
    const NAME: &'static str = "xf_upper_rs";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "test transform";
    const STATE: bool = true;
    fn params() -> Vec<Param> {
        vec![
            Param::int("max_len", 16).range(1.0, 1024.0).help("longest record"),
            Param::double("ratio", 0.5),
            Param::string("label", "x"),
            Param::bool("loud", true).required(),
        ]
    }
    fn init(host: Host, params: &Params<'_>) -> Result<Self, Error> {
        let max_len = params.int("max_len")? as usize;
        assert_eq!(params.double("ratio"), Ok(0.5));
        assert_eq!(params.string("label"), Ok("x"));
        assert_eq!(params.int("ratio"), Err(Error::INVAL));
        assert_eq!(params.int("nope"), Err(Error::NOENT));
        let too_long = host.counter("too_long", CounterKind::Error, "records over max_len")?;
        host.info("upper ready");
        Ok(Upper { host, max_len, too_long, seen: 0 })
    }
    fn export_state(&mut self) -> Result<Vec<u8>, Error> {
        let mut v = vec![1u8];
        v.extend_from_slice(&self.seen.to_le_bytes());
        Ok(v)
    }
    fn import_state(&mut self, state: &[u8]) -> Result<(), Error> {
        if state.len() != 9 || state[0] != 1 {
            return Err(Error::STATE);
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&state[1..]);
        self.seen = u64::from_le_bytes(b);
        Ok(())
    }
}

impl Transform for Upper {
    fn process<'a>(&mut self, input: Batch<'a>, out: &mut Output<'a>) -> Result<(), Error> {
        let mut too_long = 0;
        for r in input.iter() {
            self.seen += 1;
            let d = r.data();
            if d.len() > self.max_len {
                too_long += 1;
            } else if !d.iter().any(u8::is_ascii_lowercase) {
                out.pass(&r)?;
            } else {
                let mut buf = out.reserve(d.len())?;
                for (o, i) in buf.iter_mut().zip(d) {
                    *o = i.to_ascii_uppercase();
                }
                buf.commit(d.len(), r.seq(), r.t_intended_ns())?;
            }
        }
        self.host.add(self.too_long, too_long);
        Ok(())
    }
    fn flush(&mut self, out: &mut Output<'_>) -> Result<(), Error> {
        out.emit(b"END", u64::MAX, 0)?;
        out.set_key(observatory_stage::key_hash(b"END"))
    }
}

export_stage!(transform Upper);

// ------------------------------------------------------------- the host

struct MockHost {
    counters: Vec<u64>,
}

unsafe extern "C" fn h_register(h: *const ObsHost, name: *const c_char, _k: c_int, _help: *const c_char) -> c_int {
    let m = &mut *((*h).host_private as *mut MockHost);
    assert_eq!(CStr::from_ptr(name).to_str(), Ok("too_long"));
    m.counters.push(0);
    (m.counters.len() - 1) as c_int
}
unsafe extern "C" fn h_add(h: *const ObsHost, id: c_int, delta: u64) {
    let m = &mut *((*h).host_private as *mut MockHost);
    m.counters[id as usize] += delta;
}
unsafe extern "C" fn h_now() -> u64 {
    42
}
unsafe extern "C" fn h_alloc(_h: *const ObsHost, size: usize) -> *mut c_void {
    libc_malloc(size)
}
unsafe extern "C" fn h_realloc(_h: *const ObsHost, p: *mut c_void, size: usize) -> *mut c_void {
    libc_realloc(p, size)
}
unsafe extern "C" fn h_free(_h: *const ObsHost, p: *mut c_void) {
    libc_free(p)
}

extern "C" {
    #[link_name = "malloc"]
    fn libc_malloc(size: usize) -> *mut c_void;
    #[link_name = "realloc"]
    fn libc_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    #[link_name = "free"]
    fn libc_free(p: *mut c_void);
}

/// Grows to exactly what is asked (so every call moves the arena) and
/// re-points arena records, as the real host does.
unsafe extern "C" fn grow(out: *mut ObsOut, n_records: u32, n_bytes: u64) -> c_int {
    let o = &mut *out;
    let old = o.arena;
    let cap_r = o.n_records + n_records;
    o.records = libc_realloc(o.records as *mut c_void, cap_r as usize * 32) as *mut ObsRecord;
    o.cap_records = cap_r;
    let cap_b = o.arena_used + ((n_bytes + 7) & !7);
    let fresh = libc_malloc(cap_b.max(8) as usize) as *mut u8;
    if o.arena_used > 0 {
        ptr::copy_nonoverlapping(old, fresh, o.arena_used as usize);
    }
    for i in 0..o.n_records as usize {
        let r = &mut *o.records.add(i);
        if !old.is_null() && r.data >= old && r.data < old.add(o.arena_used as usize) {
            r.data = fresh.add(r.data.offset_from(old) as usize);
        }
    }
    libc_free(old as *mut c_void);
    o.arena = fresh;
    o.arena_cap = cap_b;
    OBS_OK
}

fn new_out() -> ObsOut {
    ObsOut {
        records: ptr::null_mut(),
        n_records: 0,
        cap_records: 0,
        arena: ptr::null_mut(),
        arena_used: 0,
        arena_cap: 0,
        n_passed: 0,
        reserved: 0,
        grow: Some(grow),
        host_private: ptr::null_mut(),
    }
}

fn out_records(o: &ObsOut) -> Vec<(Vec<u8>, u64, u32)> {
    (0..o.n_records as usize)
        .map(|i| unsafe {
            let r = &*o.records.add(i);
            (std::slice::from_raw_parts(r.data, r.len as usize).to_vec(), r.seq, r.key)
        })
        .collect()
}

fn host_table(m: &mut MockHost) -> ObsHost {
    ObsHost {
        struct_size: std::mem::size_of::<ObsHost>() as u32,
        abi_major: 1,
        abi_minor: 2,
        stage_name: b"up\0".as_ptr() as *const c_char,
        plugin_path: b"/x.so\0".as_ptr() as *const c_char,
        seed: 7,
        batch_size: 4,
        reserved: 0,
        // A variadic callback cannot be defined in stable Rust; Host::log
        // does nothing without one.
        log: None,
        counter_register: Some(h_register),
        counter_add: Some(h_add),
        now_ns: Some(h_now),
        alloc: Some(h_alloc),
        realloc: Some(h_realloc),
        free: Some(h_free),
        host_private: m as *mut MockHost as *mut c_void,
        wall_offset_ns: 0,
        blocked_add: None,
        hold: None,
        release: None,
    }
}

fn values(desc: &ObsStageDesc) -> Vec<ObsParamValue> {
    let decls = unsafe { std::slice::from_raw_parts(desc.params, desc.n_params as usize) };
    decls
        .iter()
        .map(|p| {
            let text = if p.default_value.is_null() { "true" } else { unsafe { CStr::from_ptr(p.default_value) }.to_str().unwrap() };
            ObsParamValue {
                name: p.name,
                type_: p.type_,
                is_default: 1,
                i: match text { "true" => 1, "false" => 0, t => t.parse().unwrap_or(0) },
                d: text.parse().unwrap_or(0.0),
                s: if p.default_value.is_null() { b"true\0".as_ptr() as *const c_char } else { p.default_value },
            }
        })
        .collect()
}

#[test]
fn descriptor_declares_what_the_traits_say() {
    let d = unsafe { &*obs_stage_entry() };
    assert_eq!(d.magic, OBS_STAGE_MAGIC);
    assert_eq!((d.abi_major, d.abi_minor, d.struct_size), (1, 2, 136));
    assert_eq!(d.kind, OBS_KIND_TRANSFORM);
    assert_eq!(unsafe { CStr::from_ptr(d.name) }.to_str(), Ok("xf_upper_rs"));
    assert!(d.process.is_some() && d.flush.is_some() && d.export_state.is_some());
    assert!(d.generate.is_none() && d.consume.is_none());
    assert_eq!(d.n_params, 4);
    let p = unsafe { std::slice::from_raw_parts(d.params, 4) };
    let text = |c: *const c_char| if c.is_null() { None } else { Some(unsafe { CStr::from_ptr(c) }.to_str().unwrap()) };
    assert_eq!((text(p[0].name), p[0].type_, text(p[0].default_value)), (Some("max_len"), OBS_PARAM_INT, Some("16")));
    assert_eq!((p[0].min, p[0].max), (1.0, 1024.0));
    assert_eq!((p[1].type_, text(p[1].default_value)), (OBS_PARAM_DOUBLE, Some("0.5")));
    assert_eq!(text(p[3].default_value), None, "required: no default");
    assert!(p[1].min > p[1].max, "no range declared");
    // The same descriptor every time.
    assert_eq!(obs_stage_entry(), d as *const ObsStageDesc);
}

#[test]
fn process_flush_and_state_handover() {
    let d = unsafe { &*obs_stage_entry() };
    let mut mock = MockHost { counters: Vec::new() };
    let host = host_table(&mut mock);
    let vals = values(d);
    let params = ObsParams { values: vals.as_ptr(), n_values: vals.len() as u32, reserved: 0 };
    let mut inst: *mut c_void = ptr::null_mut();
    assert_eq!(unsafe { d.init.unwrap()(&host, &params, &mut inst) }, OBS_OK);

    let texts: [&[u8]; 5] = [b"abc", b"ABC", b"", b"this one is far too long", b"mixed Case"];
    let recs: Vec<ObsRecord> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| ObsRecord { data: t.as_ptr(), len: t.len() as u32, key: 0, seq: i as u64, t_intended_ns: 100 + i as u64 })
        .collect();
    let batch = ObsBatch { records: recs.as_ptr(), n_records: 5, reserved: 0 };
    let mut out = new_out();
    assert_eq!(unsafe { d.process.unwrap()(inst, &batch, &mut out) }, OBS_OK);
    let got = out_records(&out);
    let want: Vec<(Vec<u8>, u64, u32)> = vec![(b"ABC".to_vec(), 0, 0), (b"ABC".to_vec(), 1, 0), (vec![], 2, 0), (b"MIXED CASE".to_vec(), 4, 0)];
    assert_eq!(got, want);
    assert_eq!(out.n_passed, 2, "records without lower case are passed through");
    assert_eq!(unsafe { (*out.records.add(1)).data }, texts[1].as_ptr(), "pass-through does not copy");
    assert_eq!(mock.counters, vec![1]);

    let mut out2 = new_out();
    assert_eq!(unsafe { d.flush.unwrap()(inst, &mut out2) }, OBS_OK);
    assert_eq!(out_records(&out2), vec![(b"END".to_vec(), u64::MAX, observatory_stage::key_hash(b"END"))]);

    // Hot swap: export from this instance, import into a new one.
    let mut buf: *mut c_void = ptr::null_mut();
    let mut len = 0usize;
    assert_eq!(unsafe { d.export_state.unwrap()(inst, &mut buf, &mut len) }, OBS_OK);
    assert_eq!(len, 9);
    let mut inst2: *mut c_void = ptr::null_mut();
    assert_eq!(unsafe { d.init.unwrap()(&host, &params, &mut inst2) }, OBS_OK);
    assert_eq!(unsafe { d.import_state.unwrap()(inst2, buf, len) }, OBS_OK);
    assert_eq!(unsafe { d.import_state.unwrap()(inst2, buf, len - 1) }, OBS_ESTATE);
    let mut buf2: *mut c_void = ptr::null_mut();
    assert_eq!(unsafe { d.export_state.unwrap()(inst2, &mut buf2, &mut len) }, OBS_OK);
    assert_eq!(unsafe { std::slice::from_raw_parts(buf2 as *const u8, 9) }[1], 5, "5 records seen before the swap");
    unsafe {
        libc_free(buf);
        libc_free(buf2);
        d.fini.unwrap()(inst);
        d.fini.unwrap()(inst2);
        libc_free(out.records as *mut c_void);
        libc_free(out.arena as *mut c_void);
        libc_free(out2.records as *mut c_void);
        libc_free(out2.arena as *mut c_void);
    }
}
