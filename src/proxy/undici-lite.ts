/**
 * undici's connection pools without the rest of undici. The package's entry
 * point loads fetch, WebSocket, the cache and web streams too — about 9 MiB
 * of resident memory a sidecar never uses; the proxy needs only `Pool` and
 * `Agent` (and their types, from the package as usual).
 */
import { createRequire } from 'node:module';
import type { Agent as AgentClass, Pool as PoolClass } from 'undici';

const require = createRequire(import.meta.url);

export const Pool: typeof PoolClass = require('undici/lib/dispatcher/pool.js');
export const Agent: typeof AgentClass = require('undici/lib/dispatcher/agent.js');
export type Pool = PoolClass;
export type Agent = AgentClass;
