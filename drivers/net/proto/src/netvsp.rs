//! The host's end of NVSP (netvsp), written from the host's side as
//! Hyper-V behaves, sans I/O: [`Netvsp::on_packet`] takes the bytes of one
//! packet the guest sent on the primary channel or a sub-channel and
//! returns [`Actions`] for the caller (the simulated host's VMBus device)
//! to carry out: send a message or a completion, map or unmap a buffer's
//! GPADL, hand an RNDIS message to the RNDIS device, offer sub-channels.
//!
//! What the host does, step by step:
//! - INIT: answers INIT_COMPLETE with the newest version of the configured
//!   set within the guest's range ([`super::nvsp::host_init_complete`]);
//!   further INITs are accepted until one succeeds.
//! - SEND_NDIS_VER, SEND_NDIS_CONFIG: recorded; no answer.
//! - SEND_RECV_BUF: the receive buffer's GPADL, whose size the caller
//!   knows; answered with one section covering the buffer, cut into slots of
//!   the configured size, as Hyper-V answers.
//! - SEND_SEND_BUF: answered with the configured section size (6144 bytes,
//!   Hyper-V's).
//! - SEND_RNDIS_PKT: an RNDIS message in a send-buffer section (its byte
//!   range is checked and returned) or in the packet's GPA-direct page
//!   ranges; the caller copies the bytes, gives them to the RNDIS device and
//!   completes the packet with SEND_RNDIS_PKT_COMPLETE.
//! - SEND_RNDIS_PKT_COMPLETE: the guest is done with a receive-buffer range
//!   the host filled ([`Netvsp::alloc_receive`]); the range is freed.
//! - SUBCHANNEL: answered with the number allocated (up to the configured
//!   maximum) and an action to offer that many sub-channels.
//! - SWITCH_DATA_PATH: recorded and echoed in a completion.
//! - REVOKE_RECV_BUF / REVOKE_SEND_BUF: the buffer is unmapped.
//!
//! The guest is not trusted: every message is parsed with the crate's
//! total parsers, every buffer id, section index, length and channel number
//! checked, and every message out of order refused. A violation returns a
//! [`HostError`] and no action; the host state is unchanged.

use super::nvsp::{
    self, status, DataPath, Message, MessageType, NdisConfig, RecvBufComplete, RecvBufSection,
    RndisChannel, RndisPacket, SendTable, Sender, Version, GUEST_VERSIONS, MIN_SECTION_SIZE,
    NO_SECTION, SEND_TABLE_SIZE,
};
use super::wire::Error;

/// Hyper-V's send-buffer section size.
pub const SEND_SECTION_SIZE: u32 = 6144;
/// The receive-buffer slot size Hyper-V reports (`sub_alloc_size`).
pub const RECV_SECTION_SIZE: u32 = 1728;
/// Room for a received frame's RNDIS header and PPIs in its slot: the
/// 44-byte header and up to five 16-byte PPIs, with room to spare.
pub const RX_HEADER_ROOM: u32 = 128;
/// The most receive-buffer slots the host tracks; a larger buffer is
/// answered with this many slots (the rest goes unused).
pub const MAX_RECV_SLOTS: usize = 20480;
const SLOT_WORDS: usize = MAX_RECV_SLOTS / 64;

/// Why the host refused a guest packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostError {
    /// The bytes did not parse.
    Malformed(Error),
    /// A message the host does not take now (the raw type).
    OutOfOrder(u32),
    /// A field the host cannot accept.
    Invalid(&'static str),
}

impl From<Error> for HostError {
    fn from(e: Error) -> HostError {
        HostError::Malformed(e)
    }
}

/// A set of NVSP versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionSet(u8);

impl VersionSet {
    /// Every version in [`GUEST_VERSIONS`].
    pub const ALL: VersionSet = VersionSet(0x3f);
    /// No version.
    pub const NONE: VersionSet = VersionSet(0);

    const fn bit(v: Version) -> u8 {
        match v {
            Version::V61 => 1,
            Version::V6 => 2,
            Version::V5 => 4,
            Version::V4 => 8,
            Version::V2 => 16,
            Version::V1 => 32,
        }
    }

    /// The set with `v` added.
    pub const fn with(self, v: Version) -> VersionSet {
        VersionSet(self.0 | Self::bit(v))
    }

