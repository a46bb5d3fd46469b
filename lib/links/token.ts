import { SignJWT, jwtVerify, errors } from 'jose';
import { CallfsError } from '../errors.js';
import { isCanonical } from '../paths.js';

/** What a link token says, signed: which link, which file, on whose authority, until when. */
export interface LinkClaims {
  /** The link id (the row's primary key in the metadata store). */
  id: string;
  /** Canonical path of the file. */
  path: string;
  /** Name of the user who generated the link; the download reads the file as them. */
  user: string;
  /** Their uid when they generated it (a renamed or re-numbered user no longer matches). */
  uid: number;
  /** Expiry, whole seconds since the epoch (the JWT `exp`). */
  exp: number;
}

/** Signs and verifies link tokens. */
export interface LinkTokens {
  /** A compact HS256 JWT over the claims. */
  sign(claims: LinkClaims): Promise<string>;
  /**
   * The claims of a token signed with our secret, checked at `now`. Throws
   * LINK_NOT_FOUND for anything malformed, tampered, signed with another key or
   * algorithm, and LINK_EXPIRED for a genuine token past its `exp`.
   */
  verify(token: string, now?: Date): Promise<LinkClaims>;
}

export interface LinkTokensOptions {
  /** auth.single_use_link_secret. */
  secret: string;
}

/**
 * An explicit token type (RFC 8725 §3.11): a JWT minted for anything else
 * with the same key can never pass as a link.
 */
const TOKEN_TYPE = 'callfs-link+jwt';
/** Three base64url parts; anything longer than this is not ours (our tokens are ~300 characters). */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_TOKEN_LENGTH = 8192;

const notFound = (cause?: unknown): CallfsError => new CallfsError('LINK_NOT_FOUND', 'no such link', { cause });

/**
 * The last character of a base64url part can carry unused low bits (2 of the 6
 * in a 43-character HS256 signature), and decoders, jose's among them, ignore
 * them: one signature has several spellings. Only the one spelling that
 * re-encodes to itself is accepted, so a token string names one link, once.
 */
const isCanonicalBase64url = (part: string): boolean => Buffer.from(part, 'base64url').toString('base64url') === part;

/** Link tokens: HS256 only, the header's `typ` pinned, every claim type-checked. */
export function createLinkTokens(options: LinkTokensOptions): LinkTokens {
  if (options.secret.length < 16) throw new Error('auth.single_use_link_secret must be at least 16 characters');
  const key = new TextEncoder().encode(options.secret);

  return {
    async sign(claims) {
      return new SignJWT({ path: claims.path, uid: claims.uid })
        .setProtectedHeader({ alg: 'HS256', typ: TOKEN_TYPE })
        .setJti(claims.id)
        .setSubject(claims.user)
        .setExpirationTime(claims.exp)
        .sign(key);
    },

    async verify(token, now = new Date()) {
      if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH || !TOKEN_SHAPE.test(token)) throw notFound();
      if (!token.split('.').every(isCanonicalBase64url)) throw notFound();
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, key, {
          algorithms: ['HS256'],
          typ: TOKEN_TYPE,
          currentDate: now,
          clockTolerance: 0,
          requiredClaims: ['jti', 'sub', 'exp'],
        }));
      } catch (err) {
        // jose checks the signature before any claim, so an expired token here is a genuine one.
        if (err instanceof errors.JWTExpired) throw new CallfsError('LINK_EXPIRED', 'the link has expired', { cause: err });
        throw notFound(err);
      }
      const { jti, sub, exp, path, uid } = payload;
      if (typeof jti !== 'string' || jti === '' || typeof sub !== 'string' || sub === '' || typeof exp !== 'number' || !Number.isSafeInteger(exp)) throw notFound();
      if (typeof path !== 'string' || !isCanonical(path) || path === '/') throw notFound();
      if (typeof uid !== 'number' || !Number.isSafeInteger(uid) || uid < 0) throw notFound();
      return { id: jti, path, user: sub, uid, exp };
    },
  };
}
