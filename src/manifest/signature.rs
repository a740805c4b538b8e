//! Manifest signatures: HMAC-SHA256 over a canonical form of the document without its
//! `signature`, base64url. Two forms verify:
//!
//! - the publisher's, as the replaced system's protocol package writes it: object keys sorted
//!   at every level by JavaScript's `String.prototype.localeCompare` (ICU root collation:
//!   `accept` before `X-Team`, unlike byte order; keys that are array indices first, in numeric
//!   order, as JavaScript objects keep them), serialized by `JSON.stringify` (ECMAScript number
//!   and string formatting: `1.0` is `1`, `1e21` is `1e+21`);
//! - RFC 8785 (JCS): keys in UTF-16 code unit order, the same number and string formatting.
//!   [`sign`] produces this one.

use std::cmp::Ordering;

use base64::Engine as _;
use hmac::Mac as _;
use serde_json::Value;

use super::ManifestError;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The document without its `signature`.
fn unsigned(document: &Value) -> Value {
    let mut unsigned = document.clone();
    if let Value::Object(map) = &mut unsigned {
        map.remove("signature");
    }
    unsigned
}

/// The bytes an RFC 8785 (JCS) signature covers.
pub fn jcs_bytes(document: &Value) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(&unsigned(document)).unwrap_or_default()
}

/// The bytes the publisher's signature covers (see the module's doc).
pub fn publisher_bytes(document: &Value) -> Vec<u8> {
    let collator = icu_collator::Collator::try_new(Default::default(), Default::default());
    let Ok(collator) = collator else {
        // Compiled-in data: cannot fail at run time unless the build is broken.
        tracing::error!("no root collation data; publisher signatures cannot be checked");
        return Vec::new();
    };
    let mut out = String::new();
    write_publisher(&unsigned(document), &collator, &mut out);
    out.into_bytes()
}

fn write_publisher(value: &Value, collator: &icu_collator::CollatorBorrowed<'_>, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            // A stable sort: keys the collation holds equal keep the document's order, as
            // JavaScript's stable Array.prototype.sort does.
            keys.sort_by(|a, b| match (array_index(a), array_index(b)) {
                (Some(a), Some(b)) => a.cmp(&b),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => collator.compare(a, b),
            });
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_publisher(&map[key.as_str()], collator, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_publisher(item, collator, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        // Every JavaScript number is a double: big integers round as they do there.
        Value::Number(n) => match n.as_f64() {
            Some(0.0) => out.push('0'),
            Some(x) => out.push_str(ryu_js::Buffer::new().format(x)),
            None => out.push_str(&n.to_string()),
        },
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
    }
}

/// `JSON.stringify` of a string: serde_json escapes exactly as it does (`"`, `\`, and control
/// characters, as `\b \f \n \r \t` or `\u00xx`; everything else as is).
fn write_string(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// A key JavaScript keeps first in an object, in numeric order: an array index (a canonical
/// decimal integer below 2³² − 1).
fn array_index(key: &str) -> Option<u32> {
    let canonical = key == "0" || (!key.starts_with('0') && !key.is_empty());
    if !canonical || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse::<u32>().ok().filter(|&n| n != u32::MAX)
}

fn mac_of(bytes: &[u8], key: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(bytes);
    mac
}

/// Signs a manifest document in the RFC 8785 form (for tests, fixtures and tools that publish
/// service maps).
pub fn sign(document: &Value, key: &[u8]) -> String {
    let mac = mac_of(&jcs_bytes(document), key);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Checks the document's `signature` against both forms, each compared in constant time.
pub(super) fn verify(document: &Value, key: &[u8]) -> Result<(), ManifestError> {
    let signature = document
        .get("signature")
        .and_then(Value::as_str)
        .ok_or(ManifestError::Unsigned)?;
    let given = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature.trim_end_matches('='))
        .map_err(|_| ManifestError::BadSignature)?;
    let matches = |bytes: Vec<u8>| mac_of(&bytes, key).verify_slice(&given).is_ok();
    if matches(publisher_bytes(document)) || matches(jcs_bytes(document)) {
        Ok(())
    } else {
        Err(ManifestError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_publisher_form_sorts_as_locale_compare_and_formats_as_json_stringify() {
        let doc: Value = serde_json::from_str(
            r#"{"signature":"x","b":1.0,"X-Team":0.1,"accept":1e21,"A":[2,"\u001b"],"a":true,
                "é":null,"e":12345678901234567890,"10":0,"2":-0.0}"#,
        )
        .expect("json");
        let text = String::from_utf8(publisher_bytes(&doc)).expect("utf-8");
        assert_eq!(
            text,
            r#"{"2":0,"10":0,"a":true,"A":[2,"\u001b"],"accept":1e+21,"b":1,"e":12345678901234567000,"é":null,"X-Team":0.1}"#
        );
        let jcs = String::from_utf8(jcs_bytes(&doc)).expect("utf-8");
        assert!(
            jcs.starts_with(r#"{"10":0,"2":0,"A":"#),
            "UTF-16 order: {jcs}"
        );
    }
}
