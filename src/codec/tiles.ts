// Images of any size as tiles of the model's size: tile (ty, tx) of an H×W image covers rows
// ty·Th .. ty·Th + Th − 1 and columns tx·Tw .. tx·Tw + Tw − 1; tiles in raster order, images one
// after the other. A tile that runs past the image's bottom or right edge is padded: its padding
// sub-pixels are not coded (codec.ts gives each the model's most probable value there, which the
// decoder computes too), so they cost no bits and are dropped when the tile is pasted back.

/** An image's size in pixels. */
export interface Size {
  height: number;
  width: number;
}

export interface Tile {
  /** The image it belongs to, and its top-left pixel in that image. */
  image: number;
  y0: number;
  x0: number;
}

/** Tiles of one image: ceil(H / Th) rows of ceil(W / Tw). */
export function tileCount(s: Size, th: number, tw: number): number {
  return Math.ceil(s.height / th) * Math.ceil(s.width / tw);
}

/** Every image's tiles, in raster order, image after image. */
export function planTiles(sizes: readonly Size[], th: number, tw: number): Tile[] {
  const tiles: Tile[] = [];
  sizes.forEach((s, image) => {
    for (let y0 = 0; y0 < s.height; y0 += th) for (let x0 = 0; x0 < s.width; x0 += tw) tiles.push({ image, y0, x0 });
  });
  return tiles;
}

/**
 * The real part of a tile at a stage that sees every f-th pixel of the final tile (f = 1 for the
 * final stage) and has h×w pixels: positions r < rows and c < cols hold image pixels.
 */
export function realExtent(s: Size, t: Tile, h: number, w: number, f: number): { rows: number; cols: number } {
  return { rows: Math.min(h, Math.ceil((s.height - t.y0) / f)), cols: Math.min(w, Math.ceil((s.width - t.x0) / f)) };
}

/** Copies tile t of image `img` (H×W×C) into out[offset ..] as th×tw×C, padding with zeros. */
export function cutTile(img: Uint8Array, s: Size, c: number, t: Tile, th: number, tw: number, out: Uint8Array, offset: number): void {
  const rows = Math.min(th, s.height - t.y0);
  const cols = Math.min(tw, s.width - t.x0);
  out.fill(0, offset, offset + th * tw * c);
  for (let r = 0; r < rows; r++) {
    const src = ((t.y0 + r) * s.width + t.x0) * c;
    out.set(img.subarray(src, src + cols * c), offset + r * tw * c);
  }
}

/** Copies the real part of a th×tw×C tile at tiles[offset ..] into image `img` (H×W×C). */
export function pasteTile(tiles: Uint8Array, offset: number, th: number, tw: number, c: number, t: Tile, s: Size, img: Uint8Array): void {
  const rows = Math.min(th, s.height - t.y0);
  const cols = Math.min(tw, s.width - t.x0);
  for (let r = 0; r < rows; r++) {
    const src = offset + r * tw * c;
    img.set(tiles.subarray(src, src + cols * c), ((t.y0 + r) * s.width + t.x0) * c);
  }
}
