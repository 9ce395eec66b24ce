//! xf_json_serde - JSON ticks to binary ticks with serde, a third version
//! of the JSON parser beside xf_json_jansson (A) and xf_json_fast (B).
//!
//! Same contract, decision for decision: each input record is one JSON
//! tick; a valid one is emitted as a 48-byte market_tick
//! (plugins/common/market.h) with the input's seq and intended time, built
//! in place in the output arena; a record that is not JSON (as jansson 2.14
//! reads it) is counted on "parse_error", one that is JSON but not a valid
//! tick on "schema_error", and both are skipped. tests/unit/test_json_equiv.c
//! checks the three parsers agree on generated ticks, a corpus of malformed
//! input and random mutations. The parsing is in tick.rs.

mod tick;

use observatory_stage::{
    export_stage, Batch, Counter, CounterKind, Error, Host, Output, Params, Stage, Transform,
};

use tick::{parse_tick, Verdict, TICK_LEN};

struct XfSerde {
    host: Host,
    c_parse: Counter,
    c_schema: Counter,
}

impl Stage for XfSerde {
    const NAME: &'static str = "xf_json_serde";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str =
        "JSON ticks to binary ticks, serde_json borrowing from the input (Rust version of the JSON A/B demo)";

    fn init(host: Host, _params: &Params<'_>) -> Result<Self, Error> {
        let c_parse = host.counter(
            "parse_error",
            CounterKind::Error,
            "records that are not valid JSON (as jansson reads it)",
        )?;
        let c_schema = host.counter("schema_error", CounterKind::Error, "JSON records that are not a valid tick")?;
        Ok(XfSerde { host, c_parse, c_schema })
    }
}

impl Transform for XfSerde {
    fn process<'a>(&mut self, input: Batch<'a>, out: &mut Output<'a>) -> Result<(), Error> {
        let (mut n_parse, mut n_schema) = (0u64, 0u64);
        let mut rc = Ok(());
        for r in input.iter() {
            match parse_tick(r.data()) {
                Verdict::Ok(t) => {
                    let res = out.reserve(TICK_LEN).and_then(|mut buf| {
                        t.write_to(&mut buf);
                        buf.commit(TICK_LEN, r.seq(), r.t_intended_ns())
                    });
                    if let Err(e) = res {
                        rc = Err(e);
                        break;
                    }
                }
                Verdict::Parse => n_parse += 1,
                Verdict::Schema => n_schema += 1,
            }
        }
        if n_parse > 0 {
            self.host.add(self.c_parse, n_parse);
        }
        if n_schema > 0 {
            self.host.add(self.c_schema, n_schema);
        }
        rc
    }
}

export_stage!(transform XfSerde);
