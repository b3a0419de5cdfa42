//! The guest's side of VSTOR, sans I/O: the initialization sequence the C
//! driver runs in `storvsc_channel_init` (BEGIN_INITIALIZATION, one
//! QUERY_PROTOCOL_VERSION per version newest first, QUERY_PROPERTIES,
//! FCHBA_DATA on Fibre Channel, END_INITIALIZATION), the sub-channel
//! request, the sorting of everything the host sends by transaction id,
//! and the limits the SCSI host is registered with per controller class.
//!
//! The driver sends what [`Init`] returns, waits (bounded) for the
//! completion with [`INIT_TRANS_ID`], and feeds the completion's bytes
//! back. Every host answer is checked: its length against the negotiated
//! packet size, its operation, its status; a wrong one fails the sequence
//! with an [`InitError`] instead of being read as something else.

use super::vstor::{
    ChannelProperties, FcWwn, Operation, Packet, Version, GUEST_VERSIONS, PACKET_SIZE,
    STATUS_SUCCESS,
};
use super::wire::{Error, Result};

/// Transaction id of the initialization requests (and sub-channel
/// creation): the C stack's `VMBUS_RQST_INIT`.
pub const INIT_TRANS_ID: u64 = u64::MAX - 2;
/// Transaction id of the bus reset: `VMBUS_RQST_RESET`.
pub const RESET_TRANS_ID: u64 = u64::MAX - 3;
/// Request timeout of every LUN, seconds (`storvsc_timeout`); also the
/// bound on each wait for an initialization answer.
pub const TIMEOUT_SECS: u32 = 180;
/// `cmd_per_lun` of the SCSI host.
pub const CMD_PER_LUN: u32 = 2048;
/// CPUs per sub-channel the guest plans for (`storvsc_vcpus_per_sub_channel`).
pub const CPUS_PER_SUB_CHANNEL: u32 = 4;
/// Percent of a ring kept free before the guest picks another channel
/// (`ring_avail_percent_lowater`).
pub const RING_LOW_WATER_PERCENT: u32 = 10;
/// Hyper-V page size: the unit of GPA ranges and of the transfer limit.
pub const HV_PAGE_SIZE: u32 = 4096;
/// Largest transfer on a Fibre Channel controller (`STORVSC_FC_MAX_XFER_SIZE`).
pub const FC_MAX_TRANSFER: u32 = 512 * 1024;
/// Ring bytes the C driver budgets per request: a multi-page GPA packet
/// (`MAX_MULTIPAGE_BUFFER_PACKET`: a 0x18-byte header and a
/// `hv_multipage_buffer` of length, offset and 32 page numbers), the VSTOR
/// packet and the trailing u64, 8-aligned.
pub const RING_BYTES_PER_REQUEST: u32 = 0x18 + 8 + 32 * 8 + 64 + 8;

// ---------------------------------------------------------------------------
// Controller classes and their limits.

/// The three device classes the driver binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Synthetic SCSI, ba6163d9-04a1-4d29-b605-72e2ffb1dc7f.
    Scsi,
    /// IDE accelerator, 32412632-86cb-44a2-9b5c-50d1417354f5: one disk.
    Ide,
    /// Synthetic Fibre Channel, 2f9bcc4a-0069-4af3-b76b-6fd0be528cda.
    Fc,
}

impl Class {
    /// `max_lun`: LUNs per target.
    pub fn max_luns_per_target(self) -> u32 {
        match self {
            Class::Scsi | Class::Fc => 255,
            Class::Ide => 64,
        }
    }

    /// `max_id`: targets.
    pub fn max_targets(self) -> u32 {
        match self {
            Class::Scsi => 2,
            Class::Fc => 128,
            Class::Ide => 1,
        }
    }

    /// SCSI channels (`max_channel` is one less).
    pub fn max_channels(self) -> u32 {
        match self {
            Class::Scsi | Class::Fc => 8,
            Class::Ide => 1,
        }
    }

    /// Whether the controller may have sub-channels (not IDE).
    pub fn has_sub_channels(self) -> bool {
        self != Class::Ide
    }

    /// Whether initialization asks for the FC names.
    pub fn is_fc(self) -> bool {
        self == Class::Fc
    }
}

