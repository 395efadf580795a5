// Logging to stdout, text (default) or JSON (PS_LOG_FORMAT=json), like the real service's winston setup.
// Levels are winston's npm levels, the ones PowerSync v1.25.0's LoggingConfig accepts.
export const LEVELS = { error: 0, warn: 1, info: 2, http: 3, verbose: 4, debug: 5, silly: 6 };
let threshold = LEVELS[(process.env.PS_LOG_LEVEL || 'info').toLowerCase()] ?? 2;
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

/**
 * service-core util/config.ts configureLogger at v1.25.0: the level is `PS_LOG_LEVEL`, else the
 * config's `system.logging.level`, else info; the choice is logged at info before it applies.
 */
export function configureLogger(loggingConfig) {
  const level = process.env.PS_LOG_LEVEL ?? loggingConfig?.level ?? 'info';
  const format = process.env.PS_LOG_FORMAT ?? loggingConfig?.format ?? 'text';
  threshold = LEVELS.info;
  emit('info', `Configured logger with level "${level}" and format "${format}"`);
  threshold = LEVELS[String(level).toLowerCase()] ?? LEVELS.info;
}

export const logger = {
  error: (m, e) => emit('error', m, e),
  warn: (m, e) => emit('warn', m, e),
  info: (m, e) => emit('info', m, e),
  debug: (m, e) => emit('debug', m, e)
};
