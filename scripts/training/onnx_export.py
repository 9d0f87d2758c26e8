"""ONNX graphs for the fitted sklearn models, written with onnx.helper (skl2onnx is not packaged
for Debian bookworm): a random forest as ai.onnx.ml TreeEnsembleClassifier, an isolation forest as a
TreeEnsembleRegressor of path lengths followed by the score arithmetic in ai.onnx operators.

sklearn sends a sample left when x <= threshold, comparing the float32 feature with a float64
threshold; ONNX Runtime compares float32 with float32. Each threshold is therefore written as the
largest float32 not above it, which gives the same branch for every float32 input.
"""
import json

import numpy as np
import onnx
from onnx import TensorProto, helper

OPSET = 17     # ai.onnx
ML_OPSET = 3   # ai.onnx.ml


def _f32_floor(t):
    v = np.float32(t)
    if float(v) > t:
        v = np.nextafter(v, np.float32(-np.inf))
    return float(v)


def _tree_nodes(tree, tree_id, feature_map=None):
    t = tree.tree_
    out = {'treeids': [], 'nodeids': [], 'featureids': [], 'values': [], 'modes': [], 'true': [], 'false': []}
    leaves = []
    for node in range(t.node_count):
        left, right = int(t.children_left[node]), int(t.children_right[node])
        out['treeids'].append(tree_id)
        out['nodeids'].append(node)
        if left == -1:
            out['featureids'].append(0)
            out['values'].append(0.0)
            out['modes'].append('LEAF')
            out['true'].append(0)
            out['false'].append(0)
            leaves.append(node)
        else:
            f = int(t.feature[node])
            out['featureids'].append(int(feature_map[f]) if feature_map is not None else f)
            out['values'].append(_f32_floor(float(t.threshold[node])))
            out['modes'].append('BRANCH_LEQ')
            out['true'].append(left)
            out['false'].append(right)
    return out, leaves


def _merge(acc, part):
    for k, v in part.items():
        acc.setdefault(k, []).extend(v)


def _model(graph, metadata, doc):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET), helper.make_opsetid('ai.onnx.ml', ML_OPSET)],
                          producer_name='dcmms-edge scripts/training', producer_version='1', doc_string=doc)
    m.ir_version = 8
    helper.set_model_props(m, {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()})
    onnx.checker.check_model(m, full_check=True)
    return m


def random_forest_to_onnx(rf, feature_names, metadata, doc):
    """probabilities[n, c] = mean over trees of the leaf's class fractions (sklearn's predict_proba);
    label[n] = the class of the largest probability."""
    nodes = {}
    cls = {'treeids': [], 'nodeids': [], 'ids': [], 'weights': []}
    n_trees = len(rf.estimators_)
    for tid, est in enumerate(rf.estimators_):
        part, leaves = _tree_nodes(est, tid)
        _merge(nodes, part)
        value = est.tree_.value
        for leaf in leaves:
            v = value[leaf][0]
            p = v / v.sum()
            for c, w in enumerate(p):
                if w > 0:
                    cls['treeids'].append(tid)
                    cls['nodeids'].append(leaf)
                    cls['ids'].append(c)
                    cls['weights'].append(float(w) / n_trees)
    n_features = len(feature_names)
    node = helper.make_node(
        'TreeEnsembleClassifier', ['features'], ['label', 'probabilities'], domain='ai.onnx.ml',
        nodes_treeids=nodes['treeids'], nodes_nodeids=nodes['nodeids'], nodes_featureids=nodes['featureids'],
        nodes_values=nodes['values'], nodes_modes=nodes['modes'], nodes_truenodeids=nodes['true'],
        nodes_falsenodeids=nodes['false'], class_treeids=cls['treeids'], class_nodeids=cls['nodeids'],
        class_ids=cls['ids'], class_weights=cls['weights'], classlabels_int64s=[int(c) for c in rf.classes_],
        post_transform='NONE')
    graph = helper.make_graph(
        [node], 'fault_classifier',
        [helper.make_tensor_value_info('features', TensorProto.FLOAT, ['N', n_features])],
        [helper.make_tensor_value_info('label', TensorProto.INT64, ['N']),
         helper.make_tensor_value_info('probabilities', TensorProto.FLOAT, ['N', len(rf.classes_)])])
    return _model(graph, metadata, doc)


