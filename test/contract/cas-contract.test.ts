import { loopMountsAvailable, requireComponent } from '../support/services.js';
import { blobFiles, forceCleanRoot, makeTempRoot, mountsUnder, openCas, tmpFiles } from '../support/cas.js';
import { expect } from 'chai';
import { backendContractSuite, type BackendContractSubject } from './backend-contract.js';

async function casSubject(mode: 'loop' | 'dir'): Promise<BackendContractSubject> {
  const root = makeTempRoot(`contract-${mode}`);
  const { backend } = await openCas(root, { mode });
  return {
    backend,
    deletesImmediately: false,
    storedObjects: async () => [...blobFiles(root), ...tmpFiles(root)],
    async teardown() {
      try {
        await backend.close();
        // close() must leave no mount behind.
        expect(mountsUnder(root)).to.deep.equal([]);
      } finally {
        forceCleanRoot(root);
      }
    },
  };
}

describe('CAS backend, loop mode', function () {
  before(function () {
    requireComponent(this, loopMountsAvailable());
  });
  backendContractSuite('cas (loop)', () => casSubject('loop'));
});

describe('CAS backend, dir mode', function () {
  backendContractSuite('cas (dir)', () => casSubject('dir'));
});
