import { PatchbayError } from "../core/errors.js";

/** Why the console refused a request. */
export type ConsoleErrorCode =
  | "CONSOLE_UNAUTHORIZED"
  | "CONSOLE_TOKEN_REQUIRED"
  | "CONSOLE_READ_ONLY"
  | "CONSOLE_CROSS_SITE"
  | "CONSOLE_NOT_FOUND"
  | "CONSOLE_METHOD_NOT_ALLOWED"
  | "CONSOLE_INTERNAL";

const STATUS: Record<ConsoleErrorCode, number> = {
  CONSOLE_UNAUTHORIZED: 401,
  CONSOLE_TOKEN_REQUIRED: 403,
  CONSOLE_READ_ONLY: 403,
  CONSOLE_CROSS_SITE: 403,
  CONSOLE_NOT_FOUND: 404,
  CONSOLE_METHOD_NOT_ALLOWED: 405,
  CONSOLE_INTERNAL: 500,
};

/**
 * The web console refused a request: no or a wrong token (`CONSOLE_UNAUTHORIZED`), an action on
 * a console reachable beyond loopback that has no token (`CONSOLE_TOKEN_REQUIRED`), an action in
 * read-only mode (`CONSOLE_READ_ONLY`), an action without the console's header or from another
 * origin (`CONSOLE_CROSS_SITE`), nothing at that path (`CONSOLE_NOT_FOUND`), a method other than
 * GET and POST (`CONSOLE_METHOD_NOT_ALLOWED`), or an unexpected failure, logged by the server
 * (`CONSOLE_INTERNAL`).
 */
export class ConsoleError extends PatchbayError {
  /** The HTTP status the console answers with. */
  readonly status: number;

  constructor(code: ConsoleErrorCode, message: string) {
    super(code, message);
    this.status = STATUS[code];
  }
}

declare module "../core/errors.js" {
  interface PatchbayErrorCodes {
    CONSOLE_UNAUTHORIZED: ConsoleError;
    CONSOLE_TOKEN_REQUIRED: ConsoleError;
    CONSOLE_READ_ONLY: ConsoleError;
    CONSOLE_CROSS_SITE: ConsoleError;
    CONSOLE_NOT_FOUND: ConsoleError;
    CONSOLE_METHOD_NOT_ALLOWED: ConsoleError;
    CONSOLE_INTERNAL: ConsoleError;
  }
}
