#!/usr/bin/python3
"""Trains MLInference's three models from simulator data, checks the quality gates, writes ONNX.

    python3 scripts/training/train.py [--days 300] [--seed 20251203] [--out models] [--data DIR]

1. Generates the labelled data (scripts/training/generate.ts, bundled with esbuild, run with node).
2. Window features (mlfeatures.py) for every inverter every 5 minutes of daylight.
3. Fault classifier (random forest), anomaly detector (isolation forest), 4-hour forecast (GRU).
4. Quality gates on the held-out test days; exits 1 if one is not met (the ONNX files are then not
   written).
5. Exports ONNX (pinned opsets, metadata), runs them with onnxruntime-node against sklearn / torch on
   the test set, writes models/golden.json and models/metrics.json.

Needs Debian's python3-sklearn, python3-torch, python3-onnx, and onnxruntime-node (the working
directory's node_modules or $ORT_NODE_MODULES) for the runtime check. Pipeline: docs/ml-models.md.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import mlfeatures as F  # noqa: E402
import onnx_export  # noqa: E402

MODEL_VERSION = '1.0.0'
GATES = {'fault_macro_f1': 0.90, 'anomaly_roc_auc': 0.95, 'forecast_vs_persistence': 0.25, 'forecast_vs_smart_persistence': 0.10}
WINDOW_STEP_MIN = 5
RF_PARAMS = dict(n_estimators=40, max_depth=12, min_samples_leaf=3, class_weight='balanced', n_jobs=2)
IF_PARAMS = dict(n_estimators=100, max_samples=256, max_features=1.0)


def log(msg):
    print(msg, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def generate(data_dir, days, seed):
    os.makedirs(data_dir, exist_ok=True)
    manifest = os.path.join(data_dir, 'manifest.json')
    if os.path.exists(manifest):
        m = json.load(open(manifest))
        if m['days'] == days and m['seed'] == seed and os.path.exists(os.path.join(data_dir, 'series.f32')):
            with open(os.path.join(data_dir, 'series.f32'), 'rb') as fh:
                if hashlib.sha256(fh.read()).hexdigest() == m['sha256']:
                    log(f'data: reusing {data_dir} (seed {seed}, {days} days)')
                    return m
    bundle = os.path.join(data_dir, 'generate.js')
    run([os.path.join(ROOT, 'node_modules', '.bin', 'esbuild'), 'scripts/training/generate.ts', '--bundle', '--platform=node',
         '--target=node20', '--log-level=warning', f'--outfile={bundle}'])
    t0 = time.time()
    run(['node', bundle, '--out', data_dir, '--days', str(days), '--seed', str(seed)], stdout=subprocess.DEVNULL)
    log(f'data: generated {days} days in {time.time() - t0:.1f} s')
    return json.load(open(manifest))


class Data:
    def __init__(self, data_dir, m):
        self.m = m
        self.site_cols = m['siteColumns']
        self.inv_cols = m['inverterColumns']
        self.n_inv = m['plant']['inverters']
        self.cols = len(self.site_cols) + self.n_inv * len(self.inv_cols)
        raw = np.fromfile(os.path.join(data_dir, 'series.f32'), dtype='<f4')
        self.a = raw.reshape(m['days'], m['minutesPerDay'], self.cols).astype(np.float64)
        self.rated = float(m['plant']['inverterRatedW'])
        self.splits = [d['split'] for d in m['dayPlans']]

    def site(self, day, name):
        return self.a[day, :, self.site_cols.index(name)]

    def inv(self, day, i, name):
        return self.a[day, :, len(self.site_cols) + i * len(self.inv_cols) + self.inv_cols.index(name)]


SITE_POINTS = ['ghi', 'poa', 'ambientTemp', 'wsModuleTemp', 'windSpeed', 'trackerActual', 'trackerTarget', 'sunElevation']


def inverter_points(d):
    return [c for c in d.inv_cols if c not in ('missing', 'faultClass', 'observable', 'trueW', 'DCA')]


def window_inputs(d, day, end):
    """The raw one-minute inputs of the window ending at minute `end` (inclusive)."""
    sl = slice(end - F.WINDOW_MIN + 1, end + 1)
    site = {p: [float(v) for v in d.site(day, p)[sl]] for p in SITE_POINTS}
    invs = []
    for i in range(d.n_inv):
        miss = d.inv(day, i, 'missing')[sl]
        invs.append({p: [None if miss[k] else float(v) for k, v in enumerate(d.inv(day, i, p)[sl])] for p in inverter_points(d)})
    return site, invs


def window_label(d, day, i, end):
    sl = slice(end - F.WINDOW_MIN + 1, end + 1)
    fc = d.inv(day, i, 'faultClass')[sl]
    ob = d.inv(day, i, 'observable')[sl]
    if np.all(fc == 0):
        return 0
    if np.all(fc == fc[0]) and ob.sum() >= 5:
        return int(fc[0])
    return -1


def build_windows(d):
    rows, labels, meta = [], [], []
    elev = None
    for day in range(d.m['days']):
        elev = d.site(day, 'sunElevation')
        for end in range(F.WINDOW_MIN - 1, d.m['minutesPerDay'], WINDOW_STEP_MIN):
            if elev[end - F.WINDOW_MIN + 1:end + 1].mean() < F.DAYLIGHT_ELEVATION - 1:
                continue
            site, invs = window_inputs(d, day, end)
            for i in range(d.n_inv):
                f = F.window_features(site, invs, i, d.rated)
                if f is None:
                    continue
                rows.append([f[n] for n in F.ALL_WINDOW_FEATURES])
                labels.append(window_label(d, day, i, end))
                meta.append((day, end, i))
    return np.array(rows), np.array(labels), np.array(meta)


def macro_f1(y, p, classes):
    from sklearn.metrics import f1_score
    return float(f1_score(y, p, labels=classes, average='macro', zero_division=0))


def train_fault(X, y, split, names, classes):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import confusion_matrix, f1_score
    idx = [F.ALL_WINDOW_FEATURES.index(n) for n in F.FAULT_FEATURES]
    keep = y >= 0
    tr, va, te = (keep & (split == s) for s in ('train', 'validation', 'test'))
    fault_classes = list(range(1, len(classes)))
    best = None
    for depth in (10, 14):
        p = dict(RF_PARAMS, max_depth=depth, random_state=7)
        rf = RandomForestClassifier(**p).fit(X[tr][:, idx], y[tr])
        f1 = macro_f1(y[va], rf.predict(X[va][:, idx]), fault_classes)
        log(f'fault: max_depth {depth}: validation macro-F1 {f1:.4f}')
        if best is None or f1 > best[0] + 0.002:
            best = (f1, depth, rf)
    _, depth, rf = best
    t0 = time.time()
    rf = RandomForestClassifier(**dict(RF_PARAMS, max_depth=depth, random_state=7)).fit(X[tr][:, idx], y[tr])
    fit_s = time.time() - t0
    pred = rf.predict(X[te][:, idx])
    per_class = f1_score(y[te], pred, labels=list(range(len(classes))), average=None, zero_division=0)
    res = {
        'params': dict(RF_PARAMS, max_depth=depth),
        'fit_seconds': fit_s,
        'macro_f1_fault_classes': macro_f1(y[te], pred, fault_classes),
        'macro_f1_all_classes': macro_f1(y[te], pred, list(range(len(classes)))),
        'f1_per_class': {classes[c]: float(per_class[c]) for c in range(len(classes))},
        'test_windows_per_class': {classes[c]: int((y[te] == c).sum()) for c in range(len(classes))},
        'train_windows': int(tr.sum()),
        'confusion_matrix': confusion_matrix(y[te], pred, labels=list(range(len(classes)))).tolist(),
        'excluded_windows': int((~keep).sum()),
    }
    return rf, idx, res


def train_anomaly(X, y, split):
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import roc_auc_score
    idx = [F.ALL_WINDOW_FEATURES.index(n) for n in F.ANOMALY_FEATURES]
    # Unsupervised: every training window, labels unused (faulty ones included, as in a fleet's logs).
    tr = split == 'train'
    t0 = time.time()
    iforest = IsolationForest(**IF_PARAMS, random_state=11).fit(X[tr][:, idx])
    fit_s = time.time() - t0
    te = (split == 'test') & (y >= 0)
    score = 1 + 2 * iforest.score_samples(X[te][:, idx])
    anomalous = y[te] > 0
    auc = float(roc_auc_score(anomalous, -score))
    per_kind = {}
    for c in np.unique(y[te]):
        if c > 0:
            sel = (y[te] == 0) | (y[te] == c)
            per_kind[int(c)] = float(roc_auc_score(y[te][sel] == c, -score[sel]))
    res = {'params': IF_PARAMS, 'fit_seconds': fit_s, 'roc_auc': auc, 'roc_auc_per_fault': per_kind,
           'train_windows': int(tr.sum()), 'test_normal': int((~anomalous).sum()), 'test_anomalous': int(anomalous.sum()),
           'score_quantiles_normal': np.quantile(score[~anomalous], [0.01, 0.5, 0.99]).tolist(),
           'score_quantiles_anomalous': np.quantile(score[anomalous], [0.01, 0.5, 0.99]).tolist(),
           # Alarm thresholds: share of normal windows (false positives) and of fault windows below each.
           'below_threshold': {str(t): {'normal': float(np.mean(score[~anomalous] < t)), 'anomalous': float(np.mean(score[anomalous] < t))}
                               for t in (-0.5, 0.0, 0.1, 0.2)}}
    return iforest, idx, res


# ---------------------------------------------------------------------------------------------
# Forecast

def forecast_minutes(d, day, origin_min):
    sl = slice(origin_min - F.PAST_STEPS * F.BLOCK_MIN, origin_min)
    w = []
    for i in range(d.n_inv):
        miss = d.inv(day, i, 'missing')[sl]
        w.append([None if miss[k] else float(v) for k, v in enumerate(d.inv(day, i, 'W')[sl])])
    cs = slice(origin_min - F.PAST_STEPS * F.BLOCK_MIN, origin_min + F.HORIZON * F.BLOCK_MIN)
    return {'W': w, 'ghi': [float(v) for v in d.site(day, 'ghi')[sl]], 'poa': [float(v) for v in d.site(day, 'poa')[sl]],
            'ambientTemp': [float(v) for v in d.site(day, 'ambientTemp')[sl]],
            'clearSkyPoa': [float(v) for v in d.site(day, 'clearSkyPoa')[cs]]}


def site_power_targets(d, day):
    """Per block: site generation (sum of the inverters' mean 103.W), from the plant's values: the
    truth a forecast is judged against, whatever reached the gateway."""
    tot = sum(d.inv(day, i, 'trueW') for i in range(d.n_inv))
    return tot.reshape(-1, F.BLOCK_MIN).mean(axis=1)


def build_forecast(d):
    lon = d.m['plant']['longitude']
    cap = d.rated * d.n_inv
    X, Y, meta = [], [], []
    blocks_per_day = d.m['minutesPerDay'] // F.BLOCK_MIN
    for day in range(d.m['days']):
        start_ms = d.m['dayPlans'][day]['startMs']
        target = site_power_targets(d, day) / cap
        elev = d.site(day, 'sunElevation')
        for ob in range(F.PAST_STEPS, blocks_per_day - F.HORIZON + 1):
            origin_min = ob * F.BLOCK_MIN
            if elev[origin_min - 1] < -5:
                continue
            f = F.forecast_features(forecast_minutes(d, day, origin_min), start_ms + origin_min * 60000, cap, lon)
            X.append(f)
            Y.append(target[ob:ob + F.HORIZON])
            meta.append((day, origin_min, elev[origin_min - 1]))
    return np.array(X, dtype=np.float64), np.array(Y, dtype=np.float64), np.array(meta)


def baselines(X):
    """Persistence: the last block's power held. Smart persistence: the last block's ratio of power
    to clear-sky POA times the clear-sky POA ahead (power itself where the clear sky is below 50 W/m2),
    at most the site's capacity."""
    n_past = len(F.PAST_INPUTS)
    last = (F.PAST_STEPS - 1) * n_past
    p_last = X[:, last + F.PAST_INPUTS.index('power')]
    cs_last = X[:, last + F.PAST_INPUTS.index('clear_sky_poa')]
    cs_future = X[:, F.PAST_STEPS * n_past:F.PAST_STEPS * n_past + F.HORIZON]
    pers = np.repeat(p_last[:, None], F.HORIZON, axis=1)
    k = np.where(cs_last >= 0.05, p_last / np.maximum(cs_last, 0.05), 0)
    smart = np.where(cs_last[:, None] >= 0.05, np.minimum(1.0, k[:, None] * cs_future), pers)
    return pers, smart


def train_forecast(X, Y, split, seed):
    import torch
    from torch import nn
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    tr, va = split == 'train', split == 'validation'
    mean = X[tr].mean(axis=0)
    std = X[tr].std(axis=0)
    std[std < 1e-6] = 1.0
    n_past = len(F.PAST_INPUTS)

    class Forecaster(nn.Module):
        """Standardised inputs -> a GRU over the 16 past steps -> with the clear sky ahead and the
        time of day, an MLP -> 16 values (fraction of capacity)."""

        def __init__(self):
            super().__init__()
            self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32))
            self.register_buffer('std', torch.tensor(std, dtype=torch.float32))
            self.gru = nn.GRU(n_past, 32, batch_first=True)
            self.head = nn.Sequential(nn.Linear(32 + F.HORIZON + 2, 64), nn.ReLU(), nn.Linear(64, F.HORIZON))

        def forward(self, features):
            z = (features - self.mean) / self.std
            past = z[:, :F.PAST_STEPS * n_past].reshape(-1, F.PAST_STEPS, n_past)
            _, h = self.gru(past)
            rest = z[:, F.PAST_STEPS * n_past:]
            return self.head(torch.cat([h[0], rest], dim=1))

    model = Forecaster()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    Xt = torch.tensor(X[tr], dtype=torch.float32)
    Yt = torch.tensor(Y[tr], dtype=torch.float32)
    Xv = torch.tensor(X[va], dtype=torch.float32)
    Yv = torch.tensor(Y[va], dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    best = (float('inf'), None, 0)
    t0 = time.time()
    epochs = 60
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(Xt), generator=g)
        for b in range(0, len(Xt), 256):
            j = perm[b:b + 256]
            opt.zero_grad()
            loss = ((model(Xt[j]) - Yt[j]) ** 2).mean()
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            v = float(((model(Xv) - Yv) ** 2).mean())
        if v < best[0]:
            best = (v, {k: t.clone() for k, t in model.state_dict().items()}, epoch)
    model.load_state_dict(best[1])
    model.eval()
    log(f'forecast: best validation MSE {best[0]:.5f} at epoch {best[2] + 1} of {epochs}')
    return model, {'epochs': epochs, 'best_epoch': best[2] + 1, 'fit_seconds': time.time() - t0, 'hidden': 32,
                   'parameters': int(sum(p.numel() for p in model.parameters())), 'scaler_mean': mean.tolist(), 'scaler_std': std.tolist()}


