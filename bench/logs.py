#!/usr/bin/env python3
"""Log pipeline benchmark, Sapine beside PM2 in one run: ingest speed from one bot to disk
(`yes | head -n 2000000` and a Python loop of 200,000 lines), line-to-viewer latency with 10
live viewers on a bot printing 50,000 lines/s, /health while a bot floods, and server RSS.

Usage: bench/logs.py SAPINE_BINARY LOG_VIEWERS_BINARY   (bench/logs.sh builds both)
"""
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
# Bots, PM2 and the bare pipe all get Python's default buffering: an inherited
# PYTHONUNBUFFERED would make every line a write of its own for some of them only.
os.environ.pop("PYTHONUNBUFFERED", None)
from bots import PASSWORD, Api, _up, pct, rss_kb, wait_for  # noqa: E402

BINARY, VIEWERS_BIN = sys.argv[1], sys.argv[2]
YES_LINES = 2_000_000
YES = ["sh", "-c", f"yes | head -n {YES_LINES}"]
# One interpreter for all: the one bots get on their default PATH, not a shim earlier on ours.
PYTHON = "/usr/bin/python3"


def py_loop(lines):
    """A Python bot printing `lines` numbers as fast as it can, and the bytes that makes."""
    command = [PYTHON, "-c", f"import sys\nw = sys.stdout.write\nfor i in range({lines}):\n    w(f'{{i}}\\n')\n"]
    return command, sum(len(str(i)) + 1 for i in range(lines))
VIEWERS = 10
RATE = 50_000
SECONDS = 10
# Prints RATE stamped lines a second, in 1 ms bursts: "<ns since the epoch> <n>".
PACED = [PYTHON, "-c", f"""
import sys, time
w, f = sys.stdout.write, sys.stdout.flush
total, n, start = {RATE * SECONDS}, 0, time.time()
while n < total:
    due = min(total, int((time.time() - start) * {RATE}) + 1)
    while n < due:
        w(f"{{time.time_ns()}} {{n}}\\n")
        n += 1
    f()
    time.sleep(0.001)
"""]
RUNS = 3


def vm_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def empty_code():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.addfile(tarfile.TarInfo("README"), io.BytesIO(b""))
    return buf.getvalue()


def bare_pipe(command, lines):
    t0 = time.time()
    out = subprocess.run(command, stdout=subprocess.PIPE, check=True).stdout
    elapsed = time.time() - t0
    assert out.count(b"\n") == lines
    return elapsed


