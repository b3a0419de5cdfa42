//! The heartbeat service (`struct heartbeat_msg_data`): the host sends a
//! sequence number, the guest answers with it plus one.

use super::icmsg::ICMSG_HDR;
use super::wire::{self, Error, Reader, Result, Writer};

/// Bytes of the body: the sequence number and 32 reserved bytes.
pub const BODY_SIZE: usize = 8 + 32;
/// Shortest packet the guest answers: only the sequence number is
/// required (hosts need not send the reserved bytes).
pub const MIN_PACKET: usize = ICMSG_HDR + 8;

/// The host's sequence number.
pub fn sequence(pkt: &[u8]) -> Result<u64> {
    wire::need(pkt, MIN_PACKET)?;
    Reader::new(pkt).u64(ICMSG_HDR)
}

/// Answers in place: the sequence number becomes `seq + 1` (wrapping, as
/// the host's counter does). Returns the number the guest answered.
pub fn answer(pkt: &mut [u8]) -> Result<u64> {
    let next = sequence(pkt)?.wrapping_add(1);
    let mut w = Writer::new(pkt, 0);
    w.u64(ICMSG_HDR, next);
    w.finish().map_err(|_| Error::TooShort {
        need: MIN_PACKET,
        len: 0,
    })?;
    Ok(next)
}
