/**
 * Every kind Trellis reads, and the kinds it rejects by name. Adding a kind:
 * write its module beside this one, list it in `kinds` and in `KindBodies`.
 */
import type { KindDef, UnsupportedKindDef } from '../kind.js';
import type { DeepReadonly } from '../schema.js';
import type { z } from 'zod';
import { App } from './app.js';
import { AuthorizationPolicy } from './authorization-policy.js';
import { CompliancePolicy } from './compliance-policy.js';
import { DestinationRule } from './destination-rule.js';
import { Gateway } from './gateway.js';
import { Deployment } from './k8s-deployment.js';
import { Namespace } from './k8s-namespace.js';
import { Pod } from './k8s-pod.js';
import { ServiceAccount } from './k8s-service-account.js';
import { Service } from './k8s-service.js';
import { MeshConfig } from './mesh-config.js';
import { PeerAuthentication } from './peer-authentication.js';
import { RateLimitPolicy } from './rate-limit-policy.js';
import { RequestAuthentication } from './request-authentication.js';
import { ServiceEntry } from './service-entry.js';
import { Sidecar } from './sidecar.js';
import { Telemetry } from './telemetry.js';
import { unsupportedKinds } from './unsupported.js';
import { VirtualService } from './virtual-service.js';
import { WorkloadEntry } from './workload-entry.js';

const defs = {
  VirtualService, DestinationRule, Gateway, ServiceEntry, WorkloadEntry, Sidecar,
  PeerAuthentication, AuthorizationPolicy, RequestAuthentication,
  Service, Pod, Deployment, Namespace, ServiceAccount,
  MeshConfig, App, RateLimitPolicy, CompliancePolicy, Telemetry,
} as const;

type BodyOf<D> = D extends KindDef<infer B> ? DeepReadonly<B> : never;

/** The typed body (document without apiVersion, kind, metadata) of each kind. */
export type KindBodies = { [K in keyof typeof defs]: BodyOf<(typeof defs)[K]> };
export type KindName = keyof KindBodies;

/** Every supported kind. */
export const kinds: readonly KindDef[] = Object.values(defs) as readonly KindDef[];

const byId = new Map<string, KindDef>();
for (const d of kinds) for (const v of d.versions) byId.set(`${d.group}/${v}/${d.kind}`, d);
const unsupportedById = new Map<string, UnsupportedKindDef>(unsupportedKinds.map((u) => [`${u.group}/${u.kind}`, u]));

export function findKind(group: string, version: string, kind: string): KindDef | undefined {
  return byId.get(`${group}/${version}/${kind}`);
}

export function findUnsupported(group: string, kind: string): UnsupportedKindDef | undefined {
  return unsupportedById.get(`${group}/${kind}`);
}

/** Kinds of this name in any group, for "did you mean another apiVersion" hints. */
export function kindsNamed(kind: string): KindDef[] {
  return kinds.filter((d) => d.kind === kind);
}

export type { z };
