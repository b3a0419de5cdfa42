//! The synthetic storage device's protocol, the kernel-independent part:
//! VSTOR packets and their payloads ([`vstor`]), version negotiation and
//! the rest of the guest's initialization, transaction ids and the limits
//! per controller class ([`guest`]), and SCSI commands as SRBs with the
//! mapping of the host's SRB status to a SCSI result ([`srb`]).
//!
//! It also holds the simulated host's side, written from the host's point
//! of view rather than mirroring the guest: the storvsp protocol engine
//! ([`storvsp`]), with the faults a lying host injects, and the RAM-backed
//! SCSI target it executes SRBs against ([`target`]). They live here
//! rather than in a crate of their own because they reach the wire formats
//! with `super::`, which works the same in the kernel build.
//!
//! Parsers take bytes the caller has already copied out of shared memory
//! and never panic: every length, count and id is checked, every failure
//! is a [`wire::Error`] (or the host engine's [`storvsp::HostError`]).
//!
//! This crate is `no_std`, allocation-free and has no dependencies, like
//! `netvsc-core`, so that the same files can be compiled into
//! `hv_rustic.ko` as modules (with `--cfg rustic_embedded`) and, through
//! Cargo, into host tests and fuzz targets. Modules therefore refer to each
//! other with `super::`, never `crate::`.
// In hv_rustic.ko this file is a module of the module's crate (one
// list of modules for both builds), so only the Cargo build is no_std here.
#![cfg_attr(not(rustic_embedded), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod guest;
pub mod srb;
#[cfg(feature = "host")]
pub mod storvsp;
#[cfg(feature = "host")]
pub mod target;
pub mod vstor;
pub mod wire;
