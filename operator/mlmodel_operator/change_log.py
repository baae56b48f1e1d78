"""What a reconcile wrote, and why, as one log line and as the drift-repair counts (pure)."""

from __future__ import annotations

from dataclasses import dataclass

CREATED, UPDATED, REPAIRED, DELETED = "created", "updated for the new spec", "drift repaired", "deleted"


@dataclass(frozen=True)
class Changes:
    why: dict[str, str]  # child kind -> CREATED | UPDATED | REPAIRED | DELETED

    def __bool__(self) -> bool:
        return bool(self.why)

    @property
    def repaired(self) -> list[str]:
        """The kinds someone (or something) changed behind the operator's back, now put back."""
        return sorted(kind for kind, why in self.why.items() if why == REPAIRED)

    def line(self, namespace: str, name: str, generation: int) -> str:
        parts = ", ".join(f"{kind} {why}" for kind, why in sorted(self.why.items()))
        return f"reconciled {namespace}/{name} (generation {generation}): {parts}"


def changes_of(
    applied: list[dict], deleted: list[tuple[str, str]], live: dict[str, dict], spec_changed: bool
) -> Changes:
    """`applied` and `deleted` as a plan has them; `live` the children before; `spec_changed`: this generation
    of the MLModel had not been reconciled yet (a create, a spec edit, or the first run after a restart)."""
    why = {
        obj["kind"]: CREATED if obj["kind"] not in live else UPDATED if spec_changed else REPAIRED for obj in applied
    }
    why.update({kind: DELETED for kind, _name in deleted})
    return Changes(why)
