/** Weighted choice among a route's destinations; `roll` in [0, 1). Zero total weight picks the first. */
export function pickWeighted<T extends { readonly weight: number }>(items: readonly T[], roll: number): T | undefined {
  if (items.length <= 1) return items[0];
  let total = 0;
  for (const it of items) total += it.weight;
  if (total <= 0) return items[0];
  let x = roll * total;
  for (const it of items) {
    x -= it.weight;
    if (x < 0) return it;
  }
  return items[items.length - 1];
}
