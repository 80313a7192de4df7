#![no_main]
// See larder_http::fuzz::key for what it checks, and TESTING.md for how to run it.
libfuzzer_sys::fuzz_target!(|data: &[u8]| larder_http::fuzz::key(data));
