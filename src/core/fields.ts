/**
 * Sets `obj[name] = value` as an own, enumerable property, for any name. A plain assignment to
 * `"__proto__"` does not make a property (it replaces the prototype, or does nothing), so a column
 * of that name would vanish from a row without a word.
 */
export function setField<V>(obj: { [name: string]: V }, name: string, value: NoInfer<V>): void {
  if (name === "__proto__") {
    Object.defineProperty(obj, name, { value, writable: true, enumerable: true, configurable: true });
  } else {
    obj[name] = value;
  }
}
