//! The synthetic input devices' protocols, the kernel-independent part:
//! the synthetic keyboard (version 1.0, [`keyboard`]) with the keystroke to
//! serio-scancode translation `atkbd` needs, and the synthetic HID protocol
//! (version 2.0, [`mouse`]) that carries the mouse's device info, HID and
//! report descriptors and input reports inside pipe messages.
//!
//! It also holds the simulated host's side ([`host`], behind the "host"
//! feature): a keyboard and a mouse device engine written from the host's
//! point of view, with the faults a lying host injects.
//!
//! Parsers take bytes the caller has already copied out of shared memory
//! and never panic: every length, size and type is checked against the
//! packet, every failure is a [`wire::Error`].
//!
//! This crate is `no_std`, allocation-free and has no dependencies, like
//! `storvsc-core`, so that the same files can be compiled into
//! `hv_rustic.ko` as modules (with `--cfg rustic_embedded`) and, through
//! Cargo, into host tests and fuzz targets. Modules therefore refer to each
//! other with `super::`, never `crate::`.
// In hv_rustic.ko this file is a module of the module's crate (one
// list of modules for both builds), so only the Cargo build is no_std here.
#![cfg_attr(not(rustic_embedded), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_code)]

#[cfg(feature = "host")]
pub mod host;
pub mod keyboard;
pub mod mouse;
pub mod wire;
