// Stand-in for the PowerSync Service entry point (`node service/lib/entry.js <command>`).
// Test bed only: reproduces the contract the dokku-powersync plugin drives, not the service.
import fs from 'node:fs';
import { loadConfig } from './config.js';
import { FatalStartupError } from './errors.js';
import { logger } from './log.js';
import { Service } from './service.js';
import { Source, Storage } from './db.js';

const VERSION = (() => {
  try {
    return JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
  } catch {
    return '0.0.0';
  }
})();

const FATAL_EXIT = 150;

function parseArgs(argv) {
  const opts = { positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const take = () => {
      if (i + 1 >= argv.length) usage(`option ${a} needs a value`);
      return argv[++i];
    };
    if (a === '-c' || a === '--config-path') opts.configPath = take();
    else if (a === '-c64' || a === '--config-base64') opts.configBase64 = take();
    else if (a === '-r' || a === '--runner-type') opts.runner = take();
    else if (a === '-sync64' || a === '--sync-base64') opts.syncBase64 = take();
    else if (a.startsWith('--config-path=')) opts.configPath = a.slice(14);
    else if (a.startsWith('--runner-type=')) opts.runner = a.slice(14);
    else if (a === '-h' || a === '--help') usage(null, 0);
    else if (a === '-V' || a === '--version') {
      console.log(VERSION);
      process.exit(0);
    } else opts.positional.push(a);
  }
  return opts;
}

function usage(err, code = 1) {
  if (err) console.error(`error: ${err}`);
  console.error(`Usage: powersync [command]

PowerSync Service stand-in ${VERSION} (test bed)

Commands:
  start [-r unified|api|sync]   start the service (default)
  migrate <up|down>             run storage migrations
  teardown <TEARDOWN>           drop replication slots and storage data
  compact [-b buckets]          compact storage (nothing stored to compact in the stand-in)
  test-connection               test the replication connection`);
  process.exit(code);
}

function fatal(e) {
  logger.error(`Fatal startup error - exiting with code ${FATAL_EXIT}. ${e.message}`);
  process.exit(FATAL_EXIT);
}

