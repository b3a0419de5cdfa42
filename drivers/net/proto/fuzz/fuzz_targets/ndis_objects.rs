//! The NDIS object parsers over arbitrary information buffers: what the
//! guest reads from the host (offload and RSS capabilities) and what the
//! simulated host reads from the guest (offload and RSS parameters,
//! multicast list). Nothing may panic; what parses must re-encode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netvsc_core::ndis::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = OffloadCaps::parse(data) {
        let _ = (c.tx_tcp4(), c.tx_udp6(), c.lso4(), c.lso6(), c.rsc());
        let mut buf = [0u8; OFFLOAD_SIZE];
        let n = c.write(&mut buf).unwrap();
        assert_eq!(OffloadCaps::parse(&buf[..n]), Ok(c));
    }
    if let Ok(c) = RssCaps::parse(data) {
        let mut buf = [0u8; 18];
        c.write(&mut buf).unwrap();
        assert_eq!(RssCaps::parse(&buf), Ok(c));
    }
    if let Ok((_, p)) = OffloadParams::parse(data) {
        let mut buf = [0u8; 28];
        let n = p.write(&mut buf, netvsc_core::nvsp::Version::V61).unwrap();
        assert_eq!(OffloadParams::parse(&buf[..n]).map(|x| x.1), Ok(p));
    }
    if let Ok(p) = RssParams::parse(data) {
        let table: Vec<u32> = p.entries().collect();
        assert_eq!(table.len(), p.table_len());
        if let Ok(key) = <[u8; HASH_KEY_SIZE]>::try_from(p.key) {
            let mut buf = vec![0u8; 40 + 4 * table.len() + HASH_KEY_SIZE];
            let n = write_rss_params(&mut buf, p.flags, p.hash_info, &table, &key).unwrap();
            let q = RssParams::parse(&buf[..n]).unwrap();
            assert_eq!(q.entries().collect::<Vec<_>>(), table);
            assert_eq!(q.key, p.key);
        }
    }
    if let Ok(l) = MacList::parse(data) {
        assert_eq!(l.iter().count(), l.len());
    }
});
