/** The media type of `contentType` without parameters, lowercased: `"Application/JSON; charset=utf-8"` -> `"application/json"`. */
export function mediaType(contentType: string): string {
  const semi = contentType.indexOf(";");
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/**
 * True when a CloudEvent's `datacontenttype` says the data is JSON: absent (the CloudEvents JSON
 * format's default), `application/json`, `text/json`, or any `+json` suffix type.
 */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const type = mediaType(contentType);
  return type === "application/json" || type === "text/json" || type.endsWith("+json");
}

/** True for `text/*` media types (other than `text/json`), whose data is carried as a string. */
export function isTextContentType(contentType: string | undefined): boolean {
  return (
    contentType !== undefined && mediaType(contentType).startsWith("text/") && !isJsonContentType(contentType)
  );
}
