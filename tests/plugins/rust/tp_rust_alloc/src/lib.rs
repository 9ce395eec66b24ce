//! tp_rust_alloc - a pass-through transform that makes `boxes` heap
//! allocations per record, each a `Box` of `bytes` bytes, and frees them
//! before the record is passed on. Rust's default global allocator
//! (`std::alloc::System`) calls the C library's malloc and free, so the
//! host's allocation interposer must charge exactly `boxes` allocations
//! and frees per record to this stage.
//!
//! The boxes go into a vector owned by the instance (its capacity reserved
//! in `init`, so the vector itself never allocates on the data path): an
//! allocation whose result escapes into `self` is one the optimiser cannot
//! remove, which a `Box` dropped right away could be.
#![forbid(unsafe_code)]

use observatory_stage::{export_stage, Batch, Error, Host, Output, Param, Params, Stage, Transform};

struct RustAlloc {
    boxes: usize,
    bytes: usize,
    held: Vec<Box<[u8]>>,
    checksum: u64,
}

impl Stage for RustAlloc {
    const NAME: &'static str = "tp_rust_alloc";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "passes records through, allocating `boxes` Boxes per record";

    fn params() -> Vec<Param> {
        vec![
            Param::int("boxes", 2).range(0.0, 1000.0).help("Box allocations per record"),
            Param::int("bytes", 24).range(1.0, 65536.0).help("size of each Box"),
        ]
    }

    fn init(_host: Host, params: &Params<'_>) -> Result<Self, Error> {
        let boxes = params.int("boxes")? as usize;
        let bytes = params.int("bytes")? as usize;
        Ok(RustAlloc { boxes, bytes, held: Vec::with_capacity(boxes), checksum: 0 })
    }
}

impl Transform for RustAlloc {
    fn process<'a>(&mut self, input: Batch<'a>, out: &mut Output<'a>) -> Result<(), Error> {
        for r in input.iter() {
            for i in 0..self.boxes {
                let mut b = vec![0u8; self.bytes].into_boxed_slice();
                b[i % self.bytes] = r.seq() as u8;
                self.held.push(b);
            }
            for b in self.held.drain(..) {
                self.checksum = self.checksum.wrapping_add(u64::from(b[0]));
            }
            out.pass(&r)?;
        }
        Ok(())
    }
}

export_stage!(transform RustAlloc);
