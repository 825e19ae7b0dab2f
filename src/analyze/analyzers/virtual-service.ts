/**
 * The VirtualService analyzers (and the deprecated-field check that reads
 * VirtualServices and Sidecars), one module each under `vs-*.ts`.
 */
import type { Analyzer } from '../analyzer.js';
import { conflictingMeshHostsAnalyzer } from './vs-conflicting-hosts.js';
import { deprecationAnalyzer } from './vs-deprecation.js';
import { destinationHostsAnalyzer } from './vs-destination-hosts.js';
import { destinationSubsetsAnalyzer } from './vs-destination-subsets.js';
import { gatewaysAnalyzer } from './vs-gateways.js';
import { hostsWithoutServiceAnalyzer } from './vs-hosts.js';
import { jwtClaimRoutesAnalyzer } from './vs-jwt-claims.js';
import { unreachableRulesAnalyzer } from './vs-unreachable.js';

export const virtualServiceAnalyzers: readonly Analyzer[] = [
  destinationHostsAnalyzer,
  hostsWithoutServiceAnalyzer,
  destinationSubsetsAnalyzer,
  gatewaysAnalyzer,
  conflictingMeshHostsAnalyzer,
  unreachableRulesAnalyzer,
  jwtClaimRoutesAnalyzer,
  deprecationAnalyzer,
];
