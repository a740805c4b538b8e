//! The write-ahead journal `servers.journal`: one JSON line per acknowledged batch of edits.
//!
//! A line is `{"seq":N,"edits":[…],"crc":"xxxxxxxx"}` where the CRC-32 covers every byte before
//! `,"crc"`. The CRC sits last so the covered bytes are exactly what was written, with no
//! re-serialisation. A line that is cut short or fails its check at the very end of the file is a
//! write that was never acknowledged (torn) and is dropped; one followed by good lines means the
//! file was damaged, which is an error, never silently skipped.

use serde::{Deserialize, Serialize};

use super::edit::Edit;

const CRC_SUFFIX_PREFIX: &str = ",\"crc\":\"";
/// `,"crc":"` + 8 hex digits + `"}`.
const CRC_SUFFIX_LEN: usize = CRC_SUFFIX_PREFIX.len() + 8 + 2;

#[derive(Debug, Serialize, Deserialize)]
struct LineBody {
    seq: u64,
    edits: Vec<Edit>,
}

/// One batch read back from the journal.
#[derive(Debug)]
pub struct JournalRecord {
    pub seq: u64,
    pub edits: Vec<Edit>,
}

/// Encodes one batch as a complete line, newline included.
pub fn encode(seq: u64, edits: &[Edit]) -> Result<Vec<u8>, serde_json::Error> {
    #[derive(Serialize)]
    struct Borrowed<'a> {
        seq: u64,
        edits: &'a [Edit],
    }
    let mut line = serde_json::to_vec(&Borrowed { seq, edits })?;
    line.pop(); // the closing brace; the CRC field closes the object instead
    let crc = crc32fast::hash(&line);
    line.extend_from_slice(format!("{CRC_SUFFIX_PREFIX}{crc:08x}\"}}\n").as_bytes());
    Ok(line)
}

/// What scanning a stretch of journal found.
#[derive(Debug, Default)]
pub struct Scan {
    pub records: Vec<JournalRecord>,
    /// Bytes of complete, valid lines: where the next append belongs.
    pub valid_len: usize,
    /// True when bytes after `valid_len` are a torn final write.
    pub torn_tail: bool,
}

/// A damaged line in the middle of the journal.
#[derive(Debug, PartialEq)]
pub struct Damaged {
    /// 1-based line number within the scanned bytes.
    pub line: usize,
    pub reason: String,
}

/// Reads every line of `bytes`, which start at a line boundary.
pub fn scan(bytes: &[u8]) -> Result<Scan, Damaged> {
    let mut scan = Scan::default();
    let mut start = 0;
    let mut line_no = 0;
    while start < bytes.len() {
        line_no += 1;
        let Some(nl) = bytes[start..].iter().position(|&b| b == b'\n') else {
            scan.torn_tail = true; // the last write never got its newline out
            break;
        };
        let line = &bytes[start..start + nl];
        match decode(line) {
            Ok(record) => {
                scan.records.push(record);
                start += nl + 1;
                scan.valid_len = start;
            }
            Err(reason) if start + nl + 1 == bytes.len() => {
                // A bad last line: the write was interrupted before it was acknowledged.
                tracing::warn!(line = line_no, %reason, "ignoring torn last journal line");
                scan.torn_tail = true;
                break;
            }
            Err(reason) => {
                return Err(Damaged {
                    line: line_no,
                    reason,
                });
            }
        }
    }
    Ok(scan)
}

fn decode(line: &[u8]) -> Result<JournalRecord, String> {
    if line.len() <= CRC_SUFFIX_LEN {
        return Err("line too short to hold a checksum".into());
    }
    let (body, suffix) = line.split_at(line.len() - CRC_SUFFIX_LEN);
    let hex = suffix
        .strip_prefix(CRC_SUFFIX_PREFIX.as_bytes())
        .and_then(|rest| rest.strip_suffix(b"\"}"))
        .ok_or("line does not end with its checksum")?;
    let expected = std::str::from_utf8(hex)
        .ok()
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or("checksum is not hexadecimal")?;
    if crc32fast::hash(body) != expected {
        return Err("checksum mismatch".into());
    }
    let mut object = body.to_vec();
    object.push(b'}');
    let parsed: LineBody = serde_json::from_slice(&object)
        .map_err(|e| format!("checksummed line does not parse: {e}"))?;
    Ok(JournalRecord {
        seq: parsed.seq,
        edits: parsed.edits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::model::ServerName;

    fn edit(name: &str) -> Edit {
        Edit::Remove {
            name: ServerName::new(name).unwrap(),
        }
    }

    #[test]
    fn lines_round_trip_and_each_is_valid_json() {
        let mut bytes = encode(1, &[edit("a")]).unwrap();
        bytes.extend(encode(2, &[edit("b"), edit("c")]).unwrap());
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            serde_json::from_slice::<serde_json::Value>(line).expect("a journal line is JSON");
        }
        let scan = scan(&bytes).unwrap();
        assert_eq!(
            scan.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(scan.records[1].edits.len(), 2);
        assert_eq!(scan.valid_len, bytes.len());
        assert!(!scan.torn_tail);
    }

    #[test]
    fn a_torn_last_line_is_dropped_at_every_cut_point() {
        let first = encode(1, &[edit("a")]).unwrap();
        let second = encode(2, &[edit("b")]).unwrap();
        for cut in 0..second.len() {
            let mut bytes = first.clone();
            bytes.extend_from_slice(&second[..cut]);
            let scan = scan(&bytes).unwrap_or_else(|d| panic!("cut at {cut} was fatal: {d:?}"));
            assert_eq!(scan.records.len(), 1, "cut at {cut}");
            assert_eq!(scan.valid_len, first.len(), "cut at {cut}");
            assert_eq!(scan.torn_tail, cut > 0, "cut at {cut}");
        }
    }

    #[test]
    fn damage_in_the_middle_is_an_error_naming_the_line() {
        let mut bytes = encode(1, &[edit("a")]).unwrap();
        let mut middle = encode(2, &[edit("b")]).unwrap();
        middle[12] ^= 0x01;
        bytes.extend(middle);
        bytes.extend(encode(3, &[edit("c")]).unwrap());
        let damaged = scan(&bytes).unwrap_err();
        assert_eq!(damaged.line, 2);
        assert!(damaged.reason.contains("checksum"), "{damaged:?}");
    }
}