/// What the SCSI host is registered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostLimits {
    /// `max_lun`.
    pub max_lun: u32,
    /// `max_id`.
    pub max_id: u32,
    /// `max_channel` (the highest channel number).
    pub max_channel: u32,
    /// `max_cmd_len`.
    pub max_cmd_len: u32,
    /// `max_sectors` (512-byte units).
    pub max_sectors: u32,
    /// `sg_tablesize`: one page per [`HV_PAGE_SIZE`] of the largest
    /// transfer, plus one for an unaligned start.
    pub sg_tablesize: u16,
}

/// The limits for a controller of `class` whose host allows
/// `max_transfer_bytes` per SRB: the transfer is rounded down to whole
/// pages (capped at [`FC_MAX_TRANSFER`] on FC, and so that `sg_tablesize`
/// fits its `u16`). Fails if less than a page remains.
pub fn host_limits(class: Class, max_transfer_bytes: u32) -> Result<HostLimits> {
    let mut max = max_transfer_bytes - max_transfer_bytes % HV_PAGE_SIZE;
    if class == Class::Fc {
        max = max.min(FC_MAX_TRANSFER);
    }
    let page_cap = (u32::from(u16::MAX) - 1) * HV_PAGE_SIZE;
    max = max.min(page_cap);
    if max < HV_PAGE_SIZE {
        return Err(Error::BadField("max_transfer_bytes"));
    }
    Ok(HostLimits {
        max_lun: class.max_luns_per_target(),
        max_id: class.max_targets(),
        max_channel: class.max_channels() - 1,
        max_cmd_len: super::vstor::MAX_CDB_LEN as u32,
        max_sectors: max >> 9,
        // CAST: max is at most (u16::MAX - 1) pages.
        sg_tablesize: ((max / HV_PAGE_SIZE) + 1) as u16,
    })
}

/// Sub-channels the guest plans for with `online_cpus` CPUs: one per
/// [`CPUS_PER_SUB_CHANNEL`] CPUs beyond the first, none on IDE. The C
/// driver sizes `can_queue` from it; Hyper-V offers about as many.
pub fn planned_sub_channels(class: Class, online_cpus: u32) -> u32 {
    if class.has_sub_channels() {
        online_cpus.saturating_sub(1) / CPUS_PER_SUB_CHANNEL
    } else {
        0
    }
}

/// Sub-channels to ask for in CREATE_SUB_CHANNELS: none unless the host
/// supports multi-channel, else the host's `max_channel_cnt`, but never
/// more than the CPUs beyond the primary channel's (as the C driver
/// does). 0 means the request is not sent.
pub fn sub_channels_to_request(class: Class, online_cpus: u32, props: &ChannelProperties) -> u16 {
    if !class.has_sub_channels() || !props.multi_channel() {
        return 0;
    }
    let cpus = u16::try_from(online_cpus.saturating_sub(1)).unwrap_or(u16::MAX);
    cpus.min(props.max_channel_cnt)
}

/// Requests one channel's ring holds at once (`max_outstanding_req_per_channel`):
/// the ring's size (`VMBUS_RING_SIZE` of the C driver's 128 KiB, which is
/// 128 KiB: rings that large need no extra header page) less one page,
/// over [`RING_BYTES_PER_REQUEST`].
pub fn requests_per_channel(ring_bytes: u32) -> u32 {
    ring_bytes.saturating_sub(HV_PAGE_SIZE) / RING_BYTES_PER_REQUEST
}

/// The SCSI host's `can_queue`: every channel's requests, less the share
/// kept free ([`RING_LOW_WATER_PERCENT`]).
pub fn can_queue(per_channel: u32, sub_channels: u32) -> u32 {
    let total = u64::from(per_channel).saturating_mul(u64::from(sub_channels) + 1);
    let q = total.saturating_mul(u64::from(100 - RING_LOW_WATER_PERCENT)) / 100;
    u32::try_from(q).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------
// Transaction ids and what the host sends.

/// The transaction id of the command with block-layer tag `tag` (0 is the
/// host's unsolicited messages, so tags are shifted by one).
pub fn command_trans_id(tag: u32) -> u64 {
    u64::from(tag) + 1
}

/// Something the host sent, sorted by its transaction id and operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostEvent {
    /// The answer to the initialization request in flight.
    Init(Packet),
    /// The answer to the bus reset.
    Reset(Packet),
    /// The completion of the command with this tag.
    Completion {
        /// The block-layer tag.
        tag: u32,
        /// The host's packet (a COMPLETE_IO).
        packet: Packet,
    },
    /// LUNs were added or removed (ENUMERATE_BUS, REMOVE_DEVICE): rescan.
    Rescan,
    /// The host pushed new FC names.
    FcNames(FcWwn),
}

