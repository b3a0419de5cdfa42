//! The simulated host's NVSP/RNDIS faults, each checked against the checks
//! a guest makes (the netvsc driver's, restated here): every fault breaks
//! exactly the check it is meant to, the packet it leaves unchanged passes
//! them all, and a faulted packet keeps its transaction id.

use netvsc_core::netfault::{self, Fault, Target, TransferPages, BAD_TRANSACTION_ID, OVERSIZE_LEN};
use netvsc_core::nvsp::{self, Message, Sender, Version};
use netvsc_core::rndis::{self, Message as Rndis};
use netvsc_core::sections;
use netvsc_core::wire::Error;

const BUFFER: u32 = 16 * 1024 * 1024;
/// The largest RNDIS message the guest takes from the receive buffer.
const MAX_RECEIVE: u32 = 65536 + 512;
/// The receive-buffer section size the host announced.
const SECTION: u32 = 1728;

/// What the guest refuses a received packet for.
#[derive(Debug, PartialEq, Eq)]
enum Rejected {
    NotRndisPacket,
    WrongSet,
    TooLong,
    LongerThanSection,
    OutsideBuffer,
    Rndis(Error),
    Runt,
}

/// The guest's checks of one transfer-page packet with one range, in its
/// order; `buffer` is the receive buffer's contents.
fn guest_checks(p: &TransferPages, header: &[u8], buffer: &[u8]) -> Result<usize, Rejected> {
    let version = Some(Version::V61);
    if !matches!(Message::parse(header, Sender::Host, version), Ok(Message::SendRndisPacket(_))) {
        return Err(Rejected::NotRndisPacket);
    }
    if p.set_id != nvsp::RECEIVE_BUFFER_ID {
        return Err(Rejected::WrongSet);
    }
    if p.len > MAX_RECEIVE {
        return Err(Rejected::TooLong);
    }
    if p.len > SECTION {
        return Err(Rejected::LongerThanSection);
    }
    let end = u64::from(p.offset) + u64::from(p.len);
    if end > buffer.len() as u64 {
        return Err(Rejected::OutsideBuffer);
    }
    let message = &buffer[p.offset as usize..end as usize];
    match Rndis::parse(message) {
        Ok(Rndis::Packet(pk)) if pk.data.len() < 14 => Err(Rejected::Runt),
        Ok(Rndis::Packet(pk)) => Ok(pk.data.len()),
        Ok(other) => panic!("not a packet: {other:?}"),
        Err(e) => Err(Rejected::Rndis(e)),
    }
}

/// A 60-byte frame as an RNDIS data packet.
fn frame_message() -> Vec<u8> {
    let frame: Vec<u8> = (0..60u8).collect();
    let mut buf = vec![0u8; 256];
    let n = rndis::write_packet(&mut buf, &[], &frame).unwrap();
    buf.truncate(n);
    buf
}

fn rndis_header() -> Vec<u8> {
    Message::SendRndisPacket(nvsp::RndisPacket {
        channel: nvsp::RndisChannel::Data,
        section_index: nvsp::NO_SECTION,
        section_size: 0,
    })
    .encode()
    .unwrap()
    .bytes()
    .to_vec()
}

/// Applies `fault` as the simulated NIC does and runs the guest's checks on
/// what arrives.
fn deliver(fault: Option<Fault>) -> Result<usize, Rejected> {
    let mut message = frame_message();
    let offset = 1728 * 3;
    let mut packet = TransferPages {
        set_id: nvsp::RECEIVE_BUFFER_ID,
        offset,
        len: message.len() as u32,
        nvsp_rndis: true,
    };
    if let Some(f) = fault {
        assert_eq!(f.target(), Target::Frame);
        assert!(netfault::is_frame(&message));
        packet = f.frame(&mut message, packet, BUFFER, SECTION);
    }
    let mut buffer = vec![0u8; BUFFER as usize];
    buffer[offset as usize..offset as usize + message.len()].copy_from_slice(&message);
    let header = if packet.nvsp_rndis { rndis_header() } else { netfault::GARBAGE_NVSP.to_vec() };
    guest_checks(&packet, &header, &buffer)
}

#[test]
fn an_unfaulted_frame_passes_every_check() {
    assert_eq!(deliver(None), Ok(60));
}

#[test]
fn each_frame_fault_breaks_its_check() {
    assert_eq!(deliver(Some(Fault::BadRange)), Err(Rejected::OutsideBuffer));
    assert_eq!(deliver(Some(Fault::WrapRange)), Err(Rejected::OutsideBuffer));
    assert_eq!(deliver(Some(Fault::Oversize)), Err(Rejected::TooLong));
    assert!(matches!(deliver(Some(Fault::OversizeRndis)), Err(Rejected::Rndis(Error::TooShort { .. }))));
    assert_eq!(deliver(Some(Fault::OversizeData)), Err(Rejected::Rndis(Error::BadField("data_len"))));
    assert_eq!(deliver(Some(Fault::BadSet)), Err(Rejected::WrongSet));
    assert_eq!(deliver(Some(Fault::BadNvsp)), Err(Rejected::NotRndisPacket));
    assert_eq!(deliver(Some(Fault::MalformedRndis)), Err(Rejected::Rndis(Error::UnknownType(netfault::GARBAGE_RNDIS_TYPE))));
    assert_eq!(deliver(Some(Fault::Runt)), Err(Rejected::Runt));
    assert_eq!(deliver(Some(Fault::LongRange)), Err(Rejected::LongerThanSection));
    // Fragments are the sender's doing: the packet itself is unchanged.
    assert_eq!(deliver(Some(Fault::RscSplit)), Ok(60));
}