def _avg_path_length(n):
    n = float(n)
    if n <= 1:
        return 0.0
    if n == 2:
        return 1.0
    return 2.0 * (np.log(n - 1.0) + np.euler_gamma) - 2.0 * (n - 1.0) / n


def isolation_forest_to_onnx(iforest, feature_names, metadata, doc):
    """score = 1 - 2 * 2^(-E[h(x)] / c(psi)): sklearn's score_samples is -2^(-E/c), so
    score = 1 + 2 * score_samples, in -1..1, lower = more anomalous (MlResult's convention)."""
    n_features = len(feature_names)
    if iforest._max_features != n_features:
        raise ValueError('feature subsampling is not exported: fit with max_features=1.0')
    nodes = {}
    tgt = {'treeids': [], 'nodeids': [], 'ids': [], 'weights': []}
    for tid, est in enumerate(iforest.estimators_):
        part, leaves = _tree_nodes(est, tid)
        _merge(nodes, part)
        t = est.tree_
        # Depth of every node.
        depth = np.zeros(t.node_count, dtype=np.int64)
        for node in range(t.node_count):
            for child in (t.children_left[node], t.children_right[node]):
                if child != -1:
                    depth[child] = depth[node] + 1
        for leaf in leaves:
            tgt['treeids'].append(tid)
            tgt['nodeids'].append(leaf)
            tgt['ids'].append(0)
            tgt['weights'].append(float(depth[leaf] + _avg_path_length(t.n_node_samples[leaf])))
    denom = len(iforest.estimators_) * _avg_path_length(iforest.max_samples_)
    trees = helper.make_node(
        'TreeEnsembleRegressor', ['features'], ['path_length_sum'], domain='ai.onnx.ml',
        nodes_treeids=nodes['treeids'], nodes_nodeids=nodes['nodeids'], nodes_featureids=nodes['featureids'],
        nodes_values=nodes['values'], nodes_modes=nodes['modes'], nodes_truenodeids=nodes['true'],
        nodes_falsenodeids=nodes['false'], target_treeids=tgt['treeids'], target_nodeids=tgt['nodeids'],
        target_ids=tgt['ids'], target_weights=tgt['weights'], n_targets=1, aggregate_function='SUM',
        post_transform='NONE')
    consts = [
        helper.make_tensor('neg_inv_denom', TensorProto.FLOAT, [], [-1.0 / denom]),
        helper.make_tensor('two', TensorProto.FLOAT, [], [2.0]),
        helper.make_tensor('minus_two', TensorProto.FLOAT, [], [-2.0]),
        helper.make_tensor('one', TensorProto.FLOAT, [], [1.0]),
    ]
    graph = helper.make_graph(
        [trees,
         helper.make_node('Mul', ['path_length_sum', 'neg_inv_denom'], ['exponent']),
         helper.make_node('Pow', ['two', 'exponent'], ['s']),
         helper.make_node('Mul', ['s', 'minus_two'], ['minus_2s']),
         helper.make_node('Add', ['minus_2s', 'one'], ['score'])],
        'anomaly_detector',
        [helper.make_tensor_value_info('features', TensorProto.FLOAT, ['N', n_features])],
        [helper.make_tensor_value_info('score', TensorProto.FLOAT, ['N', 1])],
        initializer=consts)
    return _model(graph, metadata, doc)


def add_metadata(path, metadata):
    m = onnx.load(path)
    helper.set_model_props(m, {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()})
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, path)
    return m
