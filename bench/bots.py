#!/usr/bin/env python3
"""Measures bot start latency, the crash->restart gap and server memory with 200 idle bots,
for Sapine and for PM2 on the same machine in the same run. Standard library only.

Usage: bench/bots.py SAPINE_BINARY [BOTS]   (bench/bots.sh builds the binary and calls this)
BENCH_SETTINGS adds server flags, e.g. "--set sandbox=off" to see the sandbox's share.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

BINARY = sys.argv[1]
BOTS = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 200
PASSWORD = "correct horse battery staple"
# Idle bots sleep: what they run does not change what the supervisor spends on them, and a
# cheap program keeps one bot's start-up from slowing the measurement of the next.
IDLE = ["sleep", "1000000"]
# The same tiny program everywhere: stamp the clock when it starts.
STAMP = "date +%s%N >> stamps"
# A Python bot that does the same, as most users' bots are Python: its own start dominates.
PY_CRASH = ["python3", "-c", "import time; open('stamps', 'a').write(f'{time.time_ns()}\\n'); raise SystemExit(1)"]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ms(ns):
    return ns / 1e6


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def read_stamps(path):
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def wait_for(predicate, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.001)
    raise TimeoutError("condition not met")


class Api:
    def __init__(self, base):
        self.base, self.token = base, None

    def call(self, method, path, body=None, data=None, content_type="application/json"):
        payload = data if data is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=payload, method=method)
        if payload is not None:
            request.add_header("content-type", content_type)
        if self.token:
            request.add_header("authorization", "Bearer " + self.token)
        with urllib.request.urlopen(request) as response:
            raw = response.read()
            return json.loads(raw) if raw else None


def tar_gz_empty():
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("README")
        info.size = 0
        tar.addfile(info, io.BytesIO(b""))
    return buf.getvalue()


def bare_start_latency(runs=50):
    """fork/exec of the same stamping command, straight from this process."""
    work = tempfile.mkdtemp()
    samples = []
    for _ in range(runs):
        t0 = time.time_ns()
        subprocess.Popen(["sh", "-c", STAMP], cwd=work, env={"PATH": "/usr/bin:/bin"}).wait()
        samples.append(read_stamps(os.path.join(work, "stamps"))[-1] - t0)
    shutil.rmtree(work)
    return samples


def bare_crash_loop(seconds=3.0):
    """A loop restarting the stamping command as soon as it exits: its own start-and-exit time."""
    work = tempfile.mkdtemp()
    end = time.time() + seconds
    while time.time() < end:
        subprocess.Popen(["sh", "-c", STAMP + "; exit 1"], cwd=work, env={"PATH": "/usr/bin:/bin"}).wait()
    stamps = read_stamps(os.path.join(work, "stamps"))
    shutil.rmtree(work)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def bare_python_loop(seconds=3.0):
    work = tempfile.mkdtemp()
    end = time.time() + seconds
    while time.time() < end:
        subprocess.Popen(PY_CRASH, cwd=work, env={"PATH": "/usr/bin:/bin"}).wait()
    stamps = read_stamps(os.path.join(work, "stamps"))
    shutil.rmtree(work)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def sapine():
    data = tempfile.mkdtemp()
    settings = [
        "--data-dir", data,
        "--set", "plan_limits=free: max_bots=10000 memory_mb=256 pids=64",
        "--set", "rate_limit_ip_per_minute=100000000",
        "--set", "rate_limit_account_per_minute=100000000",
        *os.environ.get("BENCH_SETTINGS", "").split(),
    ]
    subprocess.run([BINARY, *settings, "admin", "create-user", "--email", "bench@example.com", "--password-stdin"],
                   input=PASSWORD.encode(), check=True, stdout=subprocess.DEVNULL)
    port = 20000 + os.getpid() % 20000
    server = subprocess.Popen([BINARY, *settings, "serve", "--bind", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(data, "server.log"), "w"))
    api = Api(f"http://127.0.0.1:{port}")
    try:
        wait_for(lambda: _up(api))
        time.sleep(1.0)
        idle_kb = rss_kb(server.pid)
        api.token = api.call("POST", "/api/v1/auth/login", {"email": "bench@example.com", "password": PASSWORD})["access_token"]
        code = tar_gz_empty()

        # The crash loops run first, on a quiet server, as PM2's do.
        gaps = sapine_crash_loop(api, data, code, "crasher", ["sh", "-c", STAMP + "; exit 1"])
        py_gaps = sapine_crash_loop(api, data, code, "py-crasher", PY_CRASH)

        ids = []
        for i in range(BOTS):
            bot = api.call("POST", "/api/v1/bots", {
                "name": f"idle-{i}", "command": ["sh", "-c", STAMP + "; exec " + " ".join(IDLE)],
            })
            api.call("PUT", f"/api/v1/bots/{bot['id']}/code", data=code, content_type="application/gzip")
            ids.append(bot["id"])
        # The baseline for the per-bot cost: logged in (which allocates the password hashing
        # buffers) and with every bot defined, none running.
        time.sleep(1.0)
        before_kb = rss_kb(server.pid)
        latencies = []
        started = time.time()
        for bot_id in ids:
            stamps = os.path.join(data, "bots", bot_id, "code-1", "stamps")
            t0 = time.time_ns()
            api.call("POST", f"/api/v1/bots/{bot_id}/start")
            latencies.append(wait_for(lambda: read_stamps(stamps))[0] - t0)
        per_bot_ms = (time.time() - started) * 1000 / BOTS
        time.sleep(3.0)
        loaded_kb = rss_kb(server.pid)
        threads = len(os.listdir(f"/proc/{server.pid}/task"))

        for bot_id in ids:
            api.call("POST", f"/api/v1/bots/{bot_id}/kill")
        return {"idle_kb": idle_kb, "before_kb": before_kb, "loaded_kb": loaded_kb, "threads": threads,
                "py_gaps": py_gaps, "latencies": latencies,
                "per_bot_ms": per_bot_ms, "gaps": gaps}
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)


def sapine_crash_loop(api, data, code, name, command, seconds=3.0):
    bot = api.call("POST", "/api/v1/bots", {
        "name": name, "command": command,
        "restart_policy": {"mode": "on_failure", "backoff_initial_ms": 0, "backoff_max_ms": 0,
                           "max_restarts": 10000, "window_ms": 1000, "min_uptime_ms": 0},
    })
    api.call("PUT", f"/api/v1/bots/{bot['id']}/code", data=code, content_type="application/gzip")
    api.call("POST", f"/api/v1/bots/{bot['id']}/start")
    time.sleep(seconds)
    api.call("POST", f"/api/v1/bots/{bot['id']}/kill")
    stamps = read_stamps(os.path.join(data, "bots", bot["id"], "code-1", "stamps"))
    return [b - a for a, b in zip(stamps, stamps[1:])]


def _up(api):
    try:
        api.call("GET", "/health")
        return True
    except OSError:
        return False


def pm2_crash_loop(run, eco, script, args, seconds=3.0):
    crash_dir = tempfile.mkdtemp()
    json.dump({"apps": [{"name": "crasher", "script": script, "args": args, "interpreter": "none",
                         "cwd": crash_dir, "autorestart": True, "restart_delay": 0,
                         "max_restarts": 100000, "min_uptime": 0}]}, open(eco, "w"))
    run("start", eco)
    time.sleep(seconds)
    run("delete", "all")
    stamps = read_stamps(os.path.join(crash_dir, "stamps"))
    shutil.rmtree(crash_dir, ignore_errors=True)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def pm2():
    home = tempfile.mkdtemp()
    env = dict(os.environ, PM2_HOME=home)
    run = lambda *args: subprocess.run(["pm2", *args], env=env, check=True, capture_output=True)
    work = tempfile.mkdtemp()
    try:
        run("ping")
        time.sleep(1.0)
        daemon = int(open(os.path.join(home, "pm2.pid")).read())
        idle_kb = rss_kb(daemon)
        eco = os.path.join(work, "bots.json")
        gaps = pm2_crash_loop(run, eco, "sh", ["-c", STAMP + "; exit 1"])
        py_gaps = pm2_crash_loop(run, eco, PY_CRASH[0], PY_CRASH[1:])
        apps = [{"name": f"idle-{i}", "script": IDLE[0], "args": IDLE[1:], "interpreter": "none",
                 "cwd": work, "autorestart": True} for i in range(BOTS)]
        json.dump({"apps": apps}, open(eco, "w"))
        started = time.time()
        run("start", eco)
        wait_for(lambda: sum(1 for p in json.loads(run("jlist").stdout) if p["pm2_env"]["status"] == "online") == BOTS, 120)
        per_bot_ms = (time.time() - started) * 1000 / BOTS
        time.sleep(3.0)
        loaded_kb = rss_kb(daemon)
        run("delete", "all")

        return {"idle_kb": idle_kb, "loaded_kb": loaded_kb, "per_bot_ms": per_bot_ms, "gaps": gaps,
                "py_gaps": py_gaps}
    finally:
        subprocess.run(["pm2", "kill"], env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def main():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {os.cpu_count()} cores, {cpu}; {BOTS} bots")
    bare = bare_start_latency()
    bare_gaps = bare_crash_loop()
    s = sapine()
    p = pm2() if shutil.which("pm2") else None
    print(f"bare fork/exec of the stamping command: p50 {ms(pct(bare, 50)):.2f} ms, p95 {ms(pct(bare, 95)):.2f} ms")
    print(f"sapine start (API call -> bot running): p50 {ms(pct(s['latencies'], 50)):.2f} ms, "
          f"p95 {ms(pct(s['latencies'], 95)):.2f} ms  (p95 {ms(pct(s['latencies'], 95) - pct(bare, 95)):+.2f} ms vs bare)")
    print(f"time per bot to start {BOTS} one after another: sapine {s['per_bot_ms']:.1f} ms"
          + (f", pm2 {p['per_bot_ms']:.1f} ms (all at once from one file)" if p else ""))
    print(f"bot's own start-and-exit (bare restart loop): median {ms(statistics.median(bare_gaps)):.2f} ms "
          f"over {len(bare_gaps)} runs")
    print(f"sapine crash->next start, backoff 0: median {ms(statistics.median(s['gaps'])):.2f} ms, "
          f"p95 {ms(pct(s['gaps'], 95)):.2f} ms, mean {ms(statistics.mean(s['gaps'])):.2f} ms "
          f"over {len(s['gaps'])} restarts "
          f"({ms(statistics.median(s['gaps']) - statistics.median(bare_gaps)):+.2f} ms vs bare)")
    if p:
        print(f"pm2 crash->next start, restart_delay 0: median {ms(statistics.median(p['gaps'])):.2f} ms, "
              f"p95 {ms(pct(p['gaps'], 95)):.2f} ms over {len(p['gaps'])} restarts")
    bare_py = bare_python_loop()
    print(f"python bot's own start-and-exit (bare restart loop): median {ms(statistics.median(bare_py)):.2f} ms")
    print(f"sapine python crash->next start: median {ms(statistics.median(s['py_gaps'])):.2f} ms, "
          f"p95 {ms(pct(s['py_gaps'], 95)):.2f} ms over {len(s['py_gaps'])} restarts "
          f"({ms(statistics.median(s['py_gaps']) - statistics.median(bare_py)):+.2f} ms vs bare)")
    if p:
        print(f"pm2 python crash->next start: median {ms(statistics.median(p['py_gaps'])):.2f} ms, "
              f"p95 {ms(pct(p['py_gaps'], 95)):.2f} ms over {len(p['py_gaps'])} restarts")
    print(f"sapine server RSS: idle {s['idle_kb'] / 1024:.1f} MB; logged in with {BOTS} bots defined "
          f"{s['before_kb'] / 1024:.1f} MB; with the {BOTS} running {s['loaded_kb'] / 1024:.1f} MB "
          f"({(s['loaded_kb'] - s['before_kb']) / BOTS:.1f} KB per running bot; {s['threads']} threads)")
    if p:
        print(f"pm2 daemon RSS: idle {p['idle_kb'] / 1024:.1f} MB, with {BOTS} idle bots {p['loaded_kb'] / 1024:.1f} MB "
              f"({(p['loaded_kb'] - p['idle_kb']) / BOTS:.1f} KB per bot)")


if __name__ == "__main__":
    main()
