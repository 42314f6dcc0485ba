"""Graph algorithms on call graphs, shared by validation and the model: iterative, so a chain of
any length is no deeper on the interpreter's stack than a chain of two, and sparse, so their cost
grows with the calls, not with the square of the tiers."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

Node = TypeVar("Node", bound=Hashable)

#: The most tiers one loop of calls (tiers that call each other back, directly or not) may span:
#: the expected visits inside a loop are a dense linear system, solved by elimination in time
#: growing with the cube of its size. Real loops (a retry path, a callback) span a handful.
MAX_LOOP_TIERS = 200


def strongly_connected(
    nodes: Iterable[Node], successors: Mapping[Node, Iterable[Node]]
) -> list[list[Node]]:
    """The strongly connected components of the graph, callers before callees (topological order
    of the condensation). Tarjan's algorithm with an explicit stack."""
    index: dict[Node, int] = {}
    low: dict[Node, int] = {}
    on_stack: set[Node] = set()
    stack: list[Node] = []
    components: list[list[Node]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(successors.get(root, ())))]
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors.get(child, ()))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[Node] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    components.reverse()
    return components


def find_cycle(start: Node, successors: Mapping[Node, Iterable[Node]]) -> list[Node] | None:
    """A cycle reachable from `start`, as its nodes with the first repeated at the end, or None.
    Depth-first with an explicit stack."""
    state: dict[Node, int] = {start: 1}  # 1: on the current path, 2: finished
    path = [start]
    work = [iter(successors.get(start, ()))]
    while work:
        advanced = False
        for child in work[-1]:
            seen = state.get(child)
            if seen == 1:
                return [*path[path.index(child) :], child]
            if seen is None:
                state[child] = 1
                path.append(child)
                work.append(iter(successors.get(child, ())))
                advanced = True
                break
        if not advanced:
            state[path.pop()] = 2
            work.pop()
    return None


def solve_dense(matrix: list[list[float]], right: list[float]) -> list[float] | None:
    """x with matrix x = right, by Gaussian elimination with partial pivoting; None when singular.
    For the small systems of one loop (at most MAX_LOOP_TIERS unknowns)."""
    size = len(right)
    rows = [[*matrix[i], right[i]] for i in range(size)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(rows[r][col]))
        if abs(rows[pivot][col]) < 1e-12:
            return None
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for row in range(size):
            if row != col and rows[row][col] != 0.0:
                factor = rows[row][col] / rows[col][col]
                pivot_row, this_row = rows[col], rows[row]
                for k in range(col, size + 1):
                    this_row[k] -= factor * pivot_row[k]
    return [rows[i][size] / rows[i][i] for i in range(size)]


def expected_visits(
    entry: Node, calls: Mapping[Node, Mapping[Node, float]]
) -> dict[Node, float] | None:
    """Expected visits to every node reachable from `entry` by one request entering there, where
    `calls[a][b]` is the expected calls from one visit of a to b: the solution of v = e + v M,
    one loop (strongly connected component) at a time in call order. None when some loop makes
    the visits infinite (spectral radius >= 1). Raises ValueError for a loop of more than
    MAX_LOOP_TIERS nodes."""
    positive = {a: [b for b, n in targets.items() if n > 0] for a, targets in calls.items()}
    found = reachable(entry, positive)
    inflow: dict[Node, float] = dict.fromkeys(found, 0.0)
    inflow[entry] = 1.0
    visits: dict[Node, float] = {}
    for component in strongly_connected(found, positive):
        members = set(component)
        if len(component) == 1 and component[0] not in positive.get(component[0], ()):
            values = [inflow[component[0]]]
        else:
            if len(component) > MAX_LOOP_TIERS:
                raise ValueError(f"a loop of {len(component)} tiers; at most {MAX_LOOP_TIERS}")
            solved = _solve_loop(component, members, calls, inflow)
            if solved is None:
                return None
            values = solved
        for node, value in zip(component, values, strict=True):
            visits[node] = value
            for target, expected in calls.get(node, {}).items():
                if target not in members and expected > 0:
                    inflow[target] += value * expected
    return visits


def _solve_loop(
    component: list[Node],
    members: set[Node],
    calls: Mapping[Node, Mapping[Node, float]],
    inflow: Mapping[Node, float],
) -> list[float] | None:
    """Visits inside one loop: (I - M_loop)^T v = inflow. Finite exactly when (I - M_loop) x = 1
    has a positive solution (Collatz-Wielandt for the non-negative M_loop)."""
    position = {node: i for i, node in enumerate(component)}
    size = len(component)
    system = [[1.0 if i == j else 0.0 for j in range(size)] for i in range(size)]
    for node in component:
        for target, expected in calls.get(node, {}).items():
            if target in members:
                system[position[node]][position[target]] -= expected
    check = solve_dense(system, [1.0] * size)
    if check is None or not all(0 < x < 1e12 for x in check):
        return None
    transposed = [[system[j][i] for j in range(size)] for i in range(size)]
    return solve_dense(transposed, [inflow[node] for node in component])


def reachable(entry: Node, successors: Mapping[Node, Iterable[Node]]) -> list[Node]:
    """`entry` and every node its successors lead to, in the order first found."""
    seen = {entry}
    order = [entry]
    stack = [entry]
    while stack:
        for child in successors.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                order.append(child)
                stack.append(child)
    return order
