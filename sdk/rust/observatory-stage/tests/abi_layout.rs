//! The crate's #[repr(C)] mirrors against the C header, field by field.
//!
//! tests/abi_layout.c prints what a C compiler makes of
//! core/include/observatory/stage.h: the size of every ABI struct, the
//! offset of every field and the constants the crate copies. This test runs
//! it (the binary CMake built, named by $OBS_ABI_LAYOUT_BIN, or compiled
//! here with $CC / cc when cargo runs alone) and compares every line with
//! the same figures computed from the Rust types. It also checks that every
//! struct the header defines is covered by the C program, so a new struct
//! cannot slip past both.

use std::collections::BTreeMap;
use std::mem::{size_of, MaybeUninit};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use observatory_stage::abi::*;

fn header_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("OBS_INCLUDE_DIR") {
        Some(d) => PathBuf::from(d),
        None => manifest.join("../../../core/include"),
    }
}

// The tests share one run of the C program (compiling it twice at once races).
static LAYOUT: Mutex<Option<String>> = Mutex::new(None);

fn c_layout() -> String {
    let mut cached = LAYOUT.lock().unwrap_or_else(|e| e.into_inner());
    if cached.is_none() {
        *cached = Some(run_c_layout());
    }
    cached.clone().unwrap_or_default()
}

fn run_c_layout() -> String {
    let bin = match std::env::var_os("OBS_ABI_LAYOUT_BIN") {
        Some(b) => PathBuf::from(b),
        None => {
            let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("abi_layout");
            let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
            let st = Command::new(&cc)
                .arg("-std=c11")
                .arg("-Wall")
                .arg("-Werror")
                .arg("-I")
                .arg(header_dir())
                .arg(manifest.join("tests/abi_layout.c"))
                .arg("-o")
                .arg(&out)
                .status()
                .unwrap_or_else(|e| panic!("cannot run {} to build tests/abi_layout.c: {}", cc, e));
            assert!(st.success(), "{} failed on tests/abi_layout.c", cc);
            out
        }
    };
    let out = Command::new(&bin).output().unwrap_or_else(|e| panic!("cannot run {}: {}", bin.display(), e));
    assert!(out.status.success(), "{} failed", bin.display());
    String::from_utf8(out.stdout).expect("layout output is text")
}

fn size_of_pointee<T>(_: *const T) -> usize {
    size_of::<T>()
}

/// Offset and size of a field without offset_of! (Rust 1.77), so Debian's 1.63 runs it.
macro_rules! off {
    ($t:ty, $f:ident) => {{
        let u = MaybeUninit::<$t>::uninit();
        let base = u.as_ptr();
        // SAFETY: only the address of the field is taken, nothing is read.
        let field = unsafe { std::ptr::addr_of!((*base).$f) };
        format!("{}+{}", field as usize - base as usize, size_of_pointee(field))
    }};
}

