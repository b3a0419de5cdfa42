//! The guest's VMBus control plane as a sans-I/O state machine.
//!
//! Inputs are host messages (the bytes of a SynIC payload), driver requests
//! and the passage of time; outputs are [`Action`]s handed to a caller's
//! [`ActionSink`]: send this message, deliver this offer or rescind to the
//! bus, complete that request. The caller owns the clock (any monotonic
//! tick) and every pending request carries a deadline, so nothing waits on
//! the host forever.
//!
//! Host messages are checked against the current state before anything
//! changes: a message that is malformed, or not expected now, returns an
//! error, emits no action and leaves the machine exactly as it was.
//!
//! The machine allocates nothing: its channel and GPADL tables are
//! [`Slots`] the caller provides, fixed arrays ([`FixedControl`]) or a
//! caller's type that grows on demand (the kernel's, fallibly), up to one
//! channel per relid (the parser refuses relids from
//! [`super::msg::MAX_CHANNEL_RELIDS`] up, as Linux does). An offer the
//! machine has no room for is given back to the host with RELID_RELEASED
//! ([`Action::Refused`]), never left half-known.

use super::guid::Guid;
use super::msg::{
    InitiateContact, Message, MessageType, Offer, OpenChannel, ParseError, MAX_MESSAGE_SIZE,
    USER_DEFINED_BYTES,
};
use super::version::{self, Version};

/// A driver request's id, chosen by the caller and echoed in its completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(pub u64);

/// Everything that can go wrong, for host messages and for requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The host message does not parse.
    Parse(ParseError),
    /// The host message is well-formed but not expected in this state.
    Unexpected(MessageType),
    /// A field of a well-formed host message is wrong in this context.
    BadHostField(MessageType, &'static str),
    /// An offer names a relid or device instance that is already present.
    DuplicateOffer,
    /// The request is not valid in the current connection or channel state.
    InvalidState,
    /// No channel with that relid.
    UnknownChannel,
    /// No GPADL with that handle on that channel.
    UnknownGpadl,
    /// The channel or connection already has a request of this kind pending.
    Busy,
    /// A table is full and could not grow.
    TableFull,
    /// The negotiated version does not have this feature.
    Unsupported,
    /// The host answered with a failure status.
    HostStatus(u32),
    /// The host rejected every version this guest offers.
    NoCommonVersion,
    /// The host did not answer before the deadline.
    Timeout,
    /// The channel was rescinded while the request was pending.
    Rescinded,
    /// The connection was unloaded while the request was pending.
    Unloaded,
    /// HvPostMessage of the request's message failed
    /// ([`Control::post_failed`]).
    PostFailed(PostError),
}

/// Why HvPostMessage of a message failed, as the caller classifies the
/// hypercall's status; input to [`Control::post_failed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostError {
    /// No port at that connection id (`HV_STATUS_INVALID_CONNECTION_ID`):
    /// a host older than 5.0 does not listen on the id newer versions
    /// use for INITIATE_CONTACT.
    NoConnection,
    /// The host's message port stayed full through every retry
    /// (`HV_STATUS_INSUFFICIENT_BUFFERS`, `HV_STATUS_INSUFFICIENT_MEMORY`).
    Busy,
    /// Any other failure of the hypercall.
    Other,
}

/// What the caller must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Post `message` to the host on `connection_id`.
    Send {
        /// Connection id for HvPostMessage.
        connection_id: u32,
        /// The message; [`Message::write`] encodes it.
        message: Message,
    },
    /// Post the GPADL messages for `gpadl` on `connection_id`: build them
    /// with [`super::msg::GpadlSplit`] over the pages the caller passed to
    /// [`Control::create_gpadl`], header first.
    SendGpadl {
        /// Connection id for HvPostMessage.
        connection_id: u32,
        /// The channel.
        child_relid: u32,
        /// The handle.
        gpadl: u32,
    },
    /// A new channel: create its device.
    Offer(Offer),
    /// The host withdrew a channel: remove its device, then
    /// [`Control::release_relid`].
    Rescind {
        /// The channel.
        child_relid: u32,
    },
    /// An offer could not be taken (`reason`: [`Error::TableFull`]);
    /// RELID_RELEASED for it was sent just before, so the host may offer
    /// the relid again.
    Refused {
        /// The channel.
        child_relid: u32,
        /// Why.
        reason: Error,
    },
    /// The host has sent every offer present at connect time.
    AllOffersDelivered,
    /// A request finished.
    Complete {
        /// The request.
        request: RequestId,
        /// How it ended.
        result: Result<(), Error>,
    },
}

/// Receives actions; closures `FnMut(Action)` are sinks.
pub trait ActionSink {
    /// Takes one action. Actions must be performed in the order given.
    fn push(&mut self, action: Action);
}

impl<F: FnMut(Action)> ActionSink for F {
    fn push(&mut self, action: Action) {
        self(action)
    }
}

/// Fixed connection parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Newest version to propose (the C driver's `max_version`).
    pub max_version: Version,
    /// VP the host answers on.
    pub target_vcpu: u32,
    /// Interrupt page GPA, used only before 5.0.
    pub interrupt_page: u64,
    /// Monitor page GPAs.
    pub monitor_pages: [u64; 2],
    /// The guest's VTL, sent from 5.0.
    pub vtl: u8,
    /// How long, in caller ticks, the host gets to answer a connection
    /// request (INITIATE_CONTACT, UNLOAD).
    pub timeout: u64,
    /// How long, in caller ticks, the host gets to answer a channel
    /// request (GPADL creation and teardown, OPENCHANNEL, MODIFYCHANNEL):
    /// a busy host may take long to map memory (the C driver waits for
    /// these without a bound).
    pub channel_timeout: u64,
}

/// The connection's state, as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not connected (initially, after unload or a failed connect).
    Disconnected,
    /// A version proposal is outstanding.
    Connecting,
    /// Versions agreed.
    Connected,
    /// CHANNELMSG_UNLOAD sent, waiting for the response.
    Unloading,
}

