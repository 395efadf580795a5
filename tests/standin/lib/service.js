// `start`: HTTP API (probes, sync stream, admin API) plus the replication job guarded by a lock.
import crypto from 'node:crypto';
import http from 'node:http';
import { logger } from './log.js';
import { AuthorizationError, ServiceError } from './errors.js';
import { tokenFromHeader, verifyJwt } from './jwt.js';
import { debugRules, deployParseError, parseRules, sourceTables } from './rules.js';
import { qualifiedName, Source, Storage } from './db.js';

const REFRESH_MS = 30000;
const STANDBY_RETRY_MS = 2000;
const TICK_MS = 5000;
// The real replicator looks for new rules versions every 500 ms for the first 120 s after start
// and every 5 s after that (AbstractReplicator.ts at v1.25.0: FAST_REFRESH_INTERVAL_MS,
// FAST_REFRESH_TIMEOUT_MS, REFRESH_INTERVAL_MS).
const FAST_REFRESH_MS = 500;
const FAST_REFRESH_WINDOW_MS = 120000;

/**
 * After a Postgres error on a version's replication (e.g. a slot it cannot create), the real
 * service retries that version 30 s later: the job stops, the replicator restarts it at its next
 * refresh, and the new job waits on PostgresErrorRateLimiter, which sets 30 s for an error it does
 * not name (PostgresErrorRateLimiter.ts at v1.25.0; observed: attempts exactly 30.0 s apart). It
 * never gives up. A stand-in knob shortens the wait for tests.
 */
function retrySeconds() {
  const v = Number(process.env.POWERSYNC_STANDIN_RETRY_SECONDS);
  return Number.isFinite(v) && v >= 0 ? v : 30;
}

/**
 * Initial replication pace (stand-in knobs, not the real service's): rows copied per second and
 * rows per flushed chunk (the real snapshotChunkLength is 10,000; progress is written and logged
 * once per chunk). The default pace is fast enough that test tables replicate at once; tests of
 * reprocessing progress slow it down.
 */
function snapshotPace() {
  const num = (name, dflt) => {
    const v = Number(process.env[name]);
    return Number.isFinite(v) && v > 0 ? v : dflt;
  };
  return {
    rowsPerSecond: num('POWERSYNC_STANDIN_SNAPSHOT_ROWS_PER_SECOND', 1000000),
    chunkRows: Math.floor(num('POWERSYNC_STANDIN_SNAPSHOT_CHUNK_ROWS', 10000))
  };
}

export class Service {
  constructor(config, { runner = 'unified', version = '0.0.0' } = {}) {
    this.config = config;
    this.runner = runner;
    this.version = version;
    this.lockId = crypto.randomUUID();
    this.state = { ready: false, started: false, touched_at: new Date() };
    this.holdsLock = false;
    this.stopping = false;
    this.timers = new Set();
    this.connectionErrors = [];
    this.replicationErrors = new Map(); // sync rules id -> [{level, message}]
    this.connected = false;
    this.standbyLogged = false;
    this.snapshots = new Map(); // sync rules id -> running initial replication
    this.retryAt = new Map(); // sync rules id -> Date.now() before which a failed version is not retried
    this.startedAt = Date.now();
  }

