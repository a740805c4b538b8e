// The wire's command list, which the app grants the window (its capabilities) and forwards.
const COMMANDS: &[&str] = include!("../src/wire/command_names.in");

fn main() {
    println!("cargo:rerun-if-changed=../src/wire/command_names.in");
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri build configuration");
}
