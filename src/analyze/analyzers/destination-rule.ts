import type { Analyzer } from '../analyzer.js';

export const destinationRuleAnalyzers: readonly Analyzer[] = [];
