// Logging to stdout, text or JSON, like the real service's winston setup.
// Levels are winston's npm levels, the ones PowerSync v1.25.0's LoggingConfig accepts.
export const LEVELS = { error: 0, warn: 1, info: 2, http: 3, verbose: 4, debug: 5, silly: 6 };
let threshold = LEVELS[(process.env.PS_LOG_LEVEL || 'info').toLowerCase()] ?? 2;
// lib-services Logger.ts at v1.25.0: DEFAULT_LOG_FORMAT is json when NODE_ENV is production (as
// in the image), text otherwise; until the config is read, PS_LOG_FORMAT does not apply
// (observed on the real 1.25.0 image built from source: every line JSON, with no setting).
export const DEFAULT_FORMAT = process.env.NODE_ENV == 'production' ? 'json' : 'text';
let json = DEFAULT_FORMAT === 'json';

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
  const format = process.env.PS_LOG_FORMAT ?? loggingConfig?.format ?? DEFAULT_FORMAT;
  json = format === 'json';
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
