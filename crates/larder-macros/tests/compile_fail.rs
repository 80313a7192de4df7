//! What #[cached] refuses at compile time, and the message it gives (tests/ui/*.stderr).

#[test]
fn misuse_is_a_clear_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