  // --------------------------------------------------------------------- lifecycle
  async start() {
    const { config } = this;
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(config.port, '0.0.0.0', resolve);
    });
    logger.info(`Running on port ${config.port}`);
    logger.debug(`Config from ${config.origin}: storage ${config.storage.redacted ?? 'postgresql'}, runner ${this.runner}`);
    if (config.prometheusPort) await this.startMetrics(config.prometheusPort);
    this.touchTimer = this.every(5000, () => (this.state.touched_at = new Date()));

    this.storage = new Storage(config.storage);
    if (config.source) this.source = new Source(config.source);

    if (this.runner !== 'api') {
      await this.storage.migrateUp();
      logger.info('Storage migrations complete');
    } else {
      await this.storage.query('SELECT 1');
    }
    this.state.started = true;
    this.state.ready = true;
    logger.info('Service ready');

    // Rules from config / env: stored as a new version when the text changed.
    const rules = config.rules;
    if (rules.present && this.runner !== 'api') {
      const parsed = parseRules(rules.content);
      for (const w of parsed.errors.filter((e) => e.level === 'warning')) logger.warn(`Sync rules warning: ${w.message}`);
      if (parsed.fatal.length) {
        for (const e of parsed.fatal) logger.error(`[PSYNC_R0001] Failed to parse sync rules: ${e.message}`);
        if (rules.exitOnError) {
          logger.error('Sync rules are invalid and sync_config.exit_on_error is true - exiting');
          setTimeout(() => process.exit(1), 1200);
          return;
        }
      } else {
        const prefix = config.source?.slotNamePrefix ?? 'powersync_';
        const { created, row } = await this.storage.updateSyncRules(rules.content, prefix);
        if (created) logger.info(`Deployed sync rules version ${row.id} from ${rules.source} (slot ${row.slot_name})`);
        else logger.info(`Sync rules unchanged (version ${row.id})`);
      }
    }

    if (this.runner !== 'api' && this.source) this.replicationLoop();
    if (this.source) this.every(TICK_MS, () => this.checkConnection(), true);
  }

  /**
   * `telemetry.prometheus_port`: OpenTelemetry's PrometheusExporter (metrics/open-telemetry/util.ts
   * at v1.25.0) serves GET /metrics on every interface in the text exposition format, 404 elsewhere.
   * The stand-in exports a few of the real metric names (packages/types/src/metrics.ts).
   */
  async startMetrics(port) {
    this.metricsServer = http.createServer((req, res) => {
      if (req.method !== 'GET' || new URL(req.url, 'http://x').pathname !== '/metrics') {
        res.writeHead(404).end(`Invalid URL. Try http://localhost:${port}/metrics`);
        return;
      }
      const upSeconds = (Date.now() - this.startedAt) / 1000;
      const lines = [
        '# HELP powersync_concurrent_connections Concurrent sync connections',
        '# TYPE powersync_concurrent_connections gauge',
        'powersync_concurrent_connections 0',
        '# HELP powersync_data_synced_bytes_total Uncompressed size of synced data',
        '# UNIT powersync_data_synced_bytes_total bytes',
        '# TYPE powersync_data_synced_bytes_total counter',
        'powersync_data_synced_bytes_total 0',
        '# HELP target_info Target metadata',
        '# TYPE target_info gauge',
        `target_info{service="PowerSync",service_version="${this.version}",storage_type="postgresql",uptime_seconds="${upSeconds.toFixed(0)}"} 1`
      ];
      res.writeHead(200, { 'content-type': 'text/plain' }).end(lines.join('\n') + '\n');
    });
    await new Promise((resolve, reject) => {
      this.metricsServer.once('error', reject);
      this.metricsServer.listen(port, resolve);
    });
    logger.info(`Prometheus metric export enabled on port:${port}`);
  }

  every(ms, fn, immediate = false) {
    const run = async () => {
      try {
        await fn();
      } catch (e) {
        logger.warn(e.message);
      }
    };
    if (immediate) run();
    const t = setInterval(run, ms);
    this.timers.add(t);
    return t;
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  async stop() {
    if (this.stopping) return;
    this.stopping = true;
    logger.info('Shutting down');
    for (const t of this.timers) {
      clearInterval(t);
      clearTimeout(t);
    }
    try {
      if (this.holdsLock) {
        await this.storage.releaseLock(this.lockId);
        logger.info('Released replication lock');
      }
    } catch (e) {
      logger.warn(`Could not release replication lock: ${e.message}`);
    }
    this.server?.close();
    this.server?.closeAllConnections?.();
    this.metricsServer?.close();
    this.metricsServer?.closeAllConnections?.();
    await Promise.race([
      Promise.all([this.storage?.close(), this.source?.close()]),
      new Promise((r) => setTimeout(r, 2000))
    ]);
  }

  async checkConnection() {
    try {
      const errors = await this.source.checkConfiguration();
      this.connected = true;
      this.connectionErrors = errors;
    } catch (e) {
      this.connected = false;
      this.connectionErrors = [{ level: 'fatal', message: e.message }];
    }
  }

  // --------------------------------------------------------------------- replication
  async replicationLoop() {
    while (!this.stopping) {
      try {
        if (!this.holdsLock) {
          if (await this.storage.acquireLock(this.lockId)) {
            this.holdsLock = true;
            this.standbyLogged = false;
            logger.info('Acquired replication lock');
            this.refreshTimer = this.every(REFRESH_MS, async () => {
              if (!(await this.storage.refreshLock(this.lockId))) {
                logger.warn('Lost replication lock');
                this.holdsLock = false;
                clearInterval(this.refreshTimer);
                await this.source.stopStreams();
              }
            });
          } else {
            if (!this.standbyLogged) {
              const next = (await this.storage.nextRules()) ?? (await this.storage.activeRules());
              logger.info(
                `[PSYNC_S1003] Sync rules: ${next?.id ?? '?'} have been locked by another process for replication. Waiting for the lock.`
              );
              this.standbyLogged = true;
            }
            await this.sleep(STANDBY_RETRY_MS);
            continue;
          }
        }
        await this.replicateOnce();
        // Between full ticks only look for a new rules version, at the real refresh interval.
        const tickEnds = Date.now() + TICK_MS;
        while (!this.stopping && this.holdsLock && Date.now() < tickEnds) {
          const fast = Date.now() - this.startedAt < FAST_REFRESH_WINDOW_MS;
          await this.sleep(fast ? FAST_REFRESH_MS : TICK_MS);
          const next = await this.storage.nextRules();
          if (next && !this.snapshots.has(next.id)) break;
        }
        continue;
      } catch (e) {
        logger.error(`Replication error: ${e.message}`);
      }
      await this.sleep(this.holdsLock ? TICK_MS : STANDBY_RETRY_MS);
    }
  }

  async replicateOnce() {
    const rows = await this.storage.rulesToReplicate();
    let configErrors = null;
    const sourceErrors = async () => {
      if (configErrors == null) configErrors = await this.source.checkConfiguration();
      return configErrors;
    };
    for (const row of rows) {
      if (this.stopping || !this.holdsLock) return;
      if (row.state === 'STOP') {
        if (row.slot_name && (await this.source.dropSlot(row.slot_name))) {
          logger.info(`Dropped replication slot ${row.slot_name} of sync rules version ${row.id}`);
        }
        await this.storage.setState(row.id, 'TERMINATED');
        this.replicationErrors.delete(row.id);
        continue;
      }
      const errors = await sourceErrors();
      if (errors.length) {
        this.replicationErrors.set(row.id, errors);
        for (const e of errors) logger.error(`[PSYNC_S1141] Replication error: ${e.message}`);
        await this.storage.setFatalError(row.id, errors[0].message);
        continue;
      }
      this.replicationErrors.delete(row.id);
      if ((this.retryAt.get(row.id) ?? 0) > Date.now()) continue;
      this.retryAt.delete(row.id);
      if (!(await this.source.slotExists(row.slot_name))) {
        if (row.state === 'ACTIVE') logger.warn(`[PSYNC_S1160] Replication slot ${row.slot_name} does not exist anymore - recreating`);
        // A new slot: the snapshot starts from scratch (the real service clears the storage).
        if (row.state === 'PROCESSING' && !this.snapshots.has(row.id)) await this.storage.clearSnapshot(row.id);
        try {
          await this.source.createSlot(row.slot_name);
        } catch (e) {
          if (!e.code) throw e;
          // A Postgres error (e.g. 53400 all replication slots are in use): the real service
          // (1.25.0, observed) logs it and stores it as the version's last_fatal_error, which the
          // diagnostics show as the section's fatal `[PSYNC_S1120] Postgres error while replicating`
          // until the version flushes data or activates (PostgresBucketBatch clearError), i.e. also
          // between attempts and after the cause is gone; it retries after retrySeconds().
          const message = '[PSYNC_S1120] Postgres error while replicating';
          logger.error(`[${row.slot_name}] Replication error ${message}`);
          logger.error(`[${row.slot_name}] cause ${e.message}`);
          await this.storage.setFatalError(row.id, message);
          this.retryAt.set(row.id, Date.now() + retrySeconds() * 1000);
          continue;
        }
        logger.info(`Created replication slot ${row.slot_name} for sync rules version ${row.id}`);
      }
      const lsn = await this.source.advanceSlot(row.slot_name);
      if (row.state === 'PROCESSING') {
        // The old version keeps serving (and streaming) while this one copies its tables.
        if (!this.snapshots.has(row.id)) this.startInitialReplication(row);
      } else {
        await this.storage.keepalive(row.id, lsn);
      }
    }
  }

  startInitialReplication(row) {
    const task = (async () => {
      if (!(await this.initialReplication(row))) return;
      const lsn = await this.source.advanceSlot(row.slot_name);
      logger.info(`Initial replication of sync rules version ${row.id} done at ${lsn}`);
      if (await this.storage.activate(row.id, lsn)) {
        logger.info(`Sync rules version ${row.id} is now active`);
        // Drop superseded versions right away.
        for (const old of await this.storage.rulesToReplicate()) {
          if (old.state === 'STOP') {
            if (old.slot_name && (await this.source.dropSlot(old.slot_name))) {
              logger.info(`Dropped replication slot ${old.slot_name} of sync rules version ${old.id}`);
            }
            await this.storage.setState(old.id, 'TERMINATED');
          }
        }
      }
    })()
      .catch((e) => logger.error(`Replication error: ${e.message}`))
      .finally(() => this.snapshots.delete(row.id));
    this.snapshots.set(row.id, task);
  }

  /**
   * Copies the tables the rules read, at the configured pace, the way the real WalStream does
   * (v1.25.0 initialReplication / snapshotTable): estimate every table first (`reltuples`, logged
   * `To replicate: "public"."todos" 0/~N`), then copy each in chunks, writing
   * `source_tables.snapshot_replicated_count` / `snapshot_total_estimated_count` and logging
   * `Replicating "public"."todos" N/~M` after every chunk; a finished table gets
   * `snapshot_done` and its counts cleared. Resumes after a restart from the stored count.
   * Returns false when interrupted (stopping, lock lost, or a newer version replaced this one).
   */
  async initialReplication(row) {
    const { rowsPerSecond, chunkRows } = snapshotPace();
    const stillWanted = async () => {
      if (this.stopping || !this.holdsLock) return false;
      const r = await this.storage.query(`SELECT state FROM powersync.sync_rules WHERE id = $1`, [row.id]);
      return r.rows[0]?.state === 'PROCESSING';
    };
    const format = (at, estimate) => (estimate < 0 ? `${at}/?` : `${at}/~${estimate}`);
    const todo = [];
    for (const pattern of sourceTables(row.content)) {
      for (const t of await this.source.resolveTables(pattern.schema, pattern.name)) {
        const stored = await this.storage.sourceTable(row.id, t.schema, t.name, t.replicaIdColumns);
        const name = qualifiedName(t.schema, t.name);
        if (stored.snapshot_done) {
          logger.info(`Skipping ${name} - snapshot already done`);
          continue;
        }
        const estimate = await this.source.estimatedCount(t.schema, t.name);
        const at = Number(stored.snapshot_replicated_count ?? 0);
        await this.storage.updateTableProgress(stored.id, { totalEstimatedCount: estimate, replicatedCount: at });
        logger.info(`[${row.slot_name}] To replicate: ${name} ${format(at, estimate)}`);
        todo.push({ stored, name, estimate, at, table: t });
      }
    }
    for (const item of todo) {
      const total = await this.source.rowCount(item.table.schema, item.table.name);
      let at = Math.min(item.at, total);
      logger.info(`[${row.slot_name}] Replicating ${item.name} ${format(at, item.estimate)} - resumable`);
      while (at < total) {
        const n = Math.min(chunkRows, total - at);
        await this.sleep((n / rowsPerSecond) * 1000);
        if (!(await stillWanted())) return false;
        at += n;
        await this.storage.updateTableProgress(item.stored.id, { totalEstimatedCount: item.estimate, replicatedCount: at });
        if (n > 0) await this.storage.setFatalError(row.id, null); // the first flushed rows clear it, as clearError
        logger.info(`[${row.slot_name}] Replicating ${item.name} ${format(at, item.estimate)}`);
      }
      await this.storage.markTableSnapshotDone(item.stored.id);
    }
    return stillWanted();
  }

  // --------------------------------------------------------------------- HTTP
  async handle(req, res) {
    const url = new URL(req.url, 'http://localhost');
    const route = `${req.method} ${url.pathname}`;
    try {
      const raw = await readBody(req);
      const yamlRoute = route === 'POST /api/sync-rules/v1/validate' || route === 'POST /api/sync-rules/v1/deploy';
      // Body parsing happens before the handler (and its auth check), as in Fastify.
      const body = KNOWN_ROUTES.has(route) && req.method === 'POST' ? parseBody(req, raw, yamlRoute) : null;
      switch (route) {
        case 'GET /probes/startup':
          return sendJson(res, this.state.started ? 200 : 400, this.probeState());
        case 'GET /probes/readiness':
          return sendJson(res, this.state.ready ? 200 : 400, this.probeState());
        case 'GET /probes/liveness':
          return sendJson(res, Date.now() - this.state.touched_at.getTime() < 10000 ? 200 : 400, this.probeState());
        case 'POST /sync/stream':
          return await this.syncStream(req, res);
        case 'POST /api/sync-rules/v1/validate': {
          const content = requireContent(body); // request validation runs before authorization
          this.authApi(req);
          return sendJson(res, 200, debugRules(content), true);
        }
        case 'POST /api/sync-rules/v1/deploy': {
          const content = requireContent(body);
          this.authApi(req);
          return sendJson(res, 200, { data: await this.deploy(content) });
        }
        case 'GET /api/sync-rules/v1/current':
          this.authApi(req);
          return sendJson(res, 200, { data: await this.current() }, true);
        case 'POST /api/sync-rules/v1/reprocess':
          this.authApi(req);
          return sendJson(res, 200, { data: await this.reprocess() });
        case 'POST /api/admin/v1/diagnostics':
          this.authApi(req);
          return sendJson(res, 200, { data: await this.diagnostics(body ?? {}) });
        case 'POST /api/admin/v1/validate':
          this.authApi(req);
          return sendJson(res, 200, { data: await this.validateLive(body ?? {}) });
        default:
          throw new ServiceError({
            code: 'PSYNC_S2002',
            status: 404,
            description: 'The path does not exist on this server',
            details: `The path ${JSON.stringify(url.pathname)} does not exist on this server`,
            severity: 'info'
          });
      }
    } catch (e) {
      if (e instanceof FastifyError) {
        logger.info(`${route} -> ${e.body.statusCode} ${e.body.code}`);
        return sendJson(res, e.body.statusCode, e.body);
      }
      const err = e instanceof ServiceError ? e : new ServiceError({ code: 'PSYNC_S2001', status: 500, description: 'Something went wrong', details: e.message, severity: 'error' });
      if (err.errorData.status >= 500) logger.error(`Request failed: ${route}: ${err.message}`);
      else logger.info(`${route} -> ${err.errorData.status} ${err.errorData.code}`);
      if (!res.headersSent) sendJson(res, err.errorData.status ?? 500, { error: err.errorData });
      else res.end();
    }
  }

  probeState() {
    return { ready: this.state.ready, started: this.state.started, touched_at: this.state.touched_at.toISOString() };
  }

  authApi(req) {
    const tokens = this.config.tokens;
    if (tokens.length === 0) throw new AuthorizationError('PSYNC_S2101', 'Authorization failed', ['Authentication disabled']);
    const token = tokenFromHeader(req.headers.authorization);
    if (token == null) throw new AuthorizationError('PSYNC_S2101', 'Authorization failed', ['Authentication required']);
    if (!tokens.includes(token)) throw new AuthorizationError('PSYNC_S2101', 'Authorization failed', ['Authentication failed']);
  }

  async syncStream(req, res) {
    const token = tokenFromHeader(req.headers.authorization);
    if (token == null) throw new AuthorizationError('PSYNC_S2106', 'Authentication required');
    let payload;
    try {
      payload = verifyJwt(token, this.config);
    } catch (e) {
      logger.info(`Sync stream authentication failed: ${e.message}`);
      throw e;
    }
    const active = await this.storage.activeRules();
    if (!active) throw new ServiceError({ code: 'PSYNC_S2302', status: 500, description: 'No sync config available' });
    const lastOp = String(active.id * 1000);
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
    const now = Math.floor(Date.now() / 1000);
    const lines = [
      { checkpoint: { last_op_id: lastOp, write_checkpoint: undefined, buckets: [] } },
      { checkpoint_complete: { last_op_id: lastOp } },
      { token_expires_in: Math.max(0, payload.exp - now) }
    ];
    for (const l of lines) res.write(JSON.stringify(l) + '\n');
    logger.info(`Sync stream for user ${payload.sub} (sync rules version ${active.id})`);
    res.end();
  }

  // Deploy, current and reprocess answer as routes/endpoints/sync-rules.ts at v1.25.0 does.
  async deploy(content) {
    if (this.config.rules.present) {
      throw new ServiceError({
        code: 'PSYNC_S4105',
        status: 422,
        description: 'Sync config API disabled',
        details: 'Update sync config in the service configuration'
      });
    }
    const error = deployParseError(content);
    if (error != null) {
      throw new ServiceError({ code: 'PSYNC_R0001', status: 422, description: 'Sync config parsing failed', details: error });
    }
    // Every deploy is a new version, even of the same text (updateSyncRules has no equality
    // check; only rules from the config are compared): the version in progress is stopped.
    const { row } = await this.storage.updateSyncRules(content, this.config.source?.slotNamePrefix ?? 'powersync_', { force: true });
    logger.info(`Deployed sync rules version ${row.id} through the API (slot ${row.slot_name})`);
    return { slot_name: row.slot_name };
  }

  async reprocess() {
    if (await this.storage.nextRules()) {
      throw new ServiceError({ code: 'PSYNC_S4106', status: 409, description: 'Busy processing sync config - cannot reprocess' });
    }
    const active = await this.storage.activeRules();
    if (!active) throw new ServiceError({ code: 'PSYNC_S4104', status: 422, description: 'No active sync config' });
    const { row } = await this.storage.updateSyncRules(active.content, this.config.source?.slotNamePrefix ?? 'powersync_', { force: true });
    return { slot_name: row.slot_name };
  }

  async current() {
    const active = await this.storage.activeRules();
    if (!active) throw new ServiceError({ code: 'PSYNC_S4104', status: 422, description: 'No active sync config' });
    const next = await this.storage.nextRules();
    return {
      current: { slot_name: active.slot_name, content: active.content, ...debugRules(active.content) },
      next: next == null ? null : { slot_name: next.slot_name, content: next.content, ...debugRules(next.content) }
    };
  }

  async rulesStatus(row, { includeContent, active }) {
    if (!row) return undefined;
    const parsed = parseRules(row.content);
    const errors = [...parsed.errors.map(({ level, message }) => ({ level, message })), ...(this.replicationErrors.get(row.id) ?? [])];
    // The stored last_fatal_error is listed until cleared (diagnostics.ts at v1.25.0), not only while failing.
    if (row.last_fatal_error && !errors.some((e) => e.message === row.last_fatal_error)) {
      errors.push({ level: 'fatal', message: row.last_fatal_error });
    }
    let lag, walStatus;
    let tables = [];
    if (this.source && this.connected) {
      try {
        lag = await this.source.slotLagBytes(row.slot_name);
        walStatus = await this.source.slotWalStatus(row.slot_name);
        for (const t of sourceTables(row.content)) {
          for (const info of await this.source.tableDiagnostics(t.schema, t.name)) {
            errors.push(...info.errors);
            tables.push({ schema: info.schema, name: info.name, replication_id: info.replication_id, data_queries: true, parameter_queries: false, errors: info.errors });
          }
        }
      } catch {
        // ignore: connection errors are reported on the connection
      }
    }
    return {
      ...(includeContent ? { content: row.content } : {}),
      connections: [
        {
          id: this.config.source?.id ?? 'default',
          tag: this.config.source?.tag ?? 'default',
          slot_name: row.slot_name,
          initial_replication_done: row.snapshot_done === true,
          last_lsn: row.last_checkpoint_lsn ?? undefined,
          last_keepalive_ts: row.last_keepalive_ts ? new Date(row.last_keepalive_ts).toISOString() : undefined,
          last_checkpoint_ts: row.last_checkpoint_ts ? new Date(row.last_checkpoint_ts).toISOString() : undefined,
          // The real service reports the lag of the deploying version's slot too.
          replication_lag_bytes: lag,
          wal_status: walStatus,
          tables
        }
      ],
      errors
    };
  }

  async diagnostics(params) {
    const includeContent = params.sync_rules_content === true;
    const active = await this.storage.activeRules();
    const next = await this.storage.nextRules();
    const src = this.config.source;
    return {
      connections: src
        ? [{ id: src.id, postgres_uri: src.redacted, connected: this.connected, errors: this.connectionErrors }]
        : [],
      active_sync_rules: await this.rulesStatus(active, { includeContent, active: true }),
      deploying_sync_rules: await this.rulesStatus(next, { includeContent, active: false })
    };
  }

  async validateLive(params) {
    const content = String(params.sync_rules ?? '');
    const status = await this.rulesStatus({ id: -1, content, slot_name: '', snapshot_done: false }, { includeContent: true, active: false });
    return status;
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const KNOWN_ROUTES = new Set([
  'GET /probes/startup',
  'GET /probes/readiness',
  'GET /probes/liveness',
  'POST /sync/stream',
  'POST /api/sync-rules/v1/validate',
  'POST /api/sync-rules/v1/deploy',
  'GET /api/sync-rules/v1/current',
  'POST /api/sync-rules/v1/reprocess',
  'POST /api/admin/v1/diagnostics',
  'POST /api/admin/v1/validate'
]);

/** Errors raised by Fastify itself (content type handling), with Fastify's own body shape. */
class FastifyError extends Error {
  constructor(statusCode, code, error, message) {
    super(message);
    this.body = { statusCode, code, error, message };
  }
}

/**
 * Body parsing like the real service's Fastify setup: application/json (an empty body is an
 * error), text/plain (a string), application/yaml only on the sync-rules routes (raw text, as
 * {content}); anything else with a body is 415.
 */
function parseBody(req, raw, yamlRoute) {
  const header = req.headers['content-type'];
  if (header == null) {
    if (raw.length === 0) return null;
    throw new FastifyError(415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', 'Unsupported Media Type', 'Unsupported Media Type: undefined');
  }
  const type = String(header).split(';')[0].trim().toLowerCase();
  if (type === 'application/json') {
    if (raw.length === 0) {
      throw new FastifyError(400, 'FST_ERR_CTP_EMPTY_JSON_BODY', 'Bad Request', "Body cannot be empty when content-type is set to 'application/json'");
    }
    try {
      return JSON.parse(raw);
    } catch (e) {
      throw new FastifyError(400, 'FST_ERR_CTP_INVALID_JSON_BODY', 'Bad Request', e.message);
    }
  }
  if (type === 'text/plain') return raw;
  if (type === 'application/yaml' && yamlRoute) return { content: raw };
  throw new FastifyError(415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', 'Unsupported Media Type', `Unsupported Media Type: ${header}`);
}

function requireContent(body) {
  if (body == null || typeof body !== 'object' || typeof body.content !== 'string') {
    throw new ServiceError({ code: 'PSYNC_S2001', status: 400, description: 'Validation failed', details: JSON.stringify(['content: required string']) });
  }
  return body.content;
}

function sendJson(res, status, data, pretty = false) {
  const text = pretty ? JSON.stringify(data, null, 2) + '\n' : JSON.stringify(data);
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(text);
}
