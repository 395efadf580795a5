// Config loading: POWERSYNC_CONFIG_B64 > POWERSYNC_CONFIG_PATH > ./powersync.yaml, with `!env PS_*`.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { FatalStartupError } from './errors.js';
import { configureLogger, LEVELS } from './log.js';

function envTag(errors) {
  return {
    tag: '!env',
    resolve(str) {
      const raw = String(str).trim();
      const [name, type] = raw.split('::');
      if (!name.startsWith('PS_')) {
        errors.push(`Environment variables must start with "PS_" - got ${JSON.stringify(name)}`);
        return null;
      }
      const value = process.env[name];
      if (value == null) {
        errors.push(`Environment variable ${name} is not set`);
        return null;
      }
      if (type == null) return value;
      if (type === 'number') {
        const n = Number(value);
        if (value.trim() === '' || Number.isNaN(n)) {
          errors.push(`Environment variable ${name} is not a valid number: ${JSON.stringify(value)}`);
          return null;
        }
        return n;
      }
      if (type === 'boolean') {
        const v = value.trim().toLowerCase();
        if (v === 'true' || v === '1') return true;
        if (v === 'false' || v === '0' || v === '') return false;
        errors.push(`Environment variable ${name} is not a valid boolean: ${JSON.stringify(value)}`);
        return null;
      }
      errors.push(`Unknown type ${JSON.stringify(type)} for environment variable ${name}`);
      return null;
    }
  };
}

export function parseConfigText(text, origin) {
  const errors = [];
  let doc;
  try {
    doc = YAML.parse(text, { customTags: [envTag(errors)], prettyErrors: true });
  } catch (e) {
    throw new FatalStartupError(`Could not parse PowerSync config from ${origin}: ${e.message}`);
  }
  if (errors.length) {
    throw new FatalStartupError(`Could not parse PowerSync config from ${origin}: ${errors.join('; ')}`);
  }
  if (doc == null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new FatalStartupError(`Invalid PowerSync config from ${origin}: expected an object`);
  }
  return doc;
}

function decodeB64(value, name) {
  const text = Buffer.from(value.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (!text.trim()) throw new FatalStartupError(`${name} is empty or not valid base64`);
  return text;
}

/** Reads the raw config: returns {doc, origin, baseDir}. */
export function loadRawConfig(opts = {}) {
  const env = process.env;
  if (opts.configBase64 || env.POWERSYNC_CONFIG_B64) {
    const text = decodeB64(opts.configBase64 || env.POWERSYNC_CONFIG_B64, 'POWERSYNC_CONFIG_B64');
    return { doc: parseConfigText(text, 'POWERSYNC_CONFIG_B64'), origin: 'base64', baseDir: process.cwd() };
  }
  const file = opts.configPath || env.POWERSYNC_CONFIG_PATH || './powersync.yaml';
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new FatalStartupError(`Could not read PowerSync config file ${file}: ${e.message}`);
  }
  return { doc: parseConfigText(text, file), origin: file, baseDir: path.dirname(path.resolve(file)) };
}

export function parsePgUri(uri, what) {
  if (typeof uri !== 'string' || !uri) throw new FatalStartupError(`${what}: uri is required`);
  let url;
  try {
    url = new URL(uri);
  } catch (e) {
    throw new FatalStartupError(`${what}: invalid URI`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new FatalStartupError(
      `${what}: Invalid URI - protocol must be postgresql, got ${JSON.stringify(url.protocol)}`
    );
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!database) throw new FatalStartupError(`[PSYNC_S3202] ${what}: database required`);
  if (!url.hostname) throw new FatalStartupError(`[PSYNC_S3002] ${what}: hostname required`);
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 5432,
    user: decodeURIComponent(url.username || 'postgres'),
    password: decodeURIComponent(url.password || ''),
    database
  };
}