    /// Whether `v` is in the set.
    pub fn contains(self, v: Version) -> bool {
        self.0 & Self::bit(v) != 0
    }

    /// The versions in the set, newest first, and how many there are.
    pub fn list(self) -> ([Version; 6], usize) {
        let mut out = [Version::V1; 6];
        let mut n = 0usize;
        for v in GUEST_VERSIONS {
            if self.contains(v) {
                if let Some(slot) = out.get_mut(n) {
                    *slot = v;
                    n = n.saturating_add(1);
                }
            }
        }
        (out, n)
    }
}

/// The host's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostConfig {
    /// The versions the host accepts.
    pub versions: VersionSet,
    /// The most sub-channels the host allocates.
    pub max_subchannels: u32,
    /// The receive buffer's slot size (at least [`MIN_SECTION_SIZE`]).
    pub recv_section_size: u32,
    /// The send buffer's section size (at least [`MIN_SECTION_SIZE`]).
    pub send_section_size: u32,
}

impl Default for HostConfig {
    /// Hyper-V's choices: every version, 1728-byte receive slots,
    /// 6144-byte send sections; seven sub-channels (eight queues).
    fn default() -> HostConfig {
        HostConfig {
            versions: VersionSet::ALL,
            max_subchannels: 7,
            recv_section_size: RECV_SECTION_SIZE,
            send_section_size: SEND_SECTION_SIZE,
        }
    }
}

/// Where an RNDIS message from the guest is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RndisSource {
    /// In the send buffer: `len` bytes at byte `offset` (section index
    /// times section size); both checked against the buffer.
    SendBuffer {
        /// The section index.
        section: u32,
        /// Byte offset in the send buffer.
        offset: u32,
        /// Bytes used in the section.
        len: u32,
    },
    /// In the packet's GPA-direct page ranges, `len` bytes in all.
    PageRanges {
        /// Total bytes of the ranges, as the caller reported.
        len: u32,
    },
}

/// Something the caller does for the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `message` as the completion of the guest's packet
    /// `transaction_id` (write it with [`Message::write`]).
    Complete {
        /// The guest's transaction id.
        transaction_id: u64,
        /// The message.
        message: Message,
    },
    /// Send `message` in band on `channel`.
    Send {
        /// The channel (0 is the primary).
        channel: u16,
        /// The message.
        message: Message,
    },
    /// Map the receive buffer's GPADL: `size` bytes, cut as `section` says.
    MapReceiveBuffer {
        /// The GPADL handle.
        gpadl: u32,
        /// Its size in bytes.
        size: u32,
        /// The section the host answered with.
        section: RecvBufSection,
    },
    /// Map the send buffer's GPADL.
    MapSendBuffer {
        /// The GPADL handle.
        gpadl: u32,
        /// Its size in bytes.
        size: u32,
        /// The section size.
        section_size: u32,
        /// Whole sections in the buffer.
        sections: u32,
    },
    /// Unmap the receive buffer (the guest revoked it).
    UnmapReceiveBuffer {
        /// The GPADL handle.
        gpadl: u32,
    },
    /// Unmap the send buffer.
    UnmapSendBuffer {
        /// The GPADL handle.
        gpadl: u32,
    },
    /// An RNDIS message arrived: copy it from `source`, hand it to the RNDIS
    /// device, then complete `transaction_id` with SEND_RNDIS_PKT_COMPLETE
    /// ([`rndis_completion`]).
    Rndis {
        /// The channel it came on.
        channel: u16,
        /// Data or control, as the guest said.
        kind: RndisChannel,
        /// Where the message is.
        source: RndisSource,
        /// The guest's transaction id.
        transaction_id: u64,
    },
    /// Offer this many sub-channels of the device.
    OfferSubchannels {
        /// How many.
        count: u32,
    },
}

/// The completion of a guest's SEND_RNDIS_PKT.
pub fn rndis_completion(ok: bool) -> Message {
    Message::SendRndisPacketComplete {
        status: if ok { status::SUCCESS } else { status::FAIL },
    }
}

/// The actions of one event, at most three, in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Actions {
    list: [Option<Action>; 3],
}

