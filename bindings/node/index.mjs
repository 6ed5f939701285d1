// ESM entry: the same module as index.js (`import { open } from 'edgefeed'`).
import edgefeed from './index.js';

export const { open, Store, version, limits } = edgefeed;
export default edgefeed;