class Sapine:
    def __init__(self):
        self.data = tempfile.mkdtemp()
        settings = [
            "--data-dir", self.data,
            # The flood throttle raised for the ingest runs, as the issue asks.
            "--set", "plan_limits=free: max_bots=100 log_rate=100000000 log_mb=1000",
            "--set", "rate_limit_ip_per_minute=100000000",
            "--set", "rate_limit_account_per_minute=100000000",
        ]
        subprocess.run([BINARY, *settings, "admin", "create-user", "--email", "bench@example.com", "--password-stdin"],
                       input=PASSWORD.encode(), check=True, stdout=subprocess.DEVNULL)
        self.port = 20000 + os.getpid() % 20000
        self.server = subprocess.Popen([BINARY, *settings, "serve", "--bind", f"127.0.0.1:{self.port}"],
                                       stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.data, "server.log"), "w"))
        self.api = Api(f"http://127.0.0.1:{self.port}")
        wait_for(lambda: _up(self.api))
        time.sleep(1.0)
        self.idle_kb = rss_kb(self.server.pid)
        self.api.token = self.api.call("POST", "/api/v1/auth/login",
                                       {"email": "bench@example.com", "password": PASSWORD})["access_token"]
        self.code = empty_code()
        self.bots = 0

    def bot(self, command):
        self.bots += 1
        bot = self.api.call("POST", "/api/v1/bots", {"name": f"b{self.bots}", "command": command,
                                                     "restart_policy": {"mode": "never"}})
        self.api.call("PUT", f"/api/v1/bots/{bot['id']}/code", data=self.code, content_type="application/gzip")
        return bot["id"]

    def status(self, bot):
        return self.api.call("GET", f"/api/v1/bots/{bot}")["status"]

    def ingest(self, command, lines):
        """Seconds from the start request until the bot has ended and its last line is
        numbered and readable; checks that no line is missing."""
        bot = self.bot(command)
        t0 = time.time()
        self.api.call("POST", f"/api/v1/bots/{bot}/start")
        wait_for(lambda: self.status(bot) == "stopped", 120)
        elapsed = time.time() - t0
        system = self.api.call("GET", f"/api/v1/bots/{bot}/logs?stream=system")["items"]
        started = next(l["seq"] for l in system if l["line"].startswith("started"))
        ended = next(l["seq"] for l in system if l["line"].startswith("exited"))
        assert ended - started - 1 == lines, f"{ended - started - 1} lines numbered, {lines} printed"
        with urllib.request.urlopen(urllib.request.Request(
                f"{self.api.base}/api/v1/bots/{bot}/logs/download",
                headers={"authorization": "Bearer " + self.api.token})) as response:
            kept = sum(1 for line in response if b" stdout " in line)
        assert kept == lines, f"{kept} lines kept of {lines}"
        self.api.call("DELETE", f"/api/v1/bots/{bot}")
        return elapsed

    def viewers(self):
        bot = self.bot(PACED)
        viewers = subprocess.Popen([VIEWERS_BIN, f"127.0.0.1:{self.port}", self.api.token, bot, str(VIEWERS),
                                    str(RATE * SECONDS)], stdout=subprocess.PIPE, text=True)
        assert viewers.stdout.readline().strip() == "ready"
        self.api.call("POST", f"/api/v1/bots/{bot}/start")
        peak = 0
        while viewers.poll() is None:
            peak = max(peak, rss_kb(self.server.pid))
            time.sleep(0.1)
        result = json.loads(viewers.stdout.read())
        result["server_rss_peak_mb"] = peak / 1024
        return result

    def health_under_flood(self):
        """/health latencies while `yes` floods with the throttle raised, and the server's RSS
        after one and after five seconds of it."""
        bot = self.bot(["yes", "flood"])
        self.api.call("POST", f"/api/v1/bots/{bot}/start")
        time.sleep(1.0)
        rss_early = rss_kb(self.server.pid)
        samples = []
        t0 = time.time()
        while time.time() - t0 < 4.0:
            started = time.perf_counter()
            self.api.call("GET", "/health")
            samples.append((time.perf_counter() - started) * 1000)
            time.sleep(0.005)
        rss_late = rss_kb(self.server.pid)
        self.api.call("POST", f"/api/v1/bots/{bot}/kill")
        return samples, rss_early, rss_late

    def close(self):
        self.server.terminate()
        self.server.wait()
        shutil.rmtree(self.data, ignore_errors=True)


class Pm2:
    def __init__(self):
        self.home = tempfile.mkdtemp()
        self.env = dict(os.environ, PM2_HOME=self.home)
        self.work = tempfile.mkdtemp()
        self.run("ping")
        self.daemon = int(open(os.path.join(self.home, "pm2.pid")).read())
        self.apps = 0

    def run(self, *args):
        return subprocess.run(["pm2", *args], env=self.env, check=True, capture_output=True)

    def start(self, command):
        self.apps += 1
        out = os.path.join(self.work, f"out-{self.apps}.log")
        eco = os.path.join(self.work, f"app-{self.apps}.json")
        json.dump({"apps": [{"name": f"a{self.apps}", "script": command[0], "args": command[1:],
                             "interpreter": "none", "cwd": self.work, "autorestart": False,
                             "out_file": out, "error_file": os.path.join(self.work, "err.log")}]}, open(eco, "w"))
        self.run("start", eco)
        return out, f"a{self.apps}"

    def ingest(self, command, size):
        """Seconds from `pm2 start` until the log file stops growing, and the bytes it lacks
        then (PM2 can lose the end of a fast bot's output)."""
        t0 = time.time()
        out, name = self.start(command)
        last_size, last_change = -1, time.time()
        while time.time() - last_change < 1.0:
            now = os.path.getsize(out) if os.path.exists(out) else 0
            if now != last_size:
                last_size, last_change = now, time.time()
            if now >= size:
                break
            time.sleep(0.002)
        elapsed = last_change - t0
        self.run("delete", name)
        return elapsed, size - last_size

    def viewers(self):
        env = dict(self.env, NODE_PATH=subprocess.run(["npm", "root", "-g"], capture_output=True, text=True).stdout.strip())
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pm2_viewer.js")
        viewers = [subprocess.Popen(["node", script, str(RATE * SECONDS)], env=env, stdout=subprocess.PIPE, text=True)
                   for _ in range(VIEWERS)]
        for v in viewers:
            assert v.stdout.readline().strip() == "ready"
        _, name = self.start(PACED)
        peak = 0
        while any(v.poll() is None for v in viewers):
            peak = max(peak, rss_kb(self.daemon))
            time.sleep(0.1)
        results = [json.loads(v.stdout.read()) for v in viewers]
        self.run("delete", name)
        return {"lines_per_viewer": [r["lines"] for r in results],
                "p50_ms": statistics.median(r["p50_ms"] for r in results),
                "p99_ms": max(r["p99_ms"] for r in results),
                "max_ms": max(r["max_ms"] for r in results),
                "daemon_rss_peak_mb": peak / 1024}

    def close(self):
        subprocess.run(["pm2", "kill"], env=self.env, capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)


