// The dataset spec forms, in a file that imports nothing, so that the CLI's help texts can list
// them without loading the decoders (sharp, zlib) behind src/data/index.ts.

export const SPEC_FORMS = [
  'fashion-mnist (default; Debian package dataset-fashion-mnist)',
  'idx:<train-images.gz>[,<test-images.gz>]',
  'mnist:<dir>',
  'cifar10:<dir>',
  'folder:<dir>',
  'imagenet:<dir>',
];

/** The kinds before the colon: fashion-mnist, idx, mnist, cifar10, folder, imagenet. */
export const SPEC_KINDS: readonly string[] = SPEC_FORMS.map((f) => /^[a-z0-9-]+/.exec(f)![0]);