/// Sorts a packet the host sent with `trans_id`: `tags` is the number of
/// block-layer tags (ids 1 to `tags` are commands), `version` the
/// negotiated version (`None` while negotiating).
///
/// Answers (any non-zero id) must be a whole packet. Unsolicited messages
/// (id 0) need only their operation, and may not be COMPLETE_IO or
/// FCHBA_DATA, whose payload the guest would read. A command id past the
/// tags is [`Error::BadField`]`("trans_id")`; an operation the host does not
/// send is [`Error::WrongSender`]. A completion's id must still be checked
/// against the commands in flight by the caller.
pub fn host_packet(
    bytes: &[u8],
    trans_id: u64,
    version: Option<Version>,
    tags: u32,
) -> Result<HostEvent> {
    let full = version.map_or(PACKET_SIZE, Version::packet_size);
    let min = if trans_id == 0 { 4 } else { full };
    let p = Packet::parse(bytes, min)?;
    if !p.operation.sent_by_host() {
        return Err(Error::WrongSender(p.operation.raw()));
    }
    match trans_id {
        0 => match p.operation {
            Operation::EnumerateBus | Operation::RemoveDevice => Ok(HostEvent::Rescan),
            _ => Err(Error::BadField("trans_id")),
        },
        INIT_TRANS_ID => Ok(HostEvent::Init(p)),
        RESET_TRANS_ID => Ok(HostEvent::Reset(p)),
        id => {
            let tag = u32::try_from(id - 1)
                .ok()
                .filter(|t| *t < tags)
                .ok_or(Error::BadField("trans_id"))?;
            match p.operation {
                Operation::CompleteIo => Ok(HostEvent::Completion { tag, packet: p }),
                Operation::EnumerateBus | Operation::RemoveDevice => Ok(HostEvent::Rescan),
                // The C driver takes new names from any packet that carries
                // them; a tag's id does not make them the tag's completion.
                Operation::FcHbaData => Ok(HostEvent::FcNames(p.wwn())),
                other => Err(Error::WrongSender(other.raw())),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Initialization.

/// Why initialization failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// The host answered with something other than COMPLETE_IO.
    NotCompletion(Operation),
    /// The host failed a request with this status.
    Status {
        /// The request.
        operation: Operation,
        /// The host's status.
        status: u32,
    },
    /// The host refused every version ("obsolete Hyper-V version").
    NoCommonVersion,
    /// The answer does not parse, or carries an unusable value.
    Malformed(Error),
    /// An answer came with no request in flight.
    Unexpected,
}

/// What initialization found out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The version the host accepted.
    pub version: Version,
    /// The channel properties.
    pub properties: ChannelProperties,
    /// On Fibre Channel, the active `(node_name, port_name)`.
    pub fc_names: Option<(u64, u64)>,
}

/// What the guest does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitStep {
    /// Send this packet with [`INIT_TRANS_ID`] and wait for its answer.
    Send(Packet),
    /// Initialization is over.
    Done(Negotiated),
    /// Initialization failed; close the channel.
    Failed(InitError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Begin,
    Version(usize),
    Properties,
    FcHbaData,
    End,
    Over,
}

/// The initialization sequence of one controller, sans I/O.
#[derive(Clone, Debug)]
pub struct Init {
    phase: Phase,
    is_fc: bool,
    version: Option<Version>,
    properties: ChannelProperties,
    fc_names: Option<(u64, u64)>,
}

impl Init {
    /// Starts initialization; returns the first packet to send
    /// (BEGIN_INITIALIZATION).
    pub fn start(class: Class) -> (Init, Packet) {
        let init = Init {
            phase: Phase::Begin,
            is_fc: class.is_fc(),
            version: None,
            properties: ChannelProperties::default(),
            fc_names: None,
        };
        (init, Packet::request(Operation::BeginInitialization))
    }

    /// The operation of the request in flight, if any.
    pub fn in_flight(&self) -> Option<Operation> {
        match self.phase {
            Phase::Begin => Some(Operation::BeginInitialization),
            Phase::Version(_) => Some(Operation::QueryProtocolVersion),
            Phase::Properties => Some(Operation::QueryProperties),
            Phase::FcHbaData => Some(Operation::FcHbaData),
            Phase::End => Some(Operation::EndInitialization),
            Phase::Over => None,
        }
    }

    fn fail(&mut self, e: InitError) -> InitStep {
        self.phase = Phase::Over;
        InitStep::Failed(e)
    }

    fn query_version(&mut self, i: usize) -> InitStep {
        match GUEST_VERSIONS.get(i) {
            Some(v) => {
                self.phase = Phase::Version(i);
                let mut p = Packet::request(Operation::QueryProtocolVersion);
                p.set_version(v.raw());
                InitStep::Send(p)
            }
            None => self.fail(InitError::NoCommonVersion),
        }
    }

    /// The host answered the request in flight with `bytes` (the packet
    /// that came with [`INIT_TRANS_ID`]).
    pub fn on_reply(&mut self, bytes: &[u8]) -> InitStep {
        let Some(operation) = self.in_flight() else {
            return InitStep::Failed(InitError::Unexpected);
        };
        let min = self.version.map_or(PACKET_SIZE, Version::packet_size);
        let p = match Packet::parse(bytes, min) {
            Ok(p) => p,
            Err(e) => return self.fail(InitError::Malformed(e)),
        };
        if p.operation != Operation::CompleteIo {
            return self.fail(InitError::NotCompletion(p.operation));
        }
        // A refused version is not a failure: the next one is tried.
        if let Phase::Version(i) = self.phase {
            if p.status != STATUS_SUCCESS {
                return self.query_version(i.saturating_add(1));
            }
            self.version = GUEST_VERSIONS.get(i).copied();
            self.phase = Phase::Properties;
            return InitStep::Send(Packet::request(Operation::QueryProperties));
        }
        if p.status != STATUS_SUCCESS {
            return self.fail(InitError::Status {
                operation,
                status: p.status,
            });
        }
        match self.phase {
            Phase::Begin => self.query_version(0),
            Phase::Properties => {
                self.properties = p.properties();
                if self.properties.max_transfer_bytes < HV_PAGE_SIZE {
                    return self.fail(InitError::Malformed(Error::BadField("max_transfer_bytes")));
                }
                if self.is_fc {
                    self.phase = Phase::FcHbaData;
                    InitStep::Send(Packet::request(Operation::FcHbaData))
                } else {
                    self.phase = Phase::End;
                    InitStep::Send(Packet::request(Operation::EndInitialization))
                }
            }
            Phase::FcHbaData => {
                self.fc_names = Some(p.wwn().active_names());
                self.phase = Phase::End;
                InitStep::Send(Packet::request(Operation::EndInitialization))
            }
            Phase::End => {
                self.phase = Phase::Over;
                match self.version {
                    Some(version) => InitStep::Done(Negotiated {
                        version,
                        properties: self.properties,
                        fc_names: self.fc_names,
                    }),
                    None => InitStep::Failed(InitError::Unexpected),
                }
            }
            Phase::Version(_) | Phase::Over => InitStep::Failed(InitError::Unexpected),
        }
    }
}

/// The CREATE_SUB_CHANNELS request for `count` sub-channels (sent with
/// [`INIT_TRANS_ID`] after initialization).
pub fn create_sub_channels(count: u16) -> Packet {
    let mut p = Packet::request(Operation::CreateSubChannels);
    let mut w = super::wire::Writer::new(&mut p.payload, 0);
    w.u16(0, count);
    p
}

/// Checks the host's answer to a request that carries nothing back
/// (CREATE_SUB_CHANNELS, a reset): a whole COMPLETE_IO with status 0.
pub fn check_completion(bytes: &[u8], operation: Operation, version: Version) -> core::result::Result<(), InitError> {
    let p = Packet::parse(bytes, version.packet_size()).map_err(InitError::Malformed)?;
    if p.operation != Operation::CompleteIo {
        return Err(InitError::NotCompletion(p.operation));
    }
    if p.status != STATUS_SUCCESS {
        return Err(InitError::Status {
            operation,
            status: p.status,
        });
    }
    Ok(())
}
