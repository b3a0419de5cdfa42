//! Random operation sequences against the control-plane state machine,
//! checking its invariants after every step. The same harness is the body
//! of the `control` fuzz target (vmbus/core/fuzz), which includes this file.

use std::collections::HashSet;

use vmbus_core::control::*;
use vmbus_core::guid::Guid;
use vmbus_core::msg::*;
use vmbus_core::version::{self, Version};

type C = FixedControl<4, 4>;
const TIMEOUT: u64 = 1000;

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

/// Small relids and GPADL handles near the first one the machine hands out,
/// so generated messages often match real state.
fn relid(b: &mut Bytes) -> Option<u32> {
    Some(u32::from(b.u8()? % 5))
}
fn gpadl(b: &mut Bytes) -> Option<u32> {
    Some(0xe1e10 + u32::from(b.u8()? % 10))
}

/// A host message aimed at plausible targets; may still be invalid.
fn host_message(b: &mut Bytes) -> Option<Message> {
    let status =
        |b: &mut Bytes| -> Option<u32> { Some(if b.u8()? & 1 == 0 { 0 } else { 0xc000_0001 }) };
    Some(match b.u8()? % 10 {
        0 => Message::VersionResponse(VersionResponse {
            supported: b.u8()? & 1 == 1,
            connection_state: 0,
            msg_conn_id: u32::from(b.u8()?),
        }),
        1 => Message::Offer(Offer {
            if_type: Guid::ZERO,
            if_instance: Guid::from_bytes([b.u8()? % 3; 16]),
            chn_flags: 0,
            mmio_megabytes: 0,
            user_def: [0; USER_DEFINED_BYTES],
            sub_channel_index: u16::from(b.u8()? % 2),
            child_relid: relid(b)?,
            monitor_id: None,
            dedicated_interrupt: false,
            connection_id: 1,
        }),
        2 => Message::Rescind {
            child_relid: relid(b)?,
        },
        3 => Message::AllOffersDelivered,
        4 => {
            let r = relid(b)?;
            let openid = if b.u8()? & 7 == 0 { 99 } else { r };
            Message::OpenResult {
                child_relid: r,
                openid,
                status: status(b)?,
            }
        }
        5 => Message::GpadlCreated {
            child_relid: relid(b)?,
            gpadl: gpadl(b)?,
            status: status(b)?,
        },
        6 => Message::GpadlTorndown { gpadl: gpadl(b)? },
        7 => Message::UnloadResponse,
        8 => Message::ModifyChannelResponse {
            child_relid: relid(b)?,
            status: status(b)?,
        },
        _ => Message::RequestOffers, // guest-to-host: never valid from the host
    })
}

struct Harness {
    c: C,
    now: u64,
    next_id: u64,
    outstanding: HashSet<u64>,
    /// Recent guest messages, for well-aimed host answers.
    sent: Vec<Message>,
    /// (relid, handle) of GPADLs the machine created, for well-aimed requests.
    made: Vec<(u32, u32)>,
    /// Coverage: whether a connection and an open channel were reached.
    seen: Seen,
}

/// What a run reached, so tests can tell the sequences went somewhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen {
    /// A connection was established.
    pub connected: bool,
    /// A channel was opened.
    pub open: bool,
}

impl Harness {
    /// Checks the actions of one step; `ok` says whether the step succeeded.
    fn check_actions(&mut self, before: &C, ok: bool, actions: &[Action]) {
        if !ok {
            assert!(actions.is_empty(), "failed step pushed {actions:?}");
            assert_eq!(&self.c, before, "failed step changed state");
        }
        for a in actions {
            match *a {
                Action::Complete { request, .. } => {
                    assert!(
                        self.outstanding.remove(&request.0),
                        "completion of unknown or finished {request:?}"
                    );
                }
                Action::Send {
                    connection_id,
                    message,
                } => {
                    let (buf, len) = encode(&message);
                    assert_eq!(Message::parse(&buf[..len]), Ok(message));
                    assert!(
                        !message.message_type().from_host(),
                        "guest sent {message:?}"
                    );
                    self.remember(message);
                    if let Message::InitiateContact(ic) = message {
                        let v =
                            Version::from_raw(ic.version).expect("proposed unsupported version");
                        assert_eq!(connection_id, v.initiate_contact_connection_id());
                    } else {
                        assert_eq!(connection_id, self.c.message_connection_id());
                    }
                }
                Action::SendGpadl {
                    connection_id,
                    child_relid,
                    gpadl,
                } => {
                    assert_eq!(connection_id, self.c.message_connection_id());
                    // Stand-in so the answer generator can reply to it.
                    self.remember(Message::GpadlTeardown {
                        child_relid,
                        gpadl: !gpadl,
                    });
                    if self.made.len() == 8 {
                        self.made.remove(0);
                    }
                    self.made.push((child_relid, gpadl));
                }
                Action::Offer(_) | Action::Rescind { .. } | Action::AllOffersDelivered => {}
                Action::Refused { child_relid, .. } => {
                    // Refused offers are released, never kept.
                    assert_eq!(self.c.channel_state(child_relid), None);
                }
            }
        }
        assert_eq!(
            self.c.pending_requests(),
            self.outstanding.len(),
            "pending count drifted"
        );
        self.seen.connected |= self.c.state() == ConnectionState::Connected;
        self.seen.open |= (1..6).any(|r| self.c.channel_state(r) == Some(ChannelState::Open));
        if self.c.state() != ConnectionState::Connected {
            assert!(
                self.c.version().is_some() == (self.c.state() == ConnectionState::Unloading),
                "version set while {:?}",
                self.c.state()
            );
        }
    }

