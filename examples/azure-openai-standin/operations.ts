// The operations the stand-in answers, with what Azure calls each one where it names it in an
// error, and which models can do it: an embedding model only embeds, and a chat model cannot
// embed (Azure answers 400 `OperationNotSupported` for either mismatch). The stand-in lets any
// chat model do legacy completions too, although on the service only a few (gpt-35-turbo-instruct)
// can: tests should not have to deploy a special model to exercise that route.

import * as azure from './azure-errors.js';
import { answerChat } from './chat-operation.js';
import { answerEmbeddings } from './embeddings.js';
import type { OperationContext, Reply } from './reply.js';
import type { Checked, JsonObject } from './request-body.js';
import { answerResponses } from './responses-api.js';
import type { Operation } from './routes.js';
import { answerTextCompletion } from './text-completions.js';

interface OperationSpec {
  readonly answer: (fields: JsonObject, context: OperationContext) => Checked<Reply>;
  /** The operation's name in Azure's 429 message; undefined for the generic wording. */
  readonly rateLimitName: string | undefined;
  /** The operation's name in Azure's OperationNotSupported message. */
  readonly azureName: string;
  readonly forEmbeddingModels: boolean;
}

const OPERATIONS: Readonly<Record<Operation, OperationSpec>> = {
  chat: { answer: answerChat, rateLimitName: 'ChatCompletions_Create', azureName: 'chatCompletion', forEmbeddingModels: false },
  completions: { answer: answerTextCompletion, rateLimitName: 'Completions_Create', azureName: 'completion', forEmbeddingModels: false },
  embeddings: { answer: answerEmbeddings, rateLimitName: 'Embeddings_Create', azureName: 'embeddings', forEmbeddingModels: true },
  responses: { answer: answerResponses, rateLimitName: undefined, azureName: 'responses', forEmbeddingModels: false },
};

export function rateLimitName(operation: Operation): string | undefined {
  return OPERATIONS[operation].rateLimitName;
}

export function isEmbeddingModel(model: string): boolean {
  return /embedding/i.test(model);
}

/** Runs `operation` on the request body, or says why the deployment's model cannot. */
export function answerOperation(operation: Operation, fields: JsonObject, context: OperationContext): Checked<Reply> {
  const spec = OPERATIONS[operation];
  if (isEmbeddingModel(context.model) !== spec.forEmbeddingModels) {
    return { error: azure.operationNotSupported(spec.azureName, context.model) };
  }
  return spec.answer(fields, context);
}
