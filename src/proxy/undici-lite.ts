/**
 * undici's multi-origin `Agent`, loaded on first use and without the rest of
 * undici. The proxy's upstream pools are its own (h1-pool.ts, h2-upstream.ts);
 * only PASSTHROUGH traffic (ALLOW_ANY, any host outside the mesh) goes
 * through undici, so a sidecar that never passes traffic through never loads
 * it (its WASM parser alone is ~11 MiB resident), and one that does loads
 * only the dispatcher, not fetch, WebSocket, the cache and web streams.
 */
import { createRequire } from 'node:module';
import type { Agent as AgentClass } from 'undici';

const require = createRequire(import.meta.url);

export type Agent = AgentClass;

/** A new undici Agent with these options. */
export function newAgent(options: AgentClass.Options): Agent {
  const AgentCtor = require('undici/lib/dispatcher/agent.js') as typeof AgentClass;
  return new AgentCtor(options);
}
