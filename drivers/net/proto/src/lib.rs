//! The synthetic network device's protocols, the kernel-independent part:
//! NVSP (the netvsc VMBus protocol, versions 1 to 6.1, with version
//! negotiation), RNDIS (control messages, data packets and their
//! per-packet information), the NDIS objects carried by RNDIS OIDs
//! (offload parameters and capabilities, RSS capabilities and parameters),
//! and the Toeplitz hash used by RSS.
//!
//! It also holds the simulated host's side, written from the host's point
//! of view rather than mirroring the guest: the host's NVSP state machine
//! ([`netvsp`]), the RNDIS device ([`rndis_dev`]), the virtual switch
//! ([`vswitch`]), transmit offloads as Hyper-V's switch does them
//! ([`offload`]), the frame parsing they share ([`frame`]) and the faults a
//! lying host injects at the NVSP/RNDIS layer ([`netfault`]). The guest's
//! send-section bookkeeping ([`sections`]: which completion frees which
//! section) is here too, to be tested on the host. They live
//! here rather than in a crate of their own because they reach the wire
//! formats with `super::`, which works the same in the kernel build.
//!
//! Every message has a parser and a builder, because the crate serves both
//! ends of the channel: the guest driver (netvsc) and the simulated host
//! (netvsp). Parsers take bytes the caller has already copied out of shared
//! memory and never panic: every length, offset and count is checked, every
//! failure is an [`wire::Error`].
//!
//! This crate is `no_std`, allocation-free and has no dependencies. The same
//! files are compiled into `hv_rustic.ko` (see `rustic.rs`, which lists the
//! modules below again) and, through Cargo, into host tests and fuzz
//! targets. Modules therefore refer to each other with `super::`, never
//! `crate::`, because in the kernel build the crate root is the module.
// In hv_rustic.ko this file is a module of the module's crate (one
// list of modules for both builds), so only the Cargo build is no_std here.
#![cfg_attr(not(rustic_embedded), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod frame;
pub mod ndis;
#[cfg(feature = "host")]
pub mod netfault;
#[cfg(feature = "host")]
pub mod netvsp;
pub mod nvsp;
pub mod offload;
pub mod ppi;
pub mod rndis;
#[cfg(feature = "host")]
pub mod rndis_dev;
pub mod rsc;
pub mod sections;
pub mod toeplitz;
#[cfg(feature = "host")]
pub mod vswitch;
pub mod wire;
