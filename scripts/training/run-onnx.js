#!/usr/bin/env node
/**
 * Runs an ONNX model with onnxruntime-node (the gateway's runtime) on float32 inputs and prints its
 * outputs as JSON: train.py checks the exported models with it against sklearn and torch.
 *
 *   node run-onnx.js MODEL.onnx INPUT.f32 ROWS COLS > outputs.json
 *
 * onnxruntime-node is looked up from the working directory, then from $ORT_NODE_MODULES (a folder
 * whose node_modules holds it).
 */
'use strict';
const fs = require('node:fs');

function loadOrt() {
  const paths = [process.cwd()];
  if (process.env.ORT_NODE_MODULES) paths.push(process.env.ORT_NODE_MODULES);
  let resolved;
  try {
    resolved = require.resolve('onnxruntime-node', { paths });
  } catch {
    process.stderr.write('onnxruntime-node is not installed (looked in the working directory and $ORT_NODE_MODULES)\n');
    process.exit(3);
  }
  return require(resolved);
}

async function main() {
  const [model, input, rows, cols] = process.argv.slice(2);
  if (!model || !input || !rows || !cols) {
    process.stderr.write('usage: run-onnx.js MODEL.onnx INPUT.f32 ROWS COLS\n');
    process.exit(2);
  }
  const ort = loadOrt();
  const buf = fs.readFileSync(input);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [Number(rows), Number(cols)]) };
  const t0 = process.hrtime.bigint();
  const out = await session.run(feeds);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const result = { runMs: ms, version: ort.env.versions.node, outputs: {} };
  for (const name of session.outputNames) {
    const t = out[name];
    result.outputs[name] = { dims: t.dims, data: Array.from(t.data, (v) => Number(v)) };
  }
  process.stdout.write(JSON.stringify(result));
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
