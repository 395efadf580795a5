// Storage (bucket storage in schema `powersync`) and source (replication slots) on Postgres.
import crypto from 'node:crypto';
import pg from 'pg';
import { logger } from './log.js';

export function makePool(conn, appName) {
  const pool = new pg.Pool({
    host: conn.host,
    port: conn.port,
    user: conn.user,
    password: conn.password,
    database: conn.database,
    ssl: conn.ssl,
    max: 3,
    connectionTimeoutMillis: 10000,
    idleTimeoutMillis: 10000,
    application_name: appName
  });
  pool.on('error', (e) => logger.warn(`Postgres pool error: ${e.message}`));
  return pool;
}

export const LOCK_NAME = 'sync_rules_replication';
export const LOCK_EXPIRY_SECONDS = 60;

// Tables the stand-in keeps (a representative subset of the real Postgres bucket storage).
export const STORAGE_TABLES = [
  'sync_rules',
  'bucket_data',
  'bucket_parameters',
  'current_data',
  'source_tables',
  'write_checkpoints',
  'custom_write_checkpoints',
  'instance',
  'migrations'
];

const MIGRATIONS = [
  {
    name: '1-initial',
    sql: `
      CREATE TABLE IF NOT EXISTS powersync.sync_rules (
        id SERIAL PRIMARY KEY,
        state TEXT NOT NULL,
        snapshot_done BOOLEAN NOT NULL DEFAULT FALSE,
        last_checkpoint_lsn TEXT,
        last_checkpoint_ts TIMESTAMPTZ,
        last_keepalive_ts TIMESTAMPTZ,
        last_fatal_error TEXT,
        keepalive_op BIGINT,
        slot_name TEXT,
        content TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
      );
      CREATE TABLE IF NOT EXISTS powersync.bucket_data (
        group_id INTEGER NOT NULL,
        bucket_name TEXT NOT NULL,
        op_id BIGINT NOT NULL,
        op TEXT NOT NULL,
        source_table TEXT,
        source_key BYTEA,
        table_name TEXT,
        row_id TEXT,
        checksum BIGINT NOT NULL,
        data TEXT,
        target_op BIGINT,
        PRIMARY KEY (group_id, bucket_name, op_id)
      );
      CREATE TABLE IF NOT EXISTS powersync.bucket_parameters (
        id BIGSERIAL PRIMARY KEY,
        group_id INTEGER NOT NULL,
        source_table TEXT NOT NULL,
        source_key BYTEA NOT NULL,
        lookup BYTEA NOT NULL,
        bucket_parameters JSONB NOT NULL
      );
      CREATE TABLE IF NOT EXISTS powersync.current_data (
        group_id INTEGER NOT NULL,
        source_table TEXT NOT NULL,
        source_key BYTEA NOT NULL,
        buckets JSONB NOT NULL,
        data BYTEA NOT NULL,
        lookups BYTEA[] NOT NULL,
        PRIMARY KEY (group_id, source_table, source_key)
      );
      CREATE TABLE IF NOT EXISTS powersync.source_tables (
        id TEXT PRIMARY KEY,
        group_id INTEGER NOT NULL,
        connection_id INTEGER NOT NULL,
        relation_id JSONB,
        schema_name TEXT NOT NULL,
        table_name TEXT NOT NULL,
        replica_id_columns JSONB,
        snapshot_done BOOLEAN NOT NULL DEFAULT FALSE
      );
      CREATE TABLE IF NOT EXISTS powersync.write_checkpoints (
        user_id TEXT PRIMARY KEY,
        lsns JSONB NOT NULL,
        write_checkpoint BIGINT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS powersync.custom_write_checkpoints (
        user_id TEXT NOT NULL,
        write_checkpoint BIGINT NOT NULL,
        sync_rules_id INTEGER NOT NULL,
        PRIMARY KEY (user_id, sync_rules_id)
      );
      CREATE TABLE IF NOT EXISTS powersync.instance (
        id TEXT PRIMARY KEY
      );
      INSERT INTO powersync.instance (id)
        SELECT gen_random_uuid()::text WHERE NOT EXISTS (SELECT 1 FROM powersync.instance);
    `
  },
  {
    // The real storage's migration 1749024804042-snapshot-progress (v1.25.0): per-table snapshot
    // progress, written after every flushed chunk and cleared when the table's snapshot is done.
    name: '2-snapshot-progress',
    sql: `
      ALTER TABLE powersync.sync_rules ADD COLUMN IF NOT EXISTS snapshot_lsn TEXT;
      ALTER TABLE powersync.source_tables
        ADD COLUMN IF NOT EXISTS snapshot_total_estimated_count INTEGER,
        ADD COLUMN IF NOT EXISTS snapshot_replicated_count INTEGER,
        ADD COLUMN IF NOT EXISTS snapshot_last_key BYTEA;
    `
  }
];

