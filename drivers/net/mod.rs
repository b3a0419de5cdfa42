// SPDX-License-Identifier: GPL-2.0
//! Synthetic networking: the netvsc driver, the NVSP/RNDIS protocol crate
//! (`netvsc-core`, host-tested and fuzzed) and the simulated NIC.

pub(crate) mod netvsc;
/// The netvsc protocols (`drivers/net/proto`, the `netvsc-core` crate).
#[path = "proto/src/lib.rs"]
pub mod proto;
#[cfg(rustic_test_build)]
pub(crate) mod sim;
