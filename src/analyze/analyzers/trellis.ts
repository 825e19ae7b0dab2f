import type { Analyzer } from '../analyzer.js';

export const trellisAnalyzers: readonly Analyzer[] = [];