export class Storage {
  constructor(conn) {
    this.conn = conn;
    this.pool = makePool(conn, 'powersync-storage');
  }

  async query(text, params) {
    return this.pool.query(text, params);
  }

  async close() {
    await this.pool.end().catch(() => {});
  }

  /**
   * Schema `powersync`, created only when information_schema does not show it, as the real
   * DatabaseClient.initialize does (libs/lib-postgres at v1.25.0) before any storage query: a role
   * that owns a schema made for it, without CREATE on the database, can use it, while CREATE SCHEMA
   * IF NOT EXISTS alone would be refused ("permission denied for database ...").
   */
  async ensureSchema(client = this.pool) {
    const found = await client.query(`SELECT schema_name FROM information_schema.schemata WHERE schema_name = 'powersync'`);
    if (found.rowCount === 0) await client.query('CREATE SCHEMA IF NOT EXISTS powersync');
  }

  /** Creates schema `powersync`, the `locks` table and the storage tables. */
  async migrateUp() {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('powersync_migrations'))`);
      await this.ensureSchema(client);
      await client.query(`CREATE TABLE IF NOT EXISTS powersync.locks (
        name TEXT PRIMARY KEY, lock_id TEXT NOT NULL, ts TIMESTAMPTZ NOT NULL DEFAULT now())`);
      await client.query(`CREATE TABLE IF NOT EXISTS powersync.migrations (
        name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
      const done = new Set((await client.query('SELECT name FROM powersync.migrations')).rows.map((r) => r.name));
      for (const m of MIGRATIONS) {
        if (done.has(m.name)) continue;
        await client.query(m.sql);
        await client.query('INSERT INTO powersync.migrations (name) VALUES ($1)', [m.name]);
        logger.info(`Applied storage migration ${m.name}`);
      }
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }

  /** Drops the storage tables, keeping schema `powersync` and table `locks`. */
  async dropStorageTables() {
    for (const t of STORAGE_TABLES) {
      await this.query(`DROP TABLE IF EXISTS powersync.${t} CASCADE`);
    }
  }

  async hasSyncRulesTable() {
    const r = await this.query(`SELECT to_regclass('powersync.sync_rules') IS NOT NULL AS ok`);
    return r.rows[0].ok;
  }

  // ------------------------------------------------------------------ lock
  async acquireLock(lockId) {
    const r = await this.query(
      `INSERT INTO powersync.locks (name, lock_id, ts) VALUES ($1, $2, now())
       ON CONFLICT (name) DO UPDATE SET lock_id = EXCLUDED.lock_id, ts = now()
         WHERE powersync.locks.lock_id = EXCLUDED.lock_id
            OR powersync.locks.ts < now() - make_interval(secs => $3)
       RETURNING lock_id`,
      [LOCK_NAME, lockId, LOCK_EXPIRY_SECONDS]
    );
    return r.rowCount === 1;
  }

  async refreshLock(lockId) {
    const r = await this.query(`UPDATE powersync.locks SET ts = now() WHERE name = $1 AND lock_id = $2`, [LOCK_NAME, lockId]);
    return r.rowCount === 1;
  }

  async releaseLock(lockId) {
    await this.query(`DELETE FROM powersync.locks WHERE name = $1 AND lock_id = $2`, [LOCK_NAME, lockId]);
  }

  async lockHeldByOther(lockId) {
    const r = await this.query(
      `SELECT lock_id FROM powersync.locks WHERE name = $1 AND ts >= now() - make_interval(secs => $2)`,
      [LOCK_NAME, LOCK_EXPIRY_SECONDS]
    );
    return r.rowCount > 0 && r.rows[0].lock_id !== lockId;
  }