def evaluate_forecast(model, X, Y, split, meta):
    import torch
    te = (split == 'test') & (meta[:, 2] >= 5)
    with torch.no_grad():
        pred = model(torch.tensor(X[te], dtype=torch.float32)).numpy().astype(np.float64)
    pers, smart = baselines(X[te])
    y = Y[te]
    # Judged at targets in daylight (clear-sky POA ahead at least 10 W/m2): night is trivially 0.
    day = X[te][:, F.PAST_STEPS * len(F.PAST_INPUTS):F.PAST_STEPS * len(F.PAST_INPUTS) + F.HORIZON] >= 0.01

    def rmse(p, h):
        m = day[:, h]
        return float(np.sqrt(np.mean((p[m, h] - y[m, h]) ** 2)))

    res = {'origins': int(te.sum()), 'rmse_by_horizon': {}, 'unit': 'fraction of site capacity (3 x WRtg)'}
    for h in range(F.HORIZON):
        res['rmse_by_horizon'][f'{(h + 1) * 15} min'] = {'model': rmse(pred, h), 'persistence': rmse(pers, h), 'smart_persistence': rmse(smart, h)}
    r4 = res['rmse_by_horizon']['240 min']
    res['rmse_4h'] = r4
    res['improvement_vs_persistence'] = 1 - r4['model'] / r4['persistence']
    res['improvement_vs_smart_persistence'] = 1 - r4['model'] / r4['smart_persistence']
    return res


