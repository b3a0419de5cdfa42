// SPDX-License-Identifier: GPL-2.0
//! Synthetic storage: the storvsc driver, the VSTOR protocol crate
//! (`storvsc-core`, host-tested and fuzzed) and the simulated storvsp.

/// The storvsc protocol (`drivers/storage/proto`, the `storvsc-core` crate).
#[path = "proto/src/lib.rs"]
pub mod proto;
#[cfg(rustic_test_build)]
pub(crate) mod sim;
pub(crate) mod storvsc;