  // ------------------------------------------------------------------ sync rules
  async activeRules() {
    const r = await this.query(`SELECT * FROM powersync.sync_rules WHERE state = 'ACTIVE' ORDER BY id DESC LIMIT 1`);
    return r.rows[0] ?? null;
  }

  async nextRules() {
    const r = await this.query(`SELECT * FROM powersync.sync_rules WHERE state = 'PROCESSING' ORDER BY id DESC LIMIT 1`);
    return r.rows[0] ?? null;
  }

  /**
   * Stores `content` as a new sync rules version unless it equals (exact string equality) the
   * version being processed, or the active one when nothing is being processed.
   * Returns {created, row}.
   */
  async updateSyncRules(content, slotNamePrefix, { force = false } = {}) {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('powersync_sync_rules'))`);
      const next = (await client.query(`SELECT * FROM powersync.sync_rules WHERE state = 'PROCESSING' ORDER BY id DESC LIMIT 1`)).rows[0];
      const active = (await client.query(`SELECT * FROM powersync.sync_rules WHERE state = 'ACTIVE' ORDER BY id DESC LIMIT 1`)).rows[0];
      const current = next ?? active;
      if (!force && current && current.content === content) {
        await client.query('COMMIT');
        return { created: false, row: current };
      }
      await client.query(`UPDATE powersync.sync_rules SET state = 'STOP' WHERE state = 'PROCESSING'`);
      const id = Number((await client.query(`SELECT nextval(pg_get_serial_sequence('powersync.sync_rules', 'id')) AS id`)).rows[0].id);
      const slot = `${slotNamePrefix}${id}_${crypto.randomBytes(2).toString('hex')}`;
      const row = (
        await client.query(
          `INSERT INTO powersync.sync_rules (id, state, slot_name, content) VALUES ($1, 'PROCESSING', $2, $3) RETURNING *`,
          [id, slot, content]
        )
      ).rows[0];
      await client.query('COMMIT');
      return { created: true, row };
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }

  async rulesToReplicate() {
    const r = await this.query(
      `SELECT * FROM powersync.sync_rules WHERE state IN ('PROCESSING', 'ACTIVE', 'STOP') ORDER BY id`
    );
    return r.rows;
  }

  async allSlotNames() {
    const r = await this.query(`SELECT DISTINCT slot_name FROM powersync.sync_rules WHERE slot_name IS NOT NULL`);
    return r.rows.map((x) => x.slot_name);
  }

  /** Marks `id` ACTIVE and the previously active version STOP, atomically. */
  async activate(id, lsn) {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('powersync_sync_rules'))`);
      const r = await client.query(`SELECT state FROM powersync.sync_rules WHERE id = $1`, [id]);
      if (r.rows[0]?.state !== 'PROCESSING') {
        await client.query('COMMIT');
        return false;
      }
      await client.query(`UPDATE powersync.sync_rules SET state = 'STOP' WHERE state = 'ACTIVE' AND id <> $1`, [id]);
      await client.query(
        `UPDATE powersync.sync_rules SET state = 'ACTIVE', snapshot_done = TRUE, snapshot_lsn = $2, last_checkpoint_lsn = $2, last_fatal_error = NULL,
           last_checkpoint_ts = now(), last_keepalive_ts = now() WHERE id = $1`,
        [id, lsn]
      );
      await client.query('COMMIT');
      return true;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }

  async setState(id, state) {
    await this.query(`UPDATE powersync.sync_rules SET state = $2 WHERE id = $1`, [id, state]);
  }

  /** A checkpoint of the active version; like the real commit, it clears last_fatal_error. */
  async keepalive(id, lsn) {
    await this.query(
      `UPDATE powersync.sync_rules SET last_checkpoint_lsn = $2, last_keepalive_ts = now(), last_checkpoint_ts = now(),
         last_fatal_error = NULL WHERE id = $1`,
      [id, lsn]
    );
  }

  // ------------------------------------------------------------------ snapshot progress
  async sourceTablesOf(groupId) {
    const r = await this.query(`SELECT * FROM powersync.source_tables WHERE group_id = $1 ORDER BY schema_name, table_name`, [groupId]);
    return r.rows;
  }

  /** The `source_tables` row of (group, schema, table), created on first sight. */
  async sourceTable(groupId, schema, name, replicaIdColumns) {
    const found = await this.query(
      `SELECT * FROM powersync.source_tables WHERE group_id = $1 AND schema_name = $2 AND table_name = $3`,
      [groupId, schema, name]
    );
    if (found.rows[0]) return found.rows[0];
    const r = await this.query(
      `INSERT INTO powersync.source_tables (id, group_id, connection_id, schema_name, table_name, replica_id_columns)
       VALUES ($1, $2, 1, $3, $4, $5) RETURNING *`,
      [crypto.randomUUID(), groupId, schema, name, JSON.stringify(replicaIdColumns.map((c) => ({ name: c })))]
    );
    return r.rows[0];
  }

  async updateTableProgress(id, { totalEstimatedCount, replicatedCount }) {
    await this.query(
      `UPDATE powersync.source_tables SET snapshot_total_estimated_count = $2, snapshot_replicated_count = $3 WHERE id = $1`,
      [id, totalEstimatedCount, replicatedCount]
    );
  }

  /** As the real markTableSnapshotDone: done, and the progress columns cleared. */
  async markTableSnapshotDone(id) {
    await this.query(
      `UPDATE powersync.source_tables SET snapshot_done = TRUE, snapshot_total_estimated_count = NULL,
         snapshot_replicated_count = NULL, snapshot_last_key = NULL WHERE id = $1`,
      [id]
    );
  }

  /** A new slot means a snapshot from scratch (the real `storage.clear()` when needsNewSlot). */
  async clearSnapshot(groupId) {
    await this.query(`DELETE FROM powersync.source_tables WHERE group_id = $1`, [groupId]);
    await this.query(`UPDATE powersync.sync_rules SET snapshot_done = FALSE WHERE id = $1`, [groupId]);
  }

  async setFatalError(id, message) {
    await this.query(`UPDATE powersync.sync_rules SET last_fatal_error = $2 WHERE id = $1`, [id, message]);
  }
}

