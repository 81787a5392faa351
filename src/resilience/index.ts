/**
 * Resilience policies: retry with backoff and budgets, circuit breaker, timeout, bulkhead,
 * fallback, and their composition with `wrap()`. Pure: no I/O, no drivers.
 */
export * from "./policy.js";
export * from "./errors.js";
export * from "./classify.js";
export * from "./backoff.js";
export * from "./budget.js";
export * from "./retry.js";
export * from "./breaker-strategy.js";
export * from "./consecutive.js";
export * from "./failure-rate.js";
export * from "./breaker.js";
export * from "./timeout.js";
export * from "./bulkhead.js";
export * from "./fallback.js";
export * from "./wrap.js";
