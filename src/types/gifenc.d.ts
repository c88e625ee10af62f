// Types for gifenc 1.0 (the package ships none): the parts src/spn/images.ts uses. Node loads its
// CommonJS build (everything under `default`); bundlers such as vitest load the ES build (named
// exports, `default` = GIFEncoder), so images.ts picks whichever holds GIFEncoder.
declare module 'gifenc' {
  export type Palette = number[][];
  export interface GIFStream {
    writeFrame(index: Uint8Array, width: number, height: number, opts?: { palette?: Palette; delay?: number; repeat?: number; transparent?: boolean; first?: boolean }): void;
    finish(): void;
    bytes(): Uint8Array;
  }
  export interface Gifenc {
    GIFEncoder(opts?: { auto?: boolean; initialCapacity?: number }): GIFStream;
    quantize(rgba: Uint8Array | Uint8ClampedArray, maxColors: number, opts?: { format?: 'rgb565' | 'rgb444' | 'rgba4444' }): Palette;
    applyPalette(rgba: Uint8Array | Uint8ClampedArray, palette: Palette, format?: 'rgb565' | 'rgb444' | 'rgba4444'): Uint8Array;
  }
  export const GIFEncoder: Gifenc['GIFEncoder'] | undefined;
  const lib: Gifenc | Gifenc['GIFEncoder'];
  export default lib;
}
