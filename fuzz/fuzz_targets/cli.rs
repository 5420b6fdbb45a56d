//! Bytes as husk's argv (NUL-separated) through its command-line parsing: usage errors are
//! fine, panics are bugs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| husk_fuzz::cli(data));
