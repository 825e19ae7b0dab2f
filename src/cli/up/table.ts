/** Plain-text tables for `trellis up` and `trellis status`: left-aligned columns, two spaces apart. */

/** Rows of cells under a header; `-` stands for an empty cell. */
export function formatTable(header: readonly string[], rows: readonly (readonly (string | number | undefined)[])[]): string {
  const cells = [header, ...rows.map((r) => header.map((_, i) => { const v = r[i]; return v === undefined || v === '' ? '-' : String(v); }))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}
