"""Feature definitions of MLInference's models (docs/ml-models.md states them; keep the two in step).

Every feature is plain float64 arithmetic over one-minute samples, in the order given, so that the
gateway (TypeScript) reproduces it to 1e-5. A one-minute sample of a point is the latest value the
gateway received within that minute; a minute without one is missing (NaN here).
"""
import math

import numpy as np

WINDOW_MIN = 15          # minutes per classifier / anomaly window
MIN_SAMPLES = 5          # fewer inverter samples in the window: no result
DAYLIGHT_ELEVATION = 5.0  # degrees: windows whose mean sun elevation is lower are not scored
PR_POA_FLOOR = 50.0      # W/m2, keeps the performance ratios finite at dawn
STRING_MIN_A = 0.5       # A, mean string current below which string ratios are 1

FAULT_FEATURES = [
    'w_mean', 'w_std', 'w_max', 'dcw_mean', 'efficiency', 'dcv_mean', 'pr_dc', 'pr_ac', 'peer_ratio',
    'heatsink_rise', 'cabinet_rise', 'heatsink_minus_cabinet', 'heatsink_slope', 'module_minus_ref',
    'string_min_ratio', 'string_max_ratio', 'st_fault_frac', 'evt_overtemp_frac', 'evt_groundfault_frac',
    'missing_frac', 'tracker_error', 'poa_mean', 'poa_std', 'poa_ghi_ratio', 'ghi_mean', 'ambient',
    'wind', 'sun_elevation', 'pr_dc_tc', 'at_cap_frac',
]

# The anomaly detector's inputs: the features that stay near a constant in normal operation whatever
# the weather (ratios and residuals), so that a fault moves a window away from the normal cloud.
ANOMALY_FEATURES = [
    'efficiency', 'pr_dc', 'pr_ac', 'peer_ratio', 'heatsink_minus_cabinet', 'heatsink_slope',
    'module_minus_ref', 'string_min_ratio', 'string_max_ratio', 'st_fault_frac', 'evt_overtemp_frac',
    'evt_groundfault_frac', 'missing_frac', 'tracker_error', 'heatsink_excess', 'cabinet_excess',
    'pr_dc_tc', 'at_cap_frac',
]
ALL_WINDOW_FEATURES = FAULT_FEATURES + ['heatsink_excess', 'cabinet_excess']


def _mean(x):
    return float(sum(x) / len(x))


def _median(x):
    v = sorted(x)
    k = len(v) // 2
    return v[k] if len(v) % 2 else (v[k - 1] + v[k]) / 2


def _std(x):
    m = _mean(x)
    return math.sqrt(sum((v - m) ** 2 for v in x) / len(x))


