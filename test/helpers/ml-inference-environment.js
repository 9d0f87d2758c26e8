/**
 * Jest environment for the tests that run onnxruntime-node. Jest runs each test file in its own
 * V8 context, with its own Float32Array; onnxruntime-node's native binding makes output tensors
 * with the outer context's typed arrays, which onnxruntime-common's Tensor (loaded inside the test
 * context) then refuses ("A float32 tensor's data must be type of Float32Array"). A component
 * process has one context, so this is a test-only concern: the test context gets the outer typed
 * array constructors.
 */
'use strict';
const { TestEnvironment } = require('jest-environment-node');

const SHARED = ['Float32Array', 'Float64Array', 'Int8Array', 'Uint8Array', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array'];

class OnnxRuntimeEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const k of SHARED) this.global[k] = globalThis[k];
  }
}

module.exports = OnnxRuntimeEnvironment;