impl Actions {
    fn one(a: Action) -> Actions {
        Actions {
            list: [Some(a), None, None],
        }
    }

    fn two(a: Action, b: Action) -> Actions {
        Actions {
            list: [Some(a), Some(b), None],
        }
    }

    /// The actions in order.
    pub fn iter(&self) -> impl Iterator<Item = &Action> {
        self.list.iter().flatten()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.iter().all(Option::is_none)
    }
}

/// The mapped receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiveBuffer {
    /// The GPADL handle.
    pub gpadl: u32,
    /// The guest's buffer id.
    pub id: u16,
    /// Size in bytes.
    pub size: u32,
    /// The section the host answered with.
    pub section: RecvBufSection,
}

/// The mapped send buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendBuffer {
    /// The GPADL handle.
    pub gpadl: u32,
    /// The guest's buffer id.
    pub id: u16,
    /// Size in bytes.
    pub size: u32,
    /// Section size.
    pub section_size: u32,
    /// Whole sections.
    pub sections: u32,
}

/// A range of the receive buffer the host fills for the guest: write an
/// RNDIS message at `offset` (at most `len` bytes), send it in a
/// transfer-page packet with `transaction_id`, and the guest's
/// SEND_RNDIS_PKT_COMPLETE with that id frees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiveRange {
    /// Byte offset in the receive buffer.
    pub offset: u32,
    /// Bytes available (whole slots).
    pub len: u32,
    /// The id the guest completes.
    pub transaction_id: u64,
}

/// Which receive-buffer slots are in use, and where each range starts.
#[derive(Clone, Debug)]
struct Slots {
    used: [u64; SLOT_WORDS],
    start: [u64; SLOT_WORDS],
    count: usize,
}

fn get_bit(words: &[u64; SLOT_WORDS], i: usize) -> bool {
    words
        .get(i / 64)
        .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
}

fn set_bit(words: &mut [u64; SLOT_WORDS], i: usize, on: bool) {
    if let Some(w) = words.get_mut(i / 64) {
        if on {
            *w |= 1u64 << (i % 64);
        } else {
            *w &= !(1u64 << (i % 64));
        }
    }
}

impl Slots {
    const fn new() -> Slots {
        Slots {
            used: [0; SLOT_WORDS],
            start: [0; SLOT_WORDS],
            count: 0,
        }
    }

    fn reset(&mut self, count: usize) {
        self.used = [0; SLOT_WORDS];
        self.start = [0; SLOT_WORDS];
        self.count = count.min(MAX_RECV_SLOTS);
    }

    /// The first run of `n` free slots; marks it used.
    fn alloc(&mut self, n: usize) -> Option<usize> {
        if n == 0 || n > self.count {
            return None;
        }
        let mut run = 0usize;
        for i in 0..self.count {
            if get_bit(&self.used, i) {
                run = 0;
                continue;
            }
            run = run.saturating_add(1);
            if run == n {
                let first = i.saturating_add(1).saturating_sub(n);
                for j in first..=i {
                    set_bit(&mut self.used, j, true);
                }
                set_bit(&mut self.start, first, true);
                return Some(first);
            }
        }
        None
    }

    /// Frees the run of `n` slots at `first`, if exactly that run is in
    /// use; false (and nothing freed) otherwise.
    fn free(&mut self, first: usize, n: usize) -> bool {
        let Some(end) = first.checked_add(n) else {
            return false;
        };
        if n == 0 || end > self.count || !get_bit(&self.start, first) {
            return false;
        }
        let whole = (first..end).all(|i| get_bit(&self.used, i))
            && (first.saturating_add(1)..end).all(|i| !get_bit(&self.start, i))
            && (end == self.count || !get_bit(&self.used, end) || get_bit(&self.start, end));
        if !whole {
            return false;
        }
        for i in first..end {
            set_bit(&mut self.used, i, false);
        }
        set_bit(&mut self.start, first, false);
        true
    }

    fn in_use(&self) -> usize {
        let mut n = 0usize;
        for w in self.used.iter() {
            n = n.saturating_add(w.count_ones() as usize);
        }
        n
    }
}

