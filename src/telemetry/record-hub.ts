/**
 * One subscriber to the `trellis:request` diagnostics channel per process,
 * routing each record to the sinks of the proxy that reported it (by node
 * id: several data planes may share a process, as in tests). The channel is
 * subscribed while at least one sink is attached and unsubscribed when the
 * last one goes, so that the proxies build no record for nobody.
 *
 * TCP connections' openings (`trellis:tcp-open`) go to the same sinks,
 * subscribed and unsubscribed with the request channel.
 *
 * Two data planes in one process that serve the same node id both receive
 * each other's records; one process per proxy (how Trellis runs) never does.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { REQUEST_CHANNEL, TCP_OPEN_CHANNEL, type RequestRecord } from '../protocol/request-record.js';

export type RecordSink = (r: RequestRecord) => void;

const sinks = new Map<string, Set<RecordSink>>();
let attached = 0;

function dispatch(message: unknown): void {
  const r = message as RequestRecord;
  const set = sinks.get(r.proxy);
  if (set) for (const sink of set) sink(r);
}

/** Sends the records of proxy `nodeId` to `sink` until the returned function is called. */
export function attachSink(nodeId: string, sink: RecordSink): () => void {
  let set = sinks.get(nodeId);
  if (!set) sinks.set(nodeId, (set = new Set()));
  set.add(sink);
  if (attached++ === 0) {
    diagnostics_channel.subscribe(REQUEST_CHANNEL, dispatch);
    diagnostics_channel.subscribe(TCP_OPEN_CHANNEL, dispatch);
  }
  let done = false;
  return () => {
    if (done) return;
    done = true;
    set.delete(sink);
    if (set.size === 0) sinks.delete(nodeId);
    if (--attached === 0) {
      diagnostics_channel.unsubscribe(REQUEST_CHANNEL, dispatch);
      diagnostics_channel.unsubscribe(TCP_OPEN_CHANNEL, dispatch);
    }
  };
}

/** How many sinks are attached in this process (0: the channel has no subscriber of ours). */
export function attachedSinks(): number {
  return attached;
}
