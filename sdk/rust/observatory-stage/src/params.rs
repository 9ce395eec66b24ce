//! Parameters declared once, in Rust, and turned into the descriptor.
//!
//! A stage lists its parameters in `Stage::params()`: name, type, default
//! (or required), range and help. The crate builds the C `obs_param_desc`
//! array from that list the first time the host asks for the descriptor;
//! the host validates the user's values against it and passes them to init,
//! where `Params` reads them by name with the declared type.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;

use crate::abi::{self, ObsParamDesc, ObsParamValue, ObsParams};
use crate::Error;

/// A parameter's type and default.
#[derive(Clone, Debug, PartialEq)]
pub enum Default {
    Int(Option<i64>),
    Double(Option<f64>),
    Bool(Option<bool>),
    Str(Option<&'static str>),
}

/// One declared parameter. Build with `Param::int` & co., then `.range()`,
/// `.required()`, `.help()`.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: &'static str,
    pub default: Default,
    pub min: f64,
    pub max: f64,
    pub help: &'static str,
}

impl Param {
    fn new(name: &'static str, default: Default) -> Param {
        // min > max: no range.
        Param { name, default, min: 1.0, max: 0.0, help: "" }
    }
    /// An int64 parameter with a default.
    pub fn int(name: &'static str, default: i64) -> Param {
        Param::new(name, Default::Int(Some(default)))
    }
    /// A double parameter with a default.
    pub fn double(name: &'static str, default: f64) -> Param {
        Param::new(name, Default::Double(Some(default)))
    }
    /// A boolean parameter with a default.
    pub fn bool(name: &'static str, default: bool) -> Param {
        Param::new(name, Default::Bool(Some(default)))
    }
    /// A UTF-8 string parameter with a default.
    pub fn string(name: &'static str, default: &'static str) -> Param {
        Param::new(name, Default::Str(Some(default)))
    }
    /// Inclusive range (value for numbers, length for strings).
    pub fn range(mut self, min: f64, max: f64) -> Param {
        self.min = min;
        self.max = max;
        self
    }
    /// No default: the user must set it.
    pub fn required(mut self) -> Param {
        self.default = match self.default {
            Default::Int(_) => Default::Int(None),
            Default::Double(_) => Default::Double(None),
            Default::Bool(_) => Default::Bool(None),
            Default::Str(_) => Default::Str(None),
        };
        self
    }
    /// One line of help.
    pub fn help(mut self, help: &'static str) -> Param {
        self.help = help;
        self
    }

    fn type_code(&self) -> u32 {
        match self.default {
            Default::Int(_) => abi::OBS_PARAM_INT,
            Default::Double(_) => abi::OBS_PARAM_DOUBLE,
            Default::Bool(_) => abi::OBS_PARAM_BOOL,
            Default::Str(_) => abi::OBS_PARAM_STRING,
        }
    }

    /// The default as it would be written in YAML; None when required.
    pub fn default_text(&self) -> Option<String> {
        match &self.default {
            Default::Int(v) => v.map(|v| v.to_string()),
            // {:?} keeps a decimal point or an exponent, so "1" stays a double.
            Default::Double(v) => v.map(|v| format!("{:?}", v)),
            Default::Bool(v) => v.map(|v| v.to_string()),
            Default::Str(v) => v.map(|v| v.to_string()),
        }
    }
}

fn leak_c(s: &str) -> *const c_char {
    CString::new(s.replace('\0', "")).unwrap_or_default().into_raw()
}

/// Builds the C declarations; they live as long as the plugin.
pub(crate) fn leak_descs(params: &[Param]) -> (*const ObsParamDesc, u32) {
    if params.is_empty() {
        return (std::ptr::null(), 0);
    }
    let descs: Vec<ObsParamDesc> = params
        .iter()
        .map(|p| ObsParamDesc {
            name: leak_c(p.name),
            type_: p.type_code(),
            reserved: 0,
            default_value: p.default_text().map_or(std::ptr::null(), |t| leak_c(&t)),
            min: p.min,
            max: p.max,
            help: leak_c(p.help),
        })
        .collect();
    let n = descs.len() as u32;
    (Box::leak(descs.into_boxed_slice()).as_ptr(), n)
}

/// The validated values given to init.
pub struct Params<'a> {
    values: &'a [ObsParamValue],
}

impl<'a> Params<'a> {
    /// # Safety
    /// `raw` must be the params given to init (or NULL).
    pub(crate) unsafe fn from_raw(raw: *const ObsParams) -> Params<'a> {
        if raw.is_null() || (*raw).n_values == 0 || (*raw).values.is_null() {
            return Params { values: &[] };
        }
        Params { values: std::slice::from_raw_parts((*raw).values, (*raw).n_values as usize) }
    }

    fn find(&self, name: &str, type_: u32) -> Result<&'a ObsParamValue, Error> {
        for v in self.values {
            // SAFETY: the host's names are NUL-terminated, valid until fini.
            let n = unsafe { CStr::from_ptr(v.name) };
            if n.to_bytes() == name.as_bytes() {
                return if v.type_ == type_ { Ok(v) } else { Err(Error::INVAL) };
            }
        }
        Err(Error::NOENT)
    }

    /// An INT parameter's value.
    pub fn int(&self, name: &str) -> Result<i64, Error> {
        self.find(name, abi::OBS_PARAM_INT).map(|v| v.i)
    }
    /// A DOUBLE parameter's value.
    pub fn double(&self, name: &str) -> Result<f64, Error> {
        self.find(name, abi::OBS_PARAM_DOUBLE).map(|v| v.d)
    }
    /// A BOOL parameter's value.
    pub fn bool(&self, name: &str) -> Result<bool, Error> {
        self.find(name, abi::OBS_PARAM_BOOL).map(|v| v.i != 0)
    }
    /// A STRING parameter's value, valid until fini (here: for `'a`).
    pub fn string(&self, name: &str) -> Result<&'a str, Error> {
        let v = self.find(name, abi::OBS_PARAM_STRING)?;
        if v.s.is_null() {
            return Ok("");
        }
        // SAFETY: as in find().
        unsafe { CStr::from_ptr(v.s) }.to_str().map_err(|_| Error::INVAL)
    }
    /// True when the user did not set the parameter.
    pub fn is_default(&self, name: &str) -> bool {
        self.values.iter().any(|v| {
            // SAFETY: as in find().
            unsafe { CStr::from_ptr(v.name) }.to_bytes() == name.as_bytes() && v.is_default != 0
        })
    }
}
