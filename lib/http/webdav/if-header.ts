import { CallfsError } from '../../errors.js';

/**
 * The If request header of RFC 4918 §10.4: lists of conditions on lock
 * tokens and entity tags, untagged (about the request's resource) or tagged
 * with the resource they are about.
 */

export interface Condition {
  not: boolean;
  /** A state token (`urn:uuid:…`, or anything else a client sends, such as `DAV:no-lock`). */
  token?: string;
  /** An entity tag, quotes included. */
  etag?: string;
}

export interface IfList {
  /** The tagged resource (a URL or an absolute path), or null for the request's resource. */
  resource: string | null;
  conditions: Condition[];
}

const bad = (why: string): CallfsError => new CallfsError('BAD_REQUEST', `malformed If header: ${why}`);

export function parseIf(header: string): IfList[] {
  const lists: IfList[] = [];
  let resource: string | null = null;
  let i = 0;
  const skip = (): void => {
    while (i < header.length && /\s/.test(header[i] as string)) i++;
  };
  const until = (end: string): string => {
    const at = header.indexOf(end, i + 1);
    if (at < 0) throw bad(`missing ${end}`);
    const inner = header.slice(i + 1, at);
    i = at + 1;
    return inner;
  };
  let tagged: boolean | null = null;
  for (skip(); i < header.length; skip()) {
    const c = header[i];
    if (c === '<') {
      if (tagged === false) throw bad('a resource tag after untagged lists');
      tagged = true;
      resource = until('>');
      continue;
    }
    if (c !== '(') throw bad(`unexpected ${JSON.stringify(c)}`);
    if (tagged === null) tagged = false;
    i++;
    const conditions: Condition[] = [];
    for (skip(); header[i] !== ')'; skip()) {
      if (i >= header.length) throw bad('missing )');
      let not = false;
      if (header.slice(i, i + 3).toLowerCase() === 'not') {
        not = true;
        i += 3;
        skip();
      }
      if (header[i] === '<') conditions.push({ not, token: until('>') });
      else if (header[i] === '[') conditions.push({ not, etag: until(']') });
      else throw bad('a condition is a <state token> or an [entity tag]');
    }
    i++;
    if (conditions.length === 0) throw bad('an empty list');
    lists.push({ resource: tagged ? resource : null, conditions });
  }
  if (lists.length === 0) throw bad('no list');
  return lists;
}

/** Every state token the header names (Not or not): the lock tokens a request submits. */
export function submittedTokens(lists: readonly IfList[]): Set<string> {
  const tokens = new Set<string>();
  for (const list of lists) for (const c of list.conditions) if (c.token !== undefined) tokens.add(c.token);
  return tokens;
}
