//! The synthetic HID protocol (version 2.0) that carries Hyper-V's mouse,
//! guest side.
//!
//! Each VMBus packet holds a pipe message: a 32-bit type (only DATA is
//! defined) and a 32-bit payload size, then the payload, a synthetic HID
//! message with its own header (32-bit type, 32-bit size of what follows).
//! The guest requests version 2.0; the host answers, then sends the device
//! info: a 32-byte `hv_input_dev_info` (vendor, product, version), the HID
//! descriptor and, right after it, the report descriptor whose length the
//! HID descriptor names. The guest acknowledges the device info and
//! registers a HID device; input reports follow, each carrying one report.
//!
//! The guest checks what the C driver trusts: a pipe or HID size larger
//! than the packet, descriptor lengths that run past the packet, a report
//! descriptor over `HID_MAX_DESCRIPTOR_SIZE`, a report larger than the
//! packet that carried it or than `HID_MAX_BUFFER_SIZE`, and any report or
//! second device info out of turn. Each is an error value.

use super::wire::{self, Error, Reader, Result, Writer};

/// Protocol version 2.0 (major in the high half).
pub const VERSION: u32 = 2 << 16;
/// Send and receive ring size the C driver opens the channel with,
/// `VMBUS_RING_SIZE(36 KiB)`: with 4 KiB pages that is 36 KiB, the ring
/// header included (the macro adds no header page to a payload of eight
/// pages or more).
pub const RING_SIZE: usize = 36 * 1024;

/// Pipe message type: data (the only one used; 0 is "invalid").
pub const PIPE_DATA: u32 = 1;
/// Pipe header: type, payload size.
pub const PIPE_HEADER_SIZE: usize = 8;
/// HID message header: type, size of the body.
pub const HID_HEADER_SIZE: usize = 8;

/// `SYNTH_HID_PROTOCOL_REQUEST`: guest to host.
pub const MSG_PROTOCOL_REQUEST: u32 = 0;
/// `SYNTH_HID_PROTOCOL_RESPONSE`: host to guest.
pub const MSG_PROTOCOL_RESPONSE: u32 = 1;
/// `SYNTH_HID_INITIAL_DEVICE_INFO`: host to guest.
pub const MSG_DEVICE_INFO: u32 = 2;
/// `SYNTH_HID_INITIAL_DEVICE_INFO_ACK`: guest to host.
pub const MSG_DEVICE_INFO_ACK: u32 = 3;
/// `SYNTH_HID_INPUT_REPORT`: host to guest.
pub const MSG_INPUT_REPORT: u32 = 4;

/// Protocol request body: the version.
pub const PROTOCOL_REQUEST_SIZE: usize = HID_HEADER_SIZE + 4;
/// Protocol response body: the version, the approved byte.
pub const PROTOCOL_RESPONSE_SIZE: usize = HID_HEADER_SIZE + 5;
/// The C driver copies a protocol response into a 24-byte buffer that
/// holds the pipe header too; a larger pipe payload is refused there.
pub const PROTOCOL_RESPONSE_MAX: usize = 16;
/// Device info ack body: one reserved byte.
pub const DEVICE_INFO_ACK_SIZE: usize = HID_HEADER_SIZE + 1;
/// `hv_input_dev_info`: size (u32), vendor, product, version, 11 reserved
/// (u16 each).
pub const DEV_INFO_SIZE: usize = 32;
/// `struct hid_descriptor` with its one mandatory class descriptor.
pub const HID_DESCRIPTOR_SIZE: usize = 9;
/// The fixed part of a device info message: HID header, dev info, HID
/// descriptor.
pub const DEVICE_INFO_SIZE: usize = HID_HEADER_SIZE + DEV_INFO_SIZE + HID_DESCRIPTOR_SIZE;
/// `HID_MAX_DESCRIPTOR_SIZE`: the largest report descriptor the HID core
/// parses.
pub const MAX_REPORT_DESCRIPTOR: usize = 4096;
/// `HID_MAX_BUFFER_SIZE`: the largest report the HID core takes.
pub const MAX_REPORT: usize = 16384;

