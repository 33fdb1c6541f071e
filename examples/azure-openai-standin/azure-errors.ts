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
// - 400, body that is not JSON or misses a field: the OpenAI-style `invalid_request_error` shape
//   that Azure passes through from the model backend (openai/openai-python#257,
//   Azure/azure-sdk-for-net#40645).

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

export function rateLimited(apiVersion: string, retryAfterSeconds: number): AzureErrorAnswer {
  const unit = retryAfterSeconds === 1 ? 'second' : 'seconds';
  return {
    status: 429,
    headers: { 'retry-after': String(retryAfterSeconds), 'retry-after-ms': String(retryAfterSeconds * 1000) },
    body: {
      error: {
        code: '429',
        message: `Requests to the ChatCompletions_Create Operation under Azure OpenAI API version ${apiVersion} have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after ${retryAfterSeconds} ${unit}. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`,
      },
    },
  };
}

/** The OpenAI backend's shape for a request it refuses; Azure passes it through unchanged. */
export function invalidRequest(message: string, param: string | null = null): AzureErrorAnswer {
  return { status: 400, body: { error: { message, type: 'invalid_request_error', param, code: null } } };
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
