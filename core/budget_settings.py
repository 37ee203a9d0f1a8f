"""The Budget settings as a person sets them (total, per-cluster mode, sliders or a
min/max/override table, pick, depth options) and the rules that turn them into
:class:`core.selection.SelectParams`.

The app's Budget page fills a :class:`BudgetSettings` from its widgets; the rules live here,
not in the page: tokens have no per-cluster sliders, an own noise budget is a count, the
sliders' sum is the total, a row budget never exceeds the map, a score column is used only by
the picks that read one, and leakage needs a reference set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.selection import DEFAULT_CLUSTER_CHOICE, DEFAULT_PICK, DEFAULT_POLICY, DEFAULT_SOFT_NOISE, SelectParams

PER_CLUSTER_MODES = ("Automatic", "Sliders", "Table")
NOISE_CHOICES = ("include", "exclude", "own budget")


def default_budget(n: int) -> int:
    """About a tenth of ``n`` rows, rounded to one significant digit (all rows up to 10; at least 1)."""
    if n <= 10:
        return max(1, n)
    b = n / 10
    step = 10 ** max(0, len(str(int(b))) - 1)
    return int(min(n, max(1, round(b / step) * step)))


@dataclass(frozen=True)
class BudgetSettings:
    """The Budget page's values.  ``budget`` is in rows (None: :func:`default_budget`);
    ``token_budget`` is used with ``unit='tokens'``; ``sliders`` maps cluster id -> rows
    (mode Sliders); ``table`` maps cluster id -> (min, max, override), each None for no
    constraint (mode Table).  Paths are as the caller confined them."""

    budget: int | None = None
    unit: str = "rows"
    mode: str = "Automatic"
    policy: str = DEFAULT_POLICY
    noise: str = "include"
    noise_budget: int = 0
    min_per_cluster: int = 0
    max_per_cluster: int = 0  # 0: no cap
    sliders: dict[int, int] = field(default_factory=dict)
    table: dict[int, tuple[int | None, int | None, int | None]] = field(default_factory=dict)
    pick: str = DEFAULT_PICK
    score_column: str | None = None
    relevance: str | None = None  # pick='mmr': a score column, or None for the similarity to the centre
    ascending: bool = False
    seed: int = 0
    dedup: str = "none"
    near_dup_threshold: float = 0.95
    mmr_lambda: float = 0.5
    soft_noise: float | None = DEFAULT_SOFT_NOISE  # None: off
    tokenizer: str = "model"
    token_budget: int | None = None
    strata_column: str | None = None
    reference_path: str | None = None
    reference_text: str = "text"
    coverage_distance: float = 0.3
    leakage: str = "warn"
    leakage_threshold: float = 0.95
    target_path: str | None = None
    target_text: str = "text"
    cluster_choice: str = DEFAULT_CLUSTER_CHOICE

    def effective_mode(self) -> str:
        """The per-cluster mode in force: token budgets have no sliders (Automatic instead)."""
        return "Automatic" if self.unit == "tokens" and self.mode == "Sliders" else self.mode

    def noise_param(self) -> str | int:
        """SelectParams.noise: 'include', 'exclude', or the own noise budget (a count)."""
        return int(self.noise_budget) if self.noise == "own budget" else self.noise

    def _per_cluster(self, budget: int) -> tuple[int, dict[int, int], dict]:
        """(total, overrides, bounds) of the per-cluster mode: the sliders' sum (plus an own
        noise budget) is the total; the table gives overrides and (min, max) bounds."""
        mode, noise = self.effective_mode(), self.noise_param()
        overrides: dict[int, int] = {}
        bounds: dict[int, tuple[int | None, int | None]] = {}
        if mode == "Sliders" and self.sliders:
            overrides = {int(c): int(v) for c, v in self.sliders.items()}
            own = int(noise) if isinstance(noise, int) and -1 not in overrides else 0
            budget = max(1, sum(overrides.values()) + own)
        elif mode == "Table" and self.table:
            for c, (lo, hi, ov) in self.table.items():
                if ov is not None:
                    overrides[int(c)] = int(ov)
                if lo is not None or hi is not None:
                    bounds[int(c)] = (None if lo is None else int(lo), None if hi is None else int(hi))
        return budget, overrides, bounds

    def select_params(self, n_rows: int, pins=(), bans=()) -> SelectParams:
        """The SelectParams of these settings on a map of ``n_rows`` rows, with ``pins`` and
        ``bans`` (row ids).  Raises SieveError (core.selection) on values it refuses."""
        budget = max(1, int(self.token_budget or 1)) if self.unit == "tokens" else \
            int(self.budget if self.budget is not None else default_budget(n_rows))
        budget, overrides, bounds = self._per_cluster(budget)
        score = {"score": self.score_column, "mmr": self.relevance}.get(self.pick)
        reference = (self.reference_path or "").strip() or None
        return SelectParams(
            budget=min(budget, n_rows) if self.unit == "rows" else budget, policy=self.policy, pick=self.pick,
            seed=int(self.seed), noise=self.noise_param(), min_per_cluster=int(self.min_per_cluster or 0),
            max_per_cluster=int(self.max_per_cluster or 0) or None, overrides=overrides, bounds=bounds,
            score_column=score or None, score_ascending=bool(self.ascending),
            pins=tuple(sorted(int(i) for i in pins)), bans=tuple(sorted(int(i) for i in bans)),
            dedup=self.dedup, near_dup_threshold=float(self.near_dup_threshold), mmr_lambda=float(self.mmr_lambda),
            soft_noise_threshold=None if self.soft_noise is None else float(self.soft_noise),
            budget_unit=self.unit, tokenizer=self.tokenizer, strata_column=self.strata_column or None,
            reference_path=reference, reference_text=self.reference_text or "text",
            coverage_distance=float(self.coverage_distance), leakage=self.leakage if reference else "off",
            leakage_threshold=float(self.leakage_threshold),
            target_path=(self.target_path or "").strip() or None, target_text=self.target_text or "text",
            cluster_choice=self.cluster_choice,
        )
