//! VMBus protocol versions and the connection ids that go with them.
//!
//! A version is `major << 16 | minor` on the wire. The guest offers versions
//! newest first and falls back on each rejection (see `super::control`).

use core::fmt;

/// A VMBus protocol version, as carried in `vmbus_version_requested`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(u32);

impl Version {
    /// Windows 8 / Server 2012 (2.4), the oldest version Linux still speaks.
    pub const WIN8: Version = Version::new(2, 4);
    /// Windows 8.1 / Server 2012 R2 (3.0).
    pub const WIN8_1: Version = Version::new(3, 0);
    /// Windows 10 (4.0).
    pub const WIN10: Version = Version::new(4, 0);
    /// Windows 10 v4.1: first version with CHANNELMSG_MODIFYCHANNEL.
    pub const WIN10_V4_1: Version = Version::new(4, 1);
    /// 5.0: the message connection id comes from the version response.
    pub const WIN10_V5: Version = Version::new(5, 0);
    /// 5.1.
    pub const WIN10_V5_1: Version = Version::new(5, 1);
    /// 5.2: the minimum for isolated (confidential) VMs.
    pub const WIN10_V5_2: Version = Version::new(5, 2);
    /// 5.3: the host answers CHANNELMSG_MODIFYCHANNEL.
    pub const WIN10_V5_3: Version = Version::new(5, 3);

    /// Builds a version from its major and minor numbers.
    pub const fn new(major: u16, minor: u16) -> Version {
        Version(((major as u32) << 16) | minor as u32)
    }

    /// The wire value.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The version for a wire value, if it is one this guest supports.
    pub fn from_raw(raw: u32) -> Option<Version> {
        SUPPORTED.iter().copied().find(|v| v.0 == raw)
    }

    /// The major number.
    pub const fn major(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// The minor number.
    pub const fn minor(self) -> u16 {
        self.0 as u16
    }

    /// The connection id for CHANNELMSG_INITIATE_CONTACT with this version.
    pub const fn initiate_contact_connection_id(self) -> u32 {
        if self.0 >= Version::WIN10_V5.0 {
            MESSAGE_CONNECTION_ID_4
        } else {
            MESSAGE_CONNECTION_ID
        }
    }

    /// Whether the host's version response names the connection id for all
    /// later messages (5.0 and newer); older hosts always use
    /// [`MESSAGE_CONNECTION_ID`].
    pub const fn host_assigns_connection_id(self) -> bool {
        self.0 >= Version::WIN10_V5.0
    }

    /// Whether the host takes CHANNELMSG_UNLOAD (3.0 and newer): older
    /// hosts cannot reconnect a guest, so the C driver sends them none.
    pub const fn takes_unload(self) -> bool {
        self.0 >= Version::WIN8_1.0
    }

    /// Whether CHANNELMSG_MODIFYCHANNEL may be sent at all.
    pub const fn supports_modify_channel(self) -> bool {
        self.0 >= Version::WIN10_V4_1.0
    }

    /// Whether the host answers CHANNELMSG_MODIFYCHANNEL with a response.
    pub const fn modify_channel_has_response(self) -> bool {
        self.0 >= Version::WIN10_V5_3.0
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major(), self.minor())
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The versions this guest offers, newest first, in negotiation order.
pub const SUPPORTED: [Version; 8] = [
    Version::WIN10_V5_3,
    Version::WIN10_V5_2,
    Version::WIN10_V5_1,
    Version::WIN10_V5,
    Version::WIN10_V4_1,
    Version::WIN10,
    Version::WIN8_1,
    Version::WIN8,
];

/// Connection id for channel messages to hosts older than 5.0, and for
/// CHANNELMSG_INITIATE_CONTACT proposing such a version.
pub const MESSAGE_CONNECTION_ID: u32 = 1;
/// Connection id for CHANNELMSG_INITIATE_CONTACT proposing 5.0 or newer.
pub const MESSAGE_CONNECTION_ID_4: u32 = 4;
/// Connection id on which the guest signals the host's event flags.
pub const EVENT_CONNECTION_ID: u32 = 2;
/// Connection id of the monitor page.
pub const MONITOR_CONNECTION_ID: u32 = 3;
/// The SynIC interrupt source on which the host sends channel messages.
pub const MESSAGE_SINT: u8 = 2;
/// Connection ids are 24 bits wide (`union hv_connection_id`).
pub const CONNECTION_ID_MASK: u32 = 0x00ff_ffff;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_order_is_strictly_newest_first() {
        assert!(SUPPORTED.windows(2).all(|w| w[0] > w[1]));
        assert_eq!(SUPPORTED[0].raw(), 0x0005_0003);
        assert_eq!(SUPPORTED[7].raw(), 0x0002_0004);
    }

    #[test]
    fn connection_ids_follow_the_5_0_rule() {
        assert_eq!(Version::WIN10_V5.initiate_contact_connection_id(), 4);
        assert_eq!(Version::WIN10_V4_1.initiate_contact_connection_id(), 1);
        assert!(!Version::WIN10_V4_1.host_assigns_connection_id());
        assert!(Version::WIN10_V5_1.host_assigns_connection_id());
    }

    #[test]
    fn unload_only_from_3_0() {
        assert!(!Version::WIN8.takes_unload());
        assert!(Version::WIN8_1.takes_unload());
        assert!(Version::WIN10_V5_3.takes_unload());
    }

    #[test]
    fn from_raw_accepts_only_supported_versions() {
        assert_eq!(Version::from_raw(0x0003_0000), Some(Version::WIN8_1));
        assert_eq!(Version::from_raw(0x0001_0001), None);
        assert_eq!(Version::from_raw(0x0005_0004), None);
    }
}
