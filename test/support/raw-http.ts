import tls from 'node:tls';

/** What a raw client saw: the parsed answer, or the error that ended the exchange first. */
export interface RawResult {
  status?: number;
  headers: Record<string, string>;
  json?: any;
  /** The socket error (EPIPE, ECONNRESET…) if one came before a whole answer. */
  error?: string;
}

export interface RawRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Body bytes, sent in 64 KiB writes. */
  body: Buffer;
  /** Frame the body as one chunk of Transfer-Encoding: chunked (else Content-Length: body length unless given). */
  chunked: boolean;
}

/**
 * A client that sends its whole request before it reads anything, as simple
 * HTTP clients do: it sees the answer only if the server still accepts the
 * body after answering, and it can tell an answer from a reset connection.
 */
export function writeThenRead(url: string, req: RawRequest): Promise<RawResult> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    let error: string | undefined;
    const socket = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      socket.pause();
      const head = [`${req.method} ${req.path} HTTP/1.1`, 'Host: localhost', ...Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`)];
      if (req.chunked) head.push('Transfer-Encoding: chunked');
      else if (!Object.keys(req.headers).some((k) => k.toLowerCase() === 'content-length')) head.push(`Content-Length: ${req.body.length}`);
      // The head and the first bytes of the body in one write, so that they reach the server together.
      const first = req.body.subarray(0, 8 * 1024);
      socket.write(Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n' + (req.chunked ? `${req.body.length.toString(16)}\r\n` : '')), first]));
      let offset = first.length;
      const next = (): void => {
        while (offset < req.body.length) {
          const piece = req.body.subarray(offset, offset + 64 * 1024);
          offset += piece.length;
          if (!socket.write(piece)) {
            socket.once('drain', next);
            return;
          }
        }
        socket.write(req.chunked ? '\r\n0\r\n\r\n' : '', () => socket.resume());
      };
      next();
    });
    socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
    socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
    socket.on('close', () => resolve(parseAnswer(received, error)));
  });
}

function parseAnswer(bytes: Buffer, error: string | undefined): RawResult {
  const text = bytes.toString('utf8');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return { headers: {}, error: error ?? 'no answer' };
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  const body = text.slice(end + 4);
  const length = Number(headers['content-length'] ?? -1);
  let json: any;
  try {
    json = JSON.parse(length >= 0 ? body.slice(0, length) : body);
  } catch {
    json = undefined;
  }
  return { status: Number(statusLine.split(' ')[1]), headers, json, ...(error === undefined ? {} : { error }) };
}

/**
 * A client that sends a chunked body that never ends, reading as it goes,
 * until the server closes the connection: the answer must arrive, and the
 * server must end the exchange by itself. `sent` counts the body bytes written.
 */
export function sendForever(url: string, req: Omit<RawRequest, 'body' | 'chunked'>): Promise<RawResult & { sent: number }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    let error: string | undefined;
    let sent = 0;
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
    const socket = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      const head = [`${req.method} ${req.path} HTTP/1.1`, 'Host: localhost', 'Transfer-Encoding: chunked', ...Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`)];
      socket.write(head.join('\r\n') + '\r\n\r\n');
      const next = (): void => {
        while (!socket.destroyed) {
          sent += chunk.length;
          if (!socket.write(frame)) {
            socket.once('drain', next);
            return;
          }
        }
      };
      next();
    });
    socket.on('data', (data: Buffer) => (received = Buffer.concat([received, data])));
    socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
    socket.on('close', () => resolve({ ...parseAnswer(received, error), sent }));
  });
}
