//! The Hyper-V integration services' protocol, the kernel-independent
//! part: the IC headers ([`icmsg`]), version negotiation ([`negotiate`])
//! with each service's version tables ([`service`]), the messages of
//! shutdown ([`shutdown`]), time sync ([`timesync`]), heartbeat
//! ([`heartbeat`]), KVP ([`kvp`]) and VSS ([`vss`]) including the layouts
//! the user-space daemons speak, UTF-16/UTF-8 conversion ([`utf16`]) and
//! the guest's handling of a received packet ([`guest`]).
//!
//! The simulated host's side, written from the host's point of view, is
//! `host` (feature "host"): one engine per service with fault knobs.
//!
//! Parsers take bytes the caller has already copied out of shared memory
//! and never panic: every length, count, pool and string is checked, every
//! failure is a [`wire::Error`].
//!
//! Like `netvsc-core` and `storvsc-core` this crate is `no_std`,
//! allocation-free and has no dependencies, so that the same files can be
//! compiled into `hv_rustic.ko` as modules (with `--cfg rustic_embedded`);
//! modules therefore refer to each other with `super::`, never `crate::`.
// In hv_rustic.ko this file is a module of the module's crate (one
// list of modules for both builds), so only the Cargo build is no_std here.
#![cfg_attr(not(rustic_embedded), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod guest;
pub mod heartbeat;
#[cfg(feature = "host")]
pub mod host;
pub mod icmsg;
pub mod kvp;
pub mod negotiate;
pub mod service;
pub mod shutdown;
pub mod timesync;
pub mod utf16;
pub mod vss;
pub mod wire;
