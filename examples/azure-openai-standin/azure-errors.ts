// The error answers of the Azure OpenAI data plane, with the status and body Azure sends, so a
// client (and the official `openai` SDK's error classes) cannot tell the stand-in from the real
// service. Sources, as observed from the real service and reported in public issue threads:
//
// - 401, bad or missing `api-key`: `{"error":{"code":"401","message":"Access denied due to invalid
//   subscription key or wrong API endpoint. …"}}` (MicrosoftDocs/azure-docs#36456,
//   microsoft/semantic-kernel#10337, microsoft/genaiscript#781).
// - 401, bad `Authorization: Bearer` token: the Entra ID variant of the message.
// - 404, unknown deployment: code `DeploymentNotFound` (Azure/openai-at-scale#48,
//   Azure-Samples/azure-search-openai-demo#391).
// - 404, no `api-version` query parameter: `{"error":{"code":"404","message":"Resource not
//   found"}}` — Azure answers 404, not 400 (MicrosoftDocs/azure-docs#114602).
// - 400, unknown `api-version`: `{"error":{"code":"BadRequest","message":"API version not
//   supported"}}` (openai/codex#3725).
// - 429: `{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under
//   Azure OpenAI API version … have exceeded call rate limit …"}}` with `retry-after`.
//   The `_Create` operation names (ChatCompletions_Create, Completions_Create, Embeddings_Create)
//   are the ones seen from the service (langchain-ai/langchain#12986); for the Responses API the
//   stand-in uses the service's generic "Rate limit is exceeded" wording (microsoft/copilot-camp#551).
// - 400, body that is not JSON or misses a field: the OpenAI-style `invalid_request_error` shape
//   that Azure passes through from the model backend (openai/openai-python#257,
//   Azure/azure-sdk-for-net#40645).
// - 403, an `api-key` sent to a resource with local (key) auth disabled: code
//   `AuthenticationTypeDisabled` (microsoft/sample-app-aoai-chatGPT#1000,
//   Azure-Samples/azure-search-openai-demo#1617).
// - 400, an operation the deployment's model cannot do: code `OperationNotSupported`
//   (run-llama/llama_index#6436, microsoft/graphrag#1557).
// - 500 / 503: the model backend's `server_error` shape passed through, with the request id in the
//   message (Azure-Samples/azure-search-openai-demo#1390, scalaone/azure-openai-proxy#22). For 502
//   (the front door giving up on the model) no public sample was found; the stand-in uses Azure's
//   own `{code, message}` shape so a client still gets JSON.

export interface AzureErrorAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export function invalidSubscriptionKey(): AzureErrorAnswer {
  return {
    status: 401,
    body: {
      error: {
        code: '401',
        message:
          'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
      },
    },
  };
}

export function invalidBearerToken(): AzureErrorAnswer {
  return {
    status: 401,
    body: {
      error: {
        code: '401',
        message:
          'Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.',
      },
    },
  };
}

export function keyAuthenticationDisabled(): AzureErrorAnswer {
  return {
    status: 403,
    body: { error: { code: 'AuthenticationTypeDisabled', message: 'Key based authentication is disabled for this resource.' } },
  };
}

export function deploymentNotFound(): AzureErrorAnswer {
  return {
    status: 404,
    body: {
      error: {
        code: 'DeploymentNotFound',
        message:
          'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.',
      },
    },
  };
}

export function resourceNotFound(): AzureErrorAnswer {
  return { status: 404, body: { error: { code: '404', message: 'Resource not found' } } };
}

export function apiVersionNotSupported(): AzureErrorAnswer {
  return { status: 400, body: { error: { code: 'BadRequest', message: 'API version not supported' } } };
}

export function responsesNeedNewerApiVersion(): AzureErrorAnswer {
  return {
    status: 400,
    body: { error: { code: 'BadRequest', message: 'Azure OpenAI Responses API is enabled only for api-version 2025-03-01-preview and later' } },
  };
}

/** `operation` as Azure names it in this message: chatCompletion, completion, embeddings, responses. */
export function operationNotSupported(operation: string, model: string): AzureErrorAnswer {
  return {
    status: 400,
    body: {
      error: {
        code: 'OperationNotSupported',
        message: `The ${operation} operation does not work with the specified model, ${model}. Please choose different model and try again. You can learn more about which models can be used with each operation here: https://go.microsoft.com/fwlink/?linkid=2197993.`,
      },
    },
  };
}

/**
 * `operation` is the `_Create` name (e.g. ChatCompletions_Create), or undefined for the generic
 * wording. `retry-after` is whole seconds rounded up; `retry-after-ms` keeps the exact wait.
 */
export function rateLimited(operation: string | undefined, apiVersion: string, retryAfterMs: number): AzureErrorAnswer {
  const wholeMs = Math.max(0, Math.ceil(retryAfterMs));
  const seconds = Math.max(1, Math.ceil(wholeMs / 1000));
  const unit = seconds === 1 ? 'second' : 'seconds';
  const message =
    operation === undefined
      ? `Rate limit is exceeded. Try again in ${seconds} ${unit}.`
      : `Requests to the ${operation} Operation under Azure OpenAI API version ${apiVersion} have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after ${seconds} ${unit}. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`;
  return {
    status: 429,
    headers: { 'retry-after': String(seconds), 'retry-after-ms': String(wholeMs) },
    body: { error: { code: '429', message } },
  };
}

/** A failing backend: 500 and 503 as the model backend words them, 502 as Azure's front door does. */
export function serverFailure(status: 500 | 502 | 503, requestId: string): AzureErrorAnswer {
  const support = `You can retry your request, or contact us through an Azure support request at: https://go.microsoft.com/fwlink/?linkid=2213926 if the error persists. (Please include the request ID ${requestId} in your message.)`;
  if (status === 502) {
    return { status, body: { error: { code: 'BadGateway', message: 'Bad gateway' } } };
  }
  const opening = status === 500 ? 'The server had an error while processing your request. Sorry about that!' : 'That model is currently overloaded with other requests.';
  return { status, body: { error: { message: `${opening} ${support}`, type: 'server_error', param: null, code: null } } };
}

/** The OpenAI backend's shape for a request it refuses; Azure passes it through unchanged. */
export function invalidRequest(message: string, param: string | null = null, code: string | null = null): AzureErrorAnswer {
  return { status: 400, body: { error: { message, type: 'invalid_request_error', param, code } } };
}

export function unparsableJsonBody(): AzureErrorAnswer {
  return invalidRequest(
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
  );
}

export function bodyTooLarge(limitBytes: number): AzureErrorAnswer {
  return {
    status: 413,
    body: { error: { code: 'RequestEntityTooLarge', message: `The request body exceeds the limit of ${limitBytes} bytes.` } },
  };
}