#[test]
fn a_long_range_is_one_section_and_a_bit_inside_the_buffer() {
    let mut m = frame_message();
    for offset in [0, 1728 * 5, BUFFER - 1728] {
        let p = TransferPages { set_id: 1, offset, len: 100, nvsp_rndis: true };
        let long = Fault::LongRange.frame(&mut m, p, BUFFER, SECTION);
        assert!(long.len > SECTION && long.len < MAX_RECEIVE);
        assert!(u64::from(long.offset) + u64::from(long.len) <= u64::from(BUFFER));
    }
}

#[test]
fn range_faults_stay_outside_or_inside_as_meant() {
    let p = TransferPages { set_id: 1, offset: BUFFER - 1728, len: 1000, nvsp_rndis: true };
    let mut m = frame_message();
    // Past the end, but starting inside.
    let bad = Fault::BadRange.frame(&mut m, p, BUFFER, SECTION);
    assert!(bad.offset < BUFFER && bad.offset + bad.len > BUFFER);
    // The 32-bit sum wraps.
    let wrap = Fault::WrapRange.frame(&mut m, p, BUFFER, SECTION);
    assert!(wrap.offset.checked_add(wrap.len).is_none());
    // Too long, yet inside the buffer even near its end.
    let big = Fault::Oversize.frame(&mut m, p, BUFFER, SECTION);
    assert_eq!(big.len, OVERSIZE_LEN);
    assert!(u64::from(big.offset) + u64::from(big.len) <= u64::from(BUFFER));
    // Only the set id changes.
    let set = Fault::BadSet.frame(&mut m, p, BUFFER, SECTION);
    assert_eq!((set.offset, set.len, set.nvsp_rndis), (p.offset, p.len, true));
    assert_ne!(set.set_id, p.set_id);
}

#[test]
fn frame_faults_leave_other_packets_and_completion_faults_leave_frames_alone() {
    let mut m = frame_message();
    let before = m.clone();
    let p = TransferPages { set_id: 1, offset: 0, len: m.len() as u32, nvsp_rndis: true };
    for f in Fault::ALL.iter().filter(|f| f.target() == Target::Completion) {
        assert_eq!(f.frame(&mut m, p, BUFFER, SECTION), p);
        assert_eq!(m, before);
    }
    // Control answers and indications are not frames.
    let mut ind = vec![0u8; 64];
    let n = Rndis::IndicateStatus(rndis::Indication { status: rndis::status::MEDIA_CONNECT, buf: &[] })
        .write(&mut ind)
        .unwrap();
    assert!(!netfault::is_frame(&ind[..n]));
    assert!(!netfault::is_frame(&[1, 0, 0]));
    assert!(netfault::is_frame(&before));
}

#[test]
fn names_and_numbers_round_trip() {
    for f in Fault::ALL {
        assert_eq!(Fault::from_name(f.name()), Some(f));
        assert_eq!(Fault::from_raw(f.raw()), Some(f));
        assert_ne!(f.raw(), 0);
    }
    assert_eq!(Fault::from_raw(0), None);
    assert_eq!(Fault::from_raw(Fault::ALL.len() as u32 + 1), None);
    assert_eq!(Fault::from_name("nonsense"), None);
}

fn tx_completion() -> Vec<u8> {
    Message::SendRndisPacketComplete { status: nvsp::status::SUCCESS }.encode().unwrap().bytes().to_vec()
}

fn is_tx_completion(body: &[u8]) -> bool {
    matches!(
        Message::parse(body, Sender::Host, Some(Version::V61)),
        Ok(Message::SendRndisPacketComplete { .. })
    )
}

#[test]
fn completion_faults() {
    let real = tx_completion();
    let tid = sections::tid(5, 9);
    let sent = |f: Fault| f.completion(tid, &real).iter().map(|(t, b)| (t, b.to_vec())).collect::<Vec<_>>();
    // Unfaulted (a frame fault): the completion as it was.
    assert_eq!(sent(Fault::BadRange), vec![(tid, real.clone())]);
    assert_eq!(sent(Fault::BadCompletion), vec![(tid, real.clone()), (BAD_TRANSACTION_ID, real.clone())]);
    assert_eq!(sent(Fault::StaleCompletion), vec![(tid, real.clone()), (tid, real.clone())]);
    let malformed = sent(Fault::MalformedCompletion);
    assert_eq!(malformed, vec![(tid, vec![])]);
    assert!(!is_tx_completion(&malformed[0].1));
    // A cut the ring would pad back to 8 bytes would still parse: the
    // fault must not rely on one.
    let mut padded = real[..4].to_vec();
    padded.resize(8, 0);
    assert!(is_tx_completion(&padded));
    let garbage = sent(Fault::GarbageCompletion);
    assert_eq!(garbage[0].0, tid);
    assert!(matches!(
        Message::parse(&garbage[0].1, Sender::Host, Some(Version::V61)),
        Err(Error::UnknownType(_))
    ));
    assert!(is_tx_completion(&real));
}
