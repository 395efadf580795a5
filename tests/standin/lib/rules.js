// Sync rules parsing with the real parser (@powersync/service-sync-rules).
import { SqlSyncRules } from '@powersync/service-sync-rules';

export function parseRules(content, defaultSchema = 'public') {
  try {
    const r = SqlSyncRules.fromYaml(content, { defaultSchema, throwOnError: false });
    const errors = (r.errors ?? []).map((e) => ({
      level: e.type === 'warning' ? 'warning' : 'fatal',
      message: e.message,
      ...(e.location ? { location: e.location } : {})
    }));
    return { config: r.config, errors, fatal: errors.filter((e) => e.level === 'fatal') };
  } catch (e) {
    const errors = [{ level: 'fatal', message: e.message }];
    return { config: null, errors, fatal: errors };
  }
}

/** The body of the real /api/sync-rules/v1/validate endpoint (without live schema lookups). */
export function debugRules(content) {
  const p = parseRules(content);
  if (p.fatal.length || !p.config) return { valid: false, errors: p.fatal.map((e) => e.message) };
  const patterns = safe(() => p.config.getSourceTables(), []);
  return {
    valid: true,
    bucket_definitions: safe(() => p.config.debugRepresentation(), []),
    source_tables: patterns.map((t) => ({
      schema: t.schema,
      pattern: t.tablePattern,
      wildcard: String(t.tablePattern).endsWith('%'),
      connection_tag: t.connectionTag
    })),
    data_tables: safe(() => p.config.debugGetOutputTables(), {})
  };
}

export function sourceTables(content) {
  const p = parseRules(content);
  if (!p.config) return [];
  return safe(() => p.config.getSourceTables(), []).map((t) => ({ schema: t.schema, name: t.tablePattern }));
}

function safe(f, dflt) {
  try {
    return f() ?? dflt;
  } catch {
    return dflt;
  }
}

/**
 * The parse the real deploy route does (routes/endpoints/sync-rules.ts at v1.25.0):
 * `SqlSyncRules.fromYaml` with its default `throwOnError: true`, so a fatal error throws a
 * `SyncRulesErrors` whose message is every collected error (warnings included) joined by ", ".
 * Returns null when the rules parse, else that message (the 422's `details`).
 */
export function deployParseError(content, defaultSchema = 'public') {
  try {
    SqlSyncRules.fromYaml(content, { defaultSchema });
    return null;
  } catch (e) {
    return e.message;
  }
}