def rate(lines, seconds):
    return f"{lines / seconds / 1e6:.2f} M lines/s ({seconds:.2f} s)"


def main():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {os.cpu_count()} cores, {cpu}")
    py_small, py_small_bytes = py_loop(200_000)
    py_large, py_large_bytes = py_loop(2_000_000)
    print(f"bare pipe: yes | head -n {YES_LINES}: {rate(YES_LINES, bare_pipe(YES, YES_LINES))}; "
          f"python loop: 200,000 lines {rate(200_000, bare_pipe(py_small, 200_000))}, "
          f"2,000,000 lines {rate(2_000_000, bare_pipe(py_large, 2_000_000))}")

    s = Sapine()
    p = Pm2()
    try:
        for name, command, lines, size in [("yes | head", YES, YES_LINES, 2 * YES_LINES),
                                           ("python loop", py_small, 200_000, py_small_bytes),
                                           ("python loop", py_large, 2_000_000, py_large_bytes)]:
            ours = sorted(s.ingest(command, lines) for _ in range(RUNS))
            theirs = sorted(p.ingest(command, size) for _ in range(RUNS))
            lost = [missing for _, missing in theirs if missing]
            print(f"ingest {name}, {lines} lines, median of {RUNS}: sapine {rate(lines, ours[RUNS // 2])}, "
                  f"none lost; pm2 {rate(lines, theirs[RUNS // 2][0])}"
                  + (f", lost the last {lost} bytes in {len(lost)} of {RUNS} runs" if lost else ", none lost"))
        v = s.viewers()
        print(f"sapine, {VIEWERS} WebSocket viewers, bot at {RATE} lines/s for {SECONDS} s: "
              f"lines per viewer {v['lines_per_viewer']}, latency p50 {v['p50_ms']:.2f} ms, "
              f"p99 {v['p99_ms']:.2f} ms, max {v['max_ms']:.2f} ms; server RSS peak {v['server_rss_peak_mb']:.1f} MB")
        pv = p.viewers()
        print(f"pm2, {VIEWERS} log-bus viewers (what `pm2 logs` reads), same bot: "
              f"lines per viewer {pv['lines_per_viewer']}, latency p50 {pv['p50_ms']:.2f} ms, "
              f"p99 {pv['p99_ms']:.2f} ms, max {pv['max_ms']:.2f} ms; daemon RSS peak {pv['daemon_rss_peak_mb']:.1f} MB")
        h, early, late = s.health_under_flood()
        print(f"sapine /health while `yes` floods unthrottled: p50 {pct(h, 50):.2f} ms, p99 {pct(h, 99):.2f} ms, "
              f"max {max(h):.2f} ms over {len(h)} requests; server RSS {early / 1024:.1f} MB after 1 s of the flood, "
              f"{late / 1024:.1f} MB after 5 s")
        print(f"sapine server RSS: idle {s.idle_kb / 1024:.1f} MB (before any login), "
              f"peak over the whole run {vm_kb(s.server.pid, 'VmHWM') / 1024:.1f} MB")
    finally:
        s.close()
        p.close()


if __name__ == "__main__":
    main()
