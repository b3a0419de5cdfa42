//! The host's end of VSTOR (storvsp), written from the host's side as
//! Hyper-V behaves, sans I/O: [`Storvsp::on_packet`] takes one packet the
//! guest sent on the primary channel or a sub-channel and returns
//! [`Actions`] for the caller (the simulated host's VMBus device) to carry
//! out: send a packet, offer sub-channels, release completions it held.
//!
//! What the host does:
//! - BEGIN_INITIALIZATION (primary channel, before END_INITIALIZATION):
//!   success; starts initialization over.
//! - QUERY_PROTOCOL_VERSION: success if the version is in the configured
//!   set ([`HostConfig::versions`]; an older host is a smaller set), else
//!   a revision-mismatch status; the guest tries the next.
//! - QUERY_PROPERTIES (after a version): the configured sub-channel
//!   maximum, multi-channel flag and transfer limit.
//! - FCHBA_DATA: the configured names on a Fibre Channel controller; an
//!   invalid-request status on the others.
//! - END_INITIALIZATION (after a version): the controller is ready.
//! - CREATE_SUB_CHANNELS (ready, primary channel, multi-channel, once): 1
//!   to `max_channel_cnt` sub-channels are offered.
//! - EXECUTE_SRB (ready; on the primary or an offered sub-channel): the
//!   SRB is checked and run against the LUNs ([`super::target`]); its
//!   completion carries the SRB and SCSI status, the sense and the bytes
//!   moved.
//! - RESET_LUN / RESET_ADAPTER / RESET_BUS: success, and every completion
//!   the caller holds back is released first (Hyper-V completes all
//!   outstanding I/O before it completes a reset).
//!
//! A request in the wrong state is completed with
//! [`STATUS_INVALID_DEVICE_STATE`]. A packet that does not parse, or that
//! the guest never sends, is a [`HostError`] and has no effect.
//!
//! Faults ([`Fault`]), armed with [`Storvsp::arm`], change the next SRB
//! completions the way a broken or hostile host would.

use super::guest::Class;
use super::srb::{status, DataDirection};
use super::target::{self, DataBuffer, Effect, Luns, Reply};
use super::vstor::{
    ChannelProperties, FcWwn, Operation, Packet, Srb, Version, GUEST_VERSIONS, PACKET_SIZE,
    STATUS_SUCCESS, SUPPORTS_MULTI_CHANNEL,
};
use super::wire::Error;

/// NTSTATUS the host answers a refused version with
/// (`STATUS_REVISION_MISMATCH`).
pub const STATUS_REVISION_MISMATCH: u32 = 0xc000_0059;
/// NTSTATUS for a request the controller does not support
/// (`STATUS_INVALID_DEVICE_REQUEST`).
pub const STATUS_INVALID_DEVICE_REQUEST: u32 = 0xc000_0010;
/// NTSTATUS for a request in the wrong state (`STATUS_INVALID_DEVICE_STATE`).
pub const STATUS_INVALID_DEVICE_STATE: u32 = 0xc000_0184;
/// NTSTATUS for a malformed parameter (`STATUS_INVALID_PARAMETER`).
pub const STATUS_INVALID_PARAMETER: u32 = 0xc000_000d;
/// Most sub-channels the model offers.
pub const MAX_SUB_CHANNELS: u16 = 64;

/// A set of versions the host accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionSet(u8);

impl VersionSet {
    /// Every version (a Windows Server 2016 or later host).
    pub const ALL: VersionSet = VersionSet(0b111);

    /// The versions up to and including `newest` (an older host).
    pub fn up_to(newest: Version) -> VersionSet {
        let mut bits = 0u8;
        for (i, v) in GUEST_VERSIONS.iter().enumerate() {
            if *v <= newest {
                bits |= 1 << i;
            }
        }
        VersionSet(bits)
    }

    /// No version (a host too old for Linux 6.12).
    pub const NONE: VersionSet = VersionSet(0);

    /// Whether `v` is in the set.
    pub fn contains(self, v: Version) -> bool {
        GUEST_VERSIONS
            .iter()
            .position(|g| *g == v)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }
}