# ---------------------------------------------------------------------------------------------
# ONNX runtime check

def ort_run(model_path, X):
    X = np.ascontiguousarray(X, dtype=np.float32)
    with tempfile.NamedTemporaryFile(suffix='.f32', delete=False) as fh:
        fh.write(X.tobytes())
        name = fh.name
    try:
        out = subprocess.run(['node', os.path.join(HERE, 'run-onnx.js'), model_path, name, str(X.shape[0]), str(X.shape[1])],
                             cwd=ROOT, capture_output=True, text=True)
    finally:
        os.unlink(name)
    if out.returncode != 0:
        raise SystemExit(f'onnxruntime-node check of {os.path.basename(model_path)} failed: {out.stderr.strip()}')
    r = json.loads(out.stdout)
    return {k: np.array(v['data']).reshape(v['dims']) for k, v in r['outputs'].items()}, r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--days', type=int, default=300)
    ap.add_argument('--seed', type=int, default=20251203)
    ap.add_argument('--out', default=os.path.join(ROOT, 'models'))
    ap.add_argument('--data', default=os.path.join(HERE, 'data'))
    args = ap.parse_args()
    t_start = time.time()
    timings = {}

    t0 = time.time()
    m = generate(args.data, args.days, args.seed)
    timings['generate_s'] = time.time() - t0
    d = Data(args.data, m)
    classes = m['faultClasses']
    split_of_day = np.array(d.splits)
    log(f"data: {m['days']} days ({', '.join(f'{s} {int((split_of_day == s).sum())}' for s in ('train', 'validation', 'test'))}), sha256 {m['sha256'][:16]}…")

    t0 = time.time()
    X, y, meta = build_windows(d)
    timings['window_features_s'] = time.time() - t0
    wsplit = split_of_day[meta[:, 0]]
    log(f'windows: {len(X)} ({int((y < 0).sum())} excluded: fault starting or ending inside, or not observable) in {timings["window_features_s"]:.0f} s')

    t0 = time.time()
    rf, fidx, fault_res = train_fault(X, y, wsplit, F.FAULT_FEATURES, classes)
    timings['fault_total_s'] = time.time() - t0
    log(f"fault: final fit {fault_res['fit_seconds']:.0f} s, with model selection {timings['fault_total_s']:.0f} s")
    log(f"fault: test macro-F1 over fault classes {fault_res['macro_f1_fault_classes']:.4f} (all classes {fault_res['macro_f1_all_classes']:.4f})")
    for c, v in fault_res['f1_per_class'].items():
        log(f"  {c:17s} F1 {v:.3f}  ({fault_res['test_windows_per_class'][c]} test windows)")
    iforest, aidx, anom_res = train_anomaly(X, y, wsplit)
    log(f"anomaly: fit {anom_res['fit_seconds']:.1f} s")
    log(f"anomaly: test ROC-AUC {anom_res['roc_auc']:.4f}; per fault {', '.join(f'{classes[c]} {v:.3f}' for c, v in anom_res['roc_auc_per_fault'].items())}")

    t0 = time.time()
    XF, YF, fmeta = build_forecast(d)
    timings['forecast_features_s'] = time.time() - t0
    fsplit = split_of_day[fmeta[:, 0].astype(int)]
    log(f'forecast: {len(XF)} origins, features in {timings["forecast_features_s"]:.0f} s')
    fc_model, fc_train = train_forecast(XF, YF, fsplit, args.seed % 100000)
    log(f"forecast: GRU trained in {fc_train['fit_seconds']:.0f} s")
    fc_res = evaluate_forecast(fc_model, XF, YF, fsplit, fmeta)
    r4 = fc_res['rmse_4h']
    log(f"forecast: RMSE at 4 h {r4['model']:.4f} (persistence {r4['persistence']:.4f}, smart persistence {r4['smart_persistence']:.4f}): "
        f"{100 * fc_res['improvement_vs_persistence']:.1f} % and {100 * fc_res['improvement_vs_smart_persistence']:.1f} % better")

    gates = {
        'fault_macro_f1': (fault_res['macro_f1_fault_classes'], GATES['fault_macro_f1']),
        'anomaly_roc_auc': (anom_res['roc_auc'], GATES['anomaly_roc_auc']),
        'forecast_vs_persistence': (fc_res['improvement_vs_persistence'], GATES['forecast_vs_persistence']),
        'forecast_vs_smart_persistence': (fc_res['improvement_vs_smart_persistence'], GATES['forecast_vs_smart_persistence']),
    }
    failed = [k for k, (v, g) in gates.items() if not v >= g]
    for k, (v, g) in gates.items():
        log(f"gate {k}: {v:.4f} >= {g}: {'pass' if k not in failed else 'FAIL'}")
    if failed:
        log(f"quality gates not met: {', '.join(failed)}; no models written")
        sys.exit(1)

    # -------------------------------------------------------------------------------------------
    os.makedirs(args.out, exist_ok=True)
    common = {'version': MODEL_VERSION, 'training_data_sha256': m['sha256'], 'generator_seed': str(args.seed),
              'generator_days': str(args.days), 'generator_version': str(m['generatorVersion']), 'docs': 'docs/ml-models.md'}
    window_meta = {'window_minutes': str(F.WINDOW_MIN), 'sampling': 'one sample per minute (the latest value received in the minute)',
                   'min_samples': str(F.MIN_SAMPLES), 'daylight_min_sun_elevation_deg': str(F.DAYLIGHT_ELEVATION)}
    paths = {k: os.path.join(args.out, f'{k}.onnx') for k in ('fault', 'anomaly', 'forecast')}
    import onnx
    onnx.save(onnx_export.random_forest_to_onnx(rf, F.FAULT_FEATURES, {
        **common, **window_meta, 'model': 'fault', 'feature_names': F.FAULT_FEATURES, 'classes': classes,
        'scaler': {'kind': 'none', 'note': 'features are scaled by fixed constants in their definitions'},
        'outputs': 'label: class index; probabilities[N, classes]; fault probability = 1 - probabilities[:, 0]'},
        'dCMMS fault classifier (random forest)'), paths['fault'])
    onnx.save(onnx_export.isolation_forest_to_onnx(iforest, F.ANOMALY_FEATURES, {
        **common, **window_meta, 'model': 'anomaly', 'feature_names': F.ANOMALY_FEATURES,
        'scaler': {'kind': 'none', 'note': 'features are scaled by fixed constants in their definitions'},
        'outputs': 'score[N, 1] = 1 + 2 * sklearn score_samples, -1..1, lower = more anomalous'},
        'dCMMS anomaly detector (isolation forest)'), paths['anomaly'])

    import torch
    fnames = F.forecast_feature_names()
    torch.onnx.export(fc_model, torch.zeros(1, len(fnames)), paths['forecast'], input_names=['features'], output_names=['forecast'],
                      dynamic_axes={'features': {0: 'N'}, 'forecast': {0: 'N'}}, opset_version=onnx_export.OPSET, do_constant_folding=True)
    onnx_export.add_metadata(paths['forecast'], {
        **common, 'model': 'forecast', 'feature_names': fnames,
        'scaler': {'kind': 'standard', 'applied_in_graph': True, 'mean': fc_train['scaler_mean'], 'std': fc_train['scaler_std']},
        'capacity': 'sum of the inverters\' WRtg', 'step_minutes': str(F.BLOCK_MIN), 'horizon_steps': str(F.HORIZON),
        'outputs': 'forecast[N, 16]: mean site generation of each 15-minute step ahead, fraction of capacity'})

    # Runtime check: onnxruntime-node against sklearn / torch on the test set.
    te = (wsplit == 'test') & (y >= 0)
    ort_fault, info = ort_run(paths['fault'], X[te][:, fidx])
    sk_proba = rf.predict_proba(X[te][:, fidx].astype(np.float32))
    d_proba = float(np.max(np.abs(ort_fault['probabilities'] - sk_proba)))
    label_agree = float(np.mean(ort_fault['label'] == rf.predict(X[te][:, fidx].astype(np.float32))))
    ort_anom, _ = ort_run(paths['anomaly'], X[te][:, aidx])
    sk_score = 1 + 2 * iforest.score_samples(X[te][:, aidx].astype(np.float32))
    d_score = float(np.max(np.abs(ort_anom['score'][:, 0] - sk_score)))
    tef = fsplit == 'test'
    ort_fc, _ = ort_run(paths['forecast'], XF[tef])
    with torch.no_grad():
        pt = fc_model(torch.tensor(XF[tef], dtype=torch.float32)).numpy()
    d_fc = float(np.max(np.abs(ort_fc['forecast'] - pt)))
    runtime = {'onnxruntime_node': info['version'], 'test_rows': {'fault': int(te.sum()), 'anomaly': int(te.sum()), 'forecast': int(tef.sum())},
               'max_abs_diff': {'fault_probabilities': d_proba, 'anomaly_score': d_score, 'forecast': d_fc}, 'fault_label_agreement': label_agree}
    log(f'onnxruntime-node {info["version"]} vs sklearn/torch on the test set: probabilities {d_proba:.2e}, labels agree {label_agree:.4f}, '
        f'anomaly score {d_score:.2e}, forecast {d_fc:.2e}')
    if d_proba > 1e-5 or label_agree < 1 or d_score > 1e-5 or d_fc > 1e-4:
        log('ONNX outputs differ from the trained models')
        sys.exit(1)

    write_golden(args.out, d, X, y, meta, wsplit, XF, fmeta, fsplit, fidx, aidx, paths)

    sizes = {k: os.path.getsize(v) for k, v in paths.items()}
    metrics = {'model_version': MODEL_VERSION, 'data': {'days': args.days, 'seed': args.seed, 'sha256': m['sha256'],
               'split_days': {s: int((split_of_day == s).sum()) for s in ('train', 'validation', 'test')}},
               'fault': fault_res, 'anomaly': anom_res, 'forecast': {**fc_res, 'training': {k: v for k, v in fc_train.items() if not k.startswith('scaler')}},
               'gates': {k: {'value': v, 'threshold': g, 'pass': k not in failed} for k, (v, g) in gates.items()},
               'onnx': {'opset': onnx_export.OPSET, 'ml_opset': onnx_export.ML_OPSET, 'bytes': sizes, 'runtime_check': runtime},
               'timings_s': {**timings, 'total_s': time.time() - t_start}}
    with open(os.path.join(args.out, 'metrics.json'), 'w') as fh:
        json.dump(metrics, fh, indent=1)
    log(f"models: {', '.join(f'{k} {v / 1024:.0f} KiB' for k, v in sizes.items())} in {args.out}; total {time.time() - t_start:.0f} s")