export function redactUri(uri) {
  try {
    const u = new URL(uri);
    if (u.password) u.password = '';
    // lib-postgres baseUri at v1.25.0: `${protocol}://${hostname}:${port}/${database}`, no user
    // (the diagnostics' postgres_uri and test-connection; observed on the real 1.25.0 image)
    return `postgresql://${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return '';
  }
}

function pgConnection(block, what) {
  const sslmode = block.sslmode ?? 'verify-full';
  if (!['disable', 'verify-ca', 'verify-full'].includes(sslmode)) {
    throw new FatalStartupError(`${what}: sslmode must be one of disable, verify-ca, verify-full`);
  }
  if (sslmode === 'verify-ca' && !block.cacert) {
    throw new FatalStartupError(`[PSYNC_S3203] ${what}: Explicit cacert is required for sslmode=verify-ca`);
  }
  const conn = parsePgUri(block.uri, what);
  let ssl = false;
  if (sslmode === 'verify-full') ssl = { rejectUnauthorized: true, ...(block.cacert ? { ca: block.cacert } : {}) };
  if (sslmode === 'verify-ca') ssl = { rejectUnauthorized: true, ca: block.cacert, checkServerIdentity: () => undefined };
  return { ...conn, ssl, sslmode, uri: block.uri, redacted: redactUri(block.uri) };
}

const B64URL = /^[A-Za-z0-9_-]+$/;

function parseKeys(clientAuth) {
  const keys = [];
  const list = clientAuth?.jwks?.keys ?? [];
  if (!Array.isArray(list)) throw new FatalStartupError('client_auth.jwks.keys must be a list');
  for (const [i, key] of list.entries()) {
    if (key == null || typeof key !== 'object') throw new FatalStartupError(`client_auth.jwks.keys[${i}] must be an object`);
    if (key.kty !== 'oct') {
      // The stand-in only implements shared-secret keys (what the plugin uses).
      throw new FatalStartupError(`client_auth.jwks.keys[${i}]: stand-in supports only kty "oct" (got ${JSON.stringify(key.kty)})`);
    }
    if (!key.alg) throw new FatalStartupError(`client_auth.jwks.keys[${i}]: alg is required for kty oct`);
    if (!['HS256', 'HS384', 'HS512'].includes(key.alg)) {
      throw new FatalStartupError(`client_auth.jwks.keys[${i}]: unsupported alg ${JSON.stringify(key.alg)}`);
    }
    if (typeof key.k !== 'string' || key.k.length === 0) {
      throw new FatalStartupError(`client_auth.jwks.keys[${i}]: k is required`);
    }
    // Strict base64url: padding, newlines or the standard alphabet make the key unusable, so every
    // token check against it fails with a signature error (what a wrapped value does in practice).
    const valid = B64URL.test(key.k);
    keys.push({
      kid: key.kid ?? null,
      alg: key.alg,
      secret: valid ? Buffer.from(key.k, 'base64url') : null
    });
  }
  return keys;
}

function readRules(raw, baseDir, opts = {}) {
  const env = process.env;
  const syncConfig = raw.doc.sync_config;
  const syncRules = raw.doc.sync_rules;
  if (syncConfig != null && syncRules != null) {
    throw new FatalStartupError('Only one of sync_config and sync_rules may be specified (sync_rules is deprecated)');
  }
  const block = syncConfig ?? syncRules ?? null;
  const exitOnError = block?.exit_on_error ?? true;
  if (opts.syncBase64) {
    return { present: true, source: '--sync-base64', content: Buffer.from(opts.syncBase64, 'base64').toString('utf8'), exitOnError };
  }
  if (env.POWERSYNC_SYNC_CONFIG_B64) {
    return { present: true, source: 'POWERSYNC_SYNC_CONFIG_B64', content: Buffer.from(env.POWERSYNC_SYNC_CONFIG_B64, 'base64').toString('utf8'), exitOnError };
  }
  if (env.POWERSYNC_SYNC_RULES_B64) {
    return { present: true, source: 'POWERSYNC_SYNC_RULES_B64', content: Buffer.from(env.POWERSYNC_SYNC_RULES_B64, 'base64').toString('utf8'), exitOnError };
  }
  if (block == null) return { present: false, content: null, exitOnError };
  if (typeof block !== 'object') throw new FatalStartupError('sync_config must be an object');
  if (block.content != null && block.path != null) {
    throw new FatalStartupError('sync_config: specify only one of content and path');
  }
  if (block.content != null) return { present: true, source: 'config', content: String(block.content), exitOnError };
  if (block.path != null) {
    const p = path.resolve(baseDir, String(block.path));
    try {
      return { present: true, source: p, content: fs.readFileSync(p, 'utf8'), exitOnError };
    } catch (e) {
      throw new FatalStartupError(`Could not read sync config file ${p}: ${e.message}`);
    }
  }
  return { present: false, content: null, exitOnError };
}

/** Loads and validates the whole config. Throws FatalStartupError on any problem. */
export function loadConfig(opts = {}) {
  const raw = loadRawConfig(opts);
  const doc = raw.doc;

  const connections = doc.replication?.connections ?? [];
  if (!Array.isArray(connections)) throw new FatalStartupError('replication.connections must be a list');
  if (connections.length > 1) throw new FatalStartupError('Only a single replication connection is supported currently');
  let source = null;
  if (connections.length === 1) {
    const c = connections[0] ?? {};
    if (c.type !== 'postgresql') {
      throw new FatalStartupError(
        `[PSYNC_S3201] Failed to validate module configuration: replication connection type must be "postgresql", got ${JSON.stringify(c.type)}`
      );
    }
    source = {
      ...pgConnection(c, 'replication.connections[0]'),
      id: c.id ?? 'default',
      tag: c.tag ?? 'default',
      slotNamePrefix: c.slot_name_prefix ?? 'powersync_'
    };
  }

  const st = doc.storage;
  if (st == null || typeof st !== 'object') throw new FatalStartupError('storage config is required');
  if (st.type !== 'postgresql') {
    throw new FatalStartupError(
      `storage.type ${JSON.stringify(st.type)} is not supported by this stand-in (only "postgresql")`
    );
  }
  const storage = pgConnection(st, 'storage');

  const port = Number(doc.port ?? doc.api?.port ?? 8080);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new FatalStartupError(`Invalid port ${doc.port ?? doc.api?.port}`);

  let audience = doc.client_auth?.audience ?? [];
  if (typeof audience === 'string') audience = [audience];
  const keys = parseKeys(doc.client_auth);

  let tokens = doc.api?.tokens ?? [];
  if (!Array.isArray(tokens)) tokens = [tokens];
  tokens = tokens.filter((t) => t != null).map(String);

  const rules = readRules(raw, raw.baseDir, opts);

  // PowerSyncConfig.ts at v1.25.0: `system.logging.level` is one of winston's npm levels;
  // `telemetry.prometheus_port` is a portCodec (a number, or a string parsed to one).
  const logging = doc.system?.logging;
  if (logging?.level != null && !(logging.level in LEVELS)) {
    throw new FatalStartupError(`Invalid config: system.logging.level must be one of ${Object.keys(LEVELS).join(', ')}`);
  }
  const rawMetricsPort = doc.telemetry?.prometheus_port;
  const prometheusPort = rawMetricsPort == null ? null : parseInt(rawMetricsPort);
  if (rawMetricsPort != null && !(prometheusPort > 0 && prometheusPort <= 65535)) {
    throw new FatalStartupError(`Invalid telemetry.prometheus_port ${JSON.stringify(rawMetricsPort)}`);
  }
  configureLogger(logging);

  return {
    prometheusPort,
    origin: raw.origin,
    source,
    storage,
    port,
    audience: audience.map(String),
    keys,
    tokens,
    rules,
    raw: doc
  };
}
