// Tiny web app for the harness's own tests. Listens on $PORT (default 5000).
//   GET /ready      -> 200 unless READY_AFTER_S seconds have not passed since start, or HEALTHY=0
//   GET /env/NAME   -> the value of env var NAME (404 when unset)
//   GET /fail       -> 500
// SIGTERM exits 0 (like PowerSync's graceful shutdown). EXIT_AFTER_S=N: crashes (exit 1) N s after start.
const http = require("http");
const started = Date.now();
const readyAfter = Number(process.env.READY_AFTER_S || 0) * 1000;
http.createServer((req, res) => {
  if (req.url === "/ready") {
    const ok = process.env.HEALTHY !== "0" && Date.now() - started >= readyAfter;
    res.writeHead(ok ? 200 : 503); return res.end(ok ? "ready\n" : "not ready\n");
  }
  if (req.url.startsWith("/env/")) {
    const v = process.env[req.url.slice(5)];
    res.writeHead(v === undefined ? 404 : 200); return res.end(v === undefined ? "" : v);
  }
  res.writeHead(req.url === "/fail" ? 500 : 200); res.end("hello\n");
}).listen(Number(process.env.PORT || 5000), "0.0.0.0", () => console.log("listening on " + (process.env.PORT || 5000)));
process.on("SIGTERM", () => process.exit(0));
if (process.env.EXIT_AFTER_S) setTimeout(() => process.exit(1), Number(process.env.EXIT_AFTER_S) * 1000);
