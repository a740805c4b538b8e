"""The soak: a daemon (`switchboard sync`) runs for MINUTES while everything around it churns,
and its resources are sampled every 10 s.

  soak.py SWITCHBOARD FIXTURE MINUTES

- the manifest (a file, re-read every 5 s) is rewritten every 5 s, one of its connectors
  leaving and coming back in turn;
- one of its four HTTP fixture servers (each its own process) is killed every 15 s and started
  again on its port 3 s later;
- two stdio fixture servers in the registry, one switched off and on every 7 s;
- a tool call every 2 s through the daemon (`switchboard call`).

After a warm-up (the first fifth), it reports the daemon's RSS slope (least squares, MB per
10 minutes), its file descriptors and threads (first and last sample, min and max), and after
SIGTERM the fixture processes it started that are still alive (orphans). One JSON line last.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

switchboard, fixture, minutes = sys.argv[1], sys.argv[2], float(sys.argv[3])
home = tempfile.mkdtemp(prefix="switchboard-soak-")
config = os.path.join(home, "config")
manifest = os.path.join(home, "manifest.json")
marker = f"soak-{os.getpid()}"  # in every stdio fixture's pid-file path: how orphans are found


def cli(*args):
    return subprocess.run([switchboard, "--config-dir", config, *args], capture_output=True,
                          text=True, timeout=60)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http(port):
    return subprocess.Popen([fixture, "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def write_manifest(ports, leaving):
    connectors = [
        {"id": f"web-{i}", "version": "1", "name": f"web-{i}", "scopes": ["read"],
         "status": "enabled", "ttl": 5, "endpoint": f"http://127.0.0.1:{port}/mcp",
         "transport": "streamable-http", "timeouts": {"connectMs": 5000, "callMs": 30000},
         "metadata": {}}
        for i, port in enumerate(ports) if i != leaving
    ]
    body = {"id": "soak", "brand": "soak", "generatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ",
            time.gmtime()), "ttlSeconds": 5, "connectors": connectors}
    tmp = manifest + ".tmp"
    with open(tmp, "w") as f:
        json.dump(body, f)
    os.replace(tmp, manifest)


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "threads": int(fields["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def fixtures_alive():
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def slope_mb_per_10_min(samples):
    xs = [t for t, _ in samples]
    ys = [r for _, r in samples]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var * 600


ports = [free_port() for _ in range(4)]
servers = {port: start_http(port) for port in ports}
os.makedirs(config, exist_ok=True)
for i in range(2):
    pid_file = os.path.join(home, f"{marker}-stdio-{i}.pid")
    out = cli("registry", "add", f"local-{i}", "--command", fixture, "--arg", "--stdio",
              "--arg", "--pid-file", "--arg", pid_file)
    assert out.returncode == 0, out.stderr
write_manifest(ports, leaving=None)
env = dict(os.environ, MCP_CONNECTOR_REFRESH_INTERVAL_MS="5000", RUST_LOG="warn")
daemon = subprocess.Popen([switchboard, "--config-dir", config, "sync", "--manifest", manifest],
                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(home, "sync.log"), "w"),
                          env=env)
time.sleep(5)

started = time.monotonic()
end = started + minutes * 60
samples, calls, failed_calls = [], 0, 0
next_at = {"manifest": 0, "flap": 15, "toggle": 7, "call": 2, "sample": 0}
turn, down, enabled = 0, None, True
while time.monotonic() < end:
    now = time.monotonic() - started
    if now >= next_at["manifest"]:
        turn += 1
        write_manifest(ports, leaving=turn % (len(ports) + 1) if turn % 2 else None)
        next_at["manifest"] += 5
    if now >= next_at["flap"]:
        if down is None:
            down = ports[turn % len(ports)]
            servers[down].kill()
            servers[down].wait()
            next_at["flap"] += 3
        else:
            servers[down] = start_http(down)
            down = None
            next_at["flap"] += 12
    if now >= next_at["toggle"]:
        enabled = not enabled
        cli("registry", "enable" if enabled else "disable", "local-1")
        next_at["toggle"] += 7
    if now >= next_at["call"]:
        calls += 1
        failed_calls += cli("call", "local-0.tool_000", "--args", "{}").returncode != 0
        next_at["call"] += 2
    if now >= next_at["sample"]:
        status = proc_status(daemon.pid)
        samples.append((now, status))
        print(f"{now:7.0f} s  rss {status['rss_mb']:.1f} MB  fds {status['fds']}  "
              f"threads {status['threads']}", flush=True)
        next_at["sample"] += 10
    time.sleep(0.2)

daemon.send_signal(signal.SIGTERM)
exit_status = daemon.wait(timeout=30)
for server in servers.values():
    server.kill()
    server.wait()
deadline = time.monotonic() + 10
while fixtures_alive() and time.monotonic() < deadline:
    time.sleep(0.1)
orphans = fixtures_alive()

warm = [s for s in samples if s[0] >= minutes * 60 / 5] or samples
fds = [s["fds"] for _, s in warm]
threads = [s["threads"] for _, s in warm]
report = {
    "bench": "soak", "minutes": minutes, "samples": len(samples), "calls": calls,
    "failed_calls": failed_calls,
    "rss_mb_first": round(warm[0][1]["rss_mb"], 1), "rss_mb_last": round(warm[-1][1]["rss_mb"], 1),
    "rss_slope_mb_per_10_min": round(slope_mb_per_10_min([(t, s["rss_mb"]) for t, s in warm]), 2),
    "fds_min": min(fds), "fds_max": max(fds), "fds_first": fds[0], "fds_last": fds[-1],
    "threads_min": min(threads), "threads_max": max(threads),
    "daemon_exit": exit_status, "orphans": len(orphans),
}
print(json.dumps(report))
sys.exit(0 if exit_status == 0 and not orphans else 1)
