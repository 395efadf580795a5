// The derived image's Docker HEALTHCHECK (health_check.py): run by the engine inside the instance
// container every interval. It asks the service for readiness and, with the container's own
// admin token (PS_API_TOKEN), for diagnostics, and prints one line of JSON the engine keeps in
// the container's State.Health.Log. `powersync:status --all` reads that line instead of starting
// a process in every container. The line holds no secret: the rules travel as their sha256, error
// messages are cut short, and the engine keeps at most 4,096 bytes of it.
// Exit 0 when the service is ready, 1 when it is not (the engine's "healthy" / "unhealthy").
const http = require('http');
const crypto = require('crypto');
const PORT = Number(process.argv[2] || 8080);
const MESSAGE_CHARS = 160;
const MAX_ERRORS = 3;

function ask(method, path, headers, body) {
  return new Promise((resolve) => {
    const req = http.request({host: '127.0.0.1', port: PORT, path, method, headers, timeout: 4000}, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({status: res.statusCode, text}));
      res.on('error', () => resolve({status: 0, text: ''}));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', () => resolve({status: 0, text: ''}));
    req.end(body);
  });
}

function errors(list) {
  return (Array.isArray(list) ? list : []).slice(0, MAX_ERRORS)
    .map((e) => ({message: String((e && e.message) || e).slice(0, MESSAGE_CHARS)}));
}

function rules(section) {
  if (!section || typeof section !== 'object') return null;
  const out = {
    connections: (section.connections || []).slice(0, 1).map((c) => ({
      slot_name: c.slot_name, replication_lag_bytes: c.replication_lag_bytes,
      initial_replication_done: c.initial_replication_done,
    })),
    errors: errors(section.errors),
  };
  if (typeof section.content === 'string') {
    out.content_sha256 = crypto.createHash('sha256').update(section.content, 'utf8').digest('hex');
  }
  return out;
}

async function main() {
  const ready = await ask('GET', '/probes/readiness', {});
  const report = {ready: ready.status === 200, diagnostics: null};
  const token = process.env.PS_API_TOKEN;
  if (token) {
    const body = JSON.stringify({sync_rules_content: true});
    const found = await ask('POST', '/api/admin/v1/diagnostics', {
      Authorization: 'Bearer ' + token, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body),
    }, body);
    if (found.status === 200) {
      try {
        const payload = JSON.parse(found.text);
        const data = payload.data || payload;
        report.diagnostics = {
          connections: (data.connections || []).map((c) => ({connected: Boolean(c.connected), errors: errors(c.errors)})),
          active_sync_rules: rules(data.active_sync_rules),
          deploying_sync_rules: rules(data.deploying_sync_rules),
        };
      } catch (e) { /* not JSON: no diagnostics */ }
    }
  }
  process.stdout.write(JSON.stringify(report) + '\n');
  process.exit(report.ready ? 0 : 1);
}

main();
