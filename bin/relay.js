#!/usr/bin/env node
// Launches the TypeScript CLI through tsx's loader, so `npm ci` is the only install step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/relay.ts');
