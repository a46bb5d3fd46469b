import { createMemoryBackend } from '../fakes/memory-backend.js';
import { backendContractSuite } from './backend-contract.js';

// The fake the engine and HTTP unit tests run on: it must keep the same contract.
describe('in-memory backend (test fake)', function () {
  backendContractSuite('memory', async () => {
    const backend = createMemoryBackend();
    return {
      backend,
      deletesImmediately: true,
      storedObjects: async () => backend.ids(),
      teardown: () => backend.close(),
    };
  });
});
