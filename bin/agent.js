#!/usr/bin/env node
// Runs the compiled CLI from dist/ (built by `npm run build`, which `npm ci` runs as `prepare`).
// Compiled output, not a runtime TypeScript loader: the loader's transpile-time helpers cost the
// data path about 40% of its throughput (measured with `npm run bench`).
import { launch } from './launch.js';

await launch('agent');
