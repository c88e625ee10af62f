export { Module } from './module.js';
export { Linear, Conv2d, LayerNorm, Embedding, Dropout, uniform, normal } from './layers.js';
export type { LayerOptions } from './layers.js';
export { CausalSelfAttention } from './attention.js';
