/**
 * A paginated HTTP JSON API as a sync source, on Patchbay's resilient HTTP client (timeouts,
 * retries with backoff that honour Retry-After, a circuit breaker). Each page is one batch; the
 * cursor is the token of the next page, so a run resumes at the page after the last committed one.
 */
import { InvalidArgumentError } from "../core/errors.js";
import { httpClient, type HttpClient, type HttpClientOptions, type HttpResponse } from "../http/client.js";
import type { QuarantineRecord, Row, SourceBatch, SyncSource } from "./contracts.js";
import { SyncCursorError, SyncSourceError } from "./errors.js";
import { exactColumns, parseExactNumbers, rawText, toJsonSafe } from "./json.js";

/** Picks a value from a page: a dotted path into the body (`"meta.next_cursor"`) or a function. */
export type PagePick<T> = string | ((body: unknown, response: HttpResponse) => T);

/** Options of {@link httpSource}. */
export interface HttpSourceOptions {
  /** The client to use; default `httpClient(clientOptions)`. */
  client?: HttpClient;
  /** Options for the default client (`baseUrl`, `headers`, `timeout`, `retry`, ...). */
  clientOptions?: HttpClientOptions;
  /** The list endpoint, relative to `baseUrl` or absolute. */
  path: string;
  /** Fixed query parameters (filters, `sort=updated_at`). */
  query?: Record<string, string | number | boolean | undefined>;
  /** The rows of a page. Default: the body when it is an array, else `body.data` or `body.items`. */
  items?: PagePick<unknown>;
  /** The token of the next page; absent, null or `""` on the last page. E.g. `"next_cursor"`, `"meta.next"`. */
  next: PagePick<string | number | null | undefined>;
  /** The query parameter carrying the page token. Default `"cursor"`. */
  param?: string;
  /** A query parameter for the page size, set to the pipeline's `batchSize` (e.g. `"limit"`). */
  pageSizeParam?: string;
  /** How many rows the read will yield, when the API says (for progress and ETA). */
  total?: PagePick<number | undefined>;
}

interface PageCursor {
  /** Token of the page to read next (`null`: the first page). */
  page: string | null;
}

function pick<T>(what: PagePick<T>, body: unknown, response: HttpResponse): T | undefined {
  if (typeof what === "function") return what(body, response);
  let value: unknown = body;
  for (const part of what.split(".")) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value as T;
}

function defaultItems(body: unknown): unknown {
  if (Array.isArray(body)) return body;
  if (typeof body === "object" && body !== null) {
    const b = body as Record<string, unknown>;
    return b.data ?? b.items;
  }
  return undefined;
}

/**
 * Reads a paginated JSON API (cursor or page tokens). After the last page, the checkpoint keeps
 * that page's own token, so the next incremental run reads it again (picking up items appended to
 * it) and goes on from there: use a merge destination, where reading a row twice is harmless.
 *
 * @example
 * httpSource({
 *   clientOptions: { baseUrl: "https://api.example.com/v1/", headers: { authorization: `Bearer ${token}` } },
 *   path: "orders", query: { sort: "updated_at" }, items: "data", next: "next_cursor", pageSizeParam: "limit",
 * })
 */
export function httpSource(options: HttpSourceOptions): SyncSource {
  if (typeof options.path !== "string") throw new InvalidArgumentError("path is required", "path");
  if (options.next === undefined)
    throw new InvalidArgumentError("next (how to find the next page's token) is required", "next");
  const client = options.client ?? httpClient(options.clientOptions);
  const param = options.param ?? "cursor";

  const fetchPage = async (token: string | null, batchSize: number, signal: AbortSignal) => {
    const query = {
      ...options.query,
      ...(options.pageSizeParam ? { [options.pageSizeParam]: batchSize } : {}),
    };
    if (token !== null) query[param] = token;
    // Numbers a JS number would round keep their digits (items' columns and page tokens alike).
    const response = await client.get(options.path, { query, signal, parseJson: parseExactNumbers });
    const body = response.data;
    const items = options.items === undefined ? defaultItems(body) : pick(options.items, body, response);
    if (!Array.isArray(items)) {
      throw new SyncSourceError(
        `${options.path}: the page has no items array (set the items option); got ${typeof items}`,
      );
    }
    const next = rawText(pick(options.next, body, response)) as string | number | null | undefined;
    return {
      response,
      body,
      items,
      next: next === null || next === undefined || next === "" ? undefined : String(next),
    };
  };

  return {
    description: `http ${options.path}`,
    capabilities: { modes: ["full", "incremental"], streaming: false },

    async *read(request) {
      const c = request.cursor as Partial<PageCursor> | null | undefined;
      if (
        c !== undefined &&
        c !== null &&
        (typeof c !== "object" || (c.page !== null && typeof c.page !== "string"))
      ) {
        throw new SyncCursorError(
          `checkpoint cursor ${JSON.stringify(request.cursor)} is not a page token; reset the pipeline`,
        );
      }
      let token = c?.page ?? null;
      for (;;) {
        if (request.signal.aborted) return;
        const page = await fetchPage(token, request.batchSize, request.signal);
        const rows: Row[] = [];
        const rejected: QuarantineRecord[] = [];
        for (const item of page.items) {
          if (typeof item === "object" && item !== null && !Array.isArray(item))
            rows.push(exactColumns(item) as Row);
          else
            rejected.push({
              reason: "parse",
              error: { message: "the item is not a JSON object" },
              row: toJsonSafe(item),
            });
        }
        const batch: SourceBatch = { rows, cursor: { page: page.next ?? token } };
        if (rejected.length) batch.rejected = rejected;
        if (rows.length + rejected.length > 0 || page.next === undefined) yield batch;
        if (page.next === undefined || page.next === token) return;
        token = page.next;
      }
    },

    ...(options.total === undefined
      ? {}
      : {
          async count(request: { cursor: unknown }) {
            const c = request.cursor as Partial<PageCursor> | null | undefined;
            const page = await fetchPage(c?.page ?? null, 1, new AbortController().signal);
            const total = pick(options.total as PagePick<number | undefined>, page.body, page.response);
            return typeof total === "number" ? total : undefined;
          },
        }),

    close: () => Promise.resolve(),
  };
}
