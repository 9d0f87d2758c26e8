/**
 * Tiny ONNX models for MLInference's tests, written with the `onnx` Python package
 * (/usr/bin/python3, Debian's python3-onnx), so the component's tests do not depend on the trained
 * models: a linear layer (optionally softmax) from `features` [N, inputs] to one output [N, width],
 * with the metadata the training pipeline writes. The fault model's probabilities are
 * softmax(features . W + b); the weights say which feature moves them.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { EXPECTED_FEATURES } from '../../components/ml-inference/models';
import type { MlModel } from '../../components/lib/contract';

export interface TinyModel {
  inputs: number;
  output: string;
  width: number;
  /** [inputs][width]; default zeros. */
  weights?: number[][];
  bias: number[];
  softmax: boolean;
  metadata: Record<string, string>;
}

const PY = `
import json, sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
spec = json.load(sys.stdin)
n_in, width = spec['inputs'], spec['width']
w = np.array(spec['weights'] or np.zeros((n_in, width)), dtype=np.float32).reshape(n_in, width)
b = np.array(spec['bias'], dtype=np.float32).reshape(width)
nodes = [helper.make_node('MatMul', ['features', 'W'], ['mm']), helper.make_node('Add', ['mm', 'B'], ['logits' if spec['softmax'] else spec['output']])]
if spec['softmax']:
    nodes.append(helper.make_node('Softmax', ['logits'], [spec['output']], axis=1))
graph = helper.make_graph(nodes, 'tiny',
    [helper.make_tensor_value_info('features', TensorProto.FLOAT, ['N', n_in])],
    [helper.make_tensor_value_info(spec['output'], TensorProto.FLOAT, ['N', width])],
    initializer=[numpy_helper.from_array(w, 'W'), numpy_helper.from_array(b, 'B')])
m = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)], ir_version=8)
helper.set_model_props(m, spec['metadata'])
onnx.checker.check_model(m)
onnx.save(m, spec['file'])
`;

export function writeTinyModel(file: string, spec: TinyModel): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  execFileSync('/usr/bin/python3', ['-c', PY], { input: JSON.stringify({ ...spec, weights: spec.weights ?? null, file }) });
  return file;
}

export const FAULT_CLASSES = ['normal', 'string_fault', 'over_temperature', 'soiling', 'ground_fault', 'tracker_stuck', 'inverter_derate', 'sensor_drift', 'comm_dropout'];

/** A valid model of `kind` for this component, version `version`; `over` changes any part. */
export function tinySpec(kind: MlModel, version: string, over: Partial<TinyModel> = {}): TinyModel {
  const names = EXPECTED_FEATURES[kind];
  const base: Record<string, string> = { model: kind, version, feature_names: JSON.stringify(names) };
  if (kind === 'fault') {
    // P(string_fault) follows st_fault_frac: 0 -> about 0, 1 -> about 1.
    const weights = names.map((n) => FAULT_CLASSES.map((_, j) => (n === 'st_fault_frac' && j === 1 ? 20 : 0)));
    return { inputs: names.length, output: 'probabilities', width: 9, weights, bias: [0, -10, -20, -20, -20, -20, -20, -20, -20], softmax: true, metadata: { ...base, classes: JSON.stringify(FAULT_CLASSES) }, ...over };
  }
  if (kind === 'anomaly') {
    // score = 0.3 - 0.6 * st_fault_frac.
    const weights = names.map((n) => [n === 'st_fault_frac' ? -0.6 : 0]);
    return { inputs: names.length, output: 'score', width: 1, weights, bias: [0.3], softmax: false, metadata: base, ...over };
  }
  // Forecast: a constant 0.25 of capacity per step.
  return { inputs: names.length, output: 'forecast', width: 16, bias: new Array<number>(16).fill(0.25), softmax: false, metadata: { ...base, horizon_steps: '16', step_minutes: '15' }, ...over };
}

export function writeTinyModels(dir: string, version: string): void {
  for (const kind of ['fault', 'anomaly', 'forecast'] as const) writeTinyModel(path.join(dir, `${kind}.onnx`), tinySpec(kind, version));
}
