//! Every misuse of `#[job]`, `#[recurring]` and the API's must-use values fails to compile with its error on the
//! offending token (the `.stderr` beside each case), and the `-pass` cases compile.

#[test]
fn misuses_fail_to_compile_with_errors_on_the_offending_tokens() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("job/*.rs");
    cases.pass("job-pass/*.rs");
    cases.compile_fail("recurring/*.rs");
    cases.pass("recurring-pass/*.rs");
    cases.compile_fail("api/*.rs");
    cases.pass("api-pass/*.rs");
}
