//! The on-disk encoding of live values and history entries (little-endian, length-prefixed).

use bytes::Bytes;
use store::{Event, KeyValue, Revision, StoreError};
use store_memory::LogEntry;

const PUT: u8 = 0;
const DELETE: u8 = 1;

/// `kv` table value: create revision, mod revision, value.
pub fn encode_kv(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + kv.value.len());
    out.extend_from_slice(&kv.create_revision.0.to_le_bytes());
    out.extend_from_slice(&kv.mod_revision.0.to_le_bytes());
    out.extend_from_slice(&kv.value);
    out
}

pub fn decode_kv(key: &[u8], raw: &[u8]) -> Result<KeyValue, StoreError> {
    let mut r = Reader { raw, pos: 0 };
    let create_revision = Revision(r.u64()?);
    let mod_revision = Revision(r.u64()?);
    let value = Bytes::copy_from_slice(r.rest());
    Ok(KeyValue { key: Bytes::copy_from_slice(key), value, create_revision, mod_revision })
}

/// `log` table value (keyed by revision): kind, previous event revision, key, then for a put
/// the create revision, value and the optional previous value; for a delete the deleted value.
pub fn encode_log(entry: &LogEntry) -> Vec<u8> {
    let mut out = Vec::new();
    let put_prev = |out: &mut Vec<u8>, prev: &KeyValue| {
        out.extend_from_slice(&prev.create_revision.0.to_le_bytes());
        out.extend_from_slice(&prev.mod_revision.0.to_le_bytes());
        put_bytes(out, &prev.value);
    };
    match &entry.event {
        Event::Put { kv, prev } => {
            out.push(PUT);
            out.extend_from_slice(&entry.prev_event.to_le_bytes());
            put_bytes(&mut out, &kv.key);
            out.extend_from_slice(&kv.create_revision.0.to_le_bytes());
            put_bytes(&mut out, &kv.value);
            match prev {
                Some(prev) => {
                    out.push(1);
                    put_prev(&mut out, prev);
                }
                None => out.push(0),
            }
        }
        Event::Delete { prev, .. } => {
            out.push(DELETE);
            out.extend_from_slice(&entry.prev_event.to_le_bytes());
            put_bytes(&mut out, &prev.key);
            put_prev(&mut out, prev);
        }
    }
    out
}

pub fn decode_log(revision: u64, raw: &[u8]) -> Result<LogEntry, StoreError> {
    let mut r = Reader { raw, pos: 0 };
    let kind = r.u8()?;
    let prev_event = r.u64()?;
    let key = Bytes::copy_from_slice(r.bytes()?);
    let read_prev = |r: &mut Reader<'_>| -> Result<KeyValue, StoreError> {
        let create_revision = Revision(r.u64()?);
        let mod_revision = Revision(r.u64()?);
        let value = Bytes::copy_from_slice(r.bytes()?);
        Ok(KeyValue { key: key.clone(), value, create_revision, mod_revision })
    };
    let event = match kind {
        PUT => {
            let create_revision = Revision(r.u64()?);
            let value = Bytes::copy_from_slice(r.bytes()?);
            let prev = match r.u8()? {
                0 => None,
                _ => Some(read_prev(&mut r)?),
            };
            let kv = KeyValue {
                key: key.clone(),
                value,
                create_revision,
                mod_revision: Revision(revision),
            };
            Event::Put { kv, prev }
        }
        DELETE => Event::Delete { revision: Revision(revision), prev: read_prev(&mut r)? },
        other => return Err(corrupt(format!("unknown log entry kind {other} at {revision}"))),
    };
    Ok(LogEntry { event, prev_event })
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Values are bounded by MAX_VALUE_BYTES, keys by the API server: both fit in u32.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

fn corrupt(message: String) -> StoreError {
    StoreError::Corrupt { message }
}

struct Reader<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.raw.len());
        let Some(end) = end else {
            return Err(corrupt(format!("record truncated at byte {}", self.pos)));
        };
        let out = &self.raw[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(buf))
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let mut len = [0u8; 4];
        len.copy_from_slice(self.take(4)?);
        self.take(u32::from_le_bytes(len) as usize)
    }

    fn rest(&mut self) -> &'a [u8] {
        let out = &self.raw[self.pos..];
        self.pos = self.raw.len();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str, create: u64, modr: u64) -> KeyValue {
        KeyValue {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
            create_revision: Revision(create),
            mod_revision: Revision(modr),
        }
    }

    #[test]
    fn log_entries_round_trip() {
        let entries = [
            LogEntry { event: Event::Put { kv: kv("/a", "1", 5, 5), prev: None }, prev_event: 0 },
            LogEntry {
                event: Event::Put { kv: kv("/a", "2", 5, 7), prev: Some(kv("/a", "1", 5, 5)) },
                prev_event: 5,
            },
            LogEntry {
                event: Event::Delete { revision: Revision(9), prev: kv("/a", "", 5, 7) },
                prev_event: 7,
            },
        ];
        for entry in entries {
            let rev = entry.revision().0;
            assert_eq!(decode_log(rev, &encode_log(&entry)).unwrap(), entry);
        }
        let live = kv("/k", "value", 3, 4);
        assert_eq!(decode_kv(b"/k", &encode_kv(&live)).unwrap(), live);
    }

    #[test]
    fn truncated_records_are_corrupt_not_panics() {
        let entry = LogEntry {
            event: Event::Put { kv: kv("/a", "2", 5, 7), prev: Some(kv("/a", "1", 5, 5)) },
            prev_event: 5,
        };
        let raw = encode_log(&entry);
        for cut in 0..raw.len() {
            assert!(matches!(decode_log(7, &raw[..cut]), Err(StoreError::Corrupt { .. })));
        }
        assert!(matches!(decode_kv(b"k", &[1, 2, 3]), Err(StoreError::Corrupt { .. })));
        assert!(matches!(
            decode_log(1, &[9, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