/// A channel's state, as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelState {
    /// Offered, not open.
    Offered,
    /// Open request outstanding.
    Opening,
    /// Open.
    Open,
    /// The host rescinded it; waiting for [`Control::release_relid`].
    Rescinded,
    /// An open timed out; the host's view is unknown until it answers
    /// late (then the channel is closed and offered again) or rescinds.
    Failed,
}

/// A GPADL's state, as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpadlState {
    /// Sent, waiting for CHANNELMSG_GPADL_CREATED.
    Creating,
    /// The host mapped it.
    Created,
    /// Teardown sent, waiting for CHANNELMSG_GPADL_TORNDOWN.
    TearingDown,
    /// A request timed out (or a body message could not be posted): the
    /// host may still map the pages, so the caller must not reuse them
    /// until the GPADL is gone from the table: the host answered late
    /// (a late GPADL_CREATED makes it [`GpadlState::Created`], to be torn
    /// down; a late failure or GPADL_TORNDOWN removes it), or the channel
    /// was rescinded, or the connection unloaded.
    Failed,
}

/// The parameters of [`Control::open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenRequest {
    /// The channel.
    pub relid: u32,
    /// The created GPADL holding both rings.
    pub ring_gpadl: u32,
    /// Page offset of the host-to-guest ring in that GPADL.
    pub downstream_page_offset: u32,
    /// VP to interrupt for this channel.
    pub target_vp: u32,
    /// Driver-defined data for the host endpoint.
    pub user_data: [u8; USER_DEFINED_BYTES],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pending {
    request: RequestId,
    deadline: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conn {
    Disconnected,
    Connecting { index: usize, pending: Pending },
    Connected,
    Unloading { pending: Pending },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chan {
    Offered,
    Opening {
        openid: u32,
        ring: u32,
        pending: Pending,
    },
    Open {
        ring: u32,
        modify: Option<Pending>,
    },
    Rescinded,
    /// The open timed out; the host may be using `ring`.
    Failed {
        openid: u32,
        ring: u32,
    },
}

/// One channel the machine knows (a slot of its channel table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelEntry {
    relid: u32,
    instance: Guid,
    sub_channel_index: u16,
    /// The offer's connection id for HvSignalEvent.
    connection_id: u32,
    state: Chan,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GpadlPhase {
    Creating(Pending),
    Created,
    TearingDown(Pending),
    /// GPADL_CREATED did not come in time; it may still.
    CreateTimedOut,
    /// GPADL_TORNDOWN did not come in time; it may still.
    TeardownTimedOut,
    /// A body message was not posted: the host holds part of the page
    /// list and will never answer.
    Partial,
}

/// One GPADL the machine knows (a slot of its GPADL table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpadlEntry {
    handle: u32,
    relid: u32,
    phase: GpadlPhase,
}

/// A table of the machine's: slots, each free or holding an entry, that
/// may grow. A full table that cannot grow fails the request
/// ([`Error::TableFull`]) or refuses the offer.
pub trait Slots<T> {
    /// Every slot.
    fn slots(&self) -> &[Option<T>];
    /// Every slot, to change.
    fn slots_mut(&mut self) -> &mut [Option<T>];
    /// Adds at least one free slot if it can (memory, a limit of the
    /// caller's); whether it did. Called only when every slot is taken.
    fn grow(&mut self) -> bool;
}

/// A fixed table, which never grows.
impl<T, const N: usize> Slots<T> for [Option<T>; N] {
    fn slots(&self) -> &[Option<T>] {
        self
    }
    fn slots_mut(&mut self) -> &mut [Option<T>] {
        self
    }
    fn grow(&mut self) -> bool {
        false
    }
}

/// Makes sure `table` has a free slot, growing it if every slot is taken.
fn make_room<T, S: Slots<T> + ?Sized>(table: &mut S) -> Result<(), Error> {
    if table.slots().iter().all(Option::is_some) && !table.grow() {
        return Err(Error::TableFull);
    }
    Ok(())
}

/// Puts `value` into a free slot of `table`, growing it if every slot is
/// taken.
fn insert<T, S: Slots<T> + ?Sized>(table: &mut S, value: T) -> Result<(), Error> {
    make_room(table)?;
    let slot = table
        .slots_mut()
        .iter_mut()
        .find(|s| s.is_none())
        .ok_or(Error::TableFull)?;
    *slot = Some(value);
    Ok(())
}

/// Empties every slot.
fn clear<T, S: Slots<T> + ?Sized>(table: &mut S) {
    for slot in table.slots_mut() {
        *slot = None;
    }
}

/// The machine with fixed tables of `CHANNELS` channels and `GPADLS`
/// GPADLs (host tests, fuzzing; 56 bytes per channel and 32 per GPADL on
/// x86-64).
pub type FixedControl<const CHANNELS: usize, const GPADLS: usize> =
    Control<[Option<ChannelEntry>; CHANNELS], [Option<GpadlEntry>; GPADLS]>;

/// First GPADL handle, as in Linux (handles only need to be unique).
const FIRST_GPADL_HANDLE: u32 = 0xe1e10;

/// The control-plane state machine over a channel table `C` and a GPADL
/// table `G`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Control<C, G> {
    config: Config,
    now: u64,
    conn: Conn,
    version: Option<Version>,
    msg_conn_id: u32,
    offers_delivered: bool,
    channels: C,
    gpadls: G,
    next_gpadl: u32,
}

impl<C, G> Control<C, G> {
    /// A disconnected machine over `channels` and `gpadls`, which the
    /// caller passes empty.
    const fn build(config: Config, channels: C, gpadls: G) -> Self {
        Control {
            config,
            now: 0,
            conn: Conn::Disconnected,
            version: None,
            msg_conn_id: version::MESSAGE_CONNECTION_ID,
            offers_delivered: false,
            channels,
            gpadls,
            next_gpadl: FIRST_GPADL_HANDLE,
        }
    }
}