/** `"schema"."table"`, as the real service names tables in its logs (util.qualifiedName). */
export function qualifiedName(schema, name) {
  const esc = (x) => `"${String(x).replace(/"/g, '""')}"`;
  return `${esc(schema)}.${esc(name)}`;
}

// Microseconds between the Unix epoch and Postgres's (2000-01-01), for standby status updates.
const PG_EPOCH_OFFSET_US = 946684800000000n;

function lsnText(lsn) {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

function lsnValue(text) {
  const [hi, lo] = text.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

export class Source {
  constructor(conn) {
    this.conn = conn;
    this.pool = makePool(conn, 'powersync');
    // slot name -> {client, confirmed (BigInt), open}: the walsender streams this process holds.
    this.streams = new Map();
  }

  async query(text, params) {
    return this.pool.query(text, params);
  }

  async close() {
    await this.stopStreams();
    await this.pool.end().catch(() => {});
  }

  /**
   * The real service replicates over a walsender connection (START_REPLICATION ... LOGICAL), so
   * while it runs Postgres shows its slot active and refuses to drop it ("replication slot ... is
   * active for PID N"). The stand-in holds the same kind of stream and confirms the positions the
   * server sends, which is what moves the slot's confirmed_flush_lsn forward.
   */
  async startStream(name) {
    if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`invalid slot name ${name}`);
    const client = new pg.Client({
      host: this.conn.host, port: this.conn.port, user: this.conn.user, password: this.conn.password,
      database: this.conn.database, ssl: this.conn.ssl, replication: 'database', application_name: 'powersync'
    });
    const stream = { client, confirmed: 0n, open: true };
    this.streams.set(name, stream);
    const closed = (why) => {
      if (!stream.open) return;
      stream.open = false;
      if (this.streams.get(name) === stream) this.streams.delete(name);
      if (why) logger.warn(`Replication stream of ${name} ended: ${why}`);
      client.end().catch(() => {});
    };
    client.on('error', (e) => closed(e.message));
    try {
      await client.connect();
    } catch (e) {
      closed(e.message);
      throw e;
    }
    client.connection.on('copyData', ({ chunk }) => {
      if (chunk[0] === 0x77) {
        // XLogData: the start of the record is safe to confirm once received.
        const start = chunk.readBigUInt64BE(1);
        if (start > stream.confirmed) stream.confirmed = start;
      } else if (chunk[0] === 0x6b) {
        // Primary keepalive: everything up to the server's sent position has been seen.
        const end = chunk.readBigUInt64BE(1);
        if (end > stream.confirmed) stream.confirmed = end;
        if (chunk[17]) this.sendFeedback(stream);
      }
    });
    client
      .query(`START_REPLICATION SLOT "${name}" LOGICAL 0/0 (proto_version '1', publication_names 'powersync')`)
      .then(() => closed(null), (e) => closed(e.message));
    return stream;
  }

  sendFeedback(stream) {
    if (!stream.open) return;
    const buf = Buffer.alloc(34);
    buf[0] = 0x72; // 'r': standby status update
    buf.writeBigUInt64BE(stream.confirmed, 1); // written
    buf.writeBigUInt64BE(stream.confirmed, 9); // flushed
    buf.writeBigUInt64BE(stream.confirmed, 17); // applied
    buf.writeBigUInt64BE(BigInt(Date.now()) * 1000n - PG_EPOCH_OFFSET_US, 25);
    buf[33] = 0;
    try {
      stream.client.connection.sendCopyFromChunk(buf);
    } catch (e) {
      logger.warn(`Could not confirm replication progress: ${e.message}`);
    }
  }

  async stopStreams() {
    await Promise.all([...this.streams.keys()].map((name) => this.stopStream(name)));
  }

  async stopStream(name) {
    const stream = this.streams.get(name);
    if (!stream) return;
    this.streams.delete(name);
    stream.open = false;
    await Promise.race([stream.client.end().catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
  }

  /** Returns a list of {level, message} problems with the source configuration. */
  async checkConfiguration() {
    const errors = [];
    const wal = (await this.query('SHOW wal_level')).rows[0].wal_level;
    if (wal !== 'logical') {
      errors.push({ level: 'fatal', message: `wal_level must be set to 'logical', your database has '${wal}'` });
      return errors;
    }
    const pub = await this.query(`SELECT puballtables, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = 'powersync'`);
    if (pub.rowCount === 0) {
      errors.push({
        level: 'fatal',
        message: "Publication 'powersync' does not exist. Run: `CREATE PUBLICATION powersync FOR ALL TABLES`, or read the documentation for details."
      });
      return errors;
    }
    const p = pub.rows[0];
    if (!p.pubinsert || !p.pubupdate || !p.pubdelete || !p.pubtruncate) {
      errors.push({
        level: 'fatal',
        message: "Publication 'powersync' does not publish all changes. Create a publication using `WITH (publish = \"insert, update, delete, truncate\")` (the default)."
      });
    }
    return errors;
  }

  async slotExists(name) {
    const r = await this.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [name]);
    return r.rowCount > 0;
  }

  async createSlot(name) {
    await this.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [name]);
  }

  async dropSlot(name) {
    await this.stopStream(name);
    // The walsender of a just-closed stream can take a moment to exit; until then the slot is
    // still active and Postgres refuses the drop.
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await this.query(
          `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`,
          [name]
        );
        return r.rowCount > 0;
      } catch (e) {
        if (attempt >= 20 || !/is active for PID/.test(e.message)) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Keeps the slot's walsender stream open and confirms what it received; returns the LSN. */
  async advanceSlot(name) {
    let stream = this.streams.get(name);
    if (!stream) stream = await this.startStream(name);
    const current = lsnValue(await this.currentLsn());
    if (stream.confirmed === 0n) return lsnText(current);
    this.sendFeedback(stream);
    return lsnText(stream.confirmed);
  }

  async currentLsn() {
    return (await this.query('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn;
  }

  async slotLagBytes(name) {
    const r = await this.query(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag FROM pg_replication_slots WHERE slot_name = $1`,
      [name]
    );
    return r.rows[0]?.lag != null ? Number(r.rows[0].lag) : undefined;
  }

  /**
   * The tables a rules pattern reads (`todos`, or `todo%` as a prefix), each with its primary key
   * columns (the replica identity; `['id']` when it has none here).
   */
  async resolveTables(schema, pattern) {
    const wildcard = pattern.endsWith('%');
    const r = await this.query(
      `SELECT c.oid::int AS oid, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND ${wildcard ? 'c.relname LIKE $2' : 'c.relname = $2'}
       ORDER BY c.relname`,
      [schema, pattern]
    );
    const tables = [];
    for (const row of r.rows) {
      const pk = await this.query(
        `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = $1 AND i.indisprimary ORDER BY a.attnum`,
        [row.oid]
      );
      tables.push({ schema, name: row.name, replicaIdColumns: pk.rowCount ? pk.rows.map((x) => x.attname) : ['id'] });
    }
    return tables;
  }

  /** The real service's estimate: `reltuples` (-1 for a table never vacuumed or analyzed). */
  async estimatedCount(schema, name) {
    const r = await this.query(`SELECT reltuples::bigint AS estimate FROM pg_class WHERE oid = $1::regclass`, [qualifiedName(schema, name)]);
    return Number(r.rows[0]?.estimate ?? -1);
  }

  async rowCount(schema, name) {
    const r = await this.query(`SELECT count(*)::bigint AS n FROM ${qualifiedName(schema, name)}`);
    return Number(r.rows[0].n);
  }

  /**
   * The tables a rules pattern reads, checked as the real `getDebugTablesInfo`
   * (replication-utils.ts, debug-tables-info-batched.plpgsql at v1.25.0) checks them for the
   * diagnostics: a missing table is a warning; no replication id, a failing SELECT, or a table
   * outside the `powersync` publication is fatal (observed on the real 1.25.0 image: the rules
   * still activate, and the fatal error stays in their diagnostics).
   */
  async tableDiagnostics(schema, pattern) {
    const wildcard = pattern.endsWith('%');
    const r = await this.query(
      `SELECT c.oid::int AS oid, c.relname AS name,
              CASE c.relreplident WHEN 'd' THEN 'default' WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full' WHEN 'i' THEN 'index' END AS identity,
              EXISTS (SELECT 1 FROM pg_publication_tables p WHERE p.pubname = 'powersync' AND p.schemaname = n.nspname AND p.tablename = c.relname) AS in_publication
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind = 'r' AND ${wildcard ? 'c.relname LIKE $2' : 'c.relname = $2'}
       ORDER BY c.relname`,
      [schema, pattern]
    );
    if (!wildcard && r.rowCount === 0) {
      return [{ schema, name: pattern, replication_id: [], errors: [{ level: 'warning', message: `Table ${qualifiedName(schema, pattern)} not found.` }] }];
    }
    const tables = [];
    for (const row of r.rows) {
      const qualified = qualifiedName(schema, row.name);
      const cols =
        row.identity === 'full'
          ? `SELECT a.attname FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`
          : `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = $1 AND ${row.identity === 'index' ? 'i.indisreplident' : 'i.indisprimary'} AND a.attnum > 0 ORDER BY a.attnum`;
      const ids = row.identity === 'nothing' ? [] : (await this.query(cols, [row.oid])).rows.map((x) => x.attname);
      const errors = [];
      if (ids.length === 0 && row.identity !== 'nothing') {
        errors.push({
          level: 'fatal',
          message: `No replication id found for ${qualified}. Replica identity: ${row.identity}.${row.identity === 'default' ? ' Configure a primary key on the table.' : ''}`
        });
      }
      try {
        await this.query(`SELECT * FROM ${qualified} LIMIT 1`);
      } catch (e) {
        errors.push({ level: 'fatal', message: e.message });
      }
      if (!row.in_publication) {
        errors.push({
          level: 'fatal',
          message: `Table ${qualified} is not part of publication 'powersync'. Run: \`ALTER PUBLICATION powersync ADD TABLE ${qualified}\`.`
        });
      }
      tables.push({ schema, name: row.name, replication_id: ids, errors });
    }
    return tables;
  }

  /** `wal_status` of a slot (pg_replication_slots), which the real diagnostics report beside the lag. */
  async slotWalStatus(name) {
    const r = await this.query(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1`, [name]);
    return r.rows[0]?.wal_status ?? undefined;
  }
}
