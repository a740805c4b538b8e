//! Resource URIs as the aggregated server serves them: `switchboard://<connector>/<the server's
//! own URI, verbatim>`, so two servers' `file:///notes` never clash and every served URI maps
//! back exactly (templates too: their expressions are kept as they are).

const SCHEME: &str = "switchboard://";

/// The URI `connector`'s `uri` is served under.
pub fn served(connector: &str, uri: &str) -> String {
    format!("{SCHEME}{}/{uri}", encode(connector))
}

/// The connector and its own URI a served URI stands for; `None` for any other URI.
pub fn origin(served: &str) -> Option<(String, String)> {
    let rest = served.strip_prefix(SCHEME)?;
    let (connector, uri) = rest.split_once('/')?;
    Some((decode(connector)?, uri.to_string()))
}

/// Every byte but URI-unreserved ones as `%XX` (connector names are free text).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_uris_map_back_exactly() {
        for (connector, uri) in [
            (
                "everything",
                "demo://resource/static/document/architecture.md",
            ),
            ("my notes", "file:///home/u/notes?x=1#top"),
            ("fx", "test://{id}/x"),
        ] {
            let served = served(connector, uri);
            assert!(served.starts_with("switchboard://"), "{served}");
            assert_eq!(
                origin(&served),
                Some((connector.into(), uri.into())),
                "{served}"
            );
        }
        assert_eq!(served("my notes", "a:b"), "switchboard://my%20notes/a:b");
        assert_eq!(origin("file:///etc/passwd"), None);
        assert_eq!(origin("switchboard://bad%zz/x"), None);
    }
}
