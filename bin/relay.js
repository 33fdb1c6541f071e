#!/usr/bin/env node
// Runs the compiled CLI from dist/ (see bin/agent.js for why).
import { launch } from './launch.js';

await launch('relay');
