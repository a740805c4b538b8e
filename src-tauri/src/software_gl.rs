//! GTK probes OpenGL as it opens the display, and that maps the GL driver into the process for
//! good: on Mesa, 26 MB of LLVM held all day by a tray app whose window is closed. The window is
//! a small page that WebKit draws well enough without the GPU, so the app runs with GDK's GL off.

/// Restarts the app in place (same pid, same arguments) with `GDK_GL=disable`, unless GDK_GL is
/// already set: by that restart, or by a user who wants GL back (`GDK_GL=` does that). GDK reads
/// it once, when GTK starts, so it must be in the environment before the process begins.
#[cfg(target_os = "linux")]
pub fn restart_without_gl() {
    use std::os::unix::process::CommandExt as _;
    if std::env::var_os("GDK_GL").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(name) = args.next() {
        command.arg0(name);
    }
    // `exec` returns only if the restart failed; the app then runs as it is, with GL.
    let error = command.args(args).env("GDK_GL", "disable").exec();
    eprintln!("switchboard-app: runs with OpenGL: restarting without it failed: {error}");
}

#[cfg(not(target_os = "linux"))]
pub fn restart_without_gl() {}
