import { createHmac } from "node:crypto";
import { InvalidArgumentError } from "../core/errors.js";
import { WebhookVerificationError } from "./errors.js";
import { bodyBytes, headerValue, type HeaderSource } from "./headers.js";
import { constantTimeEqual } from "./signature.js";
import { parseBody, secretList, type VerifiedWebhook, type VerifyOptions } from "./verify.js";

/**
 * Verifies a GitHub webhook: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` under
 * any of the secrets (plain strings, as configured in GitHub), compared in constant time. The id
 * is `X-GitHub-Delivery`. GitHub sends no timestamp, so replays are caught only by deduping on
 * the id (the receiver middleware does). Throws {@link WebhookVerificationError}.
 *
 * @example const { payload } = verifyGitHubWebhook(process.env.GITHUB_WEBHOOK_SECRET!, req.headers, rawBody);
 */
export function verifyGitHubWebhook<T = unknown>(
  secretOrSecrets: string | readonly string[],
  headers: HeaderSource,
  rawBody: string | Uint8Array,
  options: Pick<VerifyOptions, "parse"> = {},
): VerifiedWebhook<T> {
  const secrets = secretList(secretOrSecrets);
  for (const s of secrets) {
    if (typeof s !== "string" || s.length === 0)
      throw new InvalidArgumentError("GitHub webhook secrets are non-empty strings", "secret");
  }
  const signature = headerValue(headers, "x-hub-signature-256")?.trim();
  if (!signature) {
    throw new WebhookVerificationError(
      "WEBHOOK_HEADER_MISSING",
      "missing X-Hub-Signature-256 header",
      "x-hub-signature-256",
    );
  }
  const id = headerValue(headers, "x-github-delivery")?.trim();
  if (!id) {
    throw new WebhookVerificationError(
      "WEBHOOK_HEADER_MISSING",
      "missing X-GitHub-Delivery header",
      "x-github-delivery",
    );
  }
  const body = bodyBytes(rawBody);
  let match = false;
  for (const secret of secrets) {
    const expected = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
    if (constantTimeEqual(signature.toLowerCase(), expected)) match = true;
  }
  if (!match) {
    throw new WebhookVerificationError(
      "WEBHOOK_SIGNATURE_INVALID",
      "X-Hub-Signature-256 does not match: wrong secret, or the body was changed",
      "x-hub-signature-256",
    );
  }
  return { id, timestamp: undefined, payload: parseBody<T>(body, options.parse), body };
}
