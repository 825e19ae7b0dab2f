/**
 * The compliance analyzers (docs/compliance.md): they run only with
 * `trellis analyze --compliance`, not in the default set, because they check
 * what a mesh must satisfy (redundancy, zones, regions, tenants, zero trust,
 * runtime limits), which is a policy question rather than a mistake in the
 * configuration. Each reads the CompliancePolicies (src/api/kinds/
 * compliance-policy.ts) that apply, or the defaults.
 */
import type { Analyzer } from '../analyzer.js';
import { disasterRecovery } from './disaster-recovery.js';
import { highAvailability } from './high-availability.js';
import { partitioning } from './partitioning.js';
import { compliancePolicies } from './policies.js';
import { redundancy } from './redundancy.js';
import { runtimeLimits } from './runtime-limits.js';
import { securityAuthorization } from './security-authorization.js';
import { securityEgress } from './security-egress.js';
import { securityMtls } from './security-mtls.js';

export const complianceAnalyzers: readonly Analyzer[] = Object.freeze([
  compliancePolicies,
  redundancy,
  highAvailability,
  disasterRecovery,
  partitioning,
  securityMtls,
  securityAuthorization,
  securityEgress,
  runtimeLimits,
]);
