import https from 'node:https';
import http from 'node:http';
import type { Readable } from 'node:stream';

/** A response read whole (tests only; fine for the sizes tests use unless `stream` is set). */
export interface TestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** body parsed as JSON (undefined when it is not JSON). */
  json: any;
  text: string;
}

export interface TestRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string | Readable;
  /** Trusted CA (PEM) for the server's certificate; omitted: verification is off. */
  ca?: string | Buffer;
  /** Bearer token shortcut. */
  token?: string;
  /** Pass the path verbatim (no normalisation by the URL parser). */
  rawPath?: string;
}

const agentOptions = { keepAlive: true, maxSockets: 64 };
const insecureAgent = new https.Agent({ ...agentOptions, rejectUnauthorized: false });

/** One HTTP(S) request; resolves with the whole response. */
export function request(url: string, options: TestRequestOptions = {}): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const headers: Record<string, string> = { ...options.headers };
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    const isHttps = u.protocol === 'https:';
    const req = (isHttps ? https : http).request(
      {
        method: options.method ?? 'GET',
        hostname: u.hostname,
        port: u.port,
        path: options.rawPath ?? u.pathname + u.search,
        headers,
        ...(isHttps ? (options.ca === undefined ? { agent: insecureAgent } : { ca: options.ca, servername: 'localhost' }) : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          let json: any;
          if (String(res.headers['content-type'] ?? '').includes('json')) {
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json, text });
        });
      },
    );
    req.on('error', reject);
    const body = options.body;
    if (body === undefined) req.end();
    else if (typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
    else body.pipe(req);
  });
}
