//! The protobuf wire format: varints, tags and the four wire types Kubernetes uses.

/// A field as read off the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl WireValue<'_> {
    pub fn wire_name(&self) -> &'static str {
        match self {
            WireValue::Varint(_) => "varint",
            WireValue::Fixed64(_) => "fixed64",
            WireValue::Bytes(_) => "length-delimited",
            WireValue::Fixed32(_) => "fixed32",
        }
    }
}

/// Why bytes are not a protobuf message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    Truncated,
    VarintTooLong,
    BadWireType(u8),
    FieldZero,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Truncated => f.write_str("unexpected end of data"),
            WireError::VarintTooLong => f.write_str("varint overflows 64 bits"),
            WireError::BadWireType(t) => write!(f, "unsupported wire type {t}"),
            WireError::FieldZero => f.write_str("field number 0 is not allowed"),
        }
    }
}

/// Reads the fields of one message.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or(WireError::Truncated)?;
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(WireError::VarintTooLong);
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError::VarintTooLong)
    }

    pub fn fixed64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    pub fn fixed32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated)?;
        let slice = self.buf.get(self.pos..end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    /// The next field: its number and value, or `None` at the end.
    pub fn field(&mut self) -> Result<Option<(u32, WireValue<'a>)>, WireError> {
        if self.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return Err(WireError::FieldZero);
        }
        let number = u32::try_from(number).map_err(|_| WireError::VarintTooLong)?;
        let value = match (key & 7) as u8 {
            0 => WireValue::Varint(self.varint()?),
            1 => WireValue::Fixed64(self.fixed64()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| WireError::Truncated)?;
                WireValue::Bytes(self.take(len)?)
            }
            5 => WireValue::Fixed32(self.fixed32()?),
            other => return Err(WireError::BadWireType(other)),
        };
        Ok(Some((number, value)))
    }
}

pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub fn varint_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

pub fn put_key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire_type));
}

pub fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_key(out, number, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub fn put_varint_field(out: &mut Vec<u8>, number: u32, value: u64) {
    put_key(out, number, 0);
    put_varint(out, value);
}

/// Writes a length-delimited field whose content `body` appends to `out`, without a second
/// buffer: room for the longest length prefix is left, then the content is moved back over
/// the part of it that was not needed.
pub fn put_nested<E>(
    out: &mut Vec<u8>,
    number: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    put_key(out, number, 2);
    let at = out.len();
    out.extend_from_slice(&[0; 5]);
    body(out)?;
    let len = out.len() - at - 5;
    let mut prefix = Vec::with_capacity(5);
    put_varint(&mut prefix, len as u64);
    let shift = 5 - prefix.len();
    out[at..at + prefix.len()].copy_from_slice(&prefix);
    if shift > 0 {
        out.copy_within(at + 5.., at + prefix.len());
        out.truncate(out.len() - shift);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 16_383, 16_384, u32::MAX as u64, u64::MAX, (-1i64) as u64]
        {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            assert_eq!(Reader::new(&out).varint(), Ok(v));
        }
        assert_eq!(Reader::new(&[0x80]).varint(), Err(WireError::Truncated));
        assert_eq!(Reader::new(&[0xff; 11]).varint(), Err(WireError::VarintTooLong));
    }

    #[test]
    fn nested_lengths_are_compacted() {
        for n in [0usize, 1, 127, 128, 20_000] {
            let mut out = vec![9];
            put_nested::<()>(&mut out, 2, |o| {
                o.extend(std::iter::repeat_n(7u8, n));
                Ok(())
            })
            .unwrap();
            let mut r = Reader::new(&out[1..]);
            match r.field().unwrap() {
                Some((2, WireValue::Bytes(b))) => {
                    assert!(b.len() == n && b.iter().all(|x| *x == 7))
                }
                other => panic!("{other:?}"),
            }
            assert!(r.is_empty());
        }
    }
}
