//! The names the aggregated server gives tools: `<connector>_<tool>`, legal for every client.
//!
//! Clients are stricter than the spec: Windsurf and Copilot take only `^[a-zA-Z0-9_-]{1,64}$`,
//! the Anthropic API caps a name at 64 and Claude Code prefixes `mcp__<server>__`, Cursor caps
//! server + tool at 60. So every other character becomes `_`, and a name stays within
//! [`MAX_NAME`], which leaves `mcp__switchboard__` room inside 64. A name too long, or one
//! already taken, is shortened and given a short hash of the tool's real identity, so the
//! mapping depends only on the set of tools (the same across restarts) and never fails.

use std::collections::{BTreeMap, HashSet};

use sha2::Digest as _;

/// Longest name served: 64 (the API's cap) less Claude Code's `mcp__switchboard__` (18).
pub const MAX_NAME: usize = 46;

/// Hash lengths tried, in order, for a name that needs one (8 hex digits almost always do).
const HASH_DIGITS: &[usize] = &[8, 12, 16, 24, 32];

/// A served tool's real identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub connector: String,
    pub tool: String,
}

/// Served name → the tool it stands for, both ways.
#[derive(Debug, Clone, Default)]
pub struct Names {
    served: BTreeMap<String, Origin>,
}

impl Names {
    /// Names every tool of `origins` (any order, repeats ignored). The first in
    /// (connector, tool) order keeps the plain name; later ones that map to the same name get a
    /// hash suffix.
    pub fn assign(origins: impl IntoIterator<Item = Origin>) -> Self {
        let mut origins: Vec<Origin> = origins.into_iter().collect();
        origins.sort();
        origins.dedup();
        let mut served = BTreeMap::new();
        let mut taken = HashSet::new();
        let mut hashed = Vec::new();
        for origin in origins {
            let plain = plain_name(&origin);
            if plain.len() <= MAX_NAME && taken.insert(plain.clone()) {
                served.insert(plain, origin);
            } else {
                hashed.push((plain, origin));
            }
        }
        for (plain, origin) in hashed {
            let name = HASH_DIGITS
                .iter()
                .map(|&digits| with_hash(&plain, &origin, digits))
                .find(|name| !taken.contains(name))
                // 32 hex digits of SHA-256 colliding among one machine's tools: not in practice;
                // served under the longest form all the same (the later one shadows nothing).
                .unwrap_or_else(|| with_hash(&plain, &origin, 32));
            taken.insert(name.clone());
            served.insert(name, origin);
        }
        Self { served }
    }

    /// The tool served as `name`.
    pub fn origin(&self, name: &str) -> Option<&Origin> {
        self.served.get(name)
    }

    /// Every served name with its tool, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Origin)> {
        self.served
            .iter()
            .map(|(name, origin)| (name.as_str(), origin))
    }

    pub fn len(&self) -> usize {
        self.served.len()
    }

    pub fn is_empty(&self) -> bool {
        self.served.is_empty()
    }
}

/// `<connector>_<tool>` with every character outside `[A-Za-z0-9_-]` turned into `_`.
fn plain_name(origin: &Origin) -> String {
    let legal = |c: char| {
        if c.is_ascii_alphanumeric() || c == '-' {
            c
        } else {
            '_'
        }
    };
    origin
        .connector
        .chars()
        .chain(std::iter::once('_'))
        .chain(origin.tool.chars())
        .map(legal)
        .collect()
}

/// `plain` cut to leave room for `_` and `digits` hex digits of the origin's hash.
fn with_hash(plain: &str, origin: &Origin, digits: usize) -> String {
    let mut hasher = sha2::Sha256::new();
    hasher.update(origin.connector.as_bytes());
    hasher.update([0]);
    hasher.update(origin.tool.as_bytes());
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // `plain` is ASCII, so any byte index is a char boundary.
    let keep = plain.len().min(MAX_NAME - 1 - digits);
    format!("{}_{}", &plain[..keep], &hex[..digits])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(connector: &str, tool: &str) -> Origin {
        Origin {
            connector: connector.into(),
            tool: tool.into(),
        }
    }

    fn legal(name: &str) -> bool {
        (1..=MAX_NAME).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn plain_names_join_connector_and_tool_and_map_what_clients_refuse() {
        let names = Names::assign([
            origin("wiki", "search"),
            origin("files", "fs.read/file"),
            origin("café", "grüße"),
        ]);
        let served: Vec<&str> = names.iter().map(|(n, _)| n).collect();
        assert_eq!(served, ["caf__gr__e", "files_fs_read_file", "wiki_search"]);
        assert_eq!(
            names.origin("files_fs_read_file"),
            Some(&origin("files", "fs.read/file"))
        );
    }

    #[test]
    fn collisions_and_long_names_get_a_hash_and_every_name_is_legal() {
        let long = "a_very_long_tool_name_that_goes_on_and_on_and_on_forever";
        let set = [
            origin("a", "b_c"),
            origin("a_b", "c"),
            origin("a", "b.c"),
            origin("srv", long),
            origin("srv", &format!("{long}_2")),
        ];
        let names = Names::assign(set.clone());
        assert_eq!(names.len(), set.len(), "no tool is lost: {names:?}");
        for (name, _) in names.iter() {
            assert!(legal(name), "{name:?} is not a name every client takes");
        }
        // The first in order keeps the plain name; the others are told apart by a hash.
        assert_eq!(names.origin("a_b_c"), Some(&origin("a", "b.c")));
        let long_names: Vec<&str> = names
            .iter()
            .filter(|(_, o)| o.connector == "srv")
            .map(|(n, _)| n)
            .collect();
        assert_eq!(long_names.len(), 2);
        assert!(long_names.iter().all(|n| n.starts_with("srv_a_very_long")));
        assert_ne!(long_names[0], long_names[1]);
    }

    #[test]
    fn the_mapping_depends_only_on_the_set_not_its_order() {
        let set = vec![
            origin("a", "b_c"),
            origin("a_b", "c"),
            origin("x", &"y".repeat(80)),
            origin("a", "b_c"),
        ];
        let mut reversed = set.clone();
        reversed.reverse();
        let (one, two) = (Names::assign(set), Names::assign(reversed));
        let pairs = |n: &Names| -> Vec<(String, Origin)> {
            n.iter().map(|(a, b)| (a.to_string(), b.clone())).collect()
        };
        assert_eq!(pairs(&one), pairs(&two));
        assert_eq!(one.len(), 3, "the repeated tool is served once");
    }
}
