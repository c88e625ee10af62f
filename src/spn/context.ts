// Where each channel of the conditioning network's input (the context stack) reads the image.
//
// The stack for target slice k has S² planes on a grid of slice positions. Plane r at position
// (a, b) holds one image pixel, or nothing, and an indicator says whether that pixel is already
// known (its slice comes before k in the subscale order). Two layouts:
//
//   'slices'   plane r is slice r: pixel (S·a + r_i, S·b + r_j), known iff r < k, on the h×w
//              grid of the slices. The layout of the paper; the network learns from the
//              meta-position which planes matter.
//   'relative' plane r is the offset r from the target pixel: pixel (S·a + k_i + r_i − c,
//              S·b + k_j + r_j − c), c = ⌊(S−1)/2⌋, known iff it lies inside the image and its
//              slice comes before k. The same plane holds the same neighbour (say "one pixel to
//              the left of the target") for every k, so the convolutions that read a neighbour
//              are shared by all S² target slices instead of being relearnt for each. A shifted
//              grid of h×w positions would miss up to S−1 rows and columns at the border, so this
//              one has a ring of extra positions (a, b = −1 and h, w): (h+2)×(w+2), and the first
//              convolution reads it without padding. Every known pixel is in the stack.
//
// Both are tables computed once: a gather index into the flattened image (H·W points to an extra
// zero pixel: outside the image) and the known and inside indicators.
export type ContextLayout = 'slices' | 'relative';

export interface ContextTables {
  /** Extra grid positions on each side: 0 ('slices', grid h×w) or 1 ('relative', (h+2)×(w+2)). */
  ring: number;
  /** Grid rows and columns: h + 2·ring, w + 2·ring. */
  rows: number;
  cols: number;
  /** (S², S²·rows·cols): for target k, plane r, grid position the pixel y·W + x, or H·W if outside. */
  index: BigInt64Array;
  /** (S², S², rows, cols): 1 where the pixel is inside the image and its slice comes before k. */
  known: Float32Array;
  /** (S², S², rows, cols): 1 where the pixel is inside the image. */
  inside: Float32Array;
}

export function contextTables(H: number, W: number, S: number, layout: ContextLayout): ContextTables {
  const P = S * S;
  const relative = layout === 'relative';
  const ring = relative ? 1 : 0;
  const [rows, cols] = [H / S + 2 * ring, W / S + 2 * ring];
  const n = P * P * rows * cols;
  const index = new BigInt64Array(n);
  const known = new Float32Array(n);
  const inside = new Float32Array(n);
  const c = relative ? (S - 1) >> 1 : 0;
  let o = 0;
  for (let k = 0; k < P; k++) {
    // 'slices' reads from the image origin, 'relative' from the target's offset less c.
    const [di, dj] = relative ? [Math.floor(k / S) - c, (k % S) - c] : [0, 0];
    for (let r = 0; r < P; r++) {
      const [ri, rj] = [Math.floor(r / S) + di, (r % S) + dj];
      for (let a = -ring; a < rows - ring; a++) {
        for (let b = -ring; b < cols - ring; b++, o++) {
          const [y, x] = [S * a + ri, S * b + rj];
          if (y < 0 || y >= H || x < 0 || x >= W) {
            index[o] = BigInt(H * W);
            continue;
          }
          const q = (y % S) * S + (x % S); // the pixel's slice
          index[o] = BigInt(y * W + x);
          inside[o] = 1;
          known[o] = q < k ? 1 : 0;
        }
      }
    }
  }
  return { ring, rows, cols, index, known, inside };
}
