//! The RNDIS parser over arbitrary bytes, with everything a guest does with
//! what parses: walk and decode the PPIs of a packet, decode the objects a
//! query completion carries, decode a status indication; peek at a
//! packet's head as the receive path does. Nothing may panic; whatever
//! parses must re-encode and parse back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netvsc_core::ndis::*;
use netvsc_core::ppi::*;
use netvsc_core::rndis::*;

fuzz_target!(|data: &[u8]| {
    // The PPI walker on its own, over the raw bytes.
    let mut records = 0usize;
    for r in PpiIter::new(data) {
        records += 1;
        if let Ok(r) = r {
            assert!(r.data.len() <= data.len());
            let _ = Ppi::decode(&r);
        }
    }
    assert!(records <= data.len() / PPI_HEADER_SIZE + 1);
    let _ = RxInfo::collect(data);

    // RSC fragment marks, as the receive path judges them: the PPI list
    // read as a run of packets of one transfer-page packet, each 16-byte
    // record's marks one packet's. A frame is never more than RSC_MAX
    // fragments and never left being joined at the packet's end.
    let mut rsc = netvsc_core::rsc::Rsc::new();
    let mut joined = 0u32;
    let chunks: Vec<&[u8]> = data.chunks(PPI_SIZE).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let id = RxInfo::collect(chunk).ok().and_then(|info| info.pktinfo_id);
        match rsc.on_packet(id, i + 1 == chunks.len()) {
            netvsc_core::rsc::Step::Fragment { first, last } => {
                joined = if first { 1 } else { joined + 1 };
                assert!(joined <= netvsc_core::rsc::RSC_MAX);
                if last {
                    joined = 0;
                }
            }
            _ => joined = 0,
        }
    }
    assert!(!rsc.joining());

    // The receive path's peek at a packet's head agrees with the whole
    // parse, for every length of the peek.
    for peek in [0, 8, 44, 64, 128, 256, data.len()] {
        if let Some(h) = parse_packet_head(data.get(..peek).unwrap_or(data), data.len()) {
            let Ok(Message::Packet(p)) = Message::parse(data) else {
                panic!("the head said packet, the whole parse did not");
            };
            assert_eq!(p.data, &data[h.data_offset..h.data_offset + h.data_len]);
            assert_eq!(p.ppis, h.ppis);
        }
    }

    let Ok(m) = Message::parse(data) else {
        return;
    };
    match m {
        Message::Packet(p) => {
            let _ = p.info();
        }
        Message::InitializeComplete(c) => {
            let _ = c.packet_alignment();
        }
        Message::QueryComplete(c) => {
            let _ = OffloadCaps::parse(c.info);
            let _ = RssCaps::parse(c.info).map(|c| c.table_size());
            let _ = info_u32(c.info);
            let _ = info_mac(c.info);
        }
        Message::IndicateStatus(i) => {
            let _ = i.event();
        }
        _ => {}
    }
    let mut buf = vec![0u8; data.len() + 64];
    let n = m.write(&mut buf).unwrap();
    assert_eq!(Message::parse(&buf[..n]), Ok(m));
});