impl<const CHANNELS: usize, const GPADLS: usize> FixedControl<CHANNELS, GPADLS> {
    /// A disconnected machine with fixed tables. A `const fn`, so it can
    /// be placed straight into heap memory instead of being built on a
    /// small stack.
    pub const fn new(config: Config) -> Self {
        Control::build(config, [None; CHANNELS], [None; GPADLS])
    }
}

impl<C: Slots<ChannelEntry>, G: Slots<GpadlEntry>> Control<C, G> {
    /// A disconnected machine over the given tables (their entries are
    /// ignored: the machine starts with none).
    pub fn with_tables(config: Config, channels: C, gpadls: G) -> Self {
        let mut control = Control::build(config, channels, gpadls);
        clear(&mut control.channels);
        clear(&mut control.gpadls);
        control
    }

    /// Replaces the configuration of a control plane that has not
    /// connected yet (a caller that builds the machine before it knows
    /// its configuration). Refused once a connection started.
    pub fn configure(&mut self, config: Config) -> Result<(), Error> {
        if !matches!(self.conn, Conn::Disconnected) || self.version.is_some() {
            return Err(Error::InvalidState);
        }
        self.config = config;
        Ok(())
    }

    // ----- queries -------------------------------------------------------

    /// The connection state.
    pub fn state(&self) -> ConnectionState {
        match self.conn {
            Conn::Disconnected => ConnectionState::Disconnected,
            Conn::Connecting { .. } => ConnectionState::Connecting,
            Conn::Connected => ConnectionState::Connected,
            Conn::Unloading { .. } => ConnectionState::Unloading,
        }
    }

    /// The negotiated version, once connected.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// The connection id channel messages currently go to.
    pub fn message_connection_id(&self) -> u32 {
        self.msg_conn_id
    }

    /// Whether CHANNELMSG_ALLOFFERS_DELIVERED has arrived.
    pub fn offers_delivered(&self) -> bool {
        self.offers_delivered
    }

    /// The latest time seen.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// A channel's state, if the relid is known.
    pub fn channel_state(&self, relid: u32) -> Option<ChannelState> {
        self.channel(relid).map(|c| match c.state {
            Chan::Offered => ChannelState::Offered,
            Chan::Opening { .. } => ChannelState::Opening,
            Chan::Open { .. } => ChannelState::Open,
            Chan::Rescinded => ChannelState::Rescinded,
            Chan::Failed { .. } => ChannelState::Failed,
        })
    }

    /// The HvSignalEvent connection id a channel was offered with, from
    /// its offer until its relid is released.
    pub fn signal_connection_id(&self, relid: u32) -> Option<u32> {
        self.channel(relid).map(|c| c.connection_id)
    }

    /// How many channels are known (offered, open or waiting for their
    /// relid to be released).
    pub fn channel_count(&self) -> usize {
        self.channels.slots().iter().flatten().count()
    }

    /// A GPADL's state, if the handle is known.
    pub fn gpadl_state(&self, gpadl: u32) -> Option<GpadlState> {
        self.gpadl(gpadl).map(|g| match g.phase {
            GpadlPhase::Creating(_) => GpadlState::Creating,
            GpadlPhase::Created => GpadlState::Created,
            GpadlPhase::TearingDown(_) => GpadlState::TearingDown,
            GpadlPhase::CreateTimedOut | GpadlPhase::TeardownTimedOut | GpadlPhase::Partial => {
                GpadlState::Failed
            }
        })
    }

    /// Number of requests waiting on the host.
    pub fn pending_requests(&self) -> usize {
        let conn = usize::from(matches!(
            self.conn,
            Conn::Connecting { .. } | Conn::Unloading { .. }
        ));
        let chans = self
            .channels
            .slots()
            .iter()
            .flatten()
            .filter(|c| {
                matches!(
                    c.state,
                    Chan::Opening { .. }
                        | Chan::Open {
                            modify: Some(_),
                            ..
                        }
                )
            })
            .count();
        let gpadls = self
            .gpadls
            .slots()
            .iter()
            .flatten()
            .filter(|g| {
                matches!(
                    g.phase,
                    GpadlPhase::Creating(_) | GpadlPhase::TearingDown(_)
                )
            })
            .count();
        conn + chans + gpadls
    }

    // ----- driver requests -----------------------------------------------

    /// Starts version negotiation, newest version first.
    pub fn connect(
        &mut self,
        now: u64,
        request: RequestId,
        sink: &mut impl ActionSink,
    ) -> Result<(), Error> {
        self.advance_clock(now);
        if self.conn != Conn::Disconnected {
            return Err(Error::InvalidState);
        }
        let index = self.next_version_index(0).ok_or(Error::NoCommonVersion)?;
        let pending = self.pending(request);
        self.conn = Conn::Connecting { index, pending };
        self.propose(index, sink);
        Ok(())
    }

    /// Creates a GPADL on `relid` for a buffer of `pages` pages; returns
    /// its handle. The caller then sends the messages the
    /// [`Action::SendGpadl`] names.
    pub fn create_gpadl(
        &mut self,
        now: u64,
        request: RequestId,
        relid: u32,
        sink: &mut impl ActionSink,
    ) -> Result<u32, Error> {
        self.advance_clock(now);
        self.require_connected()?;
        let chan = self.channel(relid).ok_or(Error::UnknownChannel)?;
        if matches!(chan.state, Chan::Rescinded | Chan::Failed { .. }) {
            return Err(Error::InvalidState);
        }
        make_room(&mut self.gpadls)?;
        let handle = self.allocate_handle().ok_or(Error::TableFull)?;
        let phase = GpadlPhase::Creating(self.channel_pending(request));
        insert(
            &mut self.gpadls,
            GpadlEntry {
                handle,
                relid,
                phase,
            },
        )?;
        sink.push(Action::SendGpadl {
            connection_id: self.msg_conn_id,
            child_relid: relid,
            gpadl: handle,
        });
        Ok(handle)
    }

