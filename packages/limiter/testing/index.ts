/**
 * @ratequeue/limiter/testing: models and internals the tests check the
 * limiter against (workspace only).
 */
export { History } from "../src/history.js";
export { ProviderWindow } from "./provider-model.js";
export { ReferenceModel, bucketDebtScaled, cost, usage } from "./reference-model.js";
