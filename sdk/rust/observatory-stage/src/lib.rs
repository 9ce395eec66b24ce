//! observatory-stage: Observatory stage plugins in safe Rust.
//!
//! A plugin is a `cdylib` that implements one of the traits `Generator`,
//! `Transform` or `Sink` (each on top of `Stage`, which holds the name,
//! version, parameters, `init` and the optional hot-swap state handover) and
//! exports it with one macro:
//!
//! ```ignore
//! use observatory_stage::{export_stage, Batch, Error, Host, Output, Params, Stage, Transform};
//!
//! struct Upper { host: Host }
//!
//! impl Stage for Upper {
//!     const NAME: &'static str = "xf_upper_rs";
//!     const VERSION: &'static str = "1.0.0";
//!     fn init(host: Host, _params: &Params) -> Result<Self, Error> { Ok(Upper { host }) }
//! }
//!
//! impl Transform for Upper {
//!     fn process<'a>(&mut self, input: Batch<'a>, out: &mut Output<'a>) -> Result<(), Error> {
//!         for r in input.iter() {
//!             if !r.data().iter().any(u8::is_ascii_lowercase) {
//!                 out.pass(&r)?;
//!                 continue;
//!             }
//!             let mut buf = out.reserve(r.data().len())?;
//!             for (d, s) in buf.iter_mut().zip(r.data()) { *d = s.to_ascii_uppercase(); }
//!             buf.commit(r.data().len(), r.seq(), r.t_intended_ns())?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_stage!(transform Upper);
//! ```
//!
//! The crate owns every `unsafe` block: a plugin needs none, and the
//! lifetimes of `Batch<'a>`, `Record<'a>` and `Output<'a>` make "input is
//! borrowed for the duration of the call" a compile-time rule. A panic in a
//! callback is caught before it reaches the host and reported as
//! `OBS_EPLUGIN` (build plugins with `panic = "abort"` all the same).
//!
//! What the compiler refuses (each block is a doctest that must not build):
//!
//! Keeping input bytes past the call:
//! ```compile_fail
//! use observatory_stage::{Batch, Output};
//! struct S { kept: Vec<&'static [u8]> }
//! impl S {
//!     fn process<'a>(&mut self, input: Batch<'a>, _out: &mut Output<'a>) {
//!         for r in input.iter() { self.kept.push(r.data()); }
//!     }
//! }
//! ```
//! Passing through a record that is not of this call's batch:
//! ```compile_fail
//! use observatory_stage::{Batch, Output};
//! fn f<'a, 'b>(other: Batch<'b>, out: &mut Output<'a>) {
//!     let _ = out.pass(&other.get(0).unwrap());
//! }
//! ```
//! Emitting while reserved bytes are still being written (the emit may move
//! the arena under them):
//! ```compile_fail
//! use observatory_stage::{Error, Output};
//! fn f(out: &mut Output<'_>) -> Result<(), Error> {
//!     let mut r = out.reserve(4)?;
//!     out.emit(b"x", 0, 0)?;
//!     r[0] = 1;
//!     r.commit(4, 0, 0)
//! }
//! ```

pub mod abi;
mod data;
#[doc(hidden)]
pub mod glue;
mod host;
mod params;

pub use data::{Batch, Output, Record, Request, Reservation};
pub use host::{Counter, CounterKind, Host, Level};
pub use params::{Default as ParamDefault, Param, Params};

/// An `OBS_E*` code, returned by a callback that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error(pub i32);

