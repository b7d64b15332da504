//! Fuzz target: `dn_proto::fuzzing::bundle` (body and properties documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dn_proto::fuzzing::bundle(data));
