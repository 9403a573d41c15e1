// Entry for the tfjs baseline bundle that `bench --gemm` loads through DEEPWGSL_TFJS (tfjs is not a
// dependency of deepwgsl). Build, from a directory where the two packages are installed:
//   npm install --prefix /tmp/tfjs @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-backend-webgpu@4.22.0
//   NODE_PATH=/tmp/tfjs/node_modules npx esbuild scripts/tfjs-entry.mjs --bundle --format=esm --platform=node \
//     --outfile=DIR/tfjs.js "--banner:js=import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
// (tfjs-core takes Deno for Node and calls require('util'): the banner gives the bundle a require.)
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';

export { tf };
