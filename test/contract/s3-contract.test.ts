import { createS3Backend } from '../../lib/backends/s3/index.js';
import { createSilentLogger } from '../../lib/log/index.js';
import { S3RVER_CREDENTIALS, startS3rver, type S3TestServer } from '../support/s3.js';
import { backendContractSuite, type BackendContractSubject } from './backend-contract.js';

async function s3Subject(prefix: string): Promise<BackendContractSubject> {
  const s3: S3TestServer = await startS3rver();
  const backend = createS3Backend({
    bucket: s3.bucket,
    prefix,
    endpoint: s3.endpoint,
    region: 'us-east-1',
    ...S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    partSize: 5 * 1024 * 1024,
    queueSize: 2,
    logger: createSilentLogger(),
  });
  return {
    backend,
    deletesImmediately: true,
    // What any S3 client sees: finished objects (parts of an unfinished upload are not objects).
    storedObjects: () => s3.keys(),
    async teardown() {
      try {
        await backend.close();
      } finally {
        await s3.remove();
      }
    },
  };
}

describe('S3 backend (s3rver)', function () {
  backendContractSuite('s3', () => s3Subject(''));
});

describe('S3 backend with a key prefix (s3rver)', function () {
  backendContractSuite('s3 (prefix callfs/)', () => s3Subject('callfs'));
});
