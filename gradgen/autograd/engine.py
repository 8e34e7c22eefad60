"""The backward engine: runs nodes in reverse topological order by dependency counting.

No recursion anywhere, so a chain of any length backpropagates. Gradients
arriving at one node from several consumers are summed with the ``add``
primitive, so under ``create_graph=True`` the sum is itself recorded.
"""
from __future__ import annotations

import heapq
from typing import Any, Callable, Sequence

from .grad_mode import _state
from .node import AccumulateGrad, Node, _NodePreHook, check_hook_result


def execute(roots: Sequence[Node], grads: Sequence[Any], keep_graph: bool, create_graph: bool,
            capture: Sequence[Node] | None = None, accumulate: bool = True) -> dict[Node, Any]:
    """Backpropagate ``grads`` from ``roots``; returns the gradients reaching ``capture`` nodes.

    With ``capture`` only the nodes that lead to a captured node run (of several roots, one
    that leads to none runs no hook; a single root runs its tensor hooks all the same).
    Without ``accumulate`` (``autograd.grad``) the captured nodes' gradients are returned and
    AccumulateGrad nodes do not accumulate; with it (``backward(inputs=...)``) the captured
    nodes themselves run as well, and nothing is returned.
    """
    if capture is None and len(roots) == 1 and not create_graph and _one_node(roots[0]):
        return _run_one_node(roots[0], grads[0], keep_graph, accumulate)
    deps = _count_dependencies(roots)
    wanted = early = None
    if capture is not None:
        needed = _needed(roots, deps, set(capture))
        if len(roots) == 1 and roots[0] not in needed:
            return _hooks_only(roots[0], grads[0], create_graph)
        deps = _count_dependencies(roots, needed)
        # Of several roots, one that leads to no captured node does not run, nor its hooks.
        pairs = [(n, g) for n, g in zip(roots, grads) if n in needed]
        roots, grads = [n for n, _ in pairs], [g for _, g in pairs]
        if accumulate:
            runs = None
        else:
            wanted = set(capture)
            # A captured node whose inputs lead nowhere wanted need not run. One that runs
            # hands out its gradient before its hooks, one that does not after them (as in
            # PyTorch's engine: NOTE [Hooks ordering]).
            runs = {n for n in needed if any(c in needed for c in n._next if c is not None)}
            early = wanted & runs
    else:
        needed = runs = None
    buffers: dict[Node, Any] = {}
    for node, g in zip(roots, grads):
        buffers[node] = g if node not in buffers else add(buffers[node], g)
    captured: dict[Node, Any] = {}
    heap = [(-n._seq, n) for n in buffers if deps.get(n, 0) == 0]
    heapq.heapify(heap)
    prev_mode = _state.enabled
    _state.enabled = create_graph
    try:
        while heap:
            _, node = heapq.heappop(heap)
            g = buffers.pop(node, None)
            if wanted is not None and node in early:
                captured[node] = g
            if g is not None and (node._pre_hooks or node._retains is not None):
                g = _run_pre_hooks(node, g, create_graph, runs is None or node in runs)
            if wanted is not None and node in wanted and node not in early:
                captured[node] = g
            if type(node) is AccumulateGrad:
                if accumulate and g is not None:
                    node.apply(g)
                continue
            if runs is not None and node not in runs:
                continue
            outs = node.apply(g) if g is not None else ()
            if not keep_graph:
                node.release()
            nexts = node._next
            for i, nxt in enumerate(nexts):
                if nxt is None or (needed is not None and nxt not in needed):
                    continue
                gi = outs[i] if i < len(outs) else None
                if gi is not None:
                    old = buffers.get(nxt)
                    buffers[nxt] = gi if old is None else add(old, gi)
                left = deps[nxt] - 1
                deps[nxt] = left
                if left == 0:
                    heapq.heappush(heap, (-nxt._seq, nxt))
    finally:
        _state.enabled = prev_mode
    return captured


def _hooks_only(root: Node, g: Any, create_graph: bool) -> dict:
    """A single root that leads to no captured node: PyTorch still evaluates it (it has no
    dummy root node above it), which runs its tensor hooks and retain_grad, and nothing more."""
    if g is not None and (root._pre_hooks or root._retains is not None):
        prev_mode = _state.enabled
        _state.enabled = create_graph
        try:
            _run_pre_hooks(root, g, create_graph, False)
        finally:
            _state.enabled = prev_mode
    return {}


def _one_node(root: Node) -> bool:
    """Whether the graph below ``root`` is ``root`` and distinct hook-free leaves only (a
    compiled function's output: one node for the whole program)."""
    if type(root) is AccumulateGrad or root._pre_hooks or root._retains is not None:
        return False
    seen = set()
    for n in root._next:
        if n is None:
            continue
        if type(n) is not AccumulateGrad or n._pre_hooks or n._retains is not None or n in seen:
            return False
        seen.add(n)
    return True


