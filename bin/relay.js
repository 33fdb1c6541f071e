#!/usr/bin/env -S node --max-semi-space-size=4 --initial-old-space-size=64 --no-parallel-scavenge
// Runs the compiled CLI from dist/ (see bin/agent.js for why, and for the node flags above).
import { launch } from './launch.js';

await launch('relay');
