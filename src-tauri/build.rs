fn main() {
    // Every command the UI may call is listed here; capabilities/default.json grants exactly these.
    let commands = &[
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
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(commands)),
    )
    .expect("tauri build configuration");
}
