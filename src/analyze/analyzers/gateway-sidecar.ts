import type { Analyzer } from '../analyzer.js';

export const gatewaySidecarAnalyzers: readonly Analyzer[] = [];
