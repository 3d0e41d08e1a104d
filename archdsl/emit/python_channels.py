"""The numbers of a generated block class as expressions over its arguments: a channel
count (``inner * 2``, ``inner // 4``) or a slice bound that holds in every block the
class builds, found from the blocks' own values; what no expression gives becomes an
argument of its own (generated Python, archdsl.emit.python)."""

from __future__ import annotations

from dataclasses import dataclass

Args = dict[str, int]
# the arguments an expression may read, in the order tried
_READ = ("in_channels", "out_channels", "inner", "first", "se_channels")


@dataclass(frozen=True)
class Expr:
    """``name * mul // div``; ``name`` empty: the constant ``mul``."""

    name: str
    mul: int = 1
    div: int = 1

    def value(self, args: Args) -> int:
        return self.mul if not self.name else args[self.name] * self.mul // self.div

    def text(self, owner: str = "") -> str:
        """The expression; ``owner``: where the argument is kept (``self.``)."""
        if not self.name:
            return str(self.mul)
        name = owner + self.name
        out = name if self.mul == 1 else f"{name} * {self.mul}"
        return out if self.div == 1 else f"{out} // {self.div}"


def holds(expr: Expr, values: list[int], members: list[Args]) -> bool:
    return all(expr.value(a) == v for a, v in zip(members, values, strict=True))


def solve(values: list[int], members: list[Args]) -> Expr | None:
    """The simplest expression over the members' arguments that gives each member's
    value: an argument, a multiple or a fraction of one, else the constant all share."""
    names = [k for k in _READ if k in members[0]]
    tries = [Expr(n) for n in names]
    tries += [Expr(n, k) for n in names for k in range(2, 65)]
    tries += [Expr(n, 1, k) for n in names for k in range(2, 65)]
    tries += [Expr(n, p, q) for n in names for q in range(2, 17) for p in range(2, q)]
    found = next((e for e in tries if holds(e, values, members)), None)
    if found is None and len(set(values)) == 1:
        return Expr("", values[0])
    return found


def attr_path(local: str) -> str:
    """A module's attribute path in Python: ``convs.0`` is ``convs[0]``."""
    return "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in local.split(".")).lstrip(".")


def containers(local: str, made: set[str]) -> list[str]:
    """The lines that make the containers a dotted module sits in (``nn.Module()``, or an
    ``nn.ModuleList`` where its items are numbered), each once (``made``)."""
    parts, lines = local.split("."), []
    for i in range(1, len(parts)):
        path = ".".join(parts[:i])
        if path in made:
            continue
        made.add(path)
        box = "nn.ModuleList()" if parts[i].isdigit() else "nn.Module()"
        lines.append(assign(path, box))
    return lines


def assign(local: str, value: str) -> str:
    """``self.a.b = value``, or ``self.a.append(value)`` for a numbered item."""
    head, _, last = local.rpartition(".")
    if last.isdigit():
        return f"self.{attr_path(head)}.append({value})"
    return f"self.{attr_path(local)} = {value}"
