/**
 * Analyzers of what traffic to a host looks like after routing: the
 * DestinationRule's TLS and subsets, the ports of Services and the
 * addresses and protocols of ServiceEntries (each in its dr-*.ts module).
 */
import type { Analyzer } from '../analyzer.js';
import { portNameAnalyzer } from './dr-port-names.js';
import { conflictingProtocolsAnalyzer, serviceEntryAddressesAnalyzer } from './dr-service-entry.js';
import { subsetsAnalyzer } from './dr-subsets.js';
import { caCertificatesAnalyzer } from './dr-tls.js';

export const destinationRuleAnalyzers: readonly Analyzer[] = [
  caCertificatesAnalyzer,
  subsetsAnalyzer,
  portNameAnalyzer,
  serviceEntryAddressesAnalyzer,
  conflictingProtocolsAnalyzer,
];
