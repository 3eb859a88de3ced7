// One live viewer of PM2's log bus (what `pm2 logs` reads), for bench/logs.py: counts the bot's
// stamped lines ("<ns since the epoch> <n>") and prints latency percentiles as JSON once it has
// LINES of them. Usage: PM2_HOME=... NODE_PATH=$(npm root -g) node pm2_viewer.js LINES
const pm2 = require('pm2');
const lines = Number(process.argv[2]);
const latencies = [];
let partial = '';
pm2.connect((err) => {
  if (err) throw err;
  pm2.launchBus((err, bus) => {
    if (err) throw err;
    console.log('ready');
    bus.on('log:out', (packet) => {
      const now = performance.timeOrigin + performance.now();
      const parts = (partial + packet.data).split('\n');
      partial = parts.pop();
      for (const line of parts) {
        const sent = Number(line.split(' ')[0]) / 1e6;
        if (Number.isFinite(sent)) latencies.push(now - sent);
      }
      if (latencies.length >= lines) {
        latencies.sort((a, b) => a - b);
        const pct = (p) => latencies[Math.round((latencies.length - 1) * p)];
        console.log(JSON.stringify({ lines: latencies.length, p50_ms: pct(0.5), p99_ms: pct(0.99), max_ms: pct(1) }));
        process.exit(0);
      }
    });
  });
});