def write_golden(out, d, X, y, meta, wsplit, XF, fmeta, fsplit, fidx, aidx, paths):
    """A few test windows per model: raw inputs, features, and onnxruntime-node's outputs."""
    rng = np.random.default_rng(5)
    picks = []
    te = np.where(wsplit == 'test')[0]
    for c in range(len(d.m['faultClasses'])):
        cand = te[y[te] == c]
        if len(cand):
            picks.append(int(rng.choice(cand)))
    # One normal window with a sample missing, if there is one.
    miss = te[(y[te] == 0) & (X[te][:, F.ALL_WINDOW_FEATURES.index('missing_frac')] > 0)]
    if len(miss):
        picks.append(int(miss[0]))
    windows = []
    fo, _ = ort_run(paths['fault'], X[picks][:, fidx])
    ao, _ = ort_run(paths['anomaly'], X[picks][:, aidx])
    for k, r in enumerate(picks):
        day, end, i = (int(v) for v in meta[r])
        site, invs = window_inputs(d, day, end)
        windows.append({
            'day': day, 'endMinute': end, 'endMs': d.m['dayPlans'][day]['startMs'] + end * 60000, 'inverter': i,
            'label': d.m['faultClasses'][y[r]] if y[r] >= 0 else None, 'ratedW': d.rated,
            'site': site, 'inverters': invs,
            'features': {n: float(X[r][F.ALL_WINDOW_FEATURES.index(n)]) for n in F.ALL_WINDOW_FEATURES},
            'fault': {'label': int(fo['label'][k]), 'probabilities': fo['probabilities'][k].tolist()},
            'anomaly': {'score': float(ao['score'][k][0])},
        })
    tef = np.where(fsplit == 'test')[0]
    fpicks = [int(v) for v in rng.choice(tef[fmeta[tef, 2] >= 5], size=4, replace=False)]
    # And one whose history has a 15-minute block without a sample of an inverter (carried forward).
    for r in tef[fmeta[tef, 2] >= 5]:
        w = forecast_minutes(d, int(fmeta[r][0]), int(fmeta[r][1]))['W']
        if any(all(v is None for v in x[k * F.BLOCK_MIN:(k + 1) * F.BLOCK_MIN]) for x in w for k in range(F.PAST_STEPS)):
            fpicks.append(int(r))
            break
    fco, _ = ort_run(paths['forecast'], XF[fpicks])
    p = d.m['plant']
    forecasts = []
    for k, r in enumerate(fpicks):
        day, origin_min = int(fmeta[r][0]), int(fmeta[r][1])
        forecasts.append({
            'day': day, 'originMs': d.m['dayPlans'][day]['startMs'] + origin_min * 60000,
            'latitude': p['latitude'], 'longitude': p['longitude'], 'trackerLimitDeg': p['trackerLimitDeg'],
            'capacityW': d.rated * d.n_inv, 'minutes': forecast_minutes(d, day, origin_min),
            'features': XF[r].tolist(), 'forecast': fco['forecast'][k].tolist(),
        })
    golden = {
        'description': 'Inputs, features and onnxruntime-node outputs of test windows; features to 1e-5 (docs/ml-models.md)',
        'faultFeatureNames': F.FAULT_FEATURES, 'anomalyFeatureNames': F.ANOMALY_FEATURES,
        'forecastFeatureNames': F.forecast_feature_names(), 'classes': d.m['faultClasses'],
        'windows': windows, 'forecasts': forecasts,
    }
    with open(os.path.join(out, 'golden.json'), 'w') as fh:
        json.dump(golden, fh, separators=(',', ':'))


if __name__ == '__main__':
    main()
