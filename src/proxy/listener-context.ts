/** What the listeners read from their data plane: the state in force, the shared exchange host, the passthrough agent. */
import type { Dispatcher } from 'undici';
import type { AppliedSnapshot } from './applied-snapshot.js';
import type { ExchangeHost } from './exchange.js';

export interface ListenerContext {
  /** The snapshot state in force now; a request keeps the one it started with. */
  current(): AppliedSnapshot | undefined;
  readonly host: ExchangeHost;
  /** The dispatcher for PASSTHROUGH traffic to hosts outside the mesh. */
  passthrough(): Dispatcher;
}