def _run_one_node(root: Node, g: Any, keep_graph: bool, accumulate: bool) -> dict:
    """``execute`` for a :func:`_one_node` graph, without the dependency count and the heap:
    the same node runs once and each leaf accumulates its gradient, as the general loop would."""
    prev_mode = _state.enabled
    _state.enabled = False
    try:
        outs = root.apply(g) if g is not None else ()
        if not keep_graph:
            root.release()
        if accumulate:
            _into_leaves(root, outs)
    finally:
        _state.enabled = prev_mode
    return {}


def run_unit(root: Node, keep_graph: bool) -> bool:
    """``execute([root], [one], keep_graph, False)`` without making the one, for a root that
    already holds its gradients for a cotangent of one (:meth:`Node.unit_grads`: a fused
    compiled call's node) and a :func:`_one_node` graph. False, with nothing done, when either
    does not hold: the general path runs (and raises what it raises)."""
    if not root.holds_unit or not _one_node(root):
        return False
    outs = root.unit_grads()
    if outs is None:
        return False
    if not keep_graph:
        root.release()
    prev_mode = _state.enabled
    _state.enabled = False
    try:
        _into_leaves(root, outs)
    finally:
        _state.enabled = prev_mode
    return True


def _into_leaves(root: Node, outs: tuple) -> None:
    # Gradients the node made for this call alone (a compiled backward's fresh arrays) become
    # the leaves' .grad without a copy, as PyTorch steals an unshared buffer.
    mine = root.stealable
    for k, (n, gi) in enumerate(zip(root._next, outs)):
        if n is not None and gi is not None:
            n.variable._accumulate_grad(gi, mine is not None and mine[k])


def any_node(roots: Sequence[Node | None], test: Callable[[Node], bool]) -> bool:
    """Whether some node of the graph below ``roots`` passes ``test``."""
    seen: set = set()
    stack = [n for n in roots if n is not None]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if test(node):
            return True
        stack.extend(n for n in node._next if n is not None)
    return False


def any_stale(roots: Sequence[Node | None]) -> bool:
    """Whether a backward from ``roots`` would meet a node whose saved tensor was written in
    place since it was saved (:meth:`Node.stale`: that node's ``apply`` raises)."""
    return any_node(roots, lambda n: n.stale())


def add(a: Any, b: Any) -> Any:
    """The ``add`` primitive, bound on first use (gradgen.ops imports this package); later calls
    go straight to it, with no import statement on the backward path."""
    global add
    from ..ops.elementwise import add as _add  # noqa: PLC0415
    add = _add
    return _add(a, b)


def _run_pre_hooks(node: Node, g: Any, create_graph: bool, node_hooks: bool = True) -> Any:
    """The tensor hooks, then the retain_grad store, then (``node_hooks``: the node will run)
    the node's own pre-hooks, in PyTorch's order; returns the gradient the node then receives
    (None: a node hook dropped it)."""
    late = None
    hooks = node._pre_hooks
    if hooks:
        for hook in list(hooks):
            if type(hook) is _NodePreHook:
                late = [hook] if late is None else late + [hook]
                continue
            r = hook(g)
            if r is not None:
                check_hook_result(hook, g, r)
                g = r
    if node._retains is not None:
        t = node._retains()
        if t is not None:
            t._store_retained_grad(g, create_graph)
    if late is not None and node_hooks:
        for hook in late:
            g = hook(g)
    return g


def _count_dependencies(roots: Sequence[Node], only: set | None = None) -> dict[Node, int]:
    deps: dict[Node, int] = {}
    seen = set(roots)
    stack = list(seen)
    while stack:
        node = stack.pop()
        for nxt in node._next:
            if nxt is None or (only is not None and nxt not in only):
                continue
            deps[nxt] = deps.get(nxt, 0) + 1
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return deps


def _needed(roots: Sequence[Node], deps: dict[Node, int], wanted: set) -> set:
    """Nodes from which a wanted node can be reached (Kahn order, then a reverse sweep)."""
    left = dict(deps)
    order: list[Node] = []
    stack = [n for n in set(roots) if left.get(n, 0) == 0]
    while stack:
        node = stack.pop()
        order.append(node)
        for nxt in node._next:
            if nxt is None:
                continue
            left[nxt] -= 1
            if left[nxt] == 0:
                stack.append(nxt)
    needed: set = set()
    for node in reversed(order):
        if node in wanted or any(n in needed for n in node._next if n is not None):
            needed.add(node)
    return needed