/// The controller the host models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostConfig {
    /// SCSI, IDE or Fibre Channel.
    pub class: Class,
    /// Versions accepted.
    pub versions: VersionSet,
    /// `max_channel_cnt` in the properties (capped at [`MAX_SUB_CHANNELS`]).
    pub max_sub_channels: u16,
    /// Whether the properties say multi-channel (never on IDE).
    pub multi_channel: bool,
    /// `max_transfer_bytes` in the properties; also the largest SRB run.
    pub max_transfer_bytes: u32,
    /// Names for FCHBA_DATA.
    pub wwn: FcWwn,
}

impl Default for HostConfig {
    fn default() -> HostConfig {
        HostConfig {
            class: Class::Scsi,
            versions: VersionSet::ALL,
            max_sub_channels: 0,
            multi_channel: true,
            max_transfer_bytes: 2 * 1024 * 1024,
            wwn: FcWwn::default(),
        }
    }
}

/// Why a guest packet was refused without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostError {
    /// The bytes are not a VSTOR packet.
    Malformed(Error),
    /// An operation only the host sends.
    WrongSender(Operation),
    /// A channel the host never offered.
    NoSuchChannel(u16),
}

/// A fault the host injects into the next SRB completions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The command is not run; `SRB_STATUS_ERROR` with autosense and
    /// CHECK CONDITION / MEDIUM ERROR / unrecovered read error.
    ErrorWithSense,
    /// The command is not run; `SRB_STATUS_ERROR` with no sense.
    ErrorWithoutSense,
    /// The command is not run; `SRB_STATUS_INVALID_LUN` (the LUN is gone).
    InvalidLun,
    /// The command is not run; `SRB_STATUS_ABORTED` with autosense and
    /// UNIT ATTENTION / capacity data changed.
    CapacityChanged,
    /// The command runs; its status is `SRB_STATUS_DATA_OVERRUN` with half
    /// the bytes reported.
    DataOverrun,
    /// The command runs; the completion says more bytes moved than the
    /// guest's buffer holds.
    BadDataLength,
    /// The command is not run; CHECK CONDITION with a sense length of 255.
    BadSenseLength,
    /// The command runs; the completion's packet status is a failure and
    /// its SRB status 0.
    WrongStatus,
    /// The command runs; its completion is cut to half a packet.
    ShortCompletion,
    /// The command runs; it is completed twice.
    Duplicate,
    /// The command runs; its completion carries an id the guest never used
    /// (the real id plus 2^32).
    UnknownId,
    /// The command runs; it is answered with FCHBA_DATA instead of
    /// COMPLETE_IO.
    WrongOperation,
    /// The command runs; its completion is handed to the caller to hold
    /// back ([`Action::Hold`]): dropped, or delayed until released.
    Hold,
}

impl Fault {
    /// Every fault, for the simulator's knobs and the tests.
    pub const ALL: [Fault; 13] = [
        Fault::ErrorWithSense,
        Fault::ErrorWithoutSense,
        Fault::InvalidLun,
        Fault::CapacityChanged,
        Fault::DataOverrun,
        Fault::BadDataLength,
        Fault::BadSenseLength,
        Fault::WrongStatus,
        Fault::ShortCompletion,
        Fault::Duplicate,
        Fault::UnknownId,
        Fault::WrongOperation,
        Fault::Hold,
    ];

    /// Whether the command still runs under this fault.
    fn runs(self) -> bool {
        !matches!(
            self,
            Fault::ErrorWithSense
                | Fault::ErrorWithoutSense
                | Fault::InvalidLun
                | Fault::CapacityChanged
                | Fault::BadSenseLength
        )
    }
}

/// Something the caller does for the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `bytes[..len]` to the guest on the channel the request came on,
    /// with this transaction id, as a completion packet.
    Send {
        /// The transaction id.
        trans_id: u64,
        /// The packet.
        bytes: [u8; PACKET_SIZE],
        /// Its length.
        len: usize,
    },
    /// Keep this completion back (a [`Fault::Hold`]); send it when told to
    /// release, or never.
    Hold {
        /// The transaction id.
        trans_id: u64,
        /// The packet.
        bytes: [u8; PACKET_SIZE],
    },
    /// Send every held completion now (before the sends that follow).
    ReleaseHeld,
    /// Offer this many sub-channels.
    OfferSubChannels(u16),
}