    fn remember(&mut self, m: Message) {
        if self.sent.len() == 16 {
            self.sent.remove(0);
        }
        self.sent.push(m);
    }

    /// The answer a well-behaved host would give to a recent guest message
    /// (mostly success), or `None` if there is nothing to answer.
    fn answer(&self, b: &mut Bytes) -> Option<Message> {
        let pick = self
            .sent
            .get(usize::from(b.u8()?) % self.sent.len().max(1))?;
        let status = if b.u8()? % 8 == 0 { 1 } else { 0 };
        Some(match *pick {
            Message::InitiateContact(_) => Message::VersionResponse(VersionResponse {
                supported: status == 0,
                connection_state: 0,
                msg_conn_id: 5,
            }),
            Message::RequestOffers => Message::Offer(Offer {
                if_type: Guid::ZERO,
                if_instance: Guid::from_bytes([b.u8()? % 3; 16]),
                chn_flags: 0,
                mmio_megabytes: 0,
                user_def: [0; USER_DEFINED_BYTES],
                sub_channel_index: 0,
                child_relid: 1 + u32::from(b.u8()? % 3),
                monitor_id: Some(1),
                dedicated_interrupt: false,
                connection_id: 9,
            }),
            Message::OpenChannel(o) => Message::OpenResult {
                child_relid: o.child_relid,
                openid: o.openid,
                status,
            },
            // A GPADL the machine asked us to send (see check_actions).
            Message::GpadlTeardown { child_relid, gpadl } if gpadl > 0xf000_0000 => {
                Message::GpadlCreated {
                    child_relid,
                    gpadl: !gpadl,
                    status,
                }
            }
            Message::GpadlTeardown { gpadl, .. } => Message::GpadlTorndown { gpadl },
            Message::ModifyChannel { child_relid, .. } => Message::ModifyChannelResponse {
                child_relid,
                status,
            },
            Message::Unload => Message::UnloadResponse,
            _ => Message::AllOffersDelivered,
        })
    }

    /// A recent guest message whose post is to fail: GPADLs the machine
    /// asked for (kept as stand-ins, see check_actions) as their header or
    /// a body message.
    fn failed_post(&self, b: &mut Bytes) -> Option<Message> {
        let pick = *self
            .sent
            .get(usize::from(b.u8()?) % self.sent.len().max(1))?;
        Some(match pick {
            Message::GpadlTeardown { child_relid, gpadl } if gpadl > 0xf000_0000 => {
                let pfns = Pfns::new(&[1])?;
                if b.u8()? & 1 == 0 {
                    Message::GpadlHeader(GpadlHeader {
                        child_relid,
                        gpadl: !gpadl,
                        total_pfns: 2,
                        byte_count: 8192,
                        byte_offset: 0,
                        pfns,
                    })
                } else {
                    Message::GpadlBody(GpadlBody {
                        msgnumber: 0,
                        gpadl: !gpadl,
                        pfns,
                    })
                }
            }
            other => other,
        })
    }

    /// A (relid, GPADL) pair: mostly one the machine made, sometimes random.
    fn target(&self, b: &mut Bytes) -> Option<(u32, u32)> {
        let i = b.u8()?;
        match self.made.get(usize::from(i) % self.made.len().max(1)) {
            Some(&pair) if i % 8 != 0 => Some(pair),
            _ => Some((relid(b)?, gpadl(b)?)),
        }
    }

    /// Runs a driver request that takes a request id.
    fn request(&mut self, f: impl FnOnce(&mut C, u64, RequestId, &mut dyn FnMut(Action)) -> bool) {
        let id = self.next_id;
        self.next_id += 1;
        let before = self.c.clone();
        let mut actions = Vec::new();
        let ok = f(&mut self.c, self.now, RequestId(id), &mut |a| {
            actions.push(a)
        });
        if ok {
            self.outstanding.insert(id);
        }
        self.check_actions(&before, ok, &actions);
    }

