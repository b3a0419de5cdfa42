//! The Toeplitz hash of receive-side scaling: the host hashes each
//! received flow with the guest's key and picks the channel from the
//! indirection table; a guest can recompute it to check.
//!
//! For every set bit of the input, most significant bit first, the hash
//! takes the exclusive or of the 32-bit window of the key that starts at
//! that bit. Key bits past the end of the key count as zero.

use super::ndis::HASH_KEY_SIZE;

/// The key Linux's netvsc uses by default (and Microsoft's RSS
/// verification suite).
pub const DEFAULT_KEY: [u8; HASH_KEY_SIZE] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// The Toeplitz hash of `input` under `key`.
pub fn hash(key: &[u8], input: &[u8]) -> u32 {
    let byte = |i: usize| u32::from(key.get(i).copied().unwrap_or(0));
    // The 32-bit key window at the current input bit, and the next key byte
    // to shift in.
    let mut window = (byte(0) << 24) | (byte(1) << 16) | (byte(2) << 8) | byte(3);
    let mut next = 4usize;
    let mut result = 0u32;
    for &b in input {
        let incoming = byte(next);
        next = next.saturating_add(1);
        for bit in 0..8u32 {
            if b & (0x80u8 >> bit) != 0 {
                result ^= window;
            }
            window = (window << 1) | ((incoming >> (7 - bit)) & 1);
        }
    }
    result
}

/// The hash of an IPv4 flow: source and destination address, then, for
/// TCP (or UDP), source and destination port, all in network order.
pub fn hash_ipv4(key: &[u8], src: [u8; 4], dst: [u8; 4], ports: Option<(u16, u16)>) -> u32 {
    let mut input = [0u8; 12];
    let mut w = super::wire::Writer::new(&mut input, 0);
    w.bytes(0, &src);
    w.bytes(4, &dst);
    let len = match ports {
        Some((sp, dp)) => {
            w.bytes(8, &sp.to_be_bytes());
            w.bytes(10, &dp.to_be_bytes());
            12
        }
        None => 8,
    };
    hash(key, input.get(..len).unwrap_or(&[]))
}

/// The hash of an IPv6 flow, laid out as for IPv4.
pub fn hash_ipv6(key: &[u8], src: [u8; 16], dst: [u8; 16], ports: Option<(u16, u16)>) -> u32 {
    let mut input = [0u8; 36];
    let mut w = super::wire::Writer::new(&mut input, 0);
    w.bytes(0, &src);
    w.bytes(16, &dst);
    let len = match ports {
        Some((sp, dp)) => {
            w.bytes(32, &sp.to_be_bytes());
            w.bytes(34, &dp.to_be_bytes());
            36
        }
        None => 32,
    };
    hash(key, input.get(..len).unwrap_or(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Microsoft's "Verifying the RSS Hash Calculation" vectors: destination,
    // source, then the hash over addresses only and over addresses and
    // ports.
    const V4: [([u8; 4], u16, [u8; 4], u16, u32, u32); 5] = [
        (
            [161, 142, 100, 80],
            1766,
            [66, 9, 149, 187],
            2794,
            0x323e_8fc2,
            0x51cc_c178,
        ),
        (
            [65, 69, 140, 83],
            4739,
            [199, 92, 111, 2],
            14230,
            0xd718_262a,
            0xc626_b0ea,
        ),
        (
            [12, 22, 207, 184],
            38024,
            [24, 19, 198, 95],
            12898,
            0xd2d0_a5de,
            0x5c2b_394a,
        ),
        (
            [209, 142, 163, 6],
            2217,
            [38, 27, 205, 30],
            48228,
            0x8298_9176,
            0xafc7_327f,
        ),
        (
            [202, 188, 127, 2],
            1303,
            [153, 39, 163, 191],
            44251,
            0x5d18_09c5,
            0x10e8_28a2,
        ),
    ];

    #[test]
    fn microsoft_ipv4_vectors() {
        for (dst, dport, src, sport, ip, tcp) in V4 {
            assert_eq!(hash_ipv4(&DEFAULT_KEY, src, dst, None), ip, "{dst:?}");
            assert_eq!(
                hash_ipv4(&DEFAULT_KEY, src, dst, Some((sport, dport))),
                tcp,
                "{dst:?}"
            );
        }
    }

    fn v6(groups: [u16; 8]) -> [u8; 16] {
        let mut a = [0u8; 16];
        for (i, g) in groups.iter().enumerate() {
            a[2 * i..2 * i + 2].copy_from_slice(&g.to_be_bytes());
        }
        a
    }

    #[test]
    fn microsoft_ipv6_vectors() {
        let cases = [
            (
                v6([0x3ffe, 0x2501, 0x200, 0x3, 0, 0, 0, 1]),
                1766,
                v6([0x3ffe, 0x2501, 0x200, 0x1fff, 0, 0, 0, 7]),
                2794,
                0x2cc1_8cd5,
                0x4020_7d3d,
            ),
            (
                v6([0xff02, 0, 0, 0, 0, 0, 0, 1]),
                4739,
                v6([0x3ffe, 0x501, 0x8, 0, 0x260, 0x97ff, 0xfe40, 0xefab]),
                14230,
                0x0f0c_461c,
                0xdde5_1bbf,
            ),
            (
                v6([0xfe80, 0, 0, 0, 0x200, 0xf8ff, 0xfe21, 0x67cf]),
                38024,
                v6([0x3ffe, 0x1900, 0x4545, 0x3, 0x200, 0xf8ff, 0xfe21, 0x67cf]),
                44251,
                0x4b61_e985,
                0x02d1_feef,
            ),
        ];
        for (dst, dport, src, sport, ip, tcp) in cases {
            assert_eq!(hash_ipv6(&DEFAULT_KEY, src, dst, None), ip);
            assert_eq!(hash_ipv6(&DEFAULT_KEY, src, dst, Some((sport, dport))), tcp);
        }
    }

    #[test]
    fn empty_input_and_short_key() {
        assert_eq!(hash(&DEFAULT_KEY, &[]), 0);
        assert_eq!(hash(&[], &[0xff; 8]), 0);
        // One set bit selects the first window.
        assert_eq!(hash(&DEFAULT_KEY, &[0x80]), 0x6d5a_56da);
    }
}
