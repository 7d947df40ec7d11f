//! Repository-wide invariants, checked by the tests in `tests/tidy.rs` (rust-analyzer's `tidy`
//! pattern). This crate has no code of its own.
