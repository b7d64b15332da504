//! Fuzz target: `dn_node::fuzzing::beacon` (body and properties documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dn_node::fuzzing::beacon(data));