/// The name the C driver gives the HID device, which `hid-generic` passes
/// on to the input device.
pub const DEVICE_NAME: &str = "Microsoft Vmbus HID-compliant Mouse";
/// The vendor and product the C driver's HID id table names.
pub const VENDOR_MICROSOFT: u16 = 0x045e;
/// See [`VENDOR_MICROSOFT`].
pub const PRODUCT_MOUSE: u16 = 0x0621;

/// Vendor, product and version from `hv_input_dev_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevInfo {
    /// The structure's own size field, as the host sent it.
    pub size: u32,
    /// USB-style vendor id.
    pub vendor: u16,
    /// Product id.
    pub product: u16,
    /// Version.
    pub version: u16,
}

/// The HID descriptor's fields (its class-descriptor list past the first
/// is kept only as a length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HidDescriptor {
    /// `bLength`: the descriptor's length, at least 9.
    pub length: u8,
    /// `bDescriptorType` (0x21 for HID).
    pub descriptor_type: u8,
    /// `bcdHID`.
    pub bcd_hid: u16,
    /// `bCountryCode`.
    pub country: u8,
    /// `bNumDescriptors`.
    pub num_descriptors: u8,
    /// The first class descriptor's type (0x22 for a report descriptor).
    pub report_type: u8,
    /// `wDescriptorLength` of the report descriptor.
    pub report_length: u16,
}

/// A validated device info; the report descriptor borrows from the packet
/// (the driver copies it into its own allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInfo<'a> {
    /// Vendor, product, version.
    pub info: DevInfo,
    /// The HID descriptor.
    pub hid: HidDescriptor,
    /// The report descriptor: `hid.report_length` bytes, 1 to
    /// [`MAX_REPORT_DESCRIPTOR`].
    pub report_descriptor: &'a [u8],
}

/// A synthetic HID message, either direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Guest asks for a version.
    ProtocolRequest {
        /// The version asked for.
        version: u32,
    },
    /// Host answers.
    ProtocolResponse {
        /// The version the host echoes.
        version: u32,
        /// Non-zero if the version is approved.
        approved: u8,
    },
    /// Host describes the device.
    DeviceInfo(DeviceInfo<'a>),
    /// Guest acknowledges the device info.
    DeviceInfoAck,
    /// One input report.
    InputReport(&'a [u8]),
}

/// Who sent the bytes being parsed.
pub use super::keyboard::Sender;

/// The pipe payload of a packet: checks the pipe header and that its size
/// fits the packet. Bytes past the pipe payload (VMBus padding) are
/// ignored.
pub fn pipe_payload(b: &[u8]) -> Result<&[u8]> {
    let r = Reader::new(b);
    let ty = r.u32(0)?;
    let size = wire::to_usize(r.u32(4)?);
    if ty != PIPE_DATA {
        return Err(Error::BadField("pipe type"));
    }
    r.slice(PIPE_HEADER_SIZE, size)
}

fn parse_device_info(body: &[u8]) -> Result<DeviceInfo<'_>> {
    let r = Reader::new(body);
    wire::need(body, DEV_INFO_SIZE + HID_DESCRIPTOR_SIZE)?;
    let info = DevInfo {
        size: r.u32(0)?,
        vendor: r.u16(4)?,
        product: r.u16(6)?,
        version: r.u16(8)?,
    };
    let d = DEV_INFO_SIZE;
    let hid = HidDescriptor {
        length: r.u8(d)?,
        descriptor_type: r.u8(d + 1)?,
        bcd_hid: r.u16(d + 2)?,
        country: r.u8(d + 4)?,
        num_descriptors: r.u8(d + 5)?,
        report_type: r.u8(d + 6)?,
        report_length: r.u16(d + 7)?,
    };
    let hid_len = usize::from(hid.length);
    // The descriptor must hold its own mandatory fields and fit the packet.
    if hid_len < HID_DESCRIPTOR_SIZE {
        return Err(Error::BadField("bLength"));
    }
    let after_hid = wire::add(d, hid_len, "bLength")?;
    if after_hid > body.len() {
        return Err(Error::BadField("bLength"));
    }
    let rlen = usize::from(hid.report_length);
    if rlen == 0 {
        return Err(Error::BadField("wDescriptorLength"));
    }
    if rlen > MAX_REPORT_DESCRIPTOR {
        return Err(Error::TooLong {
            max: MAX_REPORT_DESCRIPTOR,
            len: rlen,
        });
    }
    let report_descriptor = r
        .slice(after_hid, rlen)
        .map_err(|_| Error::BadField("wDescriptorLength"))?;
    Ok(DeviceInfo {
        info,
        hid,
        report_descriptor,
    })
}

