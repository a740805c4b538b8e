//! The tool catalog: every live tool, named `connector.tool` so two servers' tools never collide.

use std::collections::BTreeMap;

use rmcp::model::Tool;

/// One tool of one connector.
#[derive(Debug, Clone)]
pub struct CatalogTool {
    pub connector: String,
    pub tool: Tool,
}

/// Exactly the tools of the connectors it was built from; nothing else.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tools: BTreeMap<String, CatalogTool>,
}

impl Catalog {
    pub fn from_connectors<'a>(
        connectors: impl IntoIterator<Item = (&'a str, &'a [Tool])>,
    ) -> Self {
        let tools = connectors
            .into_iter()
            .flat_map(|(connector, tools)| {
                tools.iter().map(move |tool| {
                    (
                        qualified_name(connector, &tool.name),
                        CatalogTool {
                            connector: connector.to_string(),
                            tool: tool.clone(),
                        },
                    )
                })
            })
            .collect();
        Self { tools }
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &CatalogTool)> {
        self.tools.iter().map(|(name, tool)| (name.as_str(), tool))
    }

    pub fn get(&self, qualified: &str) -> Option<&CatalogTool> {
        self.tools.get(qualified)
    }
}

pub fn qualified_name(connector: &str, tool: &str) -> String {
    format!("{connector}.{tool}")
}

/// Splits `connector.tool` at the first dot (connector ids have none; tool names may).
pub fn split_qualified(qualified: &str) -> Option<(&str, &str)> {
    qualified
        .split_once('.')
        .filter(|(connector, tool)| !connector.is_empty() && !tool.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> Tool {
        Tool::new(
            name.to_string(),
            "t",
            std::sync::Arc::new(serde_json::Map::new()),
        )
    }

    #[test]
    fn tools_are_namespaced_per_connector_and_never_collide() {
        let (a, b) = ([tool("search"), tool("fetch")], [tool("search")]);
        let catalog = Catalog::from_connectors([("wiki", &a[..]), ("docs", &b[..])]);
        assert_eq!(catalog.len(), 3);
        assert_eq!(catalog.get("docs.search").unwrap().connector, "docs");
        assert!(catalog.get("search").is_none());
    }

    #[test]
    fn qualified_names_split_at_the_first_dot() {
        assert_eq!(
            split_qualified("wiki.pages.get"),
            Some(("wiki", "pages.get"))
        );
        assert_eq!(split_qualified("wiki"), None);
        assert_eq!(split_qualified(".x"), None);
    }
}
