/** Contracts: the event catalogue, its AsyncAPI export, the breaking-change check, contract tests. */
export {
  defineCatalogue,
  type Catalogue,
  type CatalogueConsumer,
  type CatalogueOptions,
  type CatalogueTransports,
  type JsonSchemaConverter,
} from "./catalogue.js";
export { exportAsyncApi, type AsyncApiDocument } from "./asyncapi.js";
export {
  checkContracts,
  type CheckContractsOptions,
  type CompatibilityMode,
  type ContractChange,
  type ContractReport,
} from "./check.js";
export { verifyConsumer, verifyProducer, type ProducerSample, type VerifyConsumerOptions } from "./verify.js";
export { ContractError } from "./errors.js";