def window_features(site, inverters, i, rated_w):
    """Features of inverter `i` for one window.

    site: dict of point -> list of WINDOW_MIN floats (ghi, poa, ambientTemp, wsModuleTemp, windSpeed,
      trackerActual, trackerTarget, sunElevation), oldest first, no gaps.
    inverters: list (one per inverter of the site) of dict point -> list of WINDOW_MIN floats or None
      (missing): W, DCW, DCV, TmpSnk, TmpCab, Tmp, str1DCA.., stFault, evtOverTemp, evtGroundFault.
    Returns a dict name -> float (ALL_WINDOW_FEATURES), or None when the window is not scored.
    """
    if _mean(site['sunElevation']) < DAYLIGHT_ELEVATION:
        return None
    inv = inverters[i]
    idx = [k for k in range(WINDOW_MIN) if inv['W'][k] is not None]
    n = len(idx)
    if n < MIN_SAMPLES:
        return None

    def s(point, series=inv):
        return [series[point][k] for k in idx]

    r = rated_w
    w = s('W')
    dcw = s('DCW')
    poa_s = s('poa', site)
    amb_s = s('ambientTemp', site)
    f = {}
    f['w_mean'] = _mean(w) / r
    f['w_std'] = _std(w) / r
    f['w_max'] = max(w) / r
    f['dcw_mean'] = _mean(dcw) / r
    f['efficiency'] = _mean(w) / _mean(dcw) if _mean(dcw) > 0.01 * r else 0.0
    f['dcv_mean'] = _mean(s('DCV')) / 1000
    poa_floor = max(_mean(poa_s), PR_POA_FLOOR) / 1000
    f['pr_dc'] = _mean(dcw) / (r * poa_floor)
    f['pr_ac'] = _mean(w) / (r * poa_floor)
    peers = []
    for other in inverters:
        ws = [v for v in other['W'] if v is not None]
        if len(ws) >= MIN_SAMPLES:
            peers.append(_mean(ws))
    peer = _median(peers)
    f['peer_ratio'] = _mean(w) / peer if peer >= 0.01 * r else 1.0
    snk = s('TmpSnk')
    cab = s('TmpCab')
    f['heatsink_rise'] = _mean([a - b for a, b in zip(snk, amb_s)]) / 10
    f['cabinet_rise'] = _mean([a - b for a, b in zip(cab, amb_s)]) / 10
    f['heatsink_minus_cabinet'] = _mean([a - b for a, b in zip(snk, cab)]) / 10
    if n >= 2:
        tm = _mean(idx)
        ym = _mean(snk)
        f['heatsink_slope'] = sum((t - tm) * (y - ym) for t, y in zip(idx, snk)) / sum((t - tm) ** 2 for t in idx)
    else:
        f['heatsink_slope'] = 0.0
    f['module_minus_ref'] = _mean([a - b for a, b in zip(s('Tmp'), s('wsModuleTemp', site))]) / 10
    strings = sorted(k for k in inv if k.startswith('str') and k.endswith('DCA'))
    means = [_mean(s(k)) for k in strings]
    ms = _mean(means)
    f['string_min_ratio'] = min(means) / ms if ms > STRING_MIN_A else 1.0
    f['string_max_ratio'] = max(means) / ms if ms > STRING_MIN_A else 1.0
    f['st_fault_frac'] = _mean(s('stFault'))
    f['evt_overtemp_frac'] = _mean(s('evtOverTemp'))
    f['evt_groundfault_frac'] = _mean(s('evtGroundFault'))
    f['missing_frac'] = (WINDOW_MIN - n) / WINDOW_MIN
    f['tracker_error'] = _mean([abs(a - b) for a, b in zip(site['trackerTarget'], site['trackerActual'])]) / 10
    f['poa_mean'] = _mean(site['poa']) / 1000
    f['poa_std'] = _std(site['poa']) / 1000
    f['poa_ghi_ratio'] = _mean(site['poa']) / max(_mean(site['ghi']), PR_POA_FLOOR)
    f['ghi_mean'] = _mean(site['ghi']) / 1000
    f['ambient'] = (_mean(site['ambientTemp']) - 20) / 10
    f['wind'] = _mean(site['windSpeed']) / 10
    f['sun_elevation'] = _mean(site['sunElevation']) / 90
    # DC performance ratio corrected to 25 C with the modules' temperature coefficient (-0.35 %/K).
    f['pr_dc_tc'] = _mean(dcw) / (r * poa_floor * (1 - 0.0035 * (_mean(s('Tmp')) - 25)))
    # Share of the minutes at the window's maximum (within 0.2 % of WRtg): an output held flat by a cap.
    wmax = max(w)
    f['at_cap_frac'] = sum(1 for v in w if v >= wmax - 0.002 * r) / n if wmax > 0.05 * r else 0.0
    # Heat sink and cabinet against what the output explains: TmpSnk - ambient - 30 W / WRtg and
    # TmpCab - ambient - 10 W / WRtg (the inverter's thermal design, as seen in normal operation).
    f['heatsink_excess'] = _mean([a - b - 30 * x / r for a, b, x in zip(snk, amb_s, w)]) / 10
    f['cabinet_excess'] = _mean([a - b - 10 * x / r for a, b, x in zip(cab, amb_s, w)]) / 10
    return f


# ---------------------------------------------------------------------------------------------
# Forecast

BLOCK_MIN = 15      # minutes per step
PAST_STEPS = 16     # 4 h of history
HORIZON = 16        # 4 h ahead
PAST_INPUTS = ['power', 'ghi', 'poa', 'ambient', 'clear_sky_poa']


def forecast_feature_names():
    names = [f'{p}_t-{PAST_STEPS - 1 - k}' for k in range(PAST_STEPS) for p in PAST_INPUTS]
    names += [f'clear_sky_poa_t+{h + 1}' for h in range(HORIZON)]
    names += ['tod_sin', 'tod_cos']
    return names


def forecast_features(minutes, origin_ms, capacity_w, lon):
    """Inputs for a forecast made at origin_ms (the end of a 15-minute block).

    minutes: one-minute samples, oldest first: 'W' -> per inverter the PAST_STEPS * BLOCK_MIN values
      before origin_ms (floats or None); 'ghi', 'poa', 'ambientTemp' -> the same minutes (floats);
      'clearSkyPoa' -> the clear-sky POA at each minute from PAST_STEPS blocks before the origin to
      HORIZON blocks after it ((PAST_STEPS + HORIZON) * BLOCK_MIN values: a known function of time,
      features.ts clearSkyPoa).
    Site power per block: the sum over inverters of each one's block mean of 103.W over the minutes
    with a sample; a block without one takes that inverter's previous block (0 for the first).
    """
    power = [0.0] * PAST_STEPS
    for w in minutes['W']:
        last = 0.0
        for k in range(PAST_STEPS):
            vals = [v for v in w[k * BLOCK_MIN:(k + 1) * BLOCK_MIN] if v is not None]
            if vals:
                last = _mean(vals)
            power[k] += last
    cs = minutes['clearSkyPoa']
    f = []
    for k in range(PAST_STEPS):
        sl = slice(k * BLOCK_MIN, (k + 1) * BLOCK_MIN)
        f += [power[k] / capacity_w, _mean(minutes['ghi'][sl]) / 1000, _mean(minutes['poa'][sl]) / 1000,
              (_mean(minutes['ambientTemp'][sl]) - 20) / 10, _mean(cs[sl]) / 1000]
    for h in range(HORIZON):
        k = PAST_STEPS + h
        f.append(_mean(cs[k * BLOCK_MIN:(k + 1) * BLOCK_MIN]) / 1000)
    solar_h = ((origin_ms / 3600000 + lon / 15) % 24 + 24) % 24
    f += [math.sin(2 * math.pi * solar_h / 24), math.cos(2 * math.pi * solar_h / 24)]
    return f