/// The actions for one packet, in order (at most three).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Actions {
    list: [Option<Action>; 3],
}

impl Actions {
    fn push(&mut self, a: Action) {
        if let Some(slot) = self.list.iter_mut().find(|s| s.is_none()) {
            *slot = Some(a);
        }
    }

    /// The actions, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Action> {
        self.list.iter().flatten()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.iter().all(Option::is_none)
    }
}

/// One packet the guest sent.
#[derive(Clone, Copy, Debug)]
pub struct GuestPacket<'a> {
    /// 0 for the primary channel, n for the n-th sub-channel.
    pub channel: u16,
    /// Its transaction id.
    pub trans_id: u64,
    /// Its in-band bytes (the VSTOR packet).
    pub bytes: &'a [u8],
    /// Bytes the packet's GPA ranges describe (0 with none).
    pub data_len: u32,
}

/// Counters, for the simulator's debugfs and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// SRBs run per channel (primary first); channels past the array count
    /// in the last slot.
    pub srbs_per_channel: [u64; 17],
    /// SRBs refused before running (bad CDB, length, direction, state).
    pub srbs_refused: u64,
    /// Requests answered with [`STATUS_INVALID_DEVICE_STATE`].
    pub out_of_order: u64,
    /// Resets.
    pub resets: u64,
    /// Faults injected.
    pub faults: u64,
    /// What the SRBs did.
    pub effect: Effect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for BEGIN_INITIALIZATION.
    Idle,
    /// Initializing; the version, once one was accepted.
    Initializing(Option<Version>),
    /// END_INITIALIZATION done.
    Ready(Version),
}

/// The host's VSTOR state for one controller.
#[derive(Clone, Debug)]
pub struct Storvsp {
    config: HostConfig,
    state: State,
    sub_channels: u16,
    fault: Option<(Fault, u32)>,
    counters: Counters,
}

