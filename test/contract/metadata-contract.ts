import type { MetadataStore } from '../../lib/metadata/types.js';
import { requireComponent } from '../support/services.js';
import { blobsAndLinksContract } from './metadata-contract-blobs.js';
import { clusterContract } from './metadata-contract-cluster.js';
import { movesContract } from './metadata-contract-moves.js';
import { namespaceContract } from './metadata-contract-namespace.js';
import type { ContractContext } from './metadata-helpers.js';

/** How the contract suite gets a store of one kind. */
export interface MetadataStoreTarget {
  /** Null when the store can be used here, else why not (the suite is then skipped, or fails under CI). */
  unavailable(): Promise<string | null>;
  /** Open a fresh, empty store (once per suite). */
  open(): Promise<MetadataStore>;
  /** Remove whatever open() created; called after the store is closed, even when tests failed. */
  cleanup(): Promise<void>;
}

/**
 * The MetadataStore contract: every implementation must pass it. One store
 * per suite; each test works under its own top-level directory, blob
 * instance id and link ids, so tests do not see each other's data.
 */
export function metadataStoreContract(name: string, target: MetadataStoreTarget): void {
  describe(`MetadataStore contract: ${name}`, function () {
    let store: MetadataStore | undefined;
    let counter = 0;
    const ctx: ContractContext = {
      store() {
        if (store === undefined) throw new Error('store not opened');
        return store;
      },
      uniquePath: () => `/t${++counter}`,
    };

    before(async function () {
      requireComponent(this, await target.unavailable());
      store = await target.open();
    });

    after(async () => {
      try {
        await store?.close();
      } finally {
        await target.cleanup();
      }
    });

    describe('namespace', () => namespaceContract(ctx));
    describe('moves and transactions', () => movesContract(ctx));
    describe('blobs and links', () => blobsAndLinksContract(ctx));
    describe('copies and cluster', () => clusterContract(ctx));
  });
}
