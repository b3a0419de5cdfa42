// SPDX-License-Identifier: GPL-2.0
//! Test builds only: drivers for the test classes (the debugfs-made test
//! device and the simulator's echo device).

pub(crate) mod echo;
pub(crate) mod test;