    /// Tears down a created GPADL. On a rescinded channel the host no
    /// longer answers, so this completes at once without sending anything.
    pub fn teardown_gpadl(
        &mut self,
        now: u64,
        request: RequestId,
        relid: u32,
        gpadl: u32,
        sink: &mut impl ActionSink,
    ) -> Result<(), Error> {
        self.advance_clock(now);
        self.require_connected()?;
        let chan_state = self.channel(relid).ok_or(Error::UnknownChannel)?.state;
        let entry = self
            .gpadl(gpadl)
            .filter(|g| g.relid == relid)
            .ok_or(Error::UnknownGpadl)?;
        if entry.phase != GpadlPhase::Created {
            return Err(Error::InvalidState);
        }
        if chan_state == Chan::Rescinded {
            self.remove_gpadl(gpadl);
            sink.push(Action::Complete {
                request,
                result: Ok(()),
            });
            return Ok(());
        }
        // The ring GPADL of an open (or opening) channel stays until close.
        if self.channel_uses_gpadl(relid, gpadl) {
            return Err(Error::Busy);
        }
        let pending = self.channel_pending(request);
        if let Some(g) = self.gpadl_mut(gpadl) {
            g.phase = GpadlPhase::TearingDown(pending);
        }
        self.send(
            Message::GpadlTeardown {
                child_relid: relid,
                gpadl,
            },
            sink,
        );
        Ok(())
    }

    /// Opens an offered channel whose rings live in a created GPADL.
    pub fn open(
        &mut self,
        now: u64,
        request: RequestId,
        open: &OpenRequest,
        sink: &mut impl ActionSink,
    ) -> Result<(), Error> {
        let OpenRequest {
            relid,
            ring_gpadl,
            downstream_page_offset,
            target_vp,
            user_data,
        } = *open;
        self.advance_clock(now);
        self.require_connected()?;
        let chan = self.channel(relid).ok_or(Error::UnknownChannel)?;
        if chan.state != Chan::Offered {
            return Err(Error::InvalidState);
        }
        let ring = self
            .gpadl(ring_gpadl)
            .filter(|g| g.relid == relid)
            .ok_or(Error::UnknownGpadl)?;
        if ring.phase != GpadlPhase::Created {
            return Err(Error::InvalidState);
        }
        // Linux uses the relid as the open id; it only has to be echoed.
        let openid = relid;
        let pending = self.channel_pending(request);
        self.set_channel_state(
            relid,
            Chan::Opening {
                openid,
                ring: ring_gpadl,
                pending,
            },
        );
        self.send(
            Message::OpenChannel(OpenChannel {
                child_relid: relid,
                openid,
                ring_gpadl,
                target_vp,
                downstream_page_offset,
                user_data,
            }),
            sink,
        );
        Ok(())
    }

    /// Closes an open channel. The host does not answer CLOSECHANNEL, so
    /// this is immediate; tear the ring GPADL down afterwards.
    pub fn close(&mut self, now: u64, relid: u32, sink: &mut impl ActionSink) -> Result<(), Error> {
        self.advance_clock(now);
        self.require_connected()?;
        match self.channel(relid).ok_or(Error::UnknownChannel)?.state {
            Chan::Open { modify: None, .. } => {}
            Chan::Open {
                modify: Some(_), ..
            } => return Err(Error::Busy),
            _ => return Err(Error::InvalidState),
        }
        self.set_channel_state(relid, Chan::Offered);
        self.send(Message::CloseChannel { child_relid: relid }, sink);
        Ok(())
    }

    /// Moves an open channel's interrupts to `target_vp` (4.1 and newer).
    /// Before 5.3 the host does not answer and this completes at once.
    pub fn modify_channel(
        &mut self,
        now: u64,
        request: RequestId,
        relid: u32,
        target_vp: u32,
        sink: &mut impl ActionSink,
    ) -> Result<(), Error> {
        self.advance_clock(now);
        self.require_connected()?;
        let version = self.version.ok_or(Error::InvalidState)?;
        if !version.supports_modify_channel() {
            return Err(Error::Unsupported);
        }
        let ring = match self.channel(relid).ok_or(Error::UnknownChannel)?.state {
            Chan::Open { ring, modify: None } => ring,
            Chan::Open {
                modify: Some(_), ..
            } => return Err(Error::Busy),
            _ => return Err(Error::InvalidState),
        };
        self.send(
            Message::ModifyChannel {
                child_relid: relid,
                target_vp,
            },
            sink,
        );
        if version.modify_channel_has_response() {
            let pending = self.channel_pending(request);
            self.set_channel_state(
                relid,
                Chan::Open {
                    ring,
                    modify: Some(pending),
                },
            );
        } else {
            sink.push(Action::Complete {
                request,
                result: Ok(()),
            });
        }
        Ok(())
    }

    /// Acknowledges a rescind once the device is gone and the channel's
    /// GPADLs are torn down; frees the relid for reuse by the host.
    pub fn release_relid(
        &mut self,
        now: u64,
        relid: u32,
        sink: &mut impl ActionSink,
    ) -> Result<(), Error> {
        self.advance_clock(now);
        self.require_connected()?;
        if self.channel(relid).ok_or(Error::UnknownChannel)?.state != Chan::Rescinded {
            return Err(Error::InvalidState);
        }
        if self
            .gpadls
            .slots()
            .iter()
            .flatten()
            .any(|g| g.relid == relid)
        {
            return Err(Error::Busy);
        }
        self.remove_channel(relid);
        self.send(Message::RelidReleased { child_relid: relid }, sink);
        Ok(())
    }

