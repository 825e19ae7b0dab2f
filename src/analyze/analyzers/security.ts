import type { Analyzer } from '../analyzer.js';

export const securityAnalyzers: readonly Analyzer[] = [];