/// The host's NVSP state for one device.
#[derive(Clone, Debug)]
pub struct Netvsp {
    config: HostConfig,
    version: Option<Version>,
    ndis_version: Option<(u32, u32)>,
    ndis_config: Option<NdisConfig>,
    recv: Option<ReceiveBuffer>,
    send: Option<SendBuffer>,
    subchannels: Option<u32>,
    datapath: DataPath,
    slots: Slots,
}

/// A guest packet as the caller read it from the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestPacket<'a> {
    /// The channel it came on: 0 for the primary, `n` for sub-channel `n`.
    pub channel: u16,
    /// The NVSP message (the packet's payload, copied out of the ring).
    pub bytes: &'a [u8],
    /// The packet's transaction id.
    pub transaction_id: u64,
    /// For a GPA-direct packet, the total bytes of its page ranges.
    pub page_ranges_len: Option<u32>,
}

impl Netvsp {
    /// A host with `config`, before INIT. A section size below
    /// [`MIN_SECTION_SIZE`] is raised to it.
    pub fn new(config: HostConfig) -> Netvsp {
        let mut config = config;
        config.recv_section_size = config.recv_section_size.max(MIN_SECTION_SIZE);
        config.send_section_size = config.send_section_size.max(MIN_SECTION_SIZE);
        Netvsp { config, ..Netvsp::DEFAULT }
    }

    /// A host with Hyper-V's defaults ([`HostConfig::default`]), as a
    /// constant: the state is kilobytes, and kernel code copies this into
    /// its allocation rather than building it on its small stack.
    pub const DEFAULT: Netvsp = Netvsp {
        config: HostConfig {
            versions: VersionSet::ALL,
            max_subchannels: 7,
            recv_section_size: RECV_SECTION_SIZE,
            send_section_size: SEND_SECTION_SIZE,
        },
        version: None,
        ndis_version: None,
        ndis_config: None,
        recv: None,
        send: None,
        subchannels: None,
        datapath: DataPath::Synthetic,
        slots: Slots::new(),
    };

    /// Sets the most sub-channels the host allocates (before INIT).
    pub fn set_max_subchannels(&mut self, n: u32) {
        self.config.max_subchannels = n;
    }

    /// The negotiated version.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// The NDIS version the guest announced.
    pub fn ndis_version(&self) -> Option<(u32, u32)> {
        self.ndis_version
    }

    /// The guest's NDIS config (MTU and capabilities).
    pub fn ndis_config(&self) -> Option<NdisConfig> {
        self.ndis_config
    }

    /// The receive buffer, when mapped.
    pub fn receive_buffer(&self) -> Option<ReceiveBuffer> {
        self.recv
    }

    /// The send buffer, when mapped.
    pub fn send_buffer(&self) -> Option<SendBuffer> {
        self.send
    }

    /// Sub-channels allocated (0 before a request).
    pub fn subchannels(&self) -> u32 {
        self.subchannels.unwrap_or(0)
    }

    /// The data path the guest chose.
    pub fn datapath(&self) -> DataPath {
        self.datapath
    }

    /// Receive-buffer slots in use.
    pub fn receive_slots_in_use(&self) -> usize {
        self.slots.in_use()
    }

