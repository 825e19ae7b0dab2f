/**
 * Small helpers every source uses to make registry objects: frozen, with a
 * content hash, localities from labels or `region/zone/subzone` strings.
 */
import { contentHash } from '../../api/validate.js';
import type { Locality, Service, Workload } from '../types.js';

export const NO_LOCALITY: Locality = Object.freeze({ region: '', zone: '', subzone: '' });

/** Freezes `obj` (deeply) with `hash`, the content hash of everything else in it. */
export function hashed<T extends Service | Workload>(obj: Omit<T, 'hash'>): T {
  return deepFreeze({ ...obj, hash: contentHash(obj) } as T);
}

/** Locality from Kubernetes topology labels (`topology.kubernetes.io/region`, `…/zone`, `topology.istio.io/subzone`). */
export function localityFromLabels(labels: Readonly<Record<string, string>>): Locality {
  const region = labels['topology.kubernetes.io/region'] ?? labels['failure-domain.beta.kubernetes.io/region'] ?? '';
  const zone = labels['topology.kubernetes.io/zone'] ?? labels['failure-domain.beta.kubernetes.io/zone'] ?? '';
  const subzone = labels['topology.istio.io/subzone'] ?? '';
  return region || zone || subzone ? Object.freeze({ region, zone, subzone }) : NO_LOCALITY;
}

/** Locality from Istio's `region/zone/subzone` string. */
export function parseLocality(s: string | undefined): Locality {
  if (!s) return NO_LOCALITY;
  const [region = '', zone = '', subzone = ''] = s.split('/');
  return Object.freeze({ region, zone, subzone });
}

/**
 * Namespaces a service is exported to, from `exportTo` values or the
 * `networking.istio.io/exportTo` annotation: `.` becomes the service's own
 * namespace, `~` exports to no one; `*` (everyone) by default.
 */
export function exportTo(values: readonly string[] | undefined, annotation: string | undefined, namespace: string): string[] {
  const raw = values ?? (annotation ? annotation.split(',').map((s) => s.trim()).filter(Boolean) : ['*']);
  if (raw.includes('~')) return [];
  return [...new Set(raw.map((v) => (v === '.' ? namespace : v)))].sort();
}

/** Freezes a plain value and everything below it. */
export function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}
