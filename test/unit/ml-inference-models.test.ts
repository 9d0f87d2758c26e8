/** @jest-environment ./test/helpers/ml-inference-environment.js */
/**
 * MLInference's model handling (components/ml-inference/models.ts, onnx-meta.ts): the metadata
 * read from the ONNX protobuf, validation of a model file (a truncated file, a model with the wrong
 * input shape, the wrong output width, another model's file, other feature names, outputs out of
 * range are each refused with their reason), and the ModelSet's switch: a new valid file replaces
 * the model in service, a refused one leaves it serving and is an issue, and the last good model is
 * kept in the work folder for the next start.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ANOMALY_FEATURES } from '../../components/ml-inference/features';
import { ModelRejected, ModelSet, loadModel, type LoadedModel } from '../../components/ml-inference/models';
import { OnnxFormatError, readOnnxMetadata } from '../../components/ml-inference/onnx-meta';
import { BUILTIN_SAMPLES } from '../../components/ml-inference/samples';
import type { MlModel } from '../../components/lib/contract';
import { tinySpec, writeTinyModel, writeTinyModels } from '../helpers/ml-tiny-models';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'ml-models-'));
const sample = (k: MlModel): readonly number[] => BUILTIN_SAMPLES[k];

async function rejected(kind: MlModel, file: string): Promise<ModelRejected> {
  try {
    const m = await loadModel(kind, file, sample(kind));
    await m.session.release();
  } catch (err) {
    if (err instanceof ModelRejected) return err;
    throw err;
  }
  throw new Error(`${file} was accepted`);
}

describe('ONNX metadata', () => {
  test('reads the trained models\' metadata_props', () => {
    const meta = readOnnxMetadata(fs.readFileSync(path.join(__dirname, '../../models/fault.onnx')));
    expect(meta.get('model')).toBe('fault');
    expect(meta.get('version')).toMatch(/^\d+\.\d+\.\d+$/);
    expect(JSON.parse(meta.get('classes')!)[0]).toBe('normal');
  });

  test('a file cut short is a format error, not garbage metadata', () => {
    const bytes = fs.readFileSync(path.join(__dirname, '../../models/forecast.onnx'));
    expect(() => readOnnxMetadata(bytes.subarray(0, Math.floor(bytes.length / 2)))).toThrow(OnnxFormatError);
    expect(() => readOnnxMetadata(new Uint8Array(0))).toThrow(OnnxFormatError);
  });
});

describe('model validation', () => {
  const dir = tmp();

  test('the trained models pass', async () => {
    for (const kind of ['fault', 'anomaly', 'forecast'] as const) {
      const m = await loadModel(kind, path.join(__dirname, `../../models/${kind}.onnx`), sample(kind));
      expect(m.kind).toBe(kind);
      await m.session.release();
    }
  });

  test('a truncated .onnx is refused as corrupt', async () => {
    const good = writeTinyModel(path.join(dir, 'good', 'fault.onnx'), tinySpec('fault', '1.0.0'));
    const bytes = fs.readFileSync(good);
    const cut = path.join(dir, 'cut', 'fault.onnx');
    fs.mkdirSync(path.dirname(cut), { recursive: true });
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 40));
    const e = await rejected('fault', cut);
    expect(e.reason).toBe('corrupt');
    expect(e.message).toContain(cut);
  });

  test('a model with the wrong input shape is refused', async () => {
    const f = writeTinyModel(path.join(dir, 'shape', 'anomaly.onnx'), tinySpec('anomaly', '1.0.0', { inputs: 15, weights: new Array(15).fill([0]) }));
    const e = await rejected('anomaly', f);
    expect(e.reason).toBe('input_shape');
    expect(e.message).toContain(`features float32 [N, ${ANOMALY_FEATURES.length}]`);
  });

  test('the wrong output width, another kind\'s file, other feature names, out-of-range outputs are refused', async () => {
    const width = writeTinyModel(path.join(dir, 'w', 'forecast.onnx'), tinySpec('forecast', '1.0.0', { width: 8, bias: new Array(8).fill(0.2) }));
    expect((await rejected('forecast', width)).reason).toBe('output_shape');
    const other = writeTinyModel(path.join(dir, 'o', 'fault.onnx'), tinySpec('anomaly', '1.0.0'));
    expect((await rejected('fault', other)).reason).toBe('wrong_model');
    const spec = tinySpec('anomaly', '1.0.0');
    const names = JSON.parse(spec.metadata['feature_names']!) as string[];
    [names[0], names[1]] = [names[1]!, names[0]!];
    const swapped = writeTinyModel(path.join(dir, 's', 'anomaly.onnx'), { ...spec, metadata: { ...spec.metadata, feature_names: JSON.stringify(names) } });
    expect((await rejected('anomaly', swapped)).reason).toBe('features');
    const range = writeTinyModel(path.join(dir, 'r', 'anomaly.onnx'), tinySpec('anomaly', '1.0.0', { bias: [5] }));
    expect((await rejected('anomaly', range)).reason).toBe('output_range');
  });
});

describe('ModelSet', () => {
  test('switches to a new valid model, keeps serving through a refused one, and keeps the last good copy', async () => {
    const root = tmp();
    const dir = path.join(root, 'models');
    const keepDir = path.join(root, 'work', 'models');
    writeTinyModels(dir, '1.0.0');
    const loaded: string[] = [];
    const refused: ModelRejected[] = [];
    const opts = {
      dir: () => dir,
      keepDir,
      sample,
      now: () => 0,
      onLoaded: (m: LoadedModel) => void loaded.push(`${m.kind}@${m.version}`),
      onRejected: (e: ModelRejected) => void refused.push(e),
    };
    const set = new ModelSet(opts);
    await set.check();
    expect(loaded.sort()).toEqual(['anomaly@1.0.0', 'fault@1.0.0', 'forecast@1.0.0']);
    expect(fs.readdirSync(keepDir).sort()).toEqual(['anomaly.onnx', 'fault.onnx', 'forecast.onnx']);

    // Nothing changed: nothing is loaded again.
    await set.check();
    expect(loaded).toHaveLength(3);

    // A new valid fault model: switched.
    writeTinyModel(path.join(dir, 'fault.onnx'), tinySpec('fault', '1.1.0'));
    await set.check();
    expect(set.get('fault')?.version).toBe('1.1.0');

    // A broken one: refused, 1.1.0 serves on and still runs, the issue is reported.
    const bytes = fs.readFileSync(path.join(dir, 'fault.onnx'));
    fs.writeFileSync(path.join(dir, 'fault.onnx'), bytes.subarray(0, 100));
    await set.check();
    expect(refused.map((e) => e.reason)).toEqual(['corrupt']);
    expect(set.get('fault')?.version).toBe('1.1.0');
    expect(set.issues()).toEqual([expect.objectContaining({ kind: 'fault', reason: 'corrupt' })]);
    const run = await set.run('fault', Float32Array.from(sample('fault')), 1);
    expect(run?.outputs[0]?.probabilities).toHaveLength(9);

    // A wrong-shaped anomaly model: refused as well.
    writeTinyModel(path.join(dir, 'anomaly.onnx'), tinySpec('anomaly', '2.0.0', { inputs: 5, weights: new Array(5).fill([0]) }));
    await set.check();
    expect(set.get('anomaly')?.version).toBe('1.0.0');
    expect(refused.map((e) => e.reason)).toEqual(['corrupt', 'input_shape']);
    await set.close();

    // The next start: the kept copies (the last good ones) serve although the folder's are broken.
    const again = new ModelSet({ ...opts });
    await again.loadKept();
    await again.check();
    expect(again.get('fault')?.version).toBe('1.1.0');
    expect(again.get('anomaly')?.version).toBe('1.0.0');
    expect(again.issues().map((i) => i.reason).sort()).toEqual(['corrupt', 'input_shape']);
    await again.close();
  });
});
