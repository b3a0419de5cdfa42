//! The five integration services: their message type, the versions the
//! guest accepts (as the C drivers `hv_util.c`, `hv_kvp.c` and
//! `hv_snapshot.c` list them, newest first) and their channel sizes.

use super::icmsg::{
    IcVersion, MSG_HEARTBEAT, MSG_KVP_EXCHANGE, MSG_SHUTDOWN, MSG_TIMESYNC, MSG_VSS,
};

/// IC framework 3.0 (`UTIL_FW_VERSION`).
pub const FW_3_0: IcVersion = IcVersion::new(3, 0);
/// IC framework 1.0 (`UTIL_WS2K8_FW_VERSION`, Windows Server 2008).
pub const FW_1_0: IcVersion = IcVersion::new(1, 0);

/// Frameworks of shutdown, time sync, heartbeat and KVP.
pub const FW_VERSIONS: [IcVersion; 2] = [FW_3_0, FW_1_0];
/// VSS only speaks framework 3.0.
pub const VSS_FW_VERSIONS: [IcVersion; 1] = [FW_3_0];

/// Shutdown 3.2 adds hibernate, 3.1 reboot.
pub const SHUTDOWN_VERSIONS: [IcVersion; 4] = [
    IcVersion::new(3, 2),
    IcVersion::new(3, 1),
    IcVersion::new(3, 0),
    IcVersion::new(1, 0),
];
/// Time sync 4.0 carries the VM reference time (`ictimesync_ref_data`).
pub const TIMESYNC_VERSIONS: [IcVersion; 3] = [
    IcVersion::new(4, 0),
    IcVersion::new(3, 0),
    IcVersion::new(1, 0),
];
/// Heartbeat versions.
pub const HEARTBEAT_VERSIONS: [IcVersion; 2] = [IcVersion::new(3, 0), IcVersion::new(1, 0)];
/// KVP: Windows 8 (4.0), Windows 7 (3.0), Windows Server 2008 (1.0).
pub const KVP_VERSIONS: [IcVersion; 3] = [
    IcVersion::new(4, 0),
    IcVersion::new(3, 0),
    IcVersion::new(1, 0),
];
/// VSS 5.0, the one version with FREEZE and THAW.
pub const VSS_VERSIONS: [IcVersion; 1] = [IcVersion::new(5, 0)];

/// Bytes of each ring, send and receive: `VMBUS_RING_SIZE(3 * 4096)`,
/// three pages of data plus the ring's header page.
pub const RING_SIZE: usize = 4 * 4096;
/// Bytes of the guest's receive buffer per service (`4 * HV_HYP_PAGE_SIZE`;
/// the largest message, a KVP IP-info exchange, is 7456 bytes).
pub const RECV_BUFFER_SIZE: usize = 4 * 4096;

/// One integration service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// Operating system shutdown.
    Shutdown,
    /// Time synchronization.
    TimeSync,
    /// Heartbeat.
    Heartbeat,
    /// Data exchange (KVP).
    Kvp,
    /// Backup (VSS).
    Vss,
}

impl Service {
    /// All five, in the C driver's table order.
    pub const ALL: [Service; 5] = [
        Service::Shutdown,
        Service::TimeSync,
        Service::Heartbeat,
        Service::Kvp,
        Service::Vss,
    ];

    /// The `icmsgtype` of the service's own messages.
    pub fn msg_type(self) -> u16 {
        match self {
            Service::Shutdown => MSG_SHUTDOWN,
            Service::TimeSync => MSG_TIMESYNC,
            Service::Heartbeat => MSG_HEARTBEAT,
            Service::Kvp => MSG_KVP_EXCHANGE,
            Service::Vss => MSG_VSS,
        }
    }

    /// The framework versions the guest accepts, newest first.
    pub fn framework_versions(self) -> &'static [IcVersion] {
        match self {
            Service::Vss => &VSS_FW_VERSIONS,
            _ => &FW_VERSIONS,
        }
    }

    /// The service versions the guest accepts, newest first.
    pub fn service_versions(self) -> &'static [IcVersion] {
        match self {
            Service::Shutdown => &SHUTDOWN_VERSIONS,
            Service::TimeSync => &TIMESYNC_VERSIONS,
            Service::Heartbeat => &HEARTBEAT_VERSIONS,
            Service::Kvp => &KVP_VERSIONS,
            Service::Vss => &VSS_VERSIONS,
        }
    }

    /// The name lsvmbus shows for the class.
    pub fn class_name(self) -> &'static str {
        match self {
            Service::Shutdown => "Operating system shutdown",
            Service::TimeSync => "Time Synchronization",
            Service::Heartbeat => "Heartbeat",
            Service::Kvp => "Data Exchange",
            Service::Vss => "VSS (Backup/Restore)",
        }
    }
}

/// Seconds the guest waits for a daemon's answer before failing the host's
/// request (`HV_UTIL_TIMEOUT`).
pub const DAEMON_TIMEOUT_SECS: u32 = 30;
/// Seconds the guest waits for `hv_vss_daemon` to freeze
/// (`VSS_FREEZE_TIMEOUT`, 15 minutes).
pub const VSS_FREEZE_TIMEOUT_SECS: u32 = 15 * 60;
/// Seconds KVP holds the host's NEGOTIATE while no daemon is registered
/// (`HV_UTIL_NEGO_TIMEOUT`), so that early IP injection is not lost.
pub const KVP_NEGOTIATE_DELAY_SECS: u32 = 55;
