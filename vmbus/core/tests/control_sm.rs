//! The control-plane state machine: every host message in every state
//! (table-driven), then each flow and its failure paths.

use vmbus_core::control::*;
use vmbus_core::guid::Guid;
use vmbus_core::msg::*;
use vmbus_core::version::{self, Version};

type C = FixedControl<4, 4>;

const TIMEOUT: u64 = 100;
const RELID: u32 = 1;
const CONN_ID: u32 = 0x1234;

fn config(max_version: Version) -> Config {
    Config {
        max_version,
        target_vcpu: 0,
        interrupt_page: 0xaaa000,
        monitor_pages: [0xbbb000, 0xccc000],
        vtl: 0,
        timeout: TIMEOUT,
        channel_timeout: TIMEOUT,
    }
}

/// Runs `f` with a recording sink and returns what it pushed.
fn run<T>(f: impl FnOnce(&mut dyn FnMut(Action)) -> T) -> (T, Vec<Action>) {
    let mut out = Vec::new();
    let r = f(&mut |a| out.push(a));
    (r, out)
}

fn host(c: &mut C, m: Message) -> (Result<(), Error>, Vec<Action>) {
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    let n = m.write(&mut buf);
    run(|s| c.handle_message(&buf[..n], &mut |a| s(a)))
}

fn done(id: u64, result: Result<(), Error>) -> Action {
    Action::Complete {
        request: RequestId(id),
        result,
    }
}

fn send(connection_id: u32, message: Message) -> Action {
    Action::Send {
        connection_id,
        message,
    }
}

fn offer(relid: u32, instance: u8, sub: u16) -> Message {
    Message::Offer(Offer {
        if_type: Guid::from_bytes([9; 16]),
        if_instance: Guid::from_bytes([instance; 16]),
        chn_flags: 0,
        mmio_megabytes: 0,
        user_def: [0; USER_DEFINED_BYTES],
        sub_channel_index: sub,
        child_relid: relid,
        monitor_id: Some(3),
        dedicated_interrupt: false,
        connection_id: 0x2000 + relid,
    })
}

fn accept(msg_conn_id: u32) -> Message {
    Message::VersionResponse(VersionResponse {
        supported: true,
        connection_state: 0,
        msg_conn_id,
    })
}

const REJECT: Message = Message::VersionResponse(VersionResponse {
    supported: false,
    connection_state: 0,
    msg_conn_id: 0,
});

fn open_req(gpadl: u32) -> OpenRequest {
    OpenRequest {
        relid: RELID,
        ring_gpadl: gpadl,
        downstream_page_offset: 4,
        target_vp: 0,
        user_data: [0; 120],
    }
}

fn connected(max: Version) -> C {
    let mut c = C::new(config(max));
    run(|s| c.connect(0, RequestId(1000), &mut |a| s(a)))
        .0
        .unwrap();
    assert_eq!(host(&mut c, accept(CONN_ID)).0, Ok(()));
    c
}

fn with_offer() -> C {
    let mut c = connected(Version::WIN10_V5_3);
    host(&mut c, offer(RELID, 1, 0)).0.unwrap();
    c
}

/// Channel offered with a created GPADL; returns its handle.
fn with_gpadl() -> (C, u32) {
    let mut c = with_offer();
    let (g, _) = run(|s| c.create_gpadl(0, RequestId(1), RELID, &mut |a| s(a)));
    let g = g.unwrap();
    host(
        &mut c,
        Message::GpadlCreated {
            child_relid: RELID,
            gpadl: g,
            status: 0,
        },
    )
    .0
    .unwrap();
    (c, g)
}

fn opening() -> (C, u32) {
    let (mut c, g) = with_gpadl();
    run(|s| c.open(0, RequestId(2), &open_req(g), &mut |a| s(a)))
        .0
        .unwrap();
    (c, g)
}

