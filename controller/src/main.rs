//! The `gemelo` command line.
fn main() {}