impl Error {
    pub const INVAL: Error = Error(abi::OBS_EINVAL);
    pub const NOMEM: Error = Error(abi::OBS_ENOMEM);
    pub const IO: Error = Error(abi::OBS_EIO);
    pub const NOENT: Error = Error(abi::OBS_ENOENT);
    pub const STATE: Error = Error(abi::OBS_ESTATE);
    pub const PLUGIN: Error = Error(abi::OBS_EPLUGIN);
    pub const CONFIG: Error = Error(abi::OBS_ECONFIG);
    pub const AGAIN: Error = Error(abi::OBS_EAGAIN);
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            abi::OBS_EINVAL => "invalid argument",
            abi::OBS_ENOMEM => "out of memory or bound reached",
            abi::OBS_EIO => "I/O error",
            abi::OBS_EABI => "ABI mismatch",
            abi::OBS_ENOENT => "not found",
            abi::OBS_ESTATE => "state handover refused",
            abi::OBS_EPLUGIN => "plugin failure",
            abi::OBS_ECONFIG => "configuration error",
            abi::OBS_EAGAIN => "try again",
            _ => "unknown error",
        };
        write!(f, "{} ({})", name, self.0)
    }
}

impl std::error::Error for Error {}

/// `obs_key_hash()`: the key hash of some bytes (FNV-1a, never 0).
pub fn key_hash(data: &[u8]) -> u32 {
    abi::key_hash(data)
}

/// What every stage declares and does, whatever its kind.
pub trait Stage: Sized + Send + 'static {
    /// Plugin name, `[A-Za-z0-9_.+-]`: the name a pipeline asks for.
    const NAME: &'static str;
    /// Plugin version, e.g. "1.0.0".
    const VERSION: &'static str;
    /// One line for listings.
    const DESCRIPTION: &'static str = "";
    /// True when the stage hands its state over in a hot swap: then
    /// `export_state` and `import_state` are offered to the host.
    const STATE: bool = false;

    /// The declared parameters, in the order `Params` will hold them.
    fn params() -> Vec<Param> {
        Vec::new()
    }

    /// Creates an instance. Log the reason before returning an error.
    fn init(host: Host, params: &Params<'_>) -> Result<Self, Error>;

    /// The state to hand to the next version (when `STATE` is true). Put a
    /// version byte first and keep the format stable across versions.
    fn export_state(&mut self) -> Result<Vec<u8>, Error> {
        Err(Error::STATE)
    }

    /// Takes over the state of the previous version; `Error::STATE` refuses
    /// it (the old version keeps running).
    fn import_state(&mut self, _state: &[u8]) -> Result<(), Error> {
        Err(Error::STATE)
    }
}

/// Whether a generator has more to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    More,
    /// No more data: the records already emitted are sent.
    Done,
}

/// A stage that produces records on the host's schedule.
pub trait Generator: Stage {
    /// Emits `req.len()` records with `seq = req.first_seq() + i` and
    /// `t_intended_ns = req.t_intended_ns(i)`.
    fn generate<'a>(&mut self, req: &Request<'a>, out: &mut Output<'a>) -> Result<Flow, Error>;
    /// End of stream: make results durable.
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// A stage that turns records into records.
pub trait Transform: Stage {
    /// Reads `input`, writes results into `out` (maybe none). Count a bad
    /// record on an error counter and skip it; an `Err` fails the batch.
    fn process<'a>(&mut self, input: Batch<'a>, out: &mut Output<'a>) -> Result<(), Error>;
    /// End of stream: emit what is held back.
    fn flush(&mut self, _out: &mut Output<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// A stage that consumes records.
pub trait Sink: Stage {
    /// Consumes `input`.
    fn consume(&mut self, input: Batch<'_>) -> Result<(), Error>;
    /// End of stream: make results durable.
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// Exports a stage: defines `obs_stage_entry`, the plugin's one symbol.
/// `export_stage!(transform MyType);` (or `generator`, `sink`), once per
/// cdylib.
#[macro_export]
macro_rules! export_stage {
    (generator $t:ty) => {
        $crate::__export_entry!($crate::glue::generator_desc::<$t>);
    };
    (transform $t:ty) => {
        $crate::__export_entry!($crate::glue::transform_desc::<$t>);
    };
    (sink $t:ty) => {
        $crate::__export_entry!($crate::glue::sink_desc::<$t>);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_entry {
    ($desc:expr) => {
        /// The plugin's only exported symbol (see observatory/stage.h).
        #[no_mangle]
        pub extern "C" fn obs_stage_entry() -> *const $crate::abi::ObsStageDesc {
            $desc()
        }
    };
}