fn rust_layout() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    macro_rules! size {
        ($c:literal, $t:ty) => {
            m.insert(format!("{} sizeof", $c), size_of::<$t>().to_string());
        };
    }
    macro_rules! field {
        ($c:literal, $t:ty, $cf:literal, $f:ident) => {
            m.insert(format!("{}.{}", $c, $cf), off!($t, $f));
        };
        ($c:literal, $t:ty, $f:ident) => {
            m.insert(format!("{}.{}", $c, stringify!($f)), off!($t, $f));
        };
    }
    size!("obs_record", ObsRecord);
    field!("obs_record", ObsRecord, data);
    field!("obs_record", ObsRecord, len);
    field!("obs_record", ObsRecord, key);
    field!("obs_record", ObsRecord, seq);
    field!("obs_record", ObsRecord, t_intended_ns);

    size!("obs_batch", ObsBatch);
    field!("obs_batch", ObsBatch, records);
    field!("obs_batch", ObsBatch, n_records);
    field!("obs_batch", ObsBatch, reserved);

    size!("obs_out", ObsOut);
    field!("obs_out", ObsOut, records);
    field!("obs_out", ObsOut, n_records);
    field!("obs_out", ObsOut, cap_records);
    field!("obs_out", ObsOut, arena);
    field!("obs_out", ObsOut, arena_used);
    field!("obs_out", ObsOut, arena_cap);
    field!("obs_out", ObsOut, n_passed);
    field!("obs_out", ObsOut, reserved);
    field!("obs_out", ObsOut, grow);
    field!("obs_out", ObsOut, host_private);

    size!("obs_param_desc", ObsParamDesc);
    field!("obs_param_desc", ObsParamDesc, name);
    field!("obs_param_desc", ObsParamDesc, "type", type_);
    field!("obs_param_desc", ObsParamDesc, reserved);
    field!("obs_param_desc", ObsParamDesc, default_value);
    field!("obs_param_desc", ObsParamDesc, min);
    field!("obs_param_desc", ObsParamDesc, max);
    field!("obs_param_desc", ObsParamDesc, help);

    size!("obs_param_value", ObsParamValue);
    field!("obs_param_value", ObsParamValue, name);
    field!("obs_param_value", ObsParamValue, "type", type_);
    field!("obs_param_value", ObsParamValue, is_default);
    field!("obs_param_value", ObsParamValue, i);
    field!("obs_param_value", ObsParamValue, d);
    field!("obs_param_value", ObsParamValue, s);

    size!("obs_params", ObsParams);
    field!("obs_params", ObsParams, values);
    field!("obs_params", ObsParams, n_values);
    field!("obs_params", ObsParams, reserved);

    size!("obs_host", ObsHost);
    field!("obs_host", ObsHost, struct_size);
    field!("obs_host", ObsHost, abi_major);
    field!("obs_host", ObsHost, abi_minor);
    field!("obs_host", ObsHost, stage_name);
    field!("obs_host", ObsHost, plugin_path);
    field!("obs_host", ObsHost, seed);
    field!("obs_host", ObsHost, batch_size);
    field!("obs_host", ObsHost, reserved);
    field!("obs_host", ObsHost, log);
    field!("obs_host", ObsHost, counter_register);
    field!("obs_host", ObsHost, counter_add);
    field!("obs_host", ObsHost, now_ns);
    field!("obs_host", ObsHost, alloc);
    field!("obs_host", ObsHost, realloc);
    field!("obs_host", ObsHost, free);
    field!("obs_host", ObsHost, host_private);
    field!("obs_host", ObsHost, wall_offset_ns);
    field!("obs_host", ObsHost, blocked_add);
    field!("obs_host", ObsHost, hold);
    field!("obs_host", ObsHost, release);

    size!("obs_gen_request", ObsGenRequest);
    field!("obs_gen_request", ObsGenRequest, n_records);
    field!("obs_gen_request", ObsGenRequest, reserved);
    field!("obs_gen_request", ObsGenRequest, first_seq);
    field!("obs_gen_request", ObsGenRequest, t_intended_ns);
    field!("obs_gen_request", ObsGenRequest, ticket);

    size!("obs_stage_desc", ObsStageDesc);
    field!("obs_stage_desc", ObsStageDesc, magic);
    field!("obs_stage_desc", ObsStageDesc, abi_major);
    field!("obs_stage_desc", ObsStageDesc, abi_minor);
    field!("obs_stage_desc", ObsStageDesc, struct_size);
    field!("obs_stage_desc", ObsStageDesc, kind);
    field!("obs_stage_desc", ObsStageDesc, name);
    field!("obs_stage_desc", ObsStageDesc, version);
    field!("obs_stage_desc", ObsStageDesc, description);
    field!("obs_stage_desc", ObsStageDesc, params);
    field!("obs_stage_desc", ObsStageDesc, n_params);
    field!("obs_stage_desc", ObsStageDesc, reserved);
    field!("obs_stage_desc", ObsStageDesc, init);
    field!("obs_stage_desc", ObsStageDesc, generate);
    field!("obs_stage_desc", ObsStageDesc, process);
    field!("obs_stage_desc", ObsStageDesc, consume);
    field!("obs_stage_desc", ObsStageDesc, flush);
    field!("obs_stage_desc", ObsStageDesc, fini);
    field!("obs_stage_desc", ObsStageDesc, export_state);
    field!("obs_stage_desc", ObsStageDesc, import_state);
    field!("obs_stage_desc", ObsStageDesc, flags);
    field!("obs_stage_desc", ObsStageDesc, reserved2);
    field!("obs_stage_desc", ObsStageDesc, delivered);

    m.insert("const OBS_STAGE_MAGIC".into(), OBS_STAGE_MAGIC.to_string());
    m.insert("const OBS_ABI_MAJOR".into(), OBS_ABI_MAJOR.to_string());
    m.insert("const OBS_ABI_MINOR".into(), OBS_ABI_MINOR.to_string());
    m.insert("const OBS_HOST_SIZE_1_2".into(), OBS_HOST_SIZE_1_2.to_string());
    m.insert("const OBS_STAGE_SOURCE".into(), OBS_STAGE_SOURCE.to_string());
    m
}

fn parse(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let (k, v) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad layout line {:?}", line));
        m.insert(k.to_string(), v.to_string());
    }
    m
}

#[test]
fn repr_c_matches_the_header() {
    let c = parse(&c_layout());
    let rust = rust_layout();
    let mut problems = Vec::new();
    for (k, v) in &c {
        match rust.get(k) {
            Some(r) if r == v => {}
            Some(r) => problems.push(format!("{}: C {}, Rust {}", k, v, r)),
            None => problems.push(format!("{}: in the header, not mirrored by the crate", k)),
        }
    }
    for k in rust.keys() {
        if !c.contains_key(k) {
            problems.push(format!("{}: in the crate, not printed by tests/abi_layout.c", k));
        }
    }
    assert!(problems.is_empty(), "ABI mismatch with stage.h:\n  {}", problems.join("\n  "));
    // The documented LP64 size of the 1.2 descriptor.
    assert_eq!(c["obs_stage_desc sizeof"], "136");
}

#[test]
fn every_header_struct_is_covered() {
    let header = std::fs::read_to_string(header_dir().join("observatory/stage.h")).expect("stage.h");
    let c = parse(&c_layout());
    let mut missing = Vec::new();
    for line in header.lines() {
        let l = line.trim_start();
        // "typedef struct NAME {" and "struct NAME {" open a definition.
        let rest = l.strip_prefix("typedef struct ").or_else(|| l.strip_prefix("struct "));
        if let Some(rest) = rest {
            if let Some(name) = rest.strip_suffix(" {") {
                if !c.contains_key(&format!("{} sizeof", name)) {
                    missing.push(name.to_string());
                }
            }
        }
    }
    assert!(missing.is_empty(), "structs of stage.h not checked by tests/abi_layout.c: {:?}", missing);
}
