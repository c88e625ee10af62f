// Bounds on every size a .spn file or an input image may declare. The trailing checksum of a file
// is no authentication (anyone can recompute it), so each size is checked against these, against
// the bytes the file actually holds and against the model before anything is allocated from it.

/** Images (or tiles) coded together: the probe runs the model on this many, so it bounds memory. */
export const MAX_BATCH = 256;
/** Height or width of one image, in pixels. */
export const MAX_SIDE = 32768;
/** Pixels of one image (8192×8192): larger ones are refused before they are decoded. */
export const MAX_IMAGE_PIXELS = 2 ** 26;
/** Sub-pixels of all the images of one file together (what decoding holds in memory). */
export const MAX_FILE_SUBPIXELS = 2 ** 28;
/** Models (pipeline stages) in one file. */
export const MAX_STAGES = 16;

/** Why an image of height×width is too large to code, or null when it is not. */
export function sizeProblem(height: number, width: number): string | null {
  if (!Number.isSafeInteger(height) || !Number.isSafeInteger(width) || height < 1 || width < 1) return `${width}×${height} (W×H), not a size of at least 1×1`;
  if (height > MAX_SIDE || width > MAX_SIDE) return `${width}×${height} (W×H), a side longer than the ${MAX_SIDE} the codec takes`;
  if (height * width > MAX_IMAGE_PIXELS) return `${width}×${height} (W×H), ${height * width} pixels, more than the ${MAX_IMAGE_PIXELS} (8192×8192) the codec takes`;
  return null;
}
