//! Event decoding throughput (filled in with the OpenCode adapter).
fn main() {}
