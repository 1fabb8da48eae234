//! Engine tests (skeleton; filled in below).
#[test]
fn skeleton() {}
