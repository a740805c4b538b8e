"""Measures the tray app (release build) as the README reports it: time from launch to tray
ready; then, with N healthy fixture connectors, CPU (% of one core) and the summed PSS of all the
app's processes (the app and its WebKit children) over a window of seconds, once started hidden
(window closed), once with the window open, and once with the window opened and then closed
(its process ended, as closing it does). Usage (scripts/measure-app.sh builds and calls
it): measure-app.py APP CLI FIXTURE [--tray-watcher BIN] [--connectors 20] [--seconds 60]. With
a tray watcher (a stand-in for the panel's tray host, on the session bus: run it under
dbus-run-session) the app keeps running when its window closes, as on a desktop with a tray.
Prints a table and one JSON line. Needs a display: run it under xvfb-run."""

import argparse
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

TICKS = os.sysconf("SC_CLK_TCK")


def tree(root):
    """The pids of `root` and all its descendants."""
    children = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(pid))
        except (OSError, IndexError, ValueError):
            pass
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError):
        return 0


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def names(pids):
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm") as f:
                out.append(f.read().strip())
        except OSError:
            pass
    return sorted(out)


def end_window(root):
    """Ends the window process below `root` and waits until it is gone."""
    def windows():
        found = []
        for pid in tree(root):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"--window" in f.read().split(b"\0"):
                        found.append(pid)
            except OSError:
                pass
        return found
    pids = windows()
    if not pids:
        raise SystemExit("no window process to close")
    for pid in pids:
        os.kill(pid, 15)
    deadline = time.monotonic() + 10
    while windows() or any(n.startswith("WebKit") for n in names(tree(root))):
        if time.monotonic() > deadline:
            raise SystemExit("the window process did not end")
        time.sleep(0.1)


def run_app(app, config_dir, log_dir, hidden, connectors, seconds, close_window=False):
    env = dict(os.environ, SWITCHBOARD_CONFIG_DIR=config_dir, SWITCHBOARD_LOG_DIR=log_dir,
               RUST_LOG="warn,switchboard=info,switchboard_app=info")
    env.pop("SWITCHBOARD_MANIFEST", None)
    args = [app] + (["--hidden"] if hidden else [])
    started = time.monotonic()
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, bufsize=1)
    tray_ready = None
    healthy = set()
    deadline = started + 60
    try:
        while True:
            ready, _, _ = select.select([proc.stderr], [], [], max(0, deadline - time.monotonic()))
            line = proc.stderr.readline() if ready else ""
            now = time.monotonic()
            if not ready or not line:
                raise SystemExit(f"not settled in 60 s (or the app exited): tray ready {tray_ready}, "
                                 f"healthy {len(healthy)}")
            if tray_ready is None and "tray ready" in line:
                tray_ready = now - started
            if 'to="healthy"' in line:
                healthy.add(line.split('connector="', 1)[1].split('"', 1)[0])
            if tray_ready is not None and len(healthy) >= connectors:
                break
        # Keep reading stderr so the app never blocks on a full pipe.
        drain = subprocess.Popen(["cat"], stdin=proc.stderr, stdout=subprocess.DEVNULL)
        if close_window:
            time.sleep(5)  # the page loads and asks for what it shows
            end_window(proc.pid)
        # Warm-up: the web process spends ~2 s of CPU loading the page; idle is what follows.
        time.sleep(10)
        pids = tree(proc.pid)
        ticks0 = {pid: cpu_ticks(pid) for pid in pids}
        samples = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(min(5, seconds - (time.monotonic() - t0)) if seconds > 0 else 0)
            pids = tree(proc.pid)
            samples.append(sum(pss_kib(pid) for pid in pids))
        elapsed = time.monotonic() - t0
        ticks = sum(cpu_ticks(pid) - ticks0.get(pid, 0) for pid in tree(proc.pid))
        return {
            "tray_ready_s": round(tray_ready, 3),
            "cpu_percent": round(100 * ticks / TICKS / elapsed, 3),
            "pss_mb_mean": round(sum(samples) / len(samples) / 1024, 1),
            "pss_mb_max": round(max(samples) / 1024, 1),
            "processes": names(tree(proc.pid)),
        }
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("app")
    parser.add_argument("cli")
    parser.add_argument("fixture")
    parser.add_argument("--tray-watcher")
    parser.add_argument("--connectors", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=60)
    options = parser.parse_args()
    work = tempfile.mkdtemp(prefix="sb-measure-")
    watcher = None
    if options.tray_watcher:
        watcher = subprocess.Popen([options.tray_watcher], stdout=subprocess.PIPE, text=True)
        if watcher.stdout.readline().strip() != "ready":
            raise SystemExit("the tray watcher did not start")
    fleet = subprocess.Popen([options.fixture, "--fleet", str(options.connectors)],
                             stdout=subprocess.PIPE, text=True)
    try:
        urls = [fleet.stdout.readline().strip() for _ in range(options.connectors)]
        config = os.path.join(work, "config")
        for i, url in enumerate(urls):
            subprocess.run([options.cli, "--config-dir", config, "registry", "add", f"c{i:02}",
                            "--url", url], check=True, stdout=subprocess.DEVNULL)
        results = {}
        phases = (("window_closed", True, False), ("window_open", False, False),
                  ("closed_after_use", False, True))
        for label, hidden, close_window in phases:
            results[label] = run_app(options.app, config, os.path.join(work, f"logs-{label}"),
                                     hidden, options.connectors, options.seconds, close_window)
    finally:
        fleet.terminate()
        if watcher:
            watcher.terminate()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'':16} {'to tray':>9} {'CPU % core':>11} {'PSS MB mean':>12} {'PSS MB max':>11}  processes")
    for label, r in results.items():
        print(f"{label:16} {r['tray_ready_s']:>8.3f}s {r['cpu_percent']:>11.3f} "
              f"{r['pss_mb_mean']:>12.1f} {r['pss_mb_max']:>11.1f}  {', '.join(r['processes'])}")
    print(json.dumps({"bench": "app", "connectors": options.connectors, "seconds": options.seconds,
                      **{f"{k}_{m}": v for k, r in results.items() for m, v in r.items()
                         if m != "processes"}}))


if __name__ == "__main__":
    sys.exit(main())
