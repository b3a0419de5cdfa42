//! UTF-16LE (the host's strings) to UTF-8 (the daemons' strings) and back,
//! into caller buffers, with every length checked. Malformed input (an
//! unpaired surrogate, invalid UTF-8, an odd byte count) and output that
//! does not fit are errors; nothing is silently cut or replaced.

use super::wire::{Error, Result};

/// Converts the UTF-16LE string in `src` (up to its first NUL unit, or all
/// of it) to UTF-8 in `dst`, without a terminator. Returns the bytes
/// written.
pub fn to_utf8(src: &[u8], dst: &mut [u8]) -> Result<usize> {
    if src.len() & 1 != 0 {
        return Err(Error::BadField("utf16 length"));
    }
    let units = src
        .chunks_exact(2)
        .map(|c| match c {
            [a, b] => u16::from_le_bytes([*a, *b]),
            _ => 0,
        })
        .take_while(|&u| u != 0);
    let mut n = 0usize;
    for ch in char::decode_utf16(units) {
        let ch = ch.map_err(|_| Error::BadField("utf16"))?;
        let mut tmp = [0u8; 4];
        let enc = ch.encode_utf8(&mut tmp).as_bytes();
        let end = n
            .checked_add(enc.len())
            .ok_or(Error::BadField("utf8 length"))?;
        let len = dst.len();
        let out = dst
            .get_mut(n..end)
            .ok_or(Error::BufferTooSmall { need: end, len })?;
        super::wire::copy(out, enc);
        n = end;
    }
    Ok(n)
}

/// Converts the UTF-8 string in `src` (up to its first NUL byte, or all of
/// it) to UTF-16LE in `dst`, without a terminator. Returns the bytes
/// written (twice the code units).
pub fn from_utf8(src: &[u8], dst: &mut [u8]) -> Result<usize> {
    let end = src.iter().position(|&b| b == 0).unwrap_or(src.len());
    let s =
        core::str::from_utf8(src.get(..end).unwrap_or(&[])).map_err(|_| Error::BadField("utf8"))?;
    let mut n = 0usize;
    for unit in s.encode_utf16() {
        let end = n.checked_add(2).ok_or(Error::BadField("utf16 length"))?;
        let len = dst.len();
        let out = dst
            .get_mut(n..end)
            .ok_or(Error::BufferTooSmall { need: end, len })?;
        super::wire::copy(out, &unit.to_le_bytes());
        n = end;
    }
    Ok(n)
}
