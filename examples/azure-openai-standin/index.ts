// The stand-in's public surface, for tests and scripts: start it in-process with startStandin().
export { startStandin, DEFAULT_DEPLOYMENTS, DEFAULT_REGION, SUPPORTED_API_VERSIONS, MAX_REQUEST_BODY_BYTES } from './server.js';
export type { StandinOptions, RunningStandin } from './server.js';
export type { RateLimit } from './rate-limiter.js';
export type { Outage } from './outage.js';
export type { RecordedRequest } from './recording.js';
export { MAX_RECORDED_REQUESTS } from './recording.js';
export type { BearerCheck } from './auth.js';
export { V1_API_VERSIONS } from './routes.js';
export { ABORT_AFTER_BYTES_HEADER, CHUNK_DELAY_HEADER, FIRST_TOKEN_DELAY_HEADER } from './fault-injection.js';
export { OCKHAMS_RAZOR_ANSWER, answerPieces, countPromptTokens, countTextTokens } from './completion.js';
export { DEFAULT_COMPLETION_MAX_TOKENS } from './text-completions.js';
export { DEFAULT_EMBEDDING_DIMENSIONS, embeddingVector } from './embeddings.js';
export { MIN_MAX_OUTPUT_TOKENS } from './responses-api.js';