fn open() -> (C, u32) {
    let (mut c, g) = opening();
    host(
        &mut c,
        Message::OpenResult {
            child_relid: RELID,
            openid: RELID,
            status: 0,
        },
    )
    .0
    .unwrap();
    (c, g)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum S {
    Disconnected,
    Connecting,
    Connected,
    AllDelivered,
    Offered,
    GpadlCreating,
    Opening,
    Open,
    Modifying,
    TearingDown,
    Rescinded,
    Unloading,
}

const ALL_STATES: [S; 12] = [
    S::Disconnected,
    S::Connecting,
    S::Connected,
    S::AllDelivered,
    S::Offered,
    S::GpadlCreating,
    S::Opening,
    S::Open,
    S::Modifying,
    S::TearingDown,
    S::Rescinded,
    S::Unloading,
];

/// A machine in state `s`, and the GPADL handle messages should name.
fn build(s: S) -> (C, u32) {
    let first = 0xe1e10;
    match s {
        S::Disconnected => (C::new(config(Version::WIN10_V5_3)), first),
        S::Connecting => {
            let mut c = C::new(config(Version::WIN10_V5_3));
            run(|k| c.connect(0, RequestId(1), &mut |a| k(a)))
                .0
                .unwrap();
            (c, first)
        }
        S::Connected => (connected(Version::WIN10_V5_3), first),
        S::AllDelivered => {
            let mut c = connected(Version::WIN10_V5_3);
            host(&mut c, Message::AllOffersDelivered).0.unwrap();
            (c, first)
        }
        S::Offered => (with_offer(), first),
        S::GpadlCreating => {
            let mut c = with_offer();
            let g = run(|k| c.create_gpadl(0, RequestId(1), RELID, &mut |a| k(a)))
                .0
                .unwrap();
            (c, g)
        }
        S::Opening => opening(),
        S::Open => open(),
        S::Modifying => {
            let (mut c, g) = open();
            run(|k| c.modify_channel(0, RequestId(3), RELID, 2, &mut |a| k(a)))
                .0
                .unwrap();
            (c, g)
        }
        S::TearingDown => {
            let (mut c, g) = with_gpadl();
            run(|k| c.teardown_gpadl(0, RequestId(3), RELID, g, &mut |a| k(a)))
                .0
                .unwrap();
            (c, g)
        }
        S::Rescinded => {
            let mut c = with_offer();
            host(&mut c, Message::Rescind { child_relid: RELID })
                .0
                .unwrap();
            (c, first)
        }
        S::Unloading => {
            let mut c = connected(Version::WIN10_V5_3);
            run(|k| c.unload(0, RequestId(9), &mut |a| k(a))).0.unwrap();
            (c, first)
        }
    }
}

/// One message of each type, aimed at channel RELID and GPADL `g`.
fn every_message(g: u32) -> Vec<Message> {
    let mut all = vec![
        offer(RELID, 1, 0),
        Message::Rescind { child_relid: RELID },
        Message::RequestOffers,
        Message::AllOffersDelivered,
        Message::OpenChannel(OpenChannel {
            child_relid: RELID,
            openid: RELID,
            ring_gpadl: g,
            target_vp: 0,
            downstream_page_offset: 1,
            user_data: [0; 120],
        }),
        Message::OpenResult {
            child_relid: RELID,
            openid: RELID,
            status: 0,
        },
        Message::CloseChannel { child_relid: RELID },
        Message::GpadlCreated {
            child_relid: RELID,
            gpadl: g,
            status: 0,
        },
        Message::GpadlTeardown {
            child_relid: RELID,
            gpadl: g,
        },
        Message::GpadlTorndown { gpadl: g },
        Message::RelidReleased { child_relid: RELID },
        Message::InitiateContact(InitiateContact {
            version: 0x50003,
            target_vcpu: 0,
            interrupt_page: 0,
            monitor_page1: 0,
            monitor_page2: 0,
        }),
        accept(CONN_ID),
        Message::Unload,
        Message::UnloadResponse,
        Message::TlConnectRequest {
            guest_endpoint_id: Guid::ZERO,
            host_service_id: Guid::ZERO,
        },
        Message::ModifyChannel {
            child_relid: RELID,
            target_vp: 1,
        },
        Message::ModifyChannelResponse {
            child_relid: RELID,
            status: 0,
        },
    ];
    let pfns = [1u64];
    let mut split = GpadlSplit::new(RELID, g, 0, 4096, &pfns).unwrap();
    all.push(split.next_message().unwrap());
    all.push(Message::GpadlBody(GpadlBody {
        msgnumber: 0,
        gpadl: g,
        pfns: Pfns::new(&[5]).unwrap(),
    }));
    all
}

/// The (state, message) pairs the machine must accept; all others must be
/// refused without any change.
fn accepted(s: S, t: MessageType) -> bool {
    use MessageType as T;
    let connected = !matches!(s, S::Disconnected | S::Connecting | S::Unloading);
    let has_live_channel = matches!(
        s,
        S::Offered | S::GpadlCreating | S::Opening | S::Open | S::Modifying | S::TearingDown
    );
    match t {
        T::VersionResponse => s == S::Connecting,
        T::UnloadResponse => s == S::Unloading,
        T::OfferChannel => matches!(s, S::Connected | S::AllDelivered),
        T::RescindChannelOffer => has_live_channel,
        T::AllOffersDelivered => connected && s != S::AllDelivered,
        T::OpenChannelResult => s == S::Opening,
        T::GpadlCreated => s == S::GpadlCreating,
        T::GpadlTorndown => s == S::TearingDown,
        T::ModifyChannelResponse => s == S::Modifying,
        _ => {
            assert!(!t.from_host());
            false
        }
    }
}

#[test]
fn every_host_message_in_every_state() {
    let mut checked = 0;
    for s in ALL_STATES {
        let (_, g) = build(s);
        for m in every_message(g) {
            let (mut c, _) = build(s);
            let before = c.clone();
            let (r, actions) = host(&mut c, m);
            let t = m.message_type();
            if accepted(s, t) {
                assert_eq!(r, Ok(()), "{s:?} should accept {t:?}");
                assert!(!actions.is_empty(), "{s:?}/{t:?}: accepted but did nothing");
                assert_ne!(c, before, "{s:?}/{t:?}: accepted but no state change");
            } else {
                assert!(r.is_err(), "{s:?} should refuse {t:?}, got {actions:?}");
                assert!(
                    actions.is_empty(),
                    "{s:?}/{t:?}: refused but pushed {actions:?}"
                );
                assert_eq!(c, before, "{s:?}/{t:?}: refused but changed state");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ALL_STATES.len() * (MessageType::ALL.len()));
}

#[test]
fn malformed_bytes_are_refused_in_every_state() {
    for s in ALL_STATES {
        let (mut c, _) = build(s);
        let before = c.clone();
        for bytes in [
            &[][..],
            &[15, 0, 0, 0][..],
            &[99, 0, 0, 0, 0, 0, 0, 0][..],
            &[0u8; 241][..],
        ] {
            let (r, actions) = run(|k| c.handle_message(bytes, &mut |a| k(a)));
            assert!(matches!(r, Err(Error::Parse(_))), "{s:?}: {r:?}");
            assert!(actions.is_empty());
            assert_eq!(c, before);
        }
    }
}

// ----- version negotiation ----------------------------------------------

fn proposed(a: &Action) -> (u32, Version, u64) {
    match a {
        Action::Send {
            connection_id,
            message: Message::InitiateContact(ic),
        } => (
            *connection_id,
            Version::from_raw(ic.version).unwrap(),
            ic.interrupt_page,
        ),
        other => panic!("expected InitiateContact, got {other:?}"),
    }
}

#[test]
fn negotiation_walks_down_newest_first_with_the_right_connection_ids() {
    let mut c = C::new(config(Version::WIN10_V5_3));
    let (r, a) = run(|k| c.connect(5, RequestId(7), &mut |x| k(x)));
    r.unwrap();
    let mut seen = vec![proposed(&a[0])];
    for _ in 1..version::SUPPORTED.len() {
        let (r, a) = host(&mut c, REJECT);
        r.unwrap();
        assert_eq!(a.len(), 1);
        seen.push(proposed(&a[0]));
    }
    let versions: Vec<Version> = seen.iter().map(|p| p.1).collect();
    assert_eq!(versions, version::SUPPORTED);
    for (conn, v, page) in seen {
        if v >= Version::WIN10_V5 {
            assert_eq!((conn, page), (4, 2), "{v}: conn id 4, msg_sint 2");
        } else {
            assert_eq!(
                (conn, page),
                (1, 0xaaa000),
                "{v}: conn id 1, interrupt page"
            );
        }
    }
    // The last rejection ends the attempt.
    let (r, a) = host(&mut c, REJECT);
    r.unwrap();
    assert_eq!(a, [done(7, Err(Error::NoCommonVersion))]);
    assert_eq!(c.state(), ConnectionState::Disconnected);
    assert_eq!(
        host(&mut c, REJECT).0,
        Err(Error::Unexpected(MessageType::VersionResponse))
    );
}

#[test]
fn accepting_5_x_uses_the_hosts_connection_id_and_requests_offers() {
    let mut c = C::new(config(Version::WIN10_V5_3));
    run(|k| c.connect(0, RequestId(7), &mut |x| k(x)))
        .0
        .unwrap();
    host(&mut c, REJECT).0.unwrap(); // 5.3 refused, 5.2 proposed
    let (r, a) = host(&mut c, accept(0x77));
    r.unwrap();
    assert_eq!(a, [done(7, Ok(())), send(0x77, Message::RequestOffers)]);
    assert_eq!(c.version(), Some(Version::WIN10_V5_2));
    assert_eq!(c.message_connection_id(), 0x77);
    assert_eq!(c.state(), ConnectionState::Connected);
}

#[test]
fn accepting_before_5_0_ignores_the_response_connection_id() {
    let mut c = C::new(config(Version::WIN10_V4_1));
    let (_, a) = run(|k| c.connect(0, RequestId(7), &mut |x| k(x)));
    assert_eq!(proposed(&a[0]), (1, Version::WIN10_V4_1, 0xaaa000));
    let (r, a) = host(&mut c, accept(0x77));
    r.unwrap();
    assert_eq!(a, [done(7, Ok(())), send(1, Message::RequestOffers)]);
    assert_eq!(c.message_connection_id(), 1);
}

#[test]
fn a_bad_connection_id_in_an_accepting_5_x_response_is_refused() {
    for bad in [0, 0x0100_0000] {
        let mut c = C::new(config(Version::WIN10_V5_3));
        run(|k| c.connect(0, RequestId(7), &mut |x| k(x)))
            .0
            .unwrap();
        let before = c.clone();
        let (r, a) = host(&mut c, accept(bad));
        assert_eq!(
            r,
            Err(Error::BadHostField(
                MessageType::VersionResponse,
                "msg_conn_id"
            ))
        );
        assert!(a.is_empty());
        assert_eq!(c, before);
    }
}

#[test]
fn connect_times_out_and_a_late_answer_is_unexpected() {
    let mut c = C::new(config(Version::WIN10_V5_3));
    run(|k| c.connect(10, RequestId(7), &mut |x| k(x)))
        .0
        .unwrap();
    let (_, a) = run(|k| c.advance(10 + TIMEOUT - 1, &mut |x| k(x)));
    assert!(a.is_empty());
    let (_, a) = run(|k| c.advance(10 + TIMEOUT, &mut |x| k(x)));
    assert_eq!(a, [done(7, Err(Error::Timeout))]);
    assert_eq!(c.state(), ConnectionState::Disconnected);
    assert!(host(&mut c, accept(1)).0.is_err());
}

#[test]
fn each_fallback_gets_a_fresh_deadline() {
    let mut c = C::new(config(Version::WIN10_V5_3));
    run(|k| c.connect(0, RequestId(7), &mut |x| k(x)))
        .0
        .unwrap();
    run(|k| c.advance(TIMEOUT - 1, &mut |x| k(x)));
    host(&mut c, REJECT).0.unwrap();
    let (_, a) = run(|k| c.advance(TIMEOUT + 1, &mut |x| k(x)));
    assert!(a.is_empty(), "second proposal timed out early: {a:?}");
    let (_, a) = run(|k| c.advance(2 * TIMEOUT - 1, &mut |x| k(x)));
    assert_eq!(a, [done(7, Err(Error::Timeout))]);
}

#[test]
fn connect_only_when_disconnected_and_max_version_caps_the_list() {
    let mut c = connected(Version::WIN10_V5_3);
    assert_eq!(
        run(|k| c.connect(0, RequestId(1), &mut |x| k(x))).0,
        Err(Error::InvalidState)
    );
    let mut old = C::new(config(Version::new(2, 0)));
    assert_eq!(
        run(|k| old.connect(0, RequestId(1), &mut |x| k(x))).0,
        Err(Error::NoCommonVersion)
    );
    let mut win10 = C::new(config(Version::WIN10));
    let (_, a) = run(|k| win10.connect(0, RequestId(1), &mut |x| k(x)));
    assert_eq!(proposed(&a[0]).1, Version::WIN10);
}

#[test]
fn requests_need_a_connection() {
    let mut c = C::new(config(Version::WIN10_V5_3));
    assert_eq!(
        run(|k| c.create_gpadl(0, RequestId(1), RELID, &mut |x| k(x))).0,
        Err(Error::InvalidState)
    );
    assert_eq!(
        run(|k| c.unload(0, RequestId(1), &mut |x| k(x))).0,
        Err(Error::InvalidState)
    );
    assert_eq!(
        run(|k| c.close(0, RELID, &mut |x| k(x))).0,
        Err(Error::InvalidState)
    );
}

// ----- offers ----------------------------------------------------------------

#[test]
fn offers_are_delivered_and_duplicates_or_overflow_refused() {
    let mut c = connected(Version::WIN10_V5_3);
    for relid in 1..=4 {
        let (r, a) = host(&mut c, offer(relid, relid as u8, 0));
        r.unwrap();
        assert!(matches!(a[..], [Action::Offer(o)] if o.child_relid == relid));
    }
    assert_eq!(host(&mut c, offer(2, 50, 0)).0, Err(Error::DuplicateOffer));
    // Same instance, same sub-channel index: a duplicate device.
    let mut d = connected(Version::WIN10_V5_3);
    host(&mut d, offer(1, 7, 0)).0.unwrap();
    assert_eq!(host(&mut d, offer(2, 7, 0)).0, Err(Error::DuplicateOffer));
    host(&mut d, offer(2, 7, 1)).0.unwrap(); // its sub-channel is fine
    // A full table that cannot grow: the offer is given back to the host
    // (RELID_RELEASED), not left half-known, and the rest goes on.
    assert_eq!(
        host(&mut c, offer(9, 9, 0)),
        (
            Ok(()),
            vec![
                send(CONN_ID, Message::RelidReleased { child_relid: 9 }),
                Action::Refused {
                    child_relid: 9,
                    reason: Error::TableFull
                }
            ]
        )
    );
    assert_eq!(c.channel_state(9), None);
    let (r, a) = host(&mut c, Message::AllOffersDelivered);
    r.unwrap();
    assert_eq!(a, [Action::AllOffersDelivered]);
    assert!(c.offers_delivered());
}

// ----- GPADL, open, modify, close ----------------------------------------------

#[test]
fn full_channel_lifecycle() {
    let mut c = with_offer();
    let (g, a) = run(|k| c.create_gpadl(0, RequestId(1), RELID, &mut |x| k(x)));
    let g = g.unwrap();
    assert_eq!(
        a,
        [Action::SendGpadl {
            connection_id: CONN_ID,
            child_relid: RELID,
            gpadl: g
        }]
    );
    assert_eq!(c.gpadl_state(g), Some(GpadlState::Creating));
    let (r, a) = host(
        &mut c,
        Message::GpadlCreated {
            child_relid: RELID,
            gpadl: g,
            status: 0,
        },
    );
    r.unwrap();
    assert_eq!(a, [done(1, Ok(()))]);

    let (r, a) = run(|k| c.open(0, RequestId(2), &open_req(g), &mut |x| k(x)));
    r.unwrap();
    assert!(matches!(
        a[..],
        [Action::Send { connection_id: CONN_ID, message: Message::OpenChannel(o) }]
            if o.child_relid == RELID && o.ring_gpadl == g && o.downstream_page_offset == 4
    ));
    assert_eq!(c.channel_state(RELID), Some(ChannelState::Opening));
    let (r, a) = host(
        &mut c,
        Message::OpenResult {
            child_relid: RELID,
            openid: RELID,
            status: 0,
        },
    );
    r.unwrap();
    assert_eq!(a, [done(2, Ok(()))]);
    assert_eq!(c.channel_state(RELID), Some(ChannelState::Open));

    // The ring cannot go while the channel is open.
    assert_eq!(
        run(|k| c.teardown_gpadl(0, RequestId(3), RELID, g, &mut |x| k(x))).0,
        Err(Error::Busy)
    );

    let (r, a) = run(|k| c.modify_channel(0, RequestId(4), RELID, 3, &mut |x| k(x)));
    r.unwrap();
    assert_eq!(
        a,
        [send(
            CONN_ID,
            Message::ModifyChannel {
                child_relid: RELID,
                target_vp: 3
            }
        )]
    );
    assert_eq!(
        run(|k| c.close(0, RELID, &mut |x| k(x))).0,
        Err(Error::Busy)
    );
    let (r, a) = host(
        &mut c,
        Message::ModifyChannelResponse {
            child_relid: RELID,
            status: 5,
        },
    );
    r.unwrap();
    assert_eq!(a, [done(4, Err(Error::HostStatus(5)))]);

    let (r, a) = run(|k| c.close(0, RELID, &mut |x| k(x)));
    r.unwrap();
    assert_eq!(
        a,
        [send(CONN_ID, Message::CloseChannel { child_relid: RELID })]
    );
    assert_eq!(c.channel_state(RELID), Some(ChannelState::Offered));

    let (r, a) = run(|k| c.teardown_gpadl(0, RequestId(5), RELID, g, &mut |x| k(x)));
    r.unwrap();
    assert_eq!(
        a,
        [send(
            CONN_ID,
            Message::GpadlTeardown {
                child_relid: RELID,
                gpadl: g
            }
        )]
    );
    let (r, a) = host(&mut c, Message::GpadlTorndown { gpadl: g });
    r.unwrap();
    assert_eq!(a, [done(5, Ok(()))]);
    assert_eq!(c.gpadl_state(g), None);
    assert_eq!(c.pending_requests(), 0);
}

#[test]
fn modify_channel_follows_the_version() {
    for (max, expect) in [
        (Version::WIN10, Err(Error::Unsupported)),
        (Version::WIN10_V5_2, Ok(true)),
        (Version::WIN10_V5_3, Ok(false)),
    ] {
        let mut c = connected(max);
        host(&mut c, offer(RELID, 1, 0)).0.unwrap();
        let g = run(|k| c.create_gpadl(0, RequestId(1), RELID, &mut |x| k(x)))
            .0
            .unwrap();
        host(
            &mut c,
            Message::GpadlCreated {
                child_relid: RELID,
                gpadl: g,
                status: 0,
            },
        )
        .0
        .unwrap();
        run(|k| c.open(0, RequestId(2), &open_req(g), &mut |x| k(x)))
            .0
            .unwrap();
        host(
            &mut c,
            Message::OpenResult {
                child_relid: RELID,
                openid: RELID,
                status: 0,
            },
        )
        .0
        .unwrap();
        let (r, a) = run(|k| c.modify_channel(0, RequestId(3), RELID, 1, &mut |x| k(x)));
        match expect {
            Err(e) => assert_eq!((r, a.len()), (Err(e), 0), "{max}"),
            // Before 5.3 there is no response: complete at once.
            Ok(immediate) => {
                r.unwrap();
                assert_eq!(a.contains(&done(3, Ok(()))), immediate, "{max}");
                assert_eq!(c.pending_requests(), usize::from(!immediate), "{max}");
            }
        }
    }
}

#[test]
fn host_failures_complete_with_their_status() {
    let mut c = with_offer();
    let g = run(|k| c.create_gpadl(0, RequestId(1), RELID, &mut |x| k(x)))
        .0
        .unwrap();
    let (r, a) = host(
        &mut c,
        Message::GpadlCreated {
            child_relid: RELID,
            gpadl: g,
            status: 0xc000_0001,
        },
    );
    r.unwrap();
    assert_eq!(a, [done(1, Err(Error::HostStatus(0xc000_0001)))]);
    assert_eq!(c.gpadl_state(g), None);

    let (mut c, g) = opening();
    let (r, a) = host(
        &mut c,
        Message::OpenResult {
            child_relid: RELID,
            openid: RELID,
            status: 1,
        },
    );
    r.unwrap();
    assert_eq!(a, [done(2, Err(Error::HostStatus(1)))]);
    assert_eq!(c.channel_state(RELID), Some(ChannelState::Offered));
    // The ring is free again after a failed open.
    run(|k| c.teardown_gpadl(0, RequestId(3), RELID, g, &mut |x| k(x)))
        .0
        .unwrap();
}

#[test]
fn mismatched_ids_in_answers_are_refused() {
    let (mut c, g) = opening();
    let before = c.clone();
    let (r, _) = host(
        &mut c,
        Message::OpenResult {
            child_relid: RELID,
            openid: 99,
            status: 0,
        },
    );
    assert_eq!(
        r,
        Err(Error::BadHostField(
            MessageType::OpenChannelResult,
            "openid"
        ))
    );
    assert_eq!(c, before);
    // A GPADL answer for another channel's relid.
    let (mut c, _) = build(S::GpadlCreating);
    let before = c.clone();
    assert!(host(
        &mut c,
        Message::GpadlCreated {
            child_relid: 2,
            gpadl: g,
            status: 0
        }
    )
    .0
    .is_err());
    assert!(host(
        &mut c,
        Message::GpadlCreated {
            child_relid: RELID,
            gpadl: g + 1,
            status: 0
        }
    )
    .0
    .is_err());
    assert_eq!(c, before);
}

#[test]
fn request_validation() {
    let (mut c, g) = with_gpadl();
    let bad_gpadl = OpenRequest {
        ring_gpadl: g + 1,
        ..open_req(g)
    };
    assert_eq!(
        run(|k| c.open(0, RequestId(1), &bad_gpadl, &mut |x| k(x))).0,
        Err(Error::UnknownGpadl)
    );
    let other = OpenRequest {
        relid: 3,
        ..open_req(g)
    };
    assert_eq!(
        run(|k| c.open(0, RequestId(1), &other, &mut |x| k(x))).0,
        Err(Error::UnknownChannel)
    );
    assert_eq!(
        run(|k| c.close(0, RELID, &mut |x| k(x))).0,
        Err(Error::InvalidState)
    );
    assert_eq!(
        run(|k| c.release_relid(0, RELID, &mut |x| k(x))).0,
        Err(Error::InvalidState)
    );
    assert_eq!(
        run(|k| c.teardown_gpadl(0, RequestId(1), 3, g, &mut |x| k(x))).0,
        Err(Error::UnknownChannel)
    );
    // A GPADL still being created cannot carry the rings.
    let g2 = run(|k| c.create_gpadl(0, RequestId(1), RELID, &mut |x| k(x)))
        .0
        .unwrap();
    assert_ne!(g, g2);
    let pending = OpenRequest {
        ring_gpadl: g2,
        ..open_req(g)
    };
    assert_eq!(
        run(|k| c.open(0, RequestId(1), &pending, &mut |x| k(x))).0,
        Err(Error::InvalidState)
    );
    // GPADL table full (capacity 4).
    run(|k| c.create_gpadl(0, RequestId(1), RELID, &mut |x| k(x)))
        .0
        .unwrap();
    run(|k| c.create_gpadl(0, RequestId(1), RELID, &mut |x| k(x)))
        .0
        .unwrap();
    let (r, a) = run(|k| c.create_gpadl(0, RequestId(1), RELID, &mut |x| k(x)));
    assert_eq!((r, a.len()), (Err(Error::TableFull), 0));
}

// ----- timeouts ---------------------------------------------------------------

#[test]
fn every_pending_request_times_out() {
    // Opening: the channel is marked failed and keeps its ring.
    let (mut c, g) = opening();
    let (_, a) = run(|k| c.advance(TIMEOUT, &mut |x| k(x)));
    assert_eq!(a, [done(2, Err(Error::Timeout))]);
    assert_eq!(c.channel_state(RELID), Some(ChannelState::Failed));
    assert_eq!(
        run(|k| c.teardown_gpadl(0, RequestId(1), RELID, g, &mut |x| k(x))).0,
        Err(Error::Busy)
    );

    // GPADL creation and teardown: marked failed, never reused.
    let (mut c, g) = build(S::GpadlCreating);
    let (_, a) = run(|k| c.advance(TIMEOUT, &mut |x| k(x)));
    assert_eq!(a, [done(1, Err(Error::Timeout))]);
    assert_eq!(c.gpadl_state(g), Some(GpadlState::Failed));
    let (mut c, g) = build(S::TearingDown);
    run(|k| c.advance(TIMEOUT, &mut |x| k(x)));
    assert_eq!(c.gpadl_state(g), Some(GpadlState::Failed));

    // Modify: the channel stays open.
    let (mut c, _) = build(S::Modifying);
    let (_, a) = run(|k| c.advance(TIMEOUT, &mut |x| k(x)));
    assert_eq!(a, [done(3, Err(Error::Timeout))]);
    assert_eq!(c.channel_state(RELID), Some(ChannelState::Open));

    // Unload: the connection is dropped anyway.
    let (mut c, _) = build(S::Unloading);
    let (_, a) = run(|k| c.advance(TIMEOUT, &mut |x| k(x)));
    assert_eq!(a, [done(9, Err(Error::Timeout))]);
    assert_eq!(c.state(), ConnectionState::Disconnected);
}

#[test]
fn time_never_goes_backwards() {
    let (mut c, _) = build(S::GpadlCreating);
    run(|k| c.advance(TIMEOUT - 1, &mut |x| k(x)));
    run(|k| c.advance(0, &mut |x| k(x)));
    assert_eq!(c.now(), TIMEOUT - 1);
    // A request made "earlier" is timed from the latest time seen.
    run(|k| c.create_gpadl(5, RequestId(8), RELID, &mut |x| k(x)))
        .0
        .unwrap();
    let (_, a) = run(|k| c.advance(TIMEOUT, &mut |x| k(x)));
    assert_eq!(a, [done(1, Err(Error::Timeout))]);
    let (_, a) = run(|k| c.advance(2 * TIMEOUT - 1, &mut |x| k(x)));
    assert_eq!(a, [done(8, Err(Error::Timeout))]);
    // Deadlines saturate instead of overflowing.
    run(|k| c.advance(u64::MAX, &mut |x| k(x)));
    run(|k| c.create_gpadl(u64::MAX, RequestId(9), RELID, &mut |x| k(x)))
        .0
        .unwrap();
    let (_, a) = run(|k| c.advance(u64::MAX, &mut |x| k(x)));
    assert_eq!(a, [done(9, Err(Error::Timeout))]);
}

// ----- rescind and release --------------------------------------------------

#[test]
fn rescind_fails_pending_work_and_release_frees_the_relid() {
    let (mut c, ring) = opening();
    let creating = run(|k| c.create_gpadl(0, RequestId(5), RELID, &mut |x| k(x)))
        .0
        .unwrap();
    let (r, a) = host(&mut c, Message::Rescind { child_relid: RELID });
    r.unwrap();
    assert_eq!(
        a,
        [
            done(2, Err(Error::Rescinded)),
            done(5, Err(Error::Rescinded)),
            Action::Rescind { child_relid: RELID }
        ]
    );
    assert_eq!(c.gpadl_state(creating), None);
    assert_eq!(c.channel_state(RELID), Some(ChannelState::Rescinded));
    // The created ring GPADL must be torn down first; the host no longer
    // answers, so that completes at once without a message.
    assert_eq!(
        run(|k| c.release_relid(0, RELID, &mut |x| k(x))).0,
        Err(Error::Busy)
    );
    let (r, a) = run(|k| c.teardown_gpadl(0, RequestId(6), RELID, ring, &mut |x| k(x)));
    r.unwrap();
    assert_eq!(a, [done(6, Ok(()))]);
    let (r, a) = run(|k| c.release_relid(0, RELID, &mut |x| k(x)));
    r.unwrap();
    assert_eq!(
        a,
        [send(CONN_ID, Message::RelidReleased { child_relid: RELID })]
    );
    assert_eq!(c.channel_state(RELID), None);
    // The host may now offer the relid again.
    host(&mut c, offer(RELID, 1, 0)).0.unwrap();
}

/// Found by the simulator's chaos mode (seed 17075141188036648917 on
/// echo0): an open that timed out leaves its ring GPADL created and its
/// memory given up by the driver, which never tears it down; a rescind
/// must free it, or the relid is never released and the host can never
/// offer the device again.
#[test]
fn rescind_after_a_timed_out_open_frees_the_ring_and_the_relid() {
    let (mut c, ring) = opening();
    let (_, a) = run(|k| c.advance(TIMEOUT, &mut |x| k(x)));
    assert_eq!(a, [done(2, Err(Error::Timeout))]);
    assert_eq!(c.channel_state(RELID), Some(ChannelState::Failed));
    assert_eq!(c.gpadl_state(ring), Some(GpadlState::Created));
    let (r, a) = host(&mut c, Message::Rescind { child_relid: RELID });
    r.unwrap();
    assert_eq!(a, [Action::Rescind { child_relid: RELID }]);
    assert_eq!(c.gpadl_state(ring), None);
    let (r, a) = run(|k| c.release_relid(TIMEOUT, RELID, &mut |x| k(x)));
    r.unwrap();
    assert_eq!(
        a,
        [send(CONN_ID, Message::RelidReleased { child_relid: RELID })]
    );
    host(&mut c, offer(RELID, 1, 0)).0.unwrap();
}

#[test]
fn rescind_completes_a_pending_teardown() {
    let (mut c, g) = build(S::TearingDown);
    let (r, a) = host(&mut c, Message::Rescind { child_relid: RELID });
    r.unwrap();
    assert_eq!(a, [done(3, Ok(())), Action::Rescind { child_relid: RELID }]);
    assert_eq!(c.gpadl_state(g), None);
}

// ----- unload -----------------------------------------------------------------

#[test]
fn unload_within_waits_past_the_request_timeout_then_gives_up() {
    let mut c = connected(Version::WIN10_V5_3);
    let long = 1000 * TIMEOUT;
    let (r, a) = run(|k| c.unload_within(0, RequestId(9), long, &mut |x| k(x)));
    r.unwrap();
    assert_eq!(a, [send(CONN_ID, Message::Unload)]);
    // Long past any other request's deadline, the unload still waits ...
    assert!(run(|k| c.advance(long - 1, &mut |x| k(x))).1.is_empty());
    assert_eq!(c.state(), ConnectionState::Unloading);
    // ... and a late answer is taken.
    let (r, a) = host(&mut c, Message::UnloadResponse);
    r.unwrap();
    assert_eq!(a, [done(9, Ok(()))]);

    // Bounded all the same.
    let mut c = connected(Version::WIN10_V5_3);
    run(|k| c.unload_within(0, RequestId(9), long, &mut |x| k(x)))
        .0
        .unwrap();
    let (_, a) = run(|k| c.advance(long, &mut |x| k(x)));
    assert_eq!(a, [done(9, Err(Error::Timeout))]);
}

#[test]
fn unload_fails_pending_work_then_allows_reconnect() {
    let (mut c, _) = opening();
    run(|k| c.create_gpadl(0, RequestId(5), RELID, &mut |x| k(x)))
        .0
        .unwrap();
    let (r, a) = run(|k| c.unload(0, RequestId(9), &mut |x| k(x)));
    r.unwrap();
    assert_eq!(a, [send(CONN_ID, Message::Unload)]);
    // Only the unload response is expected now.
    assert!(host(
        &mut c,
        Message::OpenResult {
            child_relid: RELID,
            openid: RELID,
            status: 0
        }
    )
    .0
    .is_err());
    let (r, a) = host(&mut c, Message::UnloadResponse);
    r.unwrap();
    assert_eq!(
        a,
        [
            done(2, Err(Error::Unloaded)),
            done(5, Err(Error::Unloaded)),
            done(9, Ok(()))
        ]
    );
    assert_eq!(c.state(), ConnectionState::Disconnected);
    assert_eq!(c.channel_state(RELID), None);
    assert_eq!(c.version(), None);
    assert_eq!(c.pending_requests(), 0);
    run(|k| c.connect(0, RequestId(10), &mut |x| k(x)))
        .0
        .unwrap();
    assert_eq!(c.state(), ConnectionState::Connecting);
}

#[test]
fn table_sizes_stay_small_enough_for_the_kernel() {
    // The machine is embedded in heap memory in the module; keep each table
    // entry small so 256 channels and 256 GPADLs stay well under 32 KiB.
    let per_channel = std::mem::size_of::<FixedControl<1, 0>>() - std::mem::size_of::<FixedControl<0, 0>>();
    let per_gpadl = std::mem::size_of::<FixedControl<0, 1>>() - std::mem::size_of::<FixedControl<0, 0>>();
    eprintln!("{per_channel} bytes per channel, {per_gpadl} per GPADL");
    assert!(per_channel <= 64, "{per_channel} bytes per channel");
    assert!(per_gpadl <= 40, "{per_gpadl} bytes per GPADL");
    const _: FixedControl<2, 2> = FixedControl::new(Config {
        max_version: Version::WIN10_V5_3,
        target_vcpu: 0,
        interrupt_page: 0,
        monitor_pages: [0, 0],
        vtl: 0,
        timeout: 1,
        channel_timeout: 1,
    });
}

#[test]
fn configure_applies_before_connecting_only() {
    // The kernel copies a constant `Control::new` into its allocation and
    // configures it there; the configuration must be the one used.
    let mut c = C::new(config(Version::WIN8));
    c.configure(config(Version::WIN10_V5_3)).unwrap();
    let (r, actions) = run(|s| c.connect(0, RequestId(1000), &mut |a| s(a)));
    r.unwrap();
    let proposed = actions.iter().find_map(|a| match a {
        Action::Send { message: Message::InitiateContact(ic), .. } => Some(ic.version),
        _ => None,
    });
    assert_eq!(proposed, Some(Version::WIN10_V5_3.raw()));
    assert_eq!(c.configure(config(Version::WIN8)), Err(Error::InvalidState));
    let mut c = connected(Version::WIN10_V5_3);
    assert_eq!(c.configure(config(Version::WIN8)), Err(Error::InvalidState));
}

// ----- failed posts ------------------------------------------------------

/// The message an action asks to post.
fn message_of(a: &Action) -> Message {
    match a {
        Action::Send { message, .. } => *message,
        other => panic!("expected Send, got {other:?}"),
    }
}

/// Fails the post of `m` with `kind`.
fn post_failed(c: &mut C, m: &Message, kind: PostError) -> (Result<(), Error>, Vec<Action>) {
    run(|s| c.post_failed(0, m, kind, &mut |a| s(a)))
}

#[test]
fn initiate_contact_on_a_missing_port_falls_back_at_once() {
    // A 4.0 host: no port at connection id 4, so every 5.x INITIATE_CONTACT
    // fails the hypercall; 4.1 is then proposed on id 1 and rejected.
    let mut c = C::new(config(Version::WIN10_V5_3));
    let (r, a) = run(|k| c.connect(0, RequestId(7), &mut |x| k(x)));
    r.unwrap();
    let mut next = a;
    let mut seen = Vec::new();
    while proposed(&next[0]).1 >= Version::WIN10_V5 {
        seen.push(proposed(&next[0]).1);
        let (r, a) = post_failed(&mut c, &message_of(&next[0]), PostError::NoConnection);
        r.unwrap();
        assert_eq!(a.len(), 1, "one new proposal, no completion");
        next = a;
    }
    assert_eq!(seen.len(), 4, "5.3, 5.2, 5.1 and 5.0 went nowhere");
    assert_eq!(proposed(&next[0]).0, 1);
    let (_, a) = host(&mut c, REJECT);
    assert_eq!(proposed(&a[0]).1, Version::WIN10);
    let (r, a) = host(&mut c, accept(0));
    r.unwrap();
    assert_eq!(a[0], done(7, Ok(())));
    assert_eq!(c.version(), Some(Version::WIN10));
    assert_eq!(c.message_connection_id(), 1);
}

#[test]
fn a_missing_port_for_the_last_version_ends_the_connect() {
    let mut c = C::new(config(Version::WIN10_V5));
    let (r, a) = run(|k| c.connect(0, RequestId(7), &mut |x| k(x)));
    r.unwrap();
    let mut next = a;
    for _ in 1..version::SUPPORTED.len() - 3 {
        let (r, a) = post_failed(&mut c, &message_of(&next[0]), PostError::NoConnection);
        r.unwrap();
        next = a;
    }
    let (r, a) = post_failed(&mut c, &message_of(&next[0]), PostError::NoConnection);
    r.unwrap();
    assert_eq!(a, [done(7, Err(Error::NoCommonVersion))]);
    assert_eq!(c.state(), ConnectionState::Disconnected);
}

#[test]
fn other_failed_initiate_contact_posts_fail_the_connect_now() {
    for kind in [PostError::Busy, PostError::Other] {
        let mut c = C::new(config(Version::WIN10_V5_3));
        let (_, a) = run(|k| c.connect(0, RequestId(7), &mut |x| k(x)));
        let (r, a) = post_failed(&mut c, &message_of(&a[0]), kind);
        r.unwrap();
        assert_eq!(a, [done(7, Err(Error::PostFailed(kind)))]);
        assert_eq!(c.state(), ConnectionState::Disconnected);
        // It can connect again.
        run(|k| c.connect(0, RequestId(8), &mut |x| k(x))).0.unwrap();
    }
}

#[test]
fn a_stale_initiate_contact_failure_changes_nothing() {
    let mut c = C::new(config(Version::WIN10_V5_3));
    let (_, first) = run(|k| c.connect(0, RequestId(7), &mut |x| k(x)));
    let (_, second) = host(&mut c, REJECT);
    let before = c.clone();
    // The failure names 5.3; 5.2 is pending.
    let (r, a) = post_failed(&mut c, &message_of(&first[0]), PostError::NoConnection);
    assert_eq!((r, a), (Err(Error::InvalidState), vec![]));
    assert_eq!(c, before);
    assert_eq!(proposed(&second[0]).1, Version::WIN10_V5_2);
}

#[test]
fn a_failed_gpadl_header_fails_the_request_and_forgets_the_handle() {
    let mut c = with_offer();
    let (g, a) = run(|s| c.create_gpadl(0, RequestId(1), RELID, &mut |a| s(a)));
    let g = g.unwrap();
    assert!(matches!(a[0], Action::SendGpadl { .. }));
    let header = Message::GpadlHeader(GpadlHeader {
        child_relid: RELID,
        gpadl: g,
        total_pfns: 1,
        byte_count: 4096,
        byte_offset: 0,
        pfns: Pfns::new(&[1]).unwrap(),
    });
    let (r, a) = post_failed(&mut c, &header, PostError::Busy);
    r.unwrap();
    assert_eq!(a, [done(1, Err(Error::PostFailed(PostError::Busy)))]);
    assert_eq!(c.gpadl_state(g), None);
    assert_eq!(c.pending_requests(), 0);
    // A second report of it finds nothing.
    assert_eq!(post_failed(&mut c, &header, PostError::Busy).0, Err(Error::InvalidState));
}

#[test]
fn a_failed_gpadl_body_leaves_the_gpadl_failed() {
    let mut c = with_offer();
    let (g, _) = run(|s| c.create_gpadl(0, RequestId(1), RELID, &mut |a| s(a)));
    let g = g.unwrap();
    let body = Message::GpadlBody(GpadlBody {
        msgnumber: 0,
        gpadl: g,
        pfns: Pfns::new(&[1]).unwrap(),
    });
    let (r, a) = post_failed(&mut c, &body, PostError::Other);
    r.unwrap();
    assert_eq!(a, [done(1, Err(Error::PostFailed(PostError::Other)))]);
    assert_eq!(c.gpadl_state(g), Some(GpadlState::Failed));
    // A late GPADL_CREATED is not taken.
    let created = Message::GpadlCreated {
        child_relid: RELID,
        gpadl: g,
        status: 0,
    };
    assert!(host(&mut c, created).0.is_err());
}

#[test]
fn a_failed_open_returns_the_channel_to_offered() {
    let (mut c, g) = with_gpadl();
    let (r, a) = run(|s| c.open(0, RequestId(2), &open_req(g), &mut |a| s(a)));
    r.unwrap();
    let (r, a) = post_failed(&mut c, &message_of(&a[0]), PostError::Busy);
    r.unwrap();
    assert_eq!(a, [done(2, Err(Error::PostFailed(PostError::Busy)))]);
    assert_eq!(c.channel_state(RELID), Some(ChannelState::Offered));
    // The ring's GPADL can go, and the channel can be opened again.
    run(|s| c.open(0, RequestId(3), &open_req(g), &mut |a| s(a))).0.unwrap();
}

#[test]
fn a_failed_teardown_leaves_the_gpadl_created() {
    let (mut c, g) = with_gpadl();
    let (r, a) = run(|s| c.teardown_gpadl(0, RequestId(4), RELID, g, &mut |a| s(a)));
    r.unwrap();
    let (r, a) = post_failed(&mut c, &message_of(&a[0]), PostError::Busy);
    r.unwrap();
    assert_eq!(a, [done(4, Err(Error::PostFailed(PostError::Busy)))]);
    assert_eq!(c.gpadl_state(g), Some(GpadlState::Created));
}

#[test]
fn a_failed_modify_or_unload_fails_its_request() {
    let (mut c, _) = open();
    let (r, a) = run(|s| c.modify_channel(0, RequestId(5), RELID, 1, &mut |a| s(a)));
    r.unwrap();
    let (r, a) = post_failed(&mut c, &message_of(&a[0]), PostError::Other);
    r.unwrap();
    assert_eq!(a, [done(5, Err(Error::PostFailed(PostError::Other)))]);
    assert_eq!(c.channel_state(RELID), Some(ChannelState::Open));
    assert_eq!(c.pending_requests(), 0);
    let (r, a) = run(|s| c.unload(0, RequestId(6), &mut |a| s(a)));
    r.unwrap();
    let (r, a) = post_failed(&mut c, &message_of(&a[0]), PostError::Busy);
    r.unwrap();
    assert_eq!(a, [done(6, Err(Error::PostFailed(PostError::Busy)))]);
    assert_eq!(c.state(), ConnectionState::Connected);
}

#[test]
fn failed_posts_without_a_request_change_nothing() {
    let (mut c, _) = open();
    let before = c.clone();
    for m in [
        Message::CloseChannel { child_relid: RELID },
        Message::RequestOffers,
        Message::RelidReleased { child_relid: RELID },
        Message::Unload,
        Message::ModifyChannel {
            child_relid: RELID,
            target_vp: 1,
        },
    ] {
        for kind in [PostError::NoConnection, PostError::Busy, PostError::Other] {
            assert_eq!(post_failed(&mut c, &m, kind), (Err(Error::InvalidState), vec![]), "{m:?}");
        }
    }
    assert_eq!(c, before);
}

// ----- late answers -------------------------------------------------------------

#[test]
fn a_late_open_result_closes_the_channel_and_frees_its_ring() {
    for status in [0, 0xc000_0001] {
        let (mut c, g) = opening();
        run(|k| c.advance(TIMEOUT, &mut |x| k(x)));
        assert_eq!(c.channel_state(RELID), Some(ChannelState::Failed));
        // The wrong open id is still refused, and changes nothing.
        let wrong = Message::OpenResult {
            child_relid: RELID,
            openid: RELID + 1,
            status,
        };
        assert!(host(&mut c, wrong).0.is_err());
        assert_eq!(c.channel_state(RELID), Some(ChannelState::Failed));
        let late = Message::OpenResult {
            child_relid: RELID,
            openid: RELID,
            status,
        };
        let (r, a) = host(&mut c, late);
        r.unwrap();
        // No completion (the request failed already); an open channel is
        // closed again.
        if status == 0 {
            assert_eq!(a, [send(CONN_ID, Message::CloseChannel { child_relid: RELID })]);
        } else {
            assert_eq!(a, []);
        }
        assert_eq!(c.channel_state(RELID), Some(ChannelState::Offered));
        // The ring may go now, and the channel may be opened again.
        let (r, a) = run(|k| c.teardown_gpadl(0, RequestId(5), RELID, g, &mut |x| k(x)));
        r.unwrap();
        assert_eq!(
            a,
            [send(CONN_ID, Message::GpadlTeardown { child_relid: RELID, gpadl: g })]
        );
        // A second late answer is unexpected.
        assert!(host(&mut c, late).0.is_err());
    }
}

#[test]
fn a_late_gpadl_created_makes_it_created_or_frees_it() {
    let (mut c, g) = build(S::GpadlCreating);
    run(|k| c.advance(TIMEOUT, &mut |x| k(x)));
    assert_eq!(c.gpadl_state(g), Some(GpadlState::Failed));
    let created = Message::GpadlCreated { child_relid: RELID, gpadl: g, status: 0 };
    let (r, a) = host(&mut c, created);
    r.unwrap();
    assert_eq!(a, []);
    // Mapped after all: the caller tears it down.
    assert_eq!(c.gpadl_state(g), Some(GpadlState::Created));
    let (r, _) = run(|k| c.teardown_gpadl(0, RequestId(5), RELID, g, &mut |x| k(x)));
    r.unwrap();
    assert_eq!(c.gpadl_state(g), Some(GpadlState::TearingDown));

    // Refused late: the host holds nothing, the handle is gone.
    let (mut c, g) = build(S::GpadlCreating);
    run(|k| c.advance(TIMEOUT, &mut |x| k(x)));
    let refused = Message::GpadlCreated { child_relid: RELID, gpadl: g, status: 1 };
    let (r, a) = host(&mut c, refused);
    r.unwrap();
    assert_eq!(a, []);
    assert_eq!(c.gpadl_state(g), None);
    // Not twice.
    assert!(host(&mut c, created).0.is_err());

    // A GPADL_CREATED for a GPADL whose teardown timed out is wrong.
    let (mut c, g) = build(S::TearingDown);
    run(|k| c.advance(TIMEOUT, &mut |x| k(x)));
    let created = Message::GpadlCreated { child_relid: RELID, gpadl: g, status: 0 };
    assert!(host(&mut c, created).0.is_err());
    assert_eq!(c.gpadl_state(g), Some(GpadlState::Failed));
}

#[test]
fn a_late_gpadl_torndown_frees_it() {
    let (mut c, g) = build(S::TearingDown);
    run(|k| c.advance(TIMEOUT, &mut |x| k(x)));
    assert_eq!(c.gpadl_state(g), Some(GpadlState::Failed));
    let (r, a) = host(&mut c, Message::GpadlTorndown { gpadl: g });
    r.unwrap();
    assert_eq!(a, []);
    assert_eq!(c.gpadl_state(g), None);
    assert!(host(&mut c, Message::GpadlTorndown { gpadl: g }).0.is_err());

    // Not for one whose creation timed out.
    let (mut c, g) = build(S::GpadlCreating);
    run(|k| c.advance(TIMEOUT, &mut |x| k(x)));
    assert!(host(&mut c, Message::GpadlTorndown { gpadl: g }).0.is_err());
    assert_eq!(c.gpadl_state(g), Some(GpadlState::Failed));
}

#[test]
fn channel_requests_get_the_channel_timeout() {
    // A host slow to map memory gets longer than for a version answer.
    let mut long = config(Version::WIN10_V5_3);
    long.channel_timeout = 10 * TIMEOUT;
    let mut c = C::new(long);
    run(|k| c.connect(0, RequestId(1), &mut |a| k(a))).0.unwrap();
    let (_, a) = run(|k| c.advance(TIMEOUT, &mut |x| k(x)));
    assert_eq!(a, [done(1, Err(Error::Timeout))]);

    let mut c2 = C::new(long);
    run(|k| c2.connect(0, RequestId(1), &mut |a| k(a))).0.unwrap();
    host(&mut c2, accept(CONN_ID)).0.unwrap();
    host(&mut c2, offer(RELID, 1, 0)).0.unwrap();
    let g = run(|k| c2.create_gpadl(0, RequestId(2), RELID, &mut |x| k(x))).0.unwrap();
    let (_, a) = run(|k| c2.advance(TIMEOUT, &mut |x| k(x)));
    assert_eq!(a, []);
    assert_eq!(c2.gpadl_state(g), Some(GpadlState::Creating));
    let (_, a) = run(|k| c2.advance(10 * TIMEOUT, &mut |x| k(x)));
    assert_eq!(a, [done(2, Err(Error::Timeout))]);
}

// ----- tables that grow --------------------------------------------------

/// A table that grows one slot at a time up to `limit` slots, as the
/// kernel's grows (fallibly) by allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Growing<T> {
    slots: Vec<Option<T>>,
    limit: usize,
    grown: usize,
}

impl<T> Growing<T> {
    fn new(limit: usize) -> Self {
        Growing { slots: Vec::new(), limit, grown: 0 }
    }
}

impl<T> Slots<T> for Growing<T> {
    fn slots(&self) -> &[Option<T>] {
        &self.slots
    }
    fn slots_mut(&mut self) -> &mut [Option<T>] {
        &mut self.slots
    }
    fn grow(&mut self) -> bool {
        assert!(self.slots.iter().all(Option::is_some), "grown while a slot was free");
        if self.slots.len() >= self.limit {
            return false;
        }
        self.grown += 1;
        self.slots.push(None);
        true
    }
}

type G = Control<Growing<ChannelEntry>, Growing<GpadlEntry>>;

fn connected_growing(channels: usize, gpadls: usize) -> G {
    let mut c = G::with_tables(
        config(Version::WIN10_V5_3),
        Growing::new(channels),
        Growing::new(gpadls),
    );
    run(|s| c.connect(0, RequestId(1000), &mut |a| s(a))).0.unwrap();
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    let n = accept(CONN_ID).write(&mut buf);
    run(|s| c.handle_message(&buf[..n], &mut |a| s(a))).0.unwrap();
    c
}

fn host_g(c: &mut G, m: Message) -> (Result<(), Error>, Vec<Action>) {
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    let n = m.write(&mut buf);
    run(|s| c.handle_message(&buf[..n], &mut |a| s(a)))
}

#[test]
fn channels_up_to_every_relid_fit_in_a_growing_table() {
    // Every relid Linux allows (0 is never offered), then the table is at
    // its limit: the next offer is given back.
    let mut c = connected_growing(MAX_CHANNEL_RELIDS as usize - 1, 4);
    for relid in 1..MAX_CHANNEL_RELIDS {
        let (r, a) = host_g(&mut c, offer(relid, (relid % 251) as u8, (relid / 251) as u16));
        assert_eq!(r, Ok(()));
        assert!(matches!(a[..], [Action::Offer(o)] if o.child_relid == relid), "{a:?}");
    }
    assert_eq!(c.channel_count(), MAX_CHANNEL_RELIDS as usize - 1);
    assert_eq!(c.signal_connection_id(2047), Some(0x2000 + 2047));
    // The table started empty and grew, one slot each time it was full
    // (`Growing::grow` checks that), to one per relid.
    let (r, a) = host_g(&mut c, offer(1000, 252, 0));
    assert_eq!((r, a), (Err(Error::DuplicateOffer), vec![]));
    // At its limit, a table refuses the next offer and releases it.
    let mut d = connected_growing(2, 4);
    host_g(&mut d, offer(1, 1, 0)).0.unwrap();
    host_g(&mut d, offer(2, 2, 0)).0.unwrap();
    let (r, a) = host_g(&mut d, offer(3, 3, 0));
    assert_eq!(r, Ok(()));
    assert_eq!(
        a,
        vec![
            send(CONN_ID, Message::RelidReleased { child_relid: 3 }),
            Action::Refused { child_relid: 3, reason: Error::TableFull }
        ]
    );
}

#[test]
fn an_offer_beyond_the_relid_limit_is_malformed() {
    let mut c = connected_growing(4, 4);
    for relid in [0, MAX_CHANNEL_RELIDS, MAX_CHANNEL_RELIDS + 1, 0x8000_0000] {
        let (r, a) = host_g(&mut c, offer(relid, 1, 0));
        assert!(matches!(r, Err(Error::Parse(_))), "{r:?}");
        assert_eq!(a, vec![]);
        assert_eq!(c.channel_state(relid), None);
    }
    let (r, a) = host_g(&mut c, offer(MAX_CHANNEL_RELIDS - 1, 1, 0));
    assert_eq!(r, Ok(()));
    assert!(matches!(a[..], [Action::Offer(_)]));
}

#[test]
fn gpadls_grow_without_a_fixed_cap_and_handles_stay_unique() {
    let mut c = connected_growing(4, 10_000);
    host_g(&mut c, offer(RELID, 1, 0)).0.unwrap();
    let mut handles = std::collections::HashSet::new();
    for i in 0..1000u64 {
        let (r, a) = run(|k| c.create_gpadl(0, RequestId(i), RELID, &mut |x| k(x)));
        let g = r.unwrap();
        assert!(matches!(a[..], [Action::SendGpadl { gpadl, .. }] if gpadl == g));
        assert!(handles.insert(g), "handle {g:#x} given twice");
    }
    assert_eq!(c.pending_requests(), 1000);
    // Answered, torn down, and the slots are reused: no growth past 1000.
    for &g in &handles {
        let (r, _) = host_g(&mut c, Message::GpadlCreated { child_relid: RELID, gpadl: g, status: 0 });
        r.unwrap();
    }
    for &g in &handles {
        run(|k| c.teardown_gpadl(0, RequestId(1), RELID, g, &mut |x| k(x))).0.unwrap();
        host_g(&mut c, Message::GpadlTorndown { gpadl: g }).0.unwrap();
        assert_eq!(c.gpadl_state(g), None);
    }
    let mut d = connected_growing(4, 2);
    host_g(&mut d, offer(RELID, 1, 0)).0.unwrap();
    for i in 0..2 {
        run(|k| d.create_gpadl(0, RequestId(i), RELID, &mut |x| k(x))).0.unwrap();
    }
    let (r, a) = run(|k| d.create_gpadl(0, RequestId(3), RELID, &mut |x| k(x)));
    assert_eq!((r, a.len()), (Err(Error::TableFull), 0));
}

#[test]
fn an_unused_offer_can_be_given_back() {
    let mut c = connected(Version::WIN10_V5_3);
    host(&mut c, offer(RELID, 1, 0)).0.unwrap();
    host(&mut c, offer(2, 1, 1)).0.unwrap();
    assert_eq!(c.signal_connection_id(2), Some(0x2002));
    let (r, a) = run(|k| c.release_offer(0, 2, &mut |x| k(x)));
    assert_eq!((r, a), (Ok(()), vec![send(CONN_ID, Message::RelidReleased { child_relid: 2 })]));
    assert_eq!(c.channel_state(2), None);
    assert_eq!(c.signal_connection_id(2), None);
    // Unknown now; a channel with a GPADL is refused, and so is one in use.
    assert_eq!(run(|k| c.release_offer(0, 2, &mut |x| k(x))).0, Err(Error::UnknownChannel));
    run(|k| c.create_gpadl(0, RequestId(1), RELID, &mut |x| k(x))).0.unwrap();
    let (r, a) = run(|k| c.release_offer(0, RELID, &mut |x| k(x)));
    assert_eq!((r, a.len()), (Err(Error::Busy), 0));
    // The host may offer the relid again.
    host(&mut c, offer(2, 1, 1)).0.unwrap();
}
