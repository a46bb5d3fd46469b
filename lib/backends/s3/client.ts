import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { Logger } from '../../log/index.js';
import type { S3BackendOptions } from './types.js';

/** True for endpoints of AWS itself, where virtual-hosted addressing is the norm. */
function isAwsEndpoint(endpoint: string): boolean {
  try {
    return /(^|\.)amazonaws\.com(\.cn)?$/i.test(new URL(endpoint).hostname);
  } catch {
    return false;
  }
}

/** Path-style addressing: asked for, or implied by a custom endpoint that is not AWS. */
export function usesPathStyle(options: Pick<S3BackendOptions, 'endpoint' | 'forcePathStyle'>): boolean {
  const endpoint = options.endpoint ?? '';
  return options.forcePathStyle === true || (endpoint !== '' && !isAwsEndpoint(endpoint));
}

/** The SDK's logger interface, fed into pino (the SDK would otherwise write warnings to the console). */
function sdkLogger(logger: Logger): NonNullable<S3ClientConfig['logger']> {
  return {
    debug: (...args: unknown[]) => logger.debug({ sdk: args }, 'S3 SDK'),
    info: (...args: unknown[]) => logger.debug({ sdk: args }, 'S3 SDK'),
    warn: (...args: unknown[]) => logger.warn({ sdk: args }, 'S3 SDK warning'),
    error: (...args: unknown[]) => logger.error({ sdk: args }, 'S3 SDK error'),
  };
}

/**
 * An S3 client from the backend's options: region, custom endpoint with
 * path-style addressing, static credentials (else the SDK's default chain:
 * environment, shared files, instance or task role), bounded connect and
 * idle timeouts so that an unreachable S3 turns into an error, not a hang.
 */
export function createS3Client(options: S3BackendOptions): S3Client {
  const endpoint = options.endpoint ?? '';
  const config: S3ClientConfig = {
    region: options.region === undefined || options.region === '' ? 'us-east-1' : options.region,
    forcePathStyle: usesPathStyle(options),
    maxAttempts: options.maxAttempts ?? 3,
    // We verify SHA-256 ourselves on full reads; the SDK's CRC checks of
    // responses would only add work (and break ranged reads on some servers).
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestChecksumCalculation: options.requestChecksumCalculation ?? (endpoint !== '' && !isAwsEndpoint(endpoint) ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED'),
    requestHandler: {
      connectionTimeout: options.connectTimeoutMs ?? 5000,
      socketTimeout: options.socketTimeoutMs ?? 120_000,
      logger: sdkLogger(options.logger),
    },
    logger: sdkLogger(options.logger),
  };
  if (endpoint !== '') config.endpoint = endpoint;
  const accessKeyId = options.accessKeyId ?? '';
  const secretAccessKey = options.secretAccessKey ?? '';
  if (accessKeyId !== '' || secretAccessKey !== '') config.credentials = { accessKeyId, secretAccessKey };
  return new S3Client(config);
}
