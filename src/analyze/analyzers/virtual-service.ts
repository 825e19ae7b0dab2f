import type { Analyzer } from '../analyzer.js';

export const virtualServiceAnalyzers: readonly Analyzer[] = [];