    /// Takes one packet from the guest. `gpadl_size` gives the size in
    /// bytes of a GPADL the guest established on this channel, `None` for
    /// a handle that names none.
    pub fn on_packet(
        &mut self,
        p: &GuestPacket<'_>,
        gpadl_size: &dyn Fn(u32) -> Option<u32>,
    ) -> Result<Actions, HostError> {
        let msg = Message::parse(p.bytes, Sender::Guest, self.version)?;
        let raw = msg.message_type() as u32;
        let out_of_order = Err(HostError::OutOfOrder(raw));
        // Sub-channels carry data only.
        if p.channel != 0 {
            if u32::from(p.channel) > self.subchannels() {
                return Err(HostError::Invalid("channel"));
            }
            if !matches!(
                msg,
                Message::SendRndisPacket(_) | Message::SendRndisPacketComplete { .. }
            ) {
                return out_of_order;
            }
        }
        let tid = p.transaction_id;
        match msg {
            Message::Init { min, max } => {
                if self.version.is_some() {
                    return out_of_order;
                }
                let (list, n) = self.config.versions.list();
                let c = nvsp::host_init_complete(min, max, list.get(..n).unwrap_or(&[]));
                if c.status == status::SUCCESS {
                    self.version = Version::from_raw(c.negotiated_version);
                }
                Ok(Actions::one(Action::Complete {
                    transaction_id: tid,
                    message: Message::InitComplete(c),
                }))
            }
            Message::SendNdisVersion { major, minor } => {
                if self.version.is_none() || self.ndis_version.is_some() {
                    return out_of_order;
                }
                if major != 6 {
                    return Err(HostError::Invalid("ndis_major_ver"));
                }
                self.ndis_version = Some((major, minor));
                Ok(Actions::default())
            }
            Message::SendNdisConfig(c) => {
                match self.version {
                    Some(v) if v.has_ndis_config() => {}
                    _ => return out_of_order,
                }
                if c.mtu < MIN_SECTION_SIZE || c.mtu > nvsp::NETVSC_MTU {
                    return Err(HostError::Invalid("mtu"));
                }
                self.ndis_config = Some(c);
                Ok(Actions::default())
            }
            Message::SendReceiveBuffer { gpadl, id } => {
                self.map_receive(tid, gpadl, id, gpadl_size)
            }
            Message::SendSendBuffer { gpadl, id } => self.map_send(tid, gpadl, id, gpadl_size),
            Message::RevokeReceiveBuffer { id } => match self.recv {
                Some(r) if r.id == id => {
                    self.recv = None;
                    self.slots.reset(0);
                    Ok(Actions::one(Action::UnmapReceiveBuffer { gpadl: r.gpadl }))
                }
                Some(_) => Err(HostError::Invalid("id")),
                None => out_of_order,
            },
            Message::RevokeSendBuffer { id } => match self.send {
                Some(s) if s.id == id => {
                    self.send = None;
                    Ok(Actions::one(Action::UnmapSendBuffer { gpadl: s.gpadl }))
                }
                Some(_) => Err(HostError::Invalid("id")),
                None => out_of_order,
            },
            Message::SendRndisPacket(r) => self.rndis(p, r),
            Message::SendRndisPacketComplete { .. } => {
                if !self.complete_receive(tid) {
                    return Err(HostError::Invalid("transaction id"));
                }
                Ok(Actions::default())
            }
            Message::SubchannelRequest { num_subchannels } => {
                match self.version {
                    Some(v) if v.has_subchannels() => {}
                    _ => return out_of_order,
                }
                if self.subchannels.is_some() || self.recv.is_none() {
                    return out_of_order;
                }
                let n = num_subchannels.min(self.config.max_subchannels);
                self.subchannels = Some(n);
                let done = Action::Complete {
                    transaction_id: tid,
                    message: Message::SubchannelComplete {
                        status: status::SUCCESS,
                        num_subchannels: n,
                    },
                };
                Ok(if n == 0 {
                    Actions::one(done)
                } else {
                    Actions::two(done, Action::OfferSubchannels { count: n })
                })
            }
            Message::SwitchDataPath(dp) => {
                match self.version {
                    Some(v) if v.has_vf() => {}
                    _ => return out_of_order,
                }
                self.datapath = dp;
                Ok(Actions::one(Action::Complete {
                    transaction_id: tid,
                    message: msg,
                }))
            }
            // Host-only messages do not parse with Sender::Guest.
            _ => out_of_order,
        }
    }

    fn map_receive(
        &mut self,
        tid: u64,
        gpadl: u32,
        id: u16,
        gpadl_size: &dyn Fn(u32) -> Option<u32>,
    ) -> Result<Actions, HostError> {
        let Some(v) = self.version else {
            return Err(HostError::OutOfOrder(MessageType::SendReceiveBuffer as u32));
        };
        if self.recv.is_some() {
            return Err(HostError::OutOfOrder(MessageType::SendReceiveBuffer as u32));
        }
        let size = gpadl_size(gpadl).ok_or(HostError::Invalid("gpadl_handle"))?;
        if size > v.max_receive_buffer() {
            return Err(HostError::Invalid("receive buffer size"));
        }
        let slot = self.receive_section_size();
        let count = size
            .checked_div(slot)
            .unwrap_or(0)
            .min(MAX_RECV_SLOTS as u32);
        if count == 0 {
            return Err(HostError::Invalid("receive buffer size"));
        }
        let section = RecvBufSection {
            offset: 0,
            sub_alloc_size: slot,
            num_sub_allocs: count,
            end_offset: size,
        };
        self.recv = Some(ReceiveBuffer {
            gpadl,
            id,
            size,
            section,
        });
        self.slots.reset(count as usize);
        Ok(Actions::two(
            Action::MapReceiveBuffer {
                gpadl,
                size,
                section,
            },
            Action::Complete {
                transaction_id: tid,
                message: Message::SendReceiveBufferComplete(RecvBufComplete {
                    status: status::SUCCESS,
                    num_sections: 1,
                    section,
                }),
            },
        ))
    }