    /// Gives an offered channel back to the host, unused: the guest has no
    /// use for it (a subchannel whose device is gone, no memory for its
    /// device). Only from [`ChannelState::Offered`] with no GPADL; the
    /// channel is forgotten and RELID_RELEASED sent, as after a rescind.
    pub fn release_offer(
        &mut self,
        now: u64,
        relid: u32,
        sink: &mut impl ActionSink,
    ) -> Result<(), Error> {
        self.advance_clock(now);
        self.require_connected()?;
        if self.channel(relid).ok_or(Error::UnknownChannel)?.state != Chan::Offered {
            return Err(Error::InvalidState);
        }
        if self
            .gpadls
            .slots()
            .iter()
            .flatten()
            .any(|g| g.relid == relid)
        {
            return Err(Error::Busy);
        }
        self.remove_channel(relid);
        self.send(Message::RelidReleased { child_relid: relid }, sink);
        Ok(())
    }

    /// Sends CHANNELMSG_UNLOAD; on the response every channel and GPADL is
    /// forgotten and the connection is down. The host gets the usual
    /// request timeout; see [`Control::unload_within`] for a longer one.
    pub fn unload(
        &mut self,
        now: u64,
        request: RequestId,
        sink: &mut impl ActionSink,
    ) -> Result<(), Error> {
        self.unload_within(now, request, self.config.timeout, sink)
    }

    /// [`Control::unload`] with its own deadline, `timeout` ticks from
    /// `now`: a host may take far longer to answer UNLOAD than any other
    /// request (an Azure host first writes back its disk cache, which the
    /// C driver documents as up to 50 s).
    pub fn unload_within(
        &mut self,
        now: u64,
        request: RequestId,
        timeout: u64,
        sink: &mut impl ActionSink,
    ) -> Result<(), Error> {
        self.advance_clock(now);
        self.require_connected()?;
        self.conn = Conn::Unloading {
            pending: Pending {
                request,
                deadline: self.now.saturating_add(timeout),
            },
        };
        self.send(Message::Unload, sink);
        Ok(())
    }

    // ----- time ----------------------------------------------------------

    /// Advances the clock to `now` and fails every request whose deadline
    /// has passed. Time never goes backwards: an earlier `now` is ignored.
    pub fn advance(&mut self, now: u64, sink: &mut impl ActionSink) {
        self.advance_clock(now);
        let now = self.now;
        let expired = |p: &Pending| p.deadline <= now;
        match self.conn {
            Conn::Connecting { pending, .. } if expired(&pending) => {
                self.conn = Conn::Disconnected;
                sink.push(Action::Complete {
                    request: pending.request,
                    result: Err(Error::Timeout),
                });
                return;
            }
            Conn::Unloading { pending } if expired(&pending) => {
                self.finish_unload(pending.request, Err(Error::Timeout), sink);
                return;
            }
            _ => {}
        }
        for slot in self.channels.slots_mut().iter_mut().flatten() {
            match slot.state {
                Chan::Opening {
                    openid,
                    ring,
                    pending,
                } if expired(&pending) => {
                    slot.state = Chan::Failed { openid, ring };
                    sink.push(Action::Complete {
                        request: pending.request,
                        result: Err(Error::Timeout),
                    });
                }
                Chan::Open {
                    ring,
                    modify: Some(pending),
                } if expired(&pending) => {
                    slot.state = Chan::Open { ring, modify: None };
                    sink.push(Action::Complete {
                        request: pending.request,
                        result: Err(Error::Timeout),
                    });
                }
                _ => {}
            }
        }
        for g in self.gpadls.slots_mut().iter_mut().flatten() {
            let (pending, timed_out) = match g.phase {
                GpadlPhase::Creating(p) => (p, GpadlPhase::CreateTimedOut),
                GpadlPhase::TearingDown(p) => (p, GpadlPhase::TeardownTimedOut),
                _ => continue,
            };
            if expired(&pending) {
                g.phase = timed_out;
                sink.push(Action::Complete {
                    request: pending.request,
                    result: Err(Error::Timeout),
                });
            }
        }
    }

    // ----- failed posts --------------------------------------------------

    /// HvPostMessage of `message`, which an earlier call asked for (an
    /// [`Action::Send`], or one of an [`Action::SendGpadl`]'s messages),
    /// failed with `kind`, after whatever retrying the caller does. Call it
    /// after the call that asked for the message has returned.
    ///
    /// - INITIATE_CONTACT that no port took ([`PostError::NoConnection`]):
    ///   the host is older than that version's connection id; the next
    ///   version is proposed at once, as on a rejection. Failing otherwise,
    ///   the connect fails.
    /// - The message of a pending request (GPADL header or body, GPADL
    ///   teardown, OPENCHANNEL, MODIFYCHANNEL with a response, UNLOAD):
    ///   the request fails now with [`Error::PostFailed`], not at its
    ///   deadline. The host never saw a failed header, teardown, open,
    ///   modify or unload, so the state goes back to what it was before;
    ///   after a failed body the host may hold part of the GPADL, which
    ///   becomes [`GpadlState::Failed`] (freed on rescind or unload).
    ///
    /// Any other message (CLOSECHANNEL, REQUESTOFFERS, RELID_RELEASED, or a
    /// request no longer pending) has no request to fail:
    /// [`Error::InvalidState`], and nothing changes.
    pub fn post_failed(
        &mut self,
        now: u64,
        message: &Message,
        kind: PostError,
        sink: &mut impl ActionSink,
    ) -> Result<(), Error> {
        self.advance_clock(now);
        let failed = |request| Action::Complete {
            request,
            result: Err(Error::PostFailed(kind)),
        };
        match (self.conn, message) {
            (Conn::Connecting { index, pending }, Message::InitiateContact(ic))
                if version::SUPPORTED.get(index).map(|v| v.raw()) == Some(ic.version) =>
            {
                if kind == PostError::NoConnection {
                    self.fall_back(index, pending, sink);
                } else {
                    self.conn = Conn::Disconnected;
                    sink.push(failed(pending.request));
                }
                Ok(())
            }
            (Conn::Unloading { pending }, Message::Unload) => {
                self.conn = Conn::Connected;
                sink.push(failed(pending.request));
                Ok(())
            }
            (Conn::Connected, Message::GpadlHeader(h)) => {
                let entry = self.gpadl(h.gpadl).filter(|g| g.relid == h.child_relid);
                let Some(GpadlPhase::Creating(pending)) = entry.map(|g| g.phase) else {
                    return Err(Error::InvalidState);
                };
                self.remove_gpadl(h.gpadl);
                sink.push(failed(pending.request));
                Ok(())
            }
            (Conn::Connected, Message::GpadlBody(b)) => {
                let Some(g) = self.gpadl_mut(b.gpadl) else {
                    return Err(Error::InvalidState);
                };
                let GpadlPhase::Creating(pending) = g.phase else {
                    return Err(Error::InvalidState);
                };
                g.phase = GpadlPhase::Partial;
                sink.push(failed(pending.request));
                Ok(())
            }
            (Conn::Connected, &Message::GpadlTeardown { child_relid, gpadl }) => {
                let Some(g) = self.gpadl_mut(gpadl).filter(|g| g.relid == child_relid) else {
                    return Err(Error::InvalidState);
                };
                let GpadlPhase::TearingDown(pending) = g.phase else {
                    return Err(Error::InvalidState);
                };
                g.phase = GpadlPhase::Created;
                sink.push(failed(pending.request));
                Ok(())
            }
            (Conn::Connected, Message::OpenChannel(o)) => {
                match self.channel(o.child_relid).map(|c| c.state) {
                    Some(Chan::Opening {
                        openid, pending, ..
                    }) if openid == o.openid => {
                        self.set_channel_state(o.child_relid, Chan::Offered);
                        sink.push(failed(pending.request));
                        Ok(())
                    }
                    _ => Err(Error::InvalidState),
                }
            }
            (Conn::Connected, &Message::ModifyChannel { child_relid, .. }) => {
                match self.channel(child_relid).map(|c| c.state) {
                    Some(Chan::Open {
                        ring,
                        modify: Some(pending),
                    }) => {
                        self.set_channel_state(child_relid, Chan::Open { ring, modify: None });
                        sink.push(failed(pending.request));
                        Ok(())
                    }
                    _ => Err(Error::InvalidState),
                }
            }
            _ => Err(Error::InvalidState),
        }
    }

