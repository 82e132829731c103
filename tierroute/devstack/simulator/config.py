"""Settings of the simulated Messages API: latency per model and injectable faults."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Status codes a fault_sequence entry may name. 0 is not HTTP: it means "hang for
# timeout_sleep_s, then answer", i.e. a client-side timeout.
TIMEOUT_CODE = 0
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
SEQUENCE_CODES = frozenset({TIMEOUT_CODE, 200, *ERROR_TYPES})

# Fields /_sim/config may change at runtime. The tier table is read once at startup.
RUNTIME_FIELDS = frozenset(
    {
        "latency_ms",
        "default_latency_ms",
        "latency_jitter",
        "latency_per_output_token_ms",
        "seed",
        "fault_rate_429",
        "retry_after_s",
        "fault_rate_529",
        "fault_rate_500",
        "fault_rate_timeout",
        "timeout_sleep_s",
        "fault_rate_400",
        "fault_models",
        "fault_sequence",
        "classifier_fault",
        "answer_fault",
        "trickle_s",
        "batch_processing_s",
        "batch_result_sequence",
        "batch_create_fault",
        "judge_rule_words",
    }
)


class SimulatorConfig(BaseSettings):
    """Every knob of the simulator, from the environment (prefix TIERROUTE_SIM_)."""

    # Dict and list fields are read from the environment as JSON, e.g.
    # TIERROUTE_SIM_LATENCY_MS='{"claude-opus-4-6": 2000}'.
    model_config = SettingsConfigDict(env_prefix="TIERROUTE_SIM_", extra="ignore")

    # Latency of a successful answer, in milliseconds, per model id.
    latency_ms: dict[str, float] = Field(default_factory=dict)
    default_latency_ms: float = 0.0
    # Latency is scaled by a seeded factor in [1 - jitter, 1 + jitter].
    latency_jitter: float = 0.0
    # Extra latency per generated token, so long answers take longer (0 = off).
    latency_per_output_token_ms: float = 0.0
    # Seeds the fault and jitter generators; same seed + same request order = same run.
    seed: int = 0

    # Probabilities per request, checked in this order; their sum must be <= 1.
    fault_rate_429: float = 0.0
    retry_after_s: float | None = 1.0
    fault_rate_529: float = 0.0
    fault_rate_500: float = 0.0
    fault_rate_timeout: float = 0.0
    timeout_sleep_s: float = 30.0
    fault_rate_400: float = 0.0
    # Models the faults apply to; None means every model.
    fault_models: list[str] | None = None
    # Status codes for the next requests, in order, before the rates apply again.
    # 200 = answer normally, 0 = hang for timeout_sleep_s.
    fault_sequence: list[int] = Field(default_factory=list)
    # Misbehaviour of structured-output (classifier) requests.
    classifier_fault: Literal["malformed", "refusal"] | None = None
    # Misbehaviour of plain answers: "nul_byte" puts a NUL character in the text, valid
    # JSON that Postgres refuses to store in a text column.
    answer_fault: Literal["nul_byte"] | None = None
    # Seconds over which a plain JSON answer's body is sent, in pieces TRICKLE_GAP_S
    # apart, once its headers are out: each read well within a client's read timeout,
    # the whole past it, as a slow proxy might (the SDK's timeout is per read).
    trickle_s: float = Field(default=0.0, ge=0)
    # Message Batches (simulator/batches.py): seconds from creation until a batch has
    # ended, and the outcome of the next batch requests, in order, before all succeed
    # again (e.g. TIERROUTE_SIM_BATCH_RESULT_SEQUENCE='["errored", "expired"]').
    batch_processing_s: float = Field(default=1.0, ge=0)
    batch_result_sequence: list[Literal["succeeded", "errored", "expired", "canceled"]] = Field(
        default_factory=list
    )
    # "hang_after_accept": a create is accepted (its batch runs and bills), and its
    # answer waits timeout_sleep_s, so a client with a shorter timeout never sees it.
    batch_create_fault: Literal["hang_after_accept"] | None = None
    # Shadow judging's hidden rule (simulator/judge.py): the judge finds the cheaper
    # answer worse exactly when the prompt names one of these words; empty: the rubric.
    judge_rule_words: list[str] = Field(default_factory=list)

    # The tier table that says which model accepts which shapes. Defaults to the
    # app's own override (TIERROUTE_TIERS_FILE) so both sides agree, else the bundled one.
    tiers_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "tiers_file", "TIERROUTE_SIM_TIERS_FILE", "TIERROUTE_TIERS_FILE"
        ),
    )

    @field_validator(
        "fault_rate_429",
        "fault_rate_529",
        "fault_rate_500",
        "fault_rate_timeout",
        "fault_rate_400",
        "latency_jitter",
    )
    @classmethod
    def _unit_interval(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError("must be within [0, 1]")
        return value

    @field_validator(
        "default_latency_ms", "latency_per_output_token_ms", "timeout_sleep_s", "retry_after_s"
    )
    @classmethod
    def _non_negative(cls, value: float | None) -> float | None:
        if value is not None and value < 0:
            raise ValueError("must be >= 0")
        return value

    @field_validator("latency_ms")
    @classmethod
    def _non_negative_latencies(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [model for model, ms in value.items() if ms < 0]
        if bad:
            raise ValueError(f"latency must be >= 0 for {', '.join(bad)}")
        return value

    @field_validator("fault_sequence")
    @classmethod
    def _known_codes(cls, value: list[int]) -> list[int]:
        unknown = sorted({code for code in value if code not in SEQUENCE_CODES})
        if unknown:
            known = ", ".join(str(c) for c in sorted(SEQUENCE_CODES))
            raise ValueError(f"unknown status codes {unknown}; use {known}")
        return value

    @model_validator(mode="after")
    def _rates_sum_to_at_most_one(self) -> SimulatorConfig:
        if self.total_fault_rate > 1.0 + 1e-9:
            raise ValueError("fault rates must sum to at most 1")
        return self

    @property
    def total_fault_rate(self) -> float:
        """Probability that a request gets some fault."""
        return (
            self.fault_rate_429
            + self.fault_rate_529
            + self.fault_rate_500
            + self.fault_rate_timeout
            + self.fault_rate_400
        )

    def latency_for(self, model: str) -> float:
        """Base latency in milliseconds for `model`, before jitter."""
        return self.latency_ms.get(model, self.default_latency_ms)

    def faults_apply_to(self, model: str) -> bool:
        """Whether injected faults may hit requests for `model`."""
        return self.fault_models is None or model in self.fault_models

    def updated(self, changes: dict[str, Any]) -> SimulatorConfig:
        """A validated copy with `changes` applied; raises ValueError on unknown fields."""
        unknown = sorted(set(changes) - RUNTIME_FIELDS)
        if unknown:
            raise ValueError(
                f"cannot change {', '.join(unknown)} at runtime; "
                f"changeable: {', '.join(sorted(RUNTIME_FIELDS))}"
            )
        # Passing every field as an init argument keeps the environment out of it:
        # init arguments take precedence over env vars in pydantic-settings.
        return SimulatorConfig(**{**self.model_dump(), **changes})
