// Logging to stdout, text (default) or JSON (PS_LOG_FORMAT=json), like the real service's winston setup.
const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 };
const threshold = LEVELS[(process.env.PS_LOG_LEVEL || 'info').toLowerCase()] ?? 2;
const json = (process.env.PS_LOG_FORMAT || 'text').toLowerCase() === 'json';

function emit(level, message, extra) {
  if (LEVELS[level] > threshold) return;
  const ts = new Date().toISOString();
  if (json) {
    process.stdout.write(JSON.stringify({ level, message, timestamp: ts, ...(extra || {}) }) + '\n');
  } else {
    let line = `${ts} [${level}]: ${message}`;
    if (extra && Object.keys(extra).length) line += ' ' + JSON.stringify(extra);
    process.stdout.write(line + '\n');
  }
}

export const logger = {
  error: (m, e) => emit('error', m, e),
  warn: (m, e) => emit('warn', m, e),
  info: (m, e) => emit('info', m, e),
  debug: (m, e) => emit('debug', m, e)
};
