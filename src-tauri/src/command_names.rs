// The commands the window may call, by name: the app grants and forwards exactly these, and
// build.rs (which `include!`s this file) lists them in the app manifest for the capabilities.

/// Every command the window may call.
pub const COMMANDS: &[&str] = &[
    "overview",
    "set_enabled",
    "sync_now",
    "tools",
    "call_tool",
    "latency_svg",
    "registry_entries",
    "save_server",
    "remove_server",
    "set_manifest",
    "import_preview",
    "import_apply",
];