    // ----- host messages -------------------------------------------------

    /// Handles one channel message from the host: `bytes` is the SynIC
    /// payload, copied out of shared memory. On error nothing changed and
    /// nothing was pushed.
    pub fn handle_message(
        &mut self,
        bytes: &[u8],
        sink: &mut impl ActionSink,
    ) -> Result<(), Error> {
        let msg = Message::parse(bytes).map_err(Error::Parse)?;
        let ty = msg.message_type();
        let unexpected = Err(Error::Unexpected(ty));
        match (self.conn, msg) {
            (Conn::Connecting { index, pending }, Message::VersionResponse(r)) => {
                self.on_version_response(index, pending, r, sink)
            }
            (Conn::Unloading { pending }, Message::UnloadResponse) => {
                self.finish_unload(pending.request, Ok(()), sink);
                Ok(())
            }
            (Conn::Connected, Message::Offer(offer)) => self.on_offer(offer, sink),
            (Conn::Connected, Message::Rescind { child_relid }) => {
                self.on_rescind(child_relid, sink)
            }
            (Conn::Connected, Message::AllOffersDelivered) => {
                if self.offers_delivered {
                    return unexpected;
                }
                self.offers_delivered = true;
                sink.push(Action::AllOffersDelivered);
                Ok(())
            }
            (
                Conn::Connected,
                Message::OpenResult {
                    child_relid,
                    openid,
                    status,
                },
            ) => {
                let (want, ring, pending) = match self.channel(child_relid).map(|c| c.state) {
                    Some(Chan::Opening {
                        openid,
                        ring,
                        pending,
                    }) => (openid, ring, pending),
                    Some(Chan::Failed { openid: want, .. }) => {
                        if openid != want {
                            return Err(Error::BadHostField(ty, "openid"));
                        }
                        self.on_late_open_result(child_relid, status, sink);
                        return Ok(());
                    }
                    _ => return unexpected,
                };
                if openid != want {
                    return Err(Error::BadHostField(ty, "openid"));
                }
                let (state, result) = if status == 0 {
                    (Chan::Open { ring, modify: None }, Ok(()))
                } else {
                    (Chan::Offered, Err(Error::HostStatus(status)))
                };
                self.set_channel_state(child_relid, state);
                sink.push(Action::Complete {
                    request: pending.request,
                    result,
                });
                Ok(())
            }
            (
                Conn::Connected,
                Message::GpadlCreated {
                    child_relid,
                    gpadl,
                    status,
                },
            ) => {
                let pending = match self
                    .gpadl(gpadl)
                    .filter(|g| g.relid == child_relid)
                    .map(|g| g.phase)
                {
                    Some(GpadlPhase::Creating(pending)) => pending,
                    // Too late for the request, not for the pages: mapped,
                    // they must be torn down; refused, they are free.
                    Some(GpadlPhase::CreateTimedOut) => {
                        if status == 0 {
                            if let Some(g) = self.gpadl_mut(gpadl) {
                                g.phase = GpadlPhase::Created;
                            }
                        } else {
                            self.remove_gpadl(gpadl);
                        }
                        return Ok(());
                    }
                    _ => return unexpected,
                };
                let result = if status == 0 {
                    if let Some(g) = self.gpadl_mut(gpadl) {
                        g.phase = GpadlPhase::Created;
                    }
                    Ok(())
                } else {
                    self.remove_gpadl(gpadl);
                    Err(Error::HostStatus(status))
                };
                sink.push(Action::Complete {
                    request: pending.request,
                    result,
                });
                Ok(())
            }
            (Conn::Connected, Message::GpadlTorndown { gpadl }) => {
                let pending = match self.gpadl(gpadl).map(|g| g.phase) {
                    Some(GpadlPhase::TearingDown(pending)) => pending,
                    // Too late for the request: the pages are free now.
                    Some(GpadlPhase::TeardownTimedOut) => {
                        self.remove_gpadl(gpadl);
                        return Ok(());
                    }
                    _ => return unexpected,
                };
                self.remove_gpadl(gpadl);
                sink.push(Action::Complete {
                    request: pending.request,
                    result: Ok(()),
                });
                Ok(())
            }
            (
                Conn::Connected,
                Message::ModifyChannelResponse {
                    child_relid,
                    status,
                },
            ) => {
                let Some(Chan::Open {
                    ring,
                    modify: Some(pending),
                }) = self.channel(child_relid).map(|c| c.state)
                else {
                    return unexpected;
                };
                self.set_channel_state(child_relid, Chan::Open { ring, modify: None });
                let result = if status == 0 {
                    Ok(())
                } else {
                    Err(Error::HostStatus(status))
                };
                sink.push(Action::Complete {
                    request: pending.request,
                    result,
                });
                Ok(())
            }
            _ => unexpected,
        }
    }