impl<'a> Message<'a> {
    /// Parses one packet's in-band payload: pipe header, HID header and
    /// body. A HID size that runs past the pipe payload is refused; so is
    /// a type `from` does not send.
    pub fn parse(b: &'a [u8], from: Sender) -> Result<Message<'a>> {
        let pipe = pipe_payload(b)?;
        let r = Reader::new(pipe);
        let ty = r.u32(0)?;
        let size = wire::to_usize(r.u32(4)?);
        // The HID size bounds an input report (the C driver copies that
        // many bytes, trusting it), so it must fit the pipe payload. For
        // the other messages the C driver goes by the pipe size and never
        // reads the HID size; so does this parser, lest a host that fills
        // it in differently be refused.
        let rest = r.slice(HID_HEADER_SIZE, pipe.len().saturating_sub(HID_HEADER_SIZE))?;
        let body =
            if ty == MSG_INPUT_REPORT || ty == MSG_PROTOCOL_REQUEST || ty == MSG_DEVICE_INFO_ACK {
                r.slice(HID_HEADER_SIZE, size)?
            } else {
                rest
            };
        let br = Reader::new(body);
        let (msg, sender) = match ty {
            MSG_PROTOCOL_REQUEST => (
                Message::ProtocolRequest {
                    version: br.u32(0)?,
                },
                Sender::Guest,
            ),
            MSG_PROTOCOL_RESPONSE => {
                if pipe.len() > PROTOCOL_RESPONSE_MAX {
                    return Err(Error::TooLong {
                        max: PROTOCOL_RESPONSE_MAX,
                        len: pipe.len(),
                    });
                }
                (
                    Message::ProtocolResponse {
                        approved: br.u8(4)?,
                        version: br.u32(0)?,
                    },
                    Sender::Host,
                )
            }
            MSG_DEVICE_INFO => (Message::DeviceInfo(parse_device_info(body)?), Sender::Host),
            MSG_DEVICE_INFO_ACK => {
                br.u8(0)?;
                (Message::DeviceInfoAck, Sender::Guest)
            }
            MSG_INPUT_REPORT => {
                if body.is_empty() {
                    return Err(Error::BadField("report size"));
                }
                if body.len() > MAX_REPORT {
                    return Err(Error::TooLong {
                        max: MAX_REPORT,
                        len: body.len(),
                    });
                }
                (Message::InputReport(body), Sender::Host)
            }
            other => return Err(Error::UnknownType(other)),
        };
        if sender != from {
            return Err(Error::WrongSender(ty));
        }
        Ok(msg)
    }
}

/// Writes a pipe message holding a HID message of type `ty` with `body`
/// into `buf`; returns its length.
pub fn encode_raw(buf: &mut [u8], ty: u32, body: &[u8]) -> Result<usize> {
    let hid_size = wire::to_u32(body.len(), "size")?;
    let pipe_size = wire::to_u32(wire::add(body.len(), HID_HEADER_SIZE, "size")?, "size")?;
    let mut w = Writer::new(buf, PIPE_HEADER_SIZE + HID_HEADER_SIZE);
    w.u32(0, PIPE_DATA);
    w.u32(4, pipe_size);
    w.u32(8, ty);
    w.u32(12, hid_size);
    w.bytes(PIPE_HEADER_SIZE + HID_HEADER_SIZE, body);
    w.finish()
}

/// Writes the guest's protocol request for version 2.0; returns its length.
pub fn encode_request(buf: &mut [u8], version: u32) -> Result<usize> {
    encode_raw(buf, MSG_PROTOCOL_REQUEST, &version.to_le_bytes())
}

/// Writes the guest's device info ack; returns its length.
pub fn encode_ack(buf: &mut [u8]) -> Result<usize> {
    encode_raw(buf, MSG_DEVICE_INFO_ACK, &[0])
}

/// Hyper-V's report descriptor has a Logical Maximum item (0x25) at byte
/// 14 where the button Usage Maximum (0x29) belongs; the C driver patches
/// it ("SA-167") before the HID core parses it, and so must we, or the
/// buttons get no usages. Returns whether the byte was patched.
pub fn fix_report_descriptor(desc: &mut [u8]) -> bool {
    match desc.get_mut(14) {
        Some(b) if *b == 0x25 => {
            *b = 0x29;
            true
        }
        _ => false,
    }
}

/// What a host packet means to the guest driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The host approved version 2.0; the device info comes next.
    Approved,
    /// The device info, validated: copy the report descriptor (then
    /// [`fix_report_descriptor`]), send the ack ([`encode_ack`]) and
    /// register the HID device.
    DeviceInfo(DeviceInfo<'a>),
    /// One input report for `hid_input_report`, no larger than the packet.
    Report(&'a [u8]),
}

/// Where the guest is in the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Request sent; waiting for the response.
    AwaitingResponse,
    /// Approved; waiting for the device info.
    AwaitingDeviceInfo,
    /// Device info taken; reports flow.
    Ready,
    /// The host refused the version.
    Refused,
}

/// The guest's side of one mouse channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guest {
    state: State,
}

