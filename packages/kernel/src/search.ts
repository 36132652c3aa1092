/** Index of the first element greater than `a` in a sorted array (so `a` lies at or after index - 1). */
export function upperBound(xs: Float64Array, a: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! <= a) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
