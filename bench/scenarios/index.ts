import type { Scenario } from './context.js';
import { putSamePathContention } from './contention.js';
import { get1m, get256mStream } from './large-get.js';
import { put64mUnique, putDedup } from './large-put.js';
import { get4k, headMeta, put4kUnique } from './small.js';
import { replicated } from './replication.js';
import { bigTree } from './big-tree.js';
import { webdav } from './webdav.js';
import { s3Api } from './s3-api.js';

/** BENCH.md §6.2, in order; the index (1-based) decides which side runs first. */
export const SCENARIOS: Scenario[] = [put4kUnique, headMeta, get4k, get1m, get256mStream, put64mUnique, putDedup, putSamePathContention, replicated, bigTree, webdav, s3Api];
