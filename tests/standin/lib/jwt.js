// Client JWT verification with shared-secret (HS*) keys, following the real KeyStore rules; the
// descriptions and codes are service-core auth/utils.ts mapJoseError's at v1.25.0 (observed on the
// real 1.25.0 image built from source).
import crypto from 'node:crypto';
import { AuthorizationError } from './errors.js';

const CLOCK_TOLERANCE = 60; // seconds
const MAX_AGE = 86400; // exp - iat, seconds

function b64json(part, what) {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new AuthorizationError('PSYNC_S2101', 'Token is not a well-formed JWT. Check the token format.', `Invalid JWT ${what}`);
  }
}

const HASH = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

export function tokenFromHeader(header) {
  const m = /^(Token|Bearer) (\S+)$/.exec(header ?? '');
  return m ? m[2] : null;
}

/** Returns the payload or throws AuthorizationError (HTTP 401). */
export function verifyJwt(token, config) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new AuthorizationError('PSYNC_S2101', 'Token is not a well-formed JWT. Check the token format.', 'Invalid Compact JWS');
  const header = b64json(parts[0], 'header');
  const payload = b64json(parts[1], 'payload');

  // Key selection as in the real KeyStore: a token kid selects the key with exactly that kid
  // (and only it); otherwise keys without a kid ("wildcard" keys) are tried by signature. A key
  // with a kid never matches a token without one.
  const signingInput = `${parts[0]}.${parts[1]}`;
  let sig;
  try {
    sig = Buffer.from(parts[2], 'base64url');
  } catch {
    sig = Buffer.alloc(0);
  }
  const valid = (key) => {
    if (key.secret == null || !HASH[key.alg]) return false;
    const expected = crypto.createHmac(HASH[key.alg], key.secret).update(signingInput).digest();
    return expected.length === sig.length && crypto.timingSafeEqual(expected, sig);
  };
  const exact = header.kid != null ? config.keys.find((k) => k.kid === header.kid) : undefined;
  if (exact) {
    if (exact.alg !== header.alg) {
      throw new AuthorizationError('PSYNC_S2101', `Unexpected token algorithm ${header.alg}`, `Key kid: ${exact.kid}, alg: ${exact.alg}, kty: oct`);
    }
    if (!valid(exact)) throw new AuthorizationError('PSYNC_S2101', 'signature verification failed');
  } else {
    const wildcard = config.keys.filter((k) => k.kid == null && k.alg === header.alg);
    if (!wildcard.some(valid)) {
      throw new AuthorizationError(
        'PSYNC_S2101',
        'Could not find an appropriate key in the keystore. The key is missing or no key matched the token KID',
        `Known keys: ${config.keys.map((k) => (k.kid ? `kid: ${k.kid}` : '<wildcard>') + `, kty: oct, alg: ${k.alg}`).join('; ')}`
      );
    }
  }

  for (const claim of ['sub', 'iat', 'exp']) {
    if (payload[claim] == null) {
      throw new AuthorizationError('PSYNC_S2101', `JWT payload is missing a required claim ${JSON.stringify(claim)}`, `missing required "${claim}" claim`);
    }
  }
  if (typeof payload.sub !== 'string') {
    throw new AuthorizationError('PSYNC_S2101', 'JWT payload is missing a required claim "sub"', '"sub" claim must be a string');
  }
  const now = Math.floor(Date.now() / 1000);
  if (typeof payload.exp !== 'number' || payload.exp <= now - CLOCK_TOLERANCE) {
    throw new AuthorizationError('PSYNC_S2103', 'JWT has expired', '"exp" claim timestamp check failed');
  }
  if (typeof payload.iat !== 'number' || payload.iat > now + CLOCK_TOLERANCE) {
    throw new AuthorizationError('PSYNC_S2101', 'JWT payload is missing a required claim "iat"', '"iat" claim timestamp check failed (it should be in the past)');
  }
  if (payload.nbf != null && (typeof payload.nbf !== 'number' || payload.nbf > now + CLOCK_TOLERANCE)) {
    throw new AuthorizationError('PSYNC_S2101', 'JWT payload is missing a required claim "nbf"', '"nbf" claim timestamp check failed');
  }
  const details = `Current configuration allows these audience values: ${JSON.stringify(config.audience)}`;
  if (payload.aud == null) {
    throw new AuthorizationError('PSYNC_S2105', 'JWT payload is missing a required claim "aud"', details);
  }
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (!aud.some((a) => config.audience.includes(a))) {
    throw new AuthorizationError('PSYNC_S2105', `Unexpected "aud" claim value: ${JSON.stringify(payload.aud)}`, details);
  }
  const age = payload.exp - payload.iat;
  if (age > MAX_AGE) {
    throw new AuthorizationError('PSYNC_S2104', `Token must expire in a maximum of ${MAX_AGE} seconds, got ${age}s`);
  }
  if (payload.parameters != null && (typeof payload.parameters !== 'object' || Array.isArray(payload.parameters))) {
    throw new AuthorizationError('PSYNC_S2101', 'Payload parameters must be an object');
  }
  return payload;
}