    fn map_send(
        &mut self,
        tid: u64,
        gpadl: u32,
        id: u16,
        gpadl_size: &dyn Fn(u32) -> Option<u32>,
    ) -> Result<Actions, HostError> {
        if self.version.is_none() || self.send.is_some() {
            return Err(HostError::OutOfOrder(MessageType::SendSendBuffer as u32));
        }
        let size = gpadl_size(gpadl).ok_or(HostError::Invalid("gpadl_handle"))?;
        let section_size = self.config.send_section_size;
        let sections = size.checked_div(section_size).unwrap_or(0);
        if sections == 0 {
            return Err(HostError::Invalid("send buffer size"));
        }
        self.send = Some(SendBuffer {
            gpadl,
            id,
            size,
            section_size,
            sections,
        });
        Ok(Actions::two(
            Action::MapSendBuffer {
                gpadl,
                size,
                section_size,
                sections,
            },
            Action::Complete {
                transaction_id: tid,
                message: Message::SendSendBufferComplete {
                    status: status::SUCCESS,
                    section_size,
                },
            },
        ))
    }

    fn rndis(&mut self, p: &GuestPacket<'_>, r: RndisPacket) -> Result<Actions, HostError> {
        if self.version.is_none() {
            return Err(HostError::OutOfOrder(MessageType::SendRndisPacket as u32));
        }
        let source = if r.section_index == NO_SECTION {
            match p.page_ranges_len {
                Some(len) if len > 0 => RndisSource::PageRanges { len },
                _ => return Err(HostError::Invalid("page ranges")),
            }
        } else {
            if p.page_ranges_len.is_some() {
                // One message, one place.
                return Err(HostError::Invalid("page ranges"));
            }
            let s = self
                .send
                .ok_or(HostError::Invalid("send_buf_section_index"))?;
            if r.section_index >= s.sections {
                return Err(HostError::Invalid("send_buf_section_index"));
            }
            if r.section_size == 0 || r.section_size > s.section_size {
                return Err(HostError::Invalid("send_buf_section_size"));
            }
            let offset = r
                .section_index
                .checked_mul(s.section_size)
                .ok_or(HostError::Invalid("send_buf_section_index"))?;
            RndisSource::SendBuffer {
                section: r.section_index,
                offset,
                len: r.section_size,
            }
        };
        Ok(Actions::one(Action::Rndis {
            channel: p.channel,
            kind: r.channel,
            source,
            transaction_id: p.transaction_id,
        }))
    }

    /// The receive-buffer slot (section) size for the guest's MTU: the
    /// configured size, or one that holds a whole frame of the MTU its
    /// NDIS config gave, with an 802.1Q tag and [`RX_HEADER_ROOM`] bytes
    /// of RNDIS header and PPIs. No range the host sends is longer, so a
    /// larger message (a coalesced frame) goes in RSC fragments.
    pub fn receive_section_size(&self) -> u32 {
        let frame = self.ndis_config.map_or(0, |c| c.mtu.saturating_add(4));
        let needed = frame.saturating_add(RX_HEADER_ROOM).div_ceil(64).saturating_mul(64);
        self.config.recv_section_size.max(needed)
    }

    /// Takes a range of the receive buffer for a message of `len` bytes to
    /// the guest: whole slots, the first free run. `None` when no buffer is
    /// mapped, `len` is 0, or no run is free (the guest has not completed
    /// enough; try again later).
    pub fn alloc_receive(&mut self, len: u32) -> Option<ReceiveRange> {
        let r = self.recv?;
        let slot = r.section.sub_alloc_size;
        if len == 0 {
            return None;
        }
        let mut n = len.checked_div(slot)?;
        if len.checked_rem(slot)? != 0 {
            n = n.checked_add(1)?;
        }
        let first = self.slots.alloc(n as usize)?;
        let first = u32::try_from(first).ok()?;
        Some(ReceiveRange {
            offset: first.checked_mul(slot)?,
            len: n.checked_mul(slot)?,
            // The run's first slot and its length: enough to check and free
            // it when the guest completes.
            transaction_id: (u64::from(first) << 32) | u64::from(n),
        })
    }

