//! RustIC's host-side guest test runner.
//!
//! A guest boot under QEMU writes KTAP to one serial port and the kernel
//! console to another. This crate parses the KTAP stream as it arrives
//! ([`ktap`]), holds each test to its timeout ([`session`]), and scans the
//! console log for kernel splats that fail a run even when every test passed
//! ([`console`]).

pub mod console;
pub mod ktap;
pub mod session;
