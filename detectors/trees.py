"""A gradient-boosted tree model (LightGBM's, exported to JSON) evaluated with NumPy.

Why not the library in the service: LightGBM is a tool dependency (requirements-dev.txt); the
supervisor only needs the trees' arithmetic, which is a few array lookups per depth level. All
trees are walked at once: node[r, t] is row r's current node in tree t, one vectorised step per
level, so a batch costs (max depth) x a handful of NumPy calls whatever the tree count.
tests/test_detectors_trees.py proves the probabilities equal to LightGBM's own predictions.

JSON (model file "kind": "trees"; profile, description, trained as in the logistic model):

    features        names of the row fields, the columns of the trees' split_feature
    trees           [{"split_feature": [..], "threshold": [..], "default_left": [..],
                      "missing": [..] ("nan" | "zero" | "none"), "left": [..], "right": [..],
                      "leaf_value": [..]}]   children >= 0 are nodes, < 0 are leaves ~child
    prob = sigmoid(sum of the leaves reached)

Missing values follow LightGBM: "nan" sends NaN the default way; "zero" sends NaN and 0 the
default way; "none" reads NaN as 0. A tree that is a single leaf has no nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_MISSING = {"none": 0, "zero": 1, "nan": 2}
_ZERO = 1e-35  # LightGBM's kZeroThreshold


class TreeModelError(ValueError):
    """The trees part of a model file is malformed."""


@dataclass(frozen=True)
class TreeModel:
    """Stacked trees: arrays [tree, node] padded to the largest tree; built by trees_from_dict()."""

    profile: str
    features: tuple[str, ...]
    trained: dict[str, Any] | None
    feat: np.ndarray
    thr: np.ndarray
    default_left: np.ndarray
    missing: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf: np.ndarray  # [tree, leaf]
    root_leaf: np.ndarray  # per tree: -1, or the leaf index of a single-leaf tree
    depth: int

    def raw(self, rows: np.ndarray) -> np.ndarray:
        """Sum of the leaf values reached, per row."""
        n, (n_trees, width) = len(rows), self.feat.shape
        if n == 0:
            return np.zeros(0)
        x = np.column_stack([rows[name].astype(np.float64) for name in self.features])
        # Every (row, tree) pair walks down together; pairs that reached a leaf leave the arrays,
        # so a level costs what is still walking (most paths of a 15-leaf tree end in 4-5 steps).
        pair_tree = np.tile(np.arange(n_trees), n)
        pair_x = np.repeat(np.arange(n) * x.shape[1], n_trees)
        xf = x.ravel()
        feat, thr, dleft, missing = self.feat.ravel(), self.thr.ravel(), self.default_left.ravel(), self.missing.ravel()
        left, right = self.left.ravel(), self.right.ravel()
        final = np.tile(~self.root_leaf, n)  # leaf reached per pair (valid where the tree is a single leaf)
        pos = np.flatnonzero(np.tile(self.root_leaf < 0, n))
        node = np.zeros(len(pos), np.int64)
        for _ in range(self.depth):
            if len(pos) == 0:
                break
            at = pair_tree[pos] * width + node
            v = xf[pair_x[pos] + feat[at]]
            kind = missing[at]
            nan = np.isnan(v)
            v = np.where(nan & (kind == 0), 0.0, v)
            miss = (nan & (kind != 0)) | ((kind == 1) & (np.abs(v) <= _ZERO))
            with np.errstate(invalid="ignore"):
                go_left = np.where(miss, dleft[at], v <= thr[at])
            node = np.where(go_left, left[at], right[at])
            done = node < 0
            final[pos[done]] = node[done]
            pos, node = pos[~done], node[~done]
        leaf_at = pair_tree * self.leaf.shape[1] + ~final
        return self.leaf.ravel()[leaf_at].reshape(n, n_trees).sum(axis=1)

    def probability(self, rows: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-self.raw(rows)))

    def nbytes(self) -> int:
        """Memory of the arrays (the model's whole footprint but a few hundred bytes)."""
        return sum(a.nbytes for a in (self.feat, self.thr, self.default_left, self.missing, self.left, self.right, self.leaf))


def _array(tree: dict[str, Any], key: str, k: int, n: int, kind: type) -> list[Any]:
    value = tree.get(key)
    if not isinstance(value, list) or len(value) != n:
        raise TreeModelError(f"trees[{k}].{key}: expected a list of {n}")
    if kind is float and not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value):
        raise TreeModelError(f"trees[{k}].{key}: expected finite numbers")
    if kind is int and not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise TreeModelError(f"trees[{k}].{key}: expected integers")
    return value


