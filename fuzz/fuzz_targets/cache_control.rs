#![no_main]
// See larder_http::fuzz::cache_control for what it checks, and TESTING.md for how to run it.
libfuzzer_sys::fuzz_target!(|data: &[u8]| larder_http::fuzz::cache_control(data));