async function cmdStart(opts) {
  const runner = opts.runner ?? process.env.PS_RUNNER_TYPE ?? 'unified';
  if (!['unified', 'api', 'sync'].includes(runner)) usage(`unknown runner type ${runner}`);
  logger.info(`Booting PowerSync Service v${VERSION} (stand-in), runner: ${runner}`);
  let config;
  try {
    config = loadConfig(opts);
  } catch (e) {
    return fatal(e);
  }
  const service = new Service(config, { runner, version: VERSION });
  const shutdown = async (sig) => {
    logger.info(`Received ${sig}`);
    await service.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  try {
    await service.start();
  } catch (e) {
    if (service.stopping) return;
    const msg = e instanceof FatalStartupError ? e.message : `postgres query failed: ${e.message}`;
    logger.error(msg);
    await service.stop().catch(() => {});
    process.exit(FATAL_EXIT);
  }
}

async function withConfig(opts) {
  try {
    return loadConfig(opts);
  } catch (e) {
    return fatal(e);
  }
}

async function cmdMigrate(opts) {
  const dir = opts.positional[1];
  if (dir !== 'up' && dir !== 'down') usage('migrate requires <up|down>');
  const config = await withConfig(opts);
  const storage = new Storage(config.storage);
  try {
    if (dir === 'up') {
      await storage.migrateUp();
      logger.info('Storage migrations up to date');
    } else {
      await storage.ensureSchema();
      await storage.dropStorageTables();
      logger.info('Reverted all storage migrations');
    }
  } catch (e) {
    logger.error(`Migration failed: ${e.message}`);
    process.exitCode = 1;
  } finally {
    await storage.close();
  }
}

async function cmdTeardown(opts) {
  if (opts.positional[1] !== 'TEARDOWN') {
    logger.error('[PSYNC_S0102] TEARDOWN was not acknowledged.');
    console.error('Error: TEARDOWN was not acknowledged.');
    process.exit(1);
  }
  const config = await withConfig(opts);
  const storage = new Storage(config.storage);
  const source = config.source ? new Source(config.source) : null;
  const lockId = `teardown-${process.pid}-${Date.now()}`;
  let locked = false;
  try {
    logger.info('Tearing down PowerSync instance...');
    logger.info('Terminating sync rules...');
    await storage.ensureSchema();
    await storage.query(`CREATE TABLE IF NOT EXISTS powersync.locks (
      name TEXT PRIMARY KEY, lock_id TEXT NOT NULL, ts TIMESTAMPTZ NOT NULL DEFAULT now())`);
    if (!(await storage.acquireLock(lockId))) {
      throw new Error(
        '[PSYNC_S1003] Sync rules have been locked by another process for replication. Stop every PowerSync process using this storage before teardown.'
      );
    }
    locked = true;
    if (await storage.hasSyncRulesTable()) {
      const slots = await storage.allSlotNames();
      if (source) {
        for (const slot of slots) {
          if (await source.dropSlot(slot)) logger.info(`Dropped replication slot ${slot}`);
        }
      } else if (slots.length) {
        logger.warn(`No replication connection configured - slots not dropped: ${slots.join(', ')}`);
      }
    }
    await storage.dropStorageTables();
    logger.info('Teardown complete.');
  } catch (e) {
    logger.error(`Teardown failure: ${e.message}`);
    process.exitCode = 1;
  } finally {
    if (locked) await storage.releaseLock(lockId).catch(() => {});
    await storage.close();
    await source?.close();
  }
}

async function cmdTestConnection(opts) {
  const config = await withConfig(opts);
  if (!config.source) {
    logger.error('Connection failed: No replication connection configured');
    process.exit(1);
  }
  const source = new Source(config.source);
  try {
    logger.info('Testing connection...');
    await source.query('SELECT 1');
    const errors = await source.checkConfiguration();
    if (errors.length) throw new Error(errors.map((e) => e.message).join('; '));
    logger.info(`Connection succeeded to ${config.source.redacted}`);
  } catch (e) {
    logger.error(`Connection failed: ${e.message}`);
    process.exitCode = 1;
  } finally {
    await source.close();
  }
}

// compact-action.ts at v1.25.0: `compact [-b buckets] [-p|--no-parameter-indexes]`; the log
// lines are the real ones; the stand-in stores no bucket data, so there is nothing to compact.
async function cmdCompact(opts) {
  const bucketsAt = opts.positional.findIndex((a) => a === '-b' || a === '--buckets');
  const buckets = bucketsAt >= 0 ? (opts.positional[bucketsAt + 1] ?? '').split(',').map((b) => b.trim()).filter(Boolean) : null;
  if (buckets?.some((b) => !b.includes('['))) {
    logger.error(`Invalid bucket names: ${buckets.filter((b) => !b.includes('[')).join(', ')}. ` +
      'Pass full bucket names (e.g., "global[]"), not bucket definition names (e.g., "global").');
    process.exit(1);
  }
  logger.info(buckets == null ? 'Compacting storage for all buckets...' : `Compacting storage for ${buckets.join(', ')}...`);
  const config = await withConfig(opts);
  const storage = new Storage(config.storage);
  try {
    logger.info('Connecting to storage...');
    const active = (await storage.hasSyncRulesTable())
      ? (await storage.query("SELECT id FROM powersync.sync_rules WHERE state = 'ACTIVE' LIMIT 1")).rows[0]
      : null;
    if (active == null) {
      logger.info('No active instance to compact');
      return;
    }
    logger.info('Performing compaction...');
    logger.info('Successfully compacted storage.');
  } catch (e) {
    logger.error(`Failed to compact: ${e.message}`);
    process.exitCode = 1;
  } finally {
    await storage.close();
  }
}

const opts = parseArgs(process.argv.slice(2));
const command = opts.positional[0] ?? 'start';
const commands = { start: cmdStart, migrate: cmdMigrate, teardown: cmdTeardown, 'test-connection': cmdTestConnection, compact: cmdCompact };
if (!commands[command]) usage(`unknown command '${command}'`);
commands[command](opts).catch((e) => {
  logger.error(e.stack || e.message);
  process.exit(1);
});