    /// Frees the range of `transaction_id` as the guest's completion does;
    /// false for an id that names no range in use.
    pub fn complete_receive(&mut self, transaction_id: u64) -> bool {
        let first = (transaction_id >> 32) as usize;
        let n = (transaction_id & 0xffff_ffff) as usize;
        self.recv.is_some() && self.slots.free(first, n)
    }

    /// The send indirection table the host sends after allocating
    /// sub-channels: bucket `i` on channel `i` modulo the channel count.
    /// `None` before NVSP 5 or without sub-channels.
    pub fn send_indirection_table(&self) -> Option<Message> {
        let channels = self.subchannels().checked_add(1)?;
        if channels < 2 || !self.version?.has_subchannels() {
            return None;
        }
        let mut table = [0u32; SEND_TABLE_SIZE];
        let mut i = 0u32;
        for e in table.iter_mut() {
            *e = i.checked_rem(channels)?;
            i = i.saturating_add(1);
        }
        Some(Message::SendIndirectionTable(SendTable { table }))
    }

    /// The channel closed: unmaps whatever buffers are mapped and forgets
    /// the session (the next open starts with INIT).
    pub fn close(&mut self) -> Actions {
        let mut a = Actions::default();
        let mut list = a.list.iter_mut();
        if let (Some(r), Some(slot)) = (self.recv, list.next()) {
            *slot = Some(Action::UnmapReceiveBuffer { gpadl: r.gpadl });
        }
        if let (Some(s), Some(slot)) = (self.send, list.next()) {
            *slot = Some(Action::UnmapSendBuffer { gpadl: s.gpadl });
        }
        // Field by field: a whole new value would be a 5 KiB temporary.
        self.version = None;
        self.ndis_version = None;
        self.ndis_config = None;
        self.recv = None;
        self.send = None;
        self.subchannels = None;
        self.datapath = DataPath::Synthetic;
        self.slots.reset(0);
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_constant_is_the_default_config() {
        let d = Netvsp::DEFAULT;
        let n = Netvsp::new(HostConfig::default());
        assert_eq!(d.config, n.config);
        assert_eq!(d.receive_slots_in_use(), 0);
        let mut d = d;
        d.set_max_subchannels(0);
        assert_eq!(d.config.max_subchannels, 0);
    }

    #[test]
    fn version_sets_list_newest_first() {
        let s = VersionSet::NONE.with(Version::V2).with(Version::V61);
        assert!(s.contains(Version::V2) && !s.contains(Version::V5));
        let (list, n) = s.list();
        assert_eq!(&list[..n], &[Version::V61, Version::V2]);
        assert_eq!(VersionSet::ALL.list().1, GUEST_VERSIONS.len());
    }

    #[test]
    fn slots_allocate_first_fit_and_free_whole_runs_only() {
        let mut s = Slots::new();
        s.reset(10);
        assert_eq!(s.alloc(3), Some(0));
        assert_eq!(s.alloc(3), Some(3));
        assert_eq!(s.alloc(5), None);
        assert!(!s.free(0, 2), "part of a run");
        assert!(!s.free(0, 6), "two runs");
        assert!(!s.free(1, 2), "not a run's start");
        assert!(s.free(0, 3));
        assert!(!s.free(0, 3), "twice");
        assert_eq!(s.alloc(2), Some(0));
        assert_eq!(s.alloc(4), Some(6));
        assert_eq!(s.in_use(), 9);
        assert_eq!(s.alloc(0), None);
        assert!(!s.free(usize::MAX, 2));
        s.reset(usize::MAX);
        assert_eq!(s.count, MAX_RECV_SLOTS);
        assert_eq!(s.alloc(MAX_RECV_SLOTS), Some(0));
        assert!(s.free(0, MAX_RECV_SLOTS));
    }
}