impl Default for Guest {
    fn default() -> Self {
        Self::new()
    }
}

impl Guest {
    /// A guest about to send its request.
    pub fn new() -> Guest {
        Guest {
            state: State::AwaitingResponse,
        }
    }

    /// Where the protocol is.
    pub fn state(&self) -> State {
        self.state
    }

    /// Writes the protocol request; returns its length.
    pub fn request(&self, buf: &mut [u8]) -> Result<usize> {
        encode_request(buf, VERSION)
    }

    /// Handles one in-band host packet. An error means: drop it with a
    /// rate-limited message; the state is unchanged except that a refused
    /// version is [`State::Refused`] (and an error). A bad device info
    /// leaves the guest waiting, so the probe times out cleanly (or takes
    /// a good one the host sends after it).
    pub fn on_packet<'a>(&mut self, b: &'a [u8]) -> Result<Event<'a>> {
        match Message::parse(b, Sender::Host)? {
            Message::ProtocolResponse { approved, .. } => {
                if self.state != State::AwaitingResponse {
                    return Err(Error::Unexpected(MSG_PROTOCOL_RESPONSE));
                }
                if approved == 0 {
                    self.state = State::Refused;
                    return Err(Error::BadField("approved"));
                }
                self.state = State::AwaitingDeviceInfo;
                Ok(Event::Approved)
            }
            Message::DeviceInfo(info) => {
                if self.state != State::AwaitingDeviceInfo {
                    return Err(Error::Unexpected(MSG_DEVICE_INFO));
                }
                self.state = State::Ready;
                Ok(Event::DeviceInfo(info))
            }
            Message::InputReport(report) => {
                if self.state != State::Ready {
                    return Err(Error::Unexpected(MSG_INPUT_REPORT));
                }
                Ok(Event::Report(report))
            }
            Message::ProtocolRequest { .. } => Err(Error::WrongSender(MSG_PROTOCOL_REQUEST)),
            Message::DeviceInfoAck => Err(Error::WrongSender(MSG_DEVICE_INFO_ACK)),
        }
    }
}
