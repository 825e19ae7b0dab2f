/**
 * SPIFFE identities of workloads: `spiffe://<trust-domain>/ns/<ns>/sa/<account>`,
 * the form Istio uses and the URI SAN of every workload certificate.
 */

/** The SPIFFE ID of a service account. */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** The parts of a Kubernetes-style SPIFFE ID, or undefined when `id` has another form. */
export function parseSpiffeId(id: string): { trustDomain: string; namespace: string; serviceAccount: string } | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id);
  return m ? { trustDomain: m[1]!, namespace: m[2]!, serviceAccount: m[3]! } : undefined;
}