def trees_from_dict(profile: str, features: list[str], trees: Any, trained: dict[str, Any] | None) -> TreeModel:
    """Validate and stack the trees; every error names the tree and the field."""
    if not isinstance(trees, list) or not trees:
        raise TreeModelError("trees: expected a non-empty list")
    n_trees = len(trees)
    width = max(1, max(len(t.get("split_feature", [])) if isinstance(t, dict) else 0 for t in trees))
    leaves = max(len(t.get("leaf_value", [])) if isinstance(t, dict) else 0 for t in trees)
    feat = np.zeros((n_trees, width), np.int64)
    thr = np.zeros((n_trees, width))
    dleft = np.zeros((n_trees, width), bool)
    missing = np.zeros((n_trees, width), np.int8)
    left = np.full((n_trees, width), -1, np.int64)
    right = np.full((n_trees, width), -1, np.int64)
    leaf = np.zeros((n_trees, max(leaves, 1)))
    root_leaf = np.full(n_trees, -1, np.int64)
    for k, tree in enumerate(trees):
        if not isinstance(tree, dict):
            raise TreeModelError(f"trees[{k}]: expected an object")
        n = len(tree.get("split_feature", []))
        values = _array(tree, "leaf_value", k, n + 1, float)
        leaf[k, : n + 1] = values
        if n == 0:
            root_leaf[k] = 0
            continue
        f = _array(tree, "split_feature", k, n, int)
        if not all(0 <= i < len(features) for i in f):
            raise TreeModelError(f"trees[{k}].split_feature: index outside features")
        feat[k, :n] = f
        thr[k, :n] = _array(tree, "threshold", k, n, float)
        dleft[k, :n] = [bool(v) for v in _array(tree, "default_left", k, n, int)]
        kinds = tree.get("missing")
        if not isinstance(kinds, list) or len(kinds) != n or any(m not in _MISSING for m in kinds):
            raise TreeModelError(f"trees[{k}].missing: expected a list of {n} of {', '.join(_MISSING)}")
        missing[k, :n] = [_MISSING[m] for m in kinds]
        for key, out in (("left", left), ("right", right)):
            child = _array(tree, key, k, n, int)
            if not all(-(n + 1) <= c < n for c in child):
                raise TreeModelError(f"trees[{k}].{key}: child outside the tree")
            out[k, :n] = child
    depth = _depth(left, right, root_leaf)
    return TreeModel(profile, tuple(features), trained, feat, thr, dleft, missing, left, right, leaf, root_leaf, depth)


def _depth(left: np.ndarray, right: np.ndarray, root_leaf: np.ndarray) -> int:
    """The longest root-to-leaf path (refuses a cycle)."""
    deepest = 0
    for k in range(left.shape[0]):
        if root_leaf[k] >= 0:
            continue
        level, frontier = 0, [0]
        while frontier:
            level += 1
            if level > left.shape[1] + 1:
                raise TreeModelError(f"trees[{k}]: a cycle")
            frontier = [c for n in frontier for c in (int(left[k, n]), int(right[k, n])) if c >= 0]
        deepest = max(deepest, level)
    return deepest


def export_lightgbm(booster: Any) -> list[dict[str, Any]]:
    """A trained LightGBM booster's trees in this module's JSON (numerical splits only)."""
    out = []
    for info in booster.dump_model()["tree_info"]:
        tree: dict[str, list[Any]] = {k: [] for k in ("split_feature", "threshold", "default_left", "missing", "left", "right")}
        leaves: dict[int, float] = {}

        def walk(node: dict[str, Any], tree: dict[str, list[Any]] = tree, leaves: dict[int, float] = leaves) -> int:
            if "leaf_value" in node or "split_index" not in node:
                leaves[int(node.get("leaf_index", 0))] = float(node["leaf_value"])
                return ~int(node.get("leaf_index", 0))
            if node.get("decision_type", "<=") != "<=":
                raise TreeModelError(f"unsupported split {node.get('decision_type')!r} (numerical <= only)")
            i = int(node["split_index"])
            for key in tree:
                if len(tree[key]) <= i:
                    tree[key].extend([0] * (i + 1 - len(tree[key])))
            tree["split_feature"][i] = int(node["split_feature"])
            tree["threshold"][i] = float(node["threshold"])
            tree["default_left"][i] = int(bool(node["default_left"]))
            tree["missing"][i] = str(node.get("missing_type", "None")).lower()
            tree["left"][i] = walk(node["left_child"])
            tree["right"][i] = walk(node["right_child"])
            return i

        walk(info["tree_structure"])
        tree["leaf_value"] = [leaves[i] for i in range(len(leaves))]
        out.append(tree)
    return out
