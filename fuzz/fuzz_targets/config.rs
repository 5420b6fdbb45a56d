//! config.json bytes through husk's parsing and validation: errors are fine, panics are bugs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| husk_fuzz::config(data));