    fn step(&mut self, b: &mut Bytes) -> Option<()> {
        let op = b.u8()?;
        let before = self.c.clone();
        let mut actions = Vec::new();
        let mut sink = |a| actions.push(a);
        match op % 17 {
            16 => {
                // HvPostMessage of a recent guest message failed.
                let Some(m) = self.failed_post(b) else {
                    return Some(());
                };
                let kind = match b.u8()? % 3 {
                    0 => PostError::NoConnection,
                    1 => PostError::Busy,
                    _ => PostError::Other,
                };
                let ok = self.c.post_failed(self.now, &m, kind, &mut sink).is_ok();
                self.check_actions(&before, ok, &actions);
            }
            14.. => {
                let Some(m) = self.answer(b) else {
                    return Some(());
                };
                let (buf, len) = encode(&m);
                let ok = self.c.handle_message(&buf[..len], &mut sink).is_ok();
                self.check_actions(&before, ok, &actions);
            }
            0 => {
                let len = usize::from(b.u8()?);
                let raw = b.take(len).to_vec();
                let ok = self.c.handle_message(&raw, &mut sink).is_ok();
                self.check_actions(&before, ok, &actions);
            }
            1..=4 => {
                let m = host_message(b)?;
                let (buf, len) = encode(&m);
                let ok = self.c.handle_message(&buf[..len], &mut sink).is_ok();
                self.check_actions(&before, ok, &actions);
            }
            5 => {
                // Mostly small steps; sometimes past every deadline.
                let t = b.u8()?;
                let dt = if t == 255 {
                    2 * TIMEOUT
                } else {
                    u64::from(t % 32) * 10
                };
                self.now = self.now.saturating_add(dt);
                self.c.advance(self.now, &mut sink);
                self.check_actions(&before, true, &actions);
            }
            6 => self.request(|c, now, id, s| c.connect(now, id, &mut |a| s(a)).is_ok()),
            7 => {
                let r = relid(b)?;
                self.request(|c, now, id, s| c.create_gpadl(now, id, r, &mut |a| s(a)).is_ok());
            }
            8 => {
                let (r, g) = self.target(b)?;
                self.request(|c, now, id, s| {
                    c.teardown_gpadl(now, id, r, g, &mut |a| s(a)).is_ok()
                });
            }
            9 => {
                let (relid, ring_gpadl) = self.target(b)?;
                let open = OpenRequest {
                    relid,
                    ring_gpadl,
                    downstream_page_offset: 1,
                    target_vp: 0,
                    user_data: [0; USER_DEFINED_BYTES],
                };
                self.request(|c, now, id, s| c.open(now, id, &open, &mut |a| s(a)).is_ok());
            }
            10 => {
                let (r, vp) = (relid(b)?, u32::from(b.u8()?));
                self.request(|c, now, id, s| {
                    c.modify_channel(now, id, r, vp, &mut |a| s(a)).is_ok()
                });
            }
            11 => {
                // Rarely: unload ends everything else.
                if b.u8()? % 8 == 0 {
                    self.request(|c, now, id, s| c.unload(now, id, &mut |a| s(a)).is_ok());
                }
            }
            12 => {
                let r = relid(b)?;
                let ok = self.c.close(self.now, r, &mut sink).is_ok();
                self.check_actions(&before, ok, &actions);
            }
            13 => {
                let r = relid(b)?;
                let ok = self.c.release_relid(self.now, r, &mut sink).is_ok();
                self.check_actions(&before, ok, &actions);
            }
        }
        Some(())
    }
}

/// Interprets `data` as a sequence of operations and checks the machine's
/// invariants after each; at the end, time running out completes every
/// request exactly once.
pub fn run_ops(data: &[u8]) -> Seen {
    let mut b = Bytes(data);
    let max = version::SUPPORTED[usize::from(b.u8().unwrap_or(0)) % version::SUPPORTED.len()];
    let config = Config {
        max_version: max,
        target_vcpu: 0,
        interrupt_page: 0x1000,
        monitor_pages: [0x2000, 0x3000],
        vtl: 0,
        timeout: TIMEOUT,
        channel_timeout: TIMEOUT,
    };
    let mut h = Harness {
        c: C::new(config),
        now: 0,
        next_id: 0,
        outstanding: HashSet::new(),
        sent: Vec::new(),
        made: Vec::new(),
        seen: Seen::default(),
    };
    for _ in 0..10_000 {
        if h.step(&mut b).is_none() {
            break;
        }
    }
    let before = h.c.clone();
    let mut actions = Vec::new();
    h.c.advance(u64::MAX, &mut |a| actions.push(a));
    h.check_actions(&before, true, &actions);
    assert!(
        h.outstanding.is_empty(),
        "requests never completed: {:?}",
        h.outstanding
    );
    h.seen
}

#[test]
fn random_sequences_keep_the_invariants() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let (mut connected, mut open) = (0, 0);
    for _ in 0..300 {
        let data: Vec<u8> = (0..4000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let seen = run_ops(&data);
        connected += usize::from(seen.connected);
        open += usize::from(seen.open);
    }
    // Random bytes must get past negotiation and into open channels often
    // enough for the invariants above to mean something.
    eprintln!("connected in {connected}/300 runs, open in {open}");
    assert!(
        connected > 150 && open > 30,
        "connected in {connected}/300 runs, open in {open}"
    );
}
