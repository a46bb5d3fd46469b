/** One dependency check: resolves when healthy, throws (ideally SERVICE_UNAVAILABLE) when not. */
export type Check = () => Promise<void>;

export interface ReadinessChecks {
  metadata?: Check;
  locks?: Check;
  backends?: Record<string, Check>;
  peers?: Record<string, Check>;
}

export interface ReadyReport {
  status: 'ok' | 'unavailable';
  checks: {
    metadata?: string;
    locks?: string;
    backends?: Record<string, string>;
    peers?: Record<string, string>;
  };
}

const CHECK_TIMEOUT_MS = 2000;

async function run(check: Check): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    return 'ok';
  } catch (err) {
    return `unavailable: ${(err as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
}

async function runAll(checks: Record<string, Check>): Promise<Record<string, string>> {
  const entries = await Promise.all(Object.entries(checks).map(async ([name, check]) => [name, await run(check)] as const));
  return Object.fromEntries(entries);
}

/** Run every check concurrently, each bounded in time. Peers are reported but do not make the instance unready. */
export async function checkReadiness(checks: ReadinessChecks): Promise<ReadyReport> {
  const report: ReadyReport = { status: 'ok', checks: {} };
  const [metadata, locks, backends, peers] = await Promise.all([
    checks.metadata === undefined ? undefined : run(checks.metadata),
    checks.locks === undefined ? undefined : run(checks.locks),
    checks.backends === undefined ? undefined : runAll(checks.backends),
    checks.peers === undefined ? undefined : runAll(checks.peers),
  ]);
  if (metadata !== undefined) report.checks.metadata = metadata;
  if (locks !== undefined) report.checks.locks = locks;
  if (backends !== undefined) report.checks.backends = backends;
  if (peers !== undefined) report.checks.peers = peers;
  const essential = [metadata, locks, ...Object.values(backends ?? {})].filter((v) => v !== undefined);
  if (essential.some((v) => v !== 'ok')) report.status = 'unavailable';
  return report;
}