    // ----- internals -----------------------------------------------------

    fn advance_clock(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    fn pending(&self, request: RequestId) -> Pending {
        Pending {
            request,
            deadline: self.now.saturating_add(self.config.timeout),
        }
    }

    fn channel_pending(&self, request: RequestId) -> Pending {
        Pending {
            request,
            deadline: self.now.saturating_add(self.config.channel_timeout),
        }
    }

    fn require_connected(&self) -> Result<(), Error> {
        if self.conn == Conn::Connected {
            Ok(())
        } else {
            Err(Error::InvalidState)
        }
    }

    fn send(&self, message: Message, sink: &mut impl ActionSink) {
        sink.push(Action::Send {
            connection_id: self.msg_conn_id,
            message,
        });
    }

    /// The first index at or after `from` whose version is allowed.
    fn next_version_index(&self, from: usize) -> Option<usize> {
        let rest = version::SUPPORTED.get(from..)?;
        let skip = rest.iter().position(|v| *v <= self.config.max_version)?;
        from.checked_add(skip)
    }

    fn propose(&self, index: usize, sink: &mut impl ActionSink) {
        let Some(&v) = version::SUPPORTED.get(index) else {
            return;
        };
        let interrupt_page = if v.host_assigns_connection_id() {
            InitiateContact::sint_vtl(version::MESSAGE_SINT, self.config.vtl)
        } else {
            self.config.interrupt_page
        };
        sink.push(Action::Send {
            connection_id: v.initiate_contact_connection_id(),
            message: Message::InitiateContact(InitiateContact {
                version: v.raw(),
                target_vcpu: self.config.target_vcpu,
                interrupt_page,
                monitor_page1: self.config.monitor_pages[0],
                monitor_page2: self.config.monitor_pages[1],
            }),
        });
    }

    fn on_version_response(
        &mut self,
        index: usize,
        pending: Pending,
        r: super::msg::VersionResponse,
        sink: &mut impl ActionSink,
    ) -> Result<(), Error> {
        let ty = MessageType::VersionResponse;
        let v = *version::SUPPORTED.get(index).ok_or(Error::Unexpected(ty))?;
        if !r.supported {
            self.fall_back(index, pending, sink);
            return Ok(());
        }
        let conn_id = if v.host_assigns_connection_id() {
            if r.msg_conn_id == 0 || r.msg_conn_id & !version::CONNECTION_ID_MASK != 0 {
                return Err(Error::BadHostField(ty, "msg_conn_id"));
            }
            r.msg_conn_id
        } else {
            version::MESSAGE_CONNECTION_ID
        };
        self.conn = Conn::Connected;
        self.version = Some(v);
        self.msg_conn_id = conn_id;
        self.offers_delivered = false;
        sink.push(Action::Complete {
            request: pending.request,
            result: Ok(()),
        });
        self.send(Message::RequestOffers, sink);
        Ok(())
    }

    /// The version at `index` is out (rejected, or its INITIATE_CONTACT
    /// could not be posted): propose the next one, or fail the connect.
    fn fall_back(&mut self, index: usize, pending: Pending, sink: &mut impl ActionSink) {
        match index
            .checked_add(1)
            .and_then(|i| self.next_version_index(i))
        {
            Some(next) => {
                self.conn = Conn::Connecting {
                    index: next,
                    pending: self.pending(pending.request),
                };
                self.propose(next, sink);
            }
            None => {
                self.conn = Conn::Disconnected;
                sink.push(Action::Complete {
                    request: pending.request,
                    result: Err(Error::NoCommonVersion),
                });
            }
        }
    }

    fn on_offer(&mut self, offer: Offer, sink: &mut impl ActionSink) -> Result<(), Error> {
        let duplicate = self.channels.slots().iter().flatten().any(|c| {
            c.relid == offer.child_relid
                || (c.instance == offer.if_instance
                    && c.sub_channel_index == offer.sub_channel_index)
        });
        if duplicate {
            return Err(Error::DuplicateOffer);
        }
        let taken = insert(
            &mut self.channels,
            ChannelEntry {
                relid: offer.child_relid,
                instance: offer.if_instance,
                sub_channel_index: offer.sub_channel_index,
                connection_id: offer.connection_id,
                state: Chan::Offered,
            },
        );
        match taken {
            Ok(()) => sink.push(Action::Offer(offer)),
            Err(reason) => {
                // Given back at once, as Linux does when it cannot
                // allocate a channel: the host keeps no half-known relid.
                self.send(
                    Message::RelidReleased {
                        child_relid: offer.child_relid,
                    },
                    sink,
                );
                sink.push(Action::Refused {
                    child_relid: offer.child_relid,
                    reason,
                });
            }
        }
        Ok(())
    }

    fn on_rescind(&mut self, relid: u32, sink: &mut impl ActionSink) -> Result<(), Error> {
        let Some(state) = self.channel(relid).map(|c| c.state) else {
            return Err(Error::Unexpected(MessageType::RescindChannelOffer));
        };
        match state {
            Chan::Rescinded => return Err(Error::Unexpected(MessageType::RescindChannelOffer)),
            Chan::Opening { pending, .. }
            | Chan::Open {
                modify: Some(pending),
                ..
            } => {
                sink.push(Action::Complete {
                    request: pending.request,
                    result: Err(Error::Rescinded),
                });
            }
            Chan::Offered | Chan::Open { modify: None, .. } | Chan::Failed { .. } => {}
        }
        // The ring of an open that timed out has no owner left to tear it
        // down (the driver gave its memory up for good): it goes with the
        // channel, or the relid could never be released.
        let abandoned_ring = match state {
            Chan::Failed { ring, .. } => Some(ring),
            _ => None,
        };
        self.set_channel_state(relid, Chan::Rescinded);
        // The host is done with the channel's GPADLs: pending creates fail,
        // pending teardowns succeed, failed ones (and an abandoned ring) are
        // safe to free now.
        for slot in self.gpadls.slots_mut().iter_mut() {
            let Some(g) = *slot else { continue };
            if g.relid != relid {
                continue;
            }
            match g.phase {
                GpadlPhase::Creating(p) => {
                    sink.push(Action::Complete {
                        request: p.request,
                        result: Err(Error::Rescinded),
                    });
                    *slot = None;
                }
                GpadlPhase::TearingDown(p) => {
                    sink.push(Action::Complete {
                        request: p.request,
                        result: Ok(()),
                    });
                    *slot = None;
                }
                GpadlPhase::CreateTimedOut | GpadlPhase::TeardownTimedOut | GpadlPhase::Partial => {
                    *slot = None
                }
                GpadlPhase::Created if abandoned_ring == Some(g.handle) => *slot = None,
                GpadlPhase::Created => {}
            }
        }
        sink.push(Action::Rescind { child_relid: relid });
        Ok(())
    }

    /// OPENCHANNEL_RESULT for an open that timed out: the request failed
    /// already; a channel the host opened is closed again. Either way it
    /// is offered again and its ring GPADL may be torn down.
    fn on_late_open_result(&mut self, relid: u32, status: u32, sink: &mut impl ActionSink) {
        self.set_channel_state(relid, Chan::Offered);
        if status == 0 {
            self.send(Message::CloseChannel { child_relid: relid }, sink);
        }
    }

    fn finish_unload(
        &mut self,
        request: RequestId,
        result: Result<(), Error>,
        sink: &mut impl ActionSink,
    ) {
        for c in self.channels.slots().iter().flatten() {
            if let Chan::Opening { pending, .. }
            | Chan::Open {
                modify: Some(pending),
                ..
            } = c.state
            {
                sink.push(Action::Complete {
                    request: pending.request,
                    result: Err(Error::Unloaded),
                });
            }
        }
        for g in self.gpadls.slots().iter().flatten() {
            if let GpadlPhase::Creating(pending) | GpadlPhase::TearingDown(pending) = g.phase {
                sink.push(Action::Complete {
                    request: pending.request,
                    result: Err(Error::Unloaded),
                });
            }
        }
        clear(&mut self.channels);
        clear(&mut self.gpadls);
        self.conn = Conn::Disconnected;
        self.version = None;
        self.msg_conn_id = version::MESSAGE_CONNECTION_ID;
        self.offers_delivered = false;
        sink.push(Action::Complete { request, result });
    }

    fn channel(&self, relid: u32) -> Option<&ChannelEntry> {
        self.channels
            .slots()
            .iter()
            .flatten()
            .find(|c| c.relid == relid)
    }

    fn set_channel_state(&mut self, relid: u32, state: Chan) {
        if let Some(c) = self
            .channels
            .slots_mut()
            .iter_mut()
            .flatten()
            .find(|c| c.relid == relid)
        {
            c.state = state;
        }
    }

    fn remove_channel(&mut self, relid: u32) {
        if let Some(slot) = self
            .channels
            .slots_mut()
            .iter_mut()
            .find(|c| c.is_some_and(|c| c.relid == relid))
        {
            *slot = None;
        }
    }

    fn gpadl(&self, handle: u32) -> Option<&GpadlEntry> {
        self.gpadls
            .slots()
            .iter()
            .flatten()
            .find(|g| g.handle == handle)
    }

    fn gpadl_mut(&mut self, handle: u32) -> Option<&mut GpadlEntry> {
        self.gpadls
            .slots_mut()
            .iter_mut()
            .flatten()
            .find(|g| g.handle == handle)
    }

    fn remove_gpadl(&mut self, handle: u32) {
        if let Some(slot) = self
            .gpadls
            .slots_mut()
            .iter_mut()
            .find(|g| g.is_some_and(|g| g.handle == handle))
        {
            *slot = None;
        }
    }

    /// A handle not in use and not 0. At most one handle per slot is in
    /// use, so one candidate more than there are slots (and one more for 0)
    /// always contains a free one.
    fn allocate_handle(&mut self) -> Option<u32> {
        let candidates = self.gpadls.slots().len().saturating_add(2);
        for _ in 0..candidates {
            let candidate = self.next_gpadl;
            self.next_gpadl = self.next_gpadl.wrapping_add(1);
            if candidate != 0 && self.gpadl(candidate).is_none() {
                return Some(candidate);
            }
        }
        None
    }

    /// Whether `gpadl` holds the rings of `relid` while it is opening, open
    /// or failed opening; it must stay mapped until close or rescind.
    fn channel_uses_gpadl(&self, relid: u32, gpadl: u32) -> bool {
        self.channel(relid).is_some_and(|c| match c.state {
            Chan::Opening { ring, .. } | Chan::Open { ring, .. } | Chan::Failed { ring, .. } => {
                ring == gpadl
            }
            _ => false,
        })
    }
}

/// Builds a message into a fresh buffer; a convenience for callers that
/// perform [`Action::Send`].
pub fn encode(message: &Message) -> ([u8; MAX_MESSAGE_SIZE], usize) {
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    let len = message.write(&mut buf);
    (buf, len)
}
