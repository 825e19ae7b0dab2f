/**
 * Every analyzer Trellis has, in one list. An analyzer's name is unique and
 * permanent, like a message code: suppressions and CI scripts name it.
 */
import type { Analyzer } from './analyzer.js';
import { destinationRuleAnalyzers } from './analyzers/destination-rule.js';
import { gatewaySidecarAnalyzers } from './analyzers/gateway-sidecar.js';
import { telemetryAnalyzers } from './analyzers/telemetry.js';
import { securityAnalyzers } from './analyzers/security.js';
import { trellisAnalyzers } from './analyzers/trellis.js';
import { virtualServiceAnalyzers } from './analyzers/virtual-service.js';

export const analyzers: readonly Analyzer[] = Object.freeze([
  ...virtualServiceAnalyzers,
  ...destinationRuleAnalyzers,
  ...gatewaySidecarAnalyzers,
  ...telemetryAnalyzers,
  ...securityAnalyzers,
  ...trellisAnalyzers,
]);

/** An analyzer by its name, or undefined. */
export function analyzerNamed(name: string): Analyzer | undefined {
  return analyzers.find((a) => a.name === name);
}
