//! The guest's handling of one received packet on any of the five
//! channels, as the C services do it: a NEGOTIATE is answered with the
//! service's version tables; shutdown, time sync and heartbeat are
//! answered at once; KVP and VSS requests are handed to the caller, which
//! asks the daemon and answers later with [`super::kvp::answer_host`] or
//! [`super::vss::answer_host`].

use super::icmsg::{self, IcHeader, IcVersion, MSG_NEGOTIATE};
use super::negotiate::{self, Agreement};
use super::service::Service;
use super::shutdown::{self, Action};
use super::timesync::Sample;
use super::wire::{Error, Result};
use super::{heartbeat, kvp, vss};

/// What a packet was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A NEGOTIATE, answered; `None` is "no common version".
    Negotiated(Option<Agreement>),
    /// A shutdown request, answered `HV_S_OK` when the action is `Some`
    /// and possible; the caller acts after sending the answer.
    Shutdown(Option<Action>),
    /// A time sample (answered).
    Time(Sample),
    /// A heartbeat, answered with this sequence number.
    Heartbeat(u64),
    /// A KVP request for the daemon; not answered yet.
    Kvp(kvp::Request),
    /// A VSS request; not answered yet (the caller answers at once when
    /// its route is the kernel).
    Vss(vss::Msg),
    /// A message type the service does not know: answered `HV_E_FAIL` on
    /// the util services, dropped on KVP and VSS.
    Unknown(u16),
}

/// The result of [`on_packet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handled {
    /// What the packet was.
    pub event: Event,
    /// Whether `buf[..len]` now holds the answer to send.
    pub respond: bool,
}

/// Handles the packet in `buf[..len]` received on `service`'s channel.
/// `version` is the service version negotiated so far (time sync reads
/// its samples by it); `can_hibernate` decides the answer to a hibernate
/// request. A packet too short for what it claims to be is an error
/// (rate-limited message, nothing sent), as in the C driver.
pub fn on_packet(
    service: Service,
    version: Option<IcVersion>,
    can_hibernate: bool,
    buf: &mut [u8],
    len: usize,
) -> Result<Handled> {
    let pkt = buf.get(..len).ok_or(Error::BufferTooSmall {
        need: len,
        len: buf.len(),
    })?;
    let hdr = IcHeader::parse(pkt)?;
    let answered = |event| Handled {
        event,
        respond: true,
    };
    let handled = if hdr.msg_type == MSG_NEGOTIATE {
        let a = negotiate::respond(
            buf,
            len,
            service.framework_versions(),
            service.service_versions(),
        )?;
        answered(Event::Negotiated(a))
    } else if hdr.msg_type != service.msg_type() {
        if matches!(service, Service::Kvp | Service::Vss) {
            return Ok(Handled {
                event: Event::Unknown(hdr.msg_type),
                respond: false,
            });
        }
        icmsg::set_status(buf, icmsg::E_FAIL)?;
        answered(Event::Unknown(hdr.msg_type))
    } else {
        match service {
            Service::Shutdown => {
                let action = shutdown::Request::parse(pkt)?.action();
                let ok = match action {
                    Some(Action::Hibernate) => can_hibernate,
                    Some(_) => true,
                    None => false,
                };
                icmsg::set_status(buf, if ok { icmsg::S_OK } else { icmsg::E_FAIL })?;
                answered(Event::Shutdown(action.filter(|_| ok)))
            }
            Service::TimeSync => answered(Event::Time(Sample::parse(
                pkt,
                version.unwrap_or(IcVersion::new(0, 0)),
            )?)),
            Service::Heartbeat => answered(Event::Heartbeat(heartbeat::answer(
                buf.get_mut(..len).unwrap_or(&mut []),
            )?)),
            Service::Kvp => Handled {
                event: Event::Kvp(kvp::Request::parse(pkt)?),
                respond: false,
            },
            Service::Vss => Handled {
                event: Event::Vss(vss::Msg::parse_host(pkt)?),
                respond: false,
            },
        }
    };
    if handled.respond {
        icmsg::mark_response(buf)?;
    }
    Ok(handled)
}