impl Storvsp {
    /// A controller with this configuration, waiting for the guest.
    pub fn new(config: HostConfig) -> Storvsp {
        Storvsp {
            config,
            state: State::Idle,
            sub_channels: 0,
            fault: None,
            counters: Counters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The version, once initialization has ended.
    pub fn version(&self) -> Option<Version> {
        match self.state {
            State::Ready(v) => Some(v),
            _ => None,
        }
    }

    /// Sub-channels offered.
    pub fn sub_channels(&self) -> u16 {
        self.sub_channels
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Injects `fault` into the next `count` SRB completions (0 disarms).
    pub fn arm(&mut self, fault: Fault, count: u32) {
        self.fault = (count > 0).then_some((fault, count));
    }

    /// The armed fault and how many completions it still hits.
    pub fn armed(&self) -> Option<(Fault, u32)> {
        self.fault
    }

    /// The properties this host answers QUERY_PROPERTIES with.
    pub fn properties(&self) -> ChannelProperties {
        let multi = self.config.multi_channel && self.config.class != Class::Ide;
        ChannelProperties {
            max_channel_cnt: self.config.max_sub_channels.min(MAX_SUB_CHANNELS),
            flags: if multi { SUPPORTS_MULTI_CHANNEL } else { 0 },
            max_transfer_bytes: self.config.max_transfer_bytes,
        }
    }

    /// Handles one guest packet; the data of an EXECUTE_SRB moves through
    /// `data` (the packet's GPA ranges, `packet.data_len` bytes).
    pub fn on_packet(
        &mut self,
        packet: &GuestPacket<'_>,
        luns: &mut dyn Luns,
        data: &mut dyn DataBuffer,
    ) -> Result<Actions, HostError> {
        if packet.channel > self.sub_channels {
            return Err(HostError::NoSuchChannel(packet.channel));
        }
        let p = Packet::parse(packet.bytes, PACKET_SIZE).map_err(HostError::Malformed)?;
        if !p.operation.sent_by_guest() {
            return Err(HostError::WrongSender(p.operation));
        }
        let mut actions = Actions::default();
        let mut reply = Packet::new(Operation::CompleteIo, 0, STATUS_SUCCESS);
        match (p.operation, self.state) {
            (Operation::BeginInitialization, State::Idle | State::Initializing(_))
                if packet.channel == 0 =>
            {
                self.state = State::Initializing(None);
            }
            (Operation::QueryProtocolVersion, State::Initializing(current)) => {
                let (raw, _revision) = p.version();
                match Version::from_raw(raw).filter(|v| self.config.versions.contains(*v)) {
                    Some(v) => self.state = State::Initializing(Some(v)),
                    None => {
                        reply.status = STATUS_REVISION_MISMATCH;
                        self.state = State::Initializing(current);
                    }
                }
            }
            (Operation::QueryProperties, State::Initializing(Some(_))) => {
                self.properties().encode(&mut reply.payload);
            }
            (Operation::FcHbaData, State::Initializing(Some(_)) | State::Ready(_)) => {
                if self.config.class == Class::Fc {
                    self.config.wwn.encode(&mut reply.payload);
                } else {
                    reply.status = STATUS_INVALID_DEVICE_REQUEST;
                }
            }
            (Operation::EndInitialization, State::Initializing(Some(v))) => {
                self.state = State::Ready(v);
            }
            (Operation::CreateSubChannels, State::Ready(_)) => {
                let want = p.sub_channel_count();
                let props = self.properties();
                if packet.channel != 0
                    || !props.multi_channel()
                    || self.sub_channels != 0
                    || want == 0
                    || want > props.max_channel_cnt
                {
                    reply.status = STATUS_INVALID_PARAMETER;
                } else {
                    self.sub_channels = want;
                    actions.push(Action::OfferSubChannels(want));
                }
            }
            (Operation::ExecuteSrb, State::Ready(_)) => {
                return Ok(self.execute(packet, &p.srb(), luns, data));
            }
            (Operation::ResetBus | Operation::ResetAdapter | Operation::ResetLun, _) => {
                self.counters.resets = self.counters.resets.saturating_add(1);
                actions.push(Action::ReleaseHeld);
            }
            _ => {
                self.counters.out_of_order = self.counters.out_of_order.saturating_add(1);
                reply.status = STATUS_INVALID_DEVICE_STATE;
            }
        }
        actions.push(Action::Send {
            trans_id: packet.trans_id,
            bytes: reply.to_bytes(),
            len: PACKET_SIZE,
        });
        Ok(actions)
    }

    fn execute(
        &mut self,
        packet: &GuestPacket<'_>,
        srb: &Srb,
        luns: &mut dyn Luns,
        data: &mut dyn DataBuffer,
    ) -> Actions {
        let mut out = *srb;
        let reply = match self.check_srb(packet, srb) {
            Err(refused) => {
                self.counters.srbs_refused = self.counters.srbs_refused.saturating_add(1);
                refused
            }
            Ok((cdb, direction)) => {
                let fault = self.take_fault();
                if fault.is_some_and(|f| !f.runs()) {
                    fault_reply(fault)
                } else {
                    let slot = usize::from(packet.channel).min(16);
                    if let Some(c) = self.counters.srbs_per_channel.get_mut(slot) {
                        *c = c.saturating_add(1);
                    }
                    let req = target::Request {
                        cdb: cdb.get(..usize::from(srb.cdb_length)).unwrap_or(&[]),
                        path: srb.path,
                        target: srb.target,
                        lun: srb.lun,
                        direction,
                        len: srb.data_transfer_length,
                    };
                    let mut r = target::execute(&req, luns, data, &mut self.counters.effect);
                    if let Some(f) = fault {
                        match f {
                            Fault::DataOverrun => {
                                r.srb_status = status::DATA_OVERRUN;
                                r.transferred /= 2;
                            }
                            Fault::BadDataLength => {
                                r.transferred = srb.data_transfer_length.saturating_add(4096);
                            }
                            _ => {}
                        }
                    }
                    return self.finish(packet, out_with(&mut out, &r), fault);
                }
            }
        };
        self.finish(packet, out_with(&mut out, &reply), None)
    }

    /// Checks an SRB before running it: a CDB of 1 to 16 bytes, a known
    /// direction (with no data when it is none), a length within the
    /// packet's GPA ranges and the host's transfer limit.
    fn check_srb(
        &self,
        packet: &GuestPacket<'_>,
        srb: &Srb,
    ) -> Result<([u8; super::vstor::SENSE_SIZE], DataDirection), Reply> {
        let invalid = Reply::srb(status::INVALID_REQUEST);
        if srb.cdb().is_err() {
            return Err(invalid);
        }
        let direction = DataDirection::from_raw(srb.data_in).ok_or(invalid)?;
        let len = srb.data_transfer_length;
        if len > packet.data_len || len > self.config.max_transfer_bytes {
            return Err(invalid);
        }
        if direction == DataDirection::None && len != 0 {
            return Err(invalid);
        }
        Ok((srb.buffer, direction))
    }

    fn take_fault(&mut self) -> Option<Fault> {
        let (f, n) = self.fault?;
        self.fault = n.checked_sub(1).filter(|left| *left > 0).map(|left| (f, left));
        self.counters.faults = self.counters.faults.saturating_add(1);
        Some(f)
    }

    fn finish(&mut self, packet: &GuestPacket<'_>, srb: Srb, fault: Option<Fault>) -> Actions {
        let mut p = Packet::new(Operation::CompleteIo, 0, STATUS_SUCCESS);
        p.set_srb(&srb);
        let mut actions = Actions::default();
        let mut trans_id = packet.trans_id;
        let mut len = PACKET_SIZE;
        match fault {
            Some(Fault::WrongStatus) => {
                p.status = STATUS_INVALID_PARAMETER;
                let mut s = srb;
                s.srb_status = 0;
                p.set_srb(&s);
            }
            Some(Fault::ShortCompletion) => len = PACKET_SIZE / 2,
            Some(Fault::UnknownId) => trans_id = trans_id.wrapping_add(1 << 32),
            Some(Fault::WrongOperation) => p.operation = Operation::FcHbaData,
            Some(Fault::Hold) => {
                actions.push(Action::Hold {
                    trans_id,
                    bytes: p.to_bytes(),
                });
                return actions;
            }
            _ => {}
        }
        let send = Action::Send {
            trans_id,
            bytes: p.to_bytes(),
            len,
        };
        actions.push(send);
        if fault == Some(Fault::Duplicate) {
            actions.push(send);
        }
        actions
    }
}

/// The reply a fault that stops the command gives.
fn fault_reply(fault: Option<Fault>) -> Reply {
    match fault {
        Some(Fault::ErrorWithSense) => {
            Reply::check(target::key::MEDIUM_ERROR, target::asc::UNRECOVERED_READ)
        }
        Some(Fault::InvalidLun) => Reply::srb(status::INVALID_LUN),
        Some(Fault::CapacityChanged) => {
            let mut r = Reply::check(target::key::UNIT_ATTENTION, target::asc::CAPACITY_CHANGED);
            r.srb_status = status::ABORTED | status::AUTOSENSE_VALID;
            r
        }
        Some(Fault::BadSenseLength) => {
            let mut r = Reply::check(target::key::MEDIUM_ERROR, target::asc::UNRECOVERED_READ);
            r.sense_len = u8::MAX;
            r
        }
        _ => Reply::srb(status::ERROR),
    }
}

/// The guest's SRB with the host's results filled in: statuses, sense in
/// the CDB/sense union, bytes moved.
fn out_with(srb: &mut Srb, r: &Reply) -> Srb {
    srb.srb_status = r.srb_status;
    srb.scsi_status = r.scsi_status;
    srb.sense_info_length = r.sense_len;
    srb.data_transfer_length = r.transferred;
    srb.buffer = r.sense;
    *srb
}

/// An unsolicited packet (transaction id 0) telling the guest its LUNs
/// changed: ENUMERATE_BUS, or REMOVE_DEVICE.
pub fn notice(operation: Operation) -> Option<[u8; PACKET_SIZE]> {
    matches!(operation, Operation::EnumerateBus | Operation::RemoveDevice)
        .then(|| Packet::new(operation, 0, STATUS_SUCCESS).to_bytes())
}
