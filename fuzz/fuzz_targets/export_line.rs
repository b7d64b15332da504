//! Fuzz target: `dn_node::fuzzing::export_line` (body and properties documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dn_node::fuzzing::export_line(data));
