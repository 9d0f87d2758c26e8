/**
 * The contract: every topic name and payload type, versioned, in one module (docs/conventions.md
 * "The contract"). Producers, consumers, the recipes' accessControl and the local runtime import it
 * from here; no other file spells a topic. The implementation is cut by concern under ./contract/.
 */
export * from './contract/payloads';
export { ID_PATTERN, isTopicId, isRecord, type Validation, type Validator, type RejectCode } from './contract/check';
export * from './contract/validators';
export * from './contract/topics';
export * from './contract/components';
export * from './contract/access-control';
