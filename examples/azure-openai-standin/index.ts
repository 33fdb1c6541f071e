// The stand-in's public surface, for tests and scripts: start it in-process with startStandin().
export { startStandin, DEFAULT_DEPLOYMENTS, SUPPORTED_API_VERSIONS, MAX_REQUEST_BODY_BYTES } from './server.js';
export type { StandinOptions, RunningStandin } from './server.js';
export type { RateLimit } from './rate-limiter.js';
export { ABORT_AFTER_BYTES_HEADER, CHUNK_DELAY_HEADER } from './fault-injection.js';
export { OCKHAMS_RAZOR_ANSWER } from './completion.js';
