import { wicketError, type WicketError } from '../../protocol/errors.js';

// Turns whatever the SDK throws into WICKET_ERR_AZURE_OPERATION naming the resource and Azure's own
// error code and message, so "quota exceeded on wicket-1a2b3c-ai-corp-vm" is the first thing the
// operator reads. Two shapes reach us:
//  - RestError (a 4xx/5xx answer): statusCode, code, message from the {"error":{code,message}} body;
//  - core-lro's plain Error when an async operation ends Failed:
//    "The long-running operation has failed. <code>. <message>".

export interface ResourceLabel {
  kind: string;
  name: string;
  group: string;
}

export interface AzureErrorFacts {
  status: number | undefined;
  code: string;
  message: string;
}

const LRO_FAILED = /^The long-running operation has failed\. ([^.\s]+)\. ([\s\S]*)$/;

export function azureErrorFacts(err: unknown): AzureErrorFacts {
  if (err instanceof Error) {
    const e = err as Error & { statusCode?: unknown; code?: unknown; details?: unknown };
    const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
    const lro = LRO_FAILED.exec(e.message);
    if (lro) return { status, code: lro[1] ?? 'OperationFailed', message: (lro[2] ?? '').trim() };
    if (e.message.startsWith('The long-running operation has failed')) {
      return { status, code: 'OperationFailed', message: 'the asynchronous operation ended Failed without an error body' };
    }
    let code = typeof e.code === 'string' && e.code !== '' ? e.code : undefined;
    let message = e.message;
    // The modular (compute) client keeps the ARM error body in `details`.
    const body = e.details as { error?: { code?: unknown; message?: unknown } } | undefined;
    if (body?.error) {
      if (typeof body.error.code === 'string') code = body.error.code;
      if (typeof body.error.message === 'string') message = body.error.message;
    }
    return { status, code: code ?? (status !== undefined ? `HTTP${status}` : e.name), message: message.split('\n')[0] ?? '' };
  }
  return { status: undefined, code: 'Unknown', message: String(err) };
}

export function isNotFound(err: unknown): boolean {
  return err instanceof Error && (err as { statusCode?: unknown }).statusCode === 404;
}

/** `creating virtual machine 'x' in resource group 'g' failed: QuotaExceeded (HTTP 409): …` */
export function azureOperationError(action: string, label: ResourceLabel, err: unknown): WicketError {
  const f = azureErrorFacts(err);
  const where = label.kind === 'resource group' ? `resource group '${label.name}'` : `${label.kind} '${label.name}' in resource group '${label.group}'`;
  const status = f.status !== undefined ? ` (HTTP ${f.status})` : '';
  return wicketError('WICKET_ERR_AZURE_OPERATION', `${action} ${where} failed: ${f.code}${status}: ${f.message}`, err);
}
