/**
 * The security analyzers: AuthorizationPolicy references (Istio's
 * AuthorizationPoliciesAnalyzer), security policies that apply to no
 * workload, PeerAuthentication / DestinationRule TLS contradictions, ALLOW
 * rules that allow everything by accident, and caller groups whose identity
 * is shared. Each lives in its own `sec-*.ts` module.
 */
import type { Analyzer } from '../analyzer.js';
import { allowAllAnalyzer } from './sec-allow-all.js';
import { authorizationPoliciesAnalyzer } from './sec-authz-policies.js';
import { callerGroupsAnalyzer } from './sec-caller-groups.js';
import { mtlsContradictionsAnalyzer } from './sec-mtls.js';
import { policyWorkloadsAnalyzer } from './sec-policy-workloads.js';

export const securityAnalyzers: readonly Analyzer[] = [
  authorizationPoliciesAnalyzer,
  policyWorkloadsAnalyzer,
  mtlsContradictionsAnalyzer,
  allowAllAnalyzer,
  callerGroupsAnalyzer,
];
