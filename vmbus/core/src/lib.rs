//! VMBus, the kernel-independent part: wire formats, the channel ring buffer
//! and the guest's control-plane state machine.
//!
//! This crate is `no_std`, allocation-free and has no dependencies. The same
//! files are compiled into `hv_rustic.ko` (see `rustic.rs`, which lists the
//! modules below again) and, through Cargo, into host tests, fuzz targets and
//! benchmarks. Modules therefore refer to each other with `super::`, never
//! `crate::`, because in the kernel build the crate root is the module.
// In hv_rustic.ko this file is a module of the module's crate (one
// list of modules for both builds), so only the Cargo build is no_std here.
#![cfg_attr(not(rustic_embedded), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod guid;
pub mod shared;
pub mod ring;
pub mod event;
pub mod version;
pub mod msg;
pub mod control;
pub mod bus;
