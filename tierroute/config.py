"""Settings: one typed object, loaded once per process, failing fast on bad values."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tierroute.domain.budget import BudgetPolicy
from tierroute.domain.errors import ConfigurationError
from tierroute.domain.tiers import TierTable, load_tier_table, use_tier_table


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "tierroute"


class Settings(BaseSettings):
    """Every knob tierroute reads, from the environment (prefix TIERROUTE_)."""

    model_config = SettingsConfigDict(env_prefix="TIERROUTE_", extra="ignore")

    # Unset means the embedded default: Postgres and Redis started from pip packages.
    database_url: str | None = None
    broker_url: str | None = None
    # Redis for the shared rate limiter when the broker is not Redis (e.g. RabbitMQ);
    # unset, the limiter uses the broker's Redis, or is off with another broker.
    redis_url: str | None = None
    data_dir: Path = Field(default_factory=_default_data_dir)

    # The SDK's own variable names, read without our prefix.
    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY")
    )
    anthropic_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_BASE_URL")
    )

    # Unset: `hybrid` with an API key (the local model decides when it is sure, Haiku
    # otherwise, as the design has it), `local` without one (the simulator's Haiku
    # has nothing to add).
    classifier: str = "local"
    default_tier: str = "sonnet"
    confidence_threshold: float = 0.7
    tiers_file: Path | None = None
    # Routing by score (local and hybrid classifiers). A score in [0, 1] below
    # haiku_max_score goes to the cheapest tier, from opus_min_score to the top tier,
    # in between to the middle one. Unset: the calibrated values (`tierroute calibrate`,
    # router_dir/thresholds.json), else the model artifact's own.
    haiku_max_score: float | None = None
    opus_min_score: float | None = None
    # The hybrid classifier asks the llm classifier when the local one is less sure;
    # docs/routing.md ("The classifiers") gives how often it asks at this default.
    hybrid_confidence: float = 0.75
    # Trained versions and calibrated thresholds; unset means data_dir/router.
    router_dir: Path | None = None

    # Per-call timeouts (seconds). The classifier must be quick or fall back.
    request_timeout_s: float = 120.0
    classify_timeout_s: float = 15.0
    # Attempts of the complete task before a job is dead; the task owns retries.
    max_attempts: int = 6
    # Redis hands an unacknowledged message to another worker after this long. It
    # must outlast every lease and every retry countdown (checked below), or a
    # redelivered message would meet a live lease and be dropped.
    visibility_timeout_s: float = 3600.0
    # An unfinished job untouched this long has lost its message; the classify
    # workers send it again (tierroute/pipeline/recovery.py), on every broker. Unset:
    # 1.25 × visibility_timeout_s, when Redis has redelivered whatever it still holds.
    stale_after_s: float | None = Field(default=None, gt=0)
    retry_backoff_base_s: float = 2.0
    retry_backoff_max_s: float = 120.0
    default_max_tokens: int = 1024
    # A process opens up to twice this many Postgres connections (store.engine.make_engine).
    # Tasks hold a connection only around short transactions, never during a model
    # call, so a worker with hundreds of threads needs tens of connections, not hundreds.
    db_pool_size: int = 10
    # Server-side prepared statements: psycopg prepares a statement run 5 times on a
    # connection, which saves parsing on the hot path. Turn off behind PgBouncer in
    # transaction mode, where a connection's statements land on changing server
    # connections (docs/connections.md).
    db_prepared_statements: bool = True
    # The Postgres connections `tierroute up` lets its processes open in all; their
    # pools are split from it (tierroute/devstack/stack.py). 40 lets two stacks share a default
    # Postgres (max_connections 100) with room for psql and migrations.
    stack_db_connections: int = Field(default=40, ge=8)
    # Tasks Flower keeps in memory: Flower's own default of 100,000 grows to most of a
    # gigabyte on big batches (issue 16). `tierroute up` and compose pass it.
    flower_max_tasks: int = Field(default=10_000, ge=1)
    # Classify workers run the feeder: it keeps up to feeder_max_depth messages in
    # the classify queue, sending feeder_chunk at a time.
    feeder: bool = True
    feeder_max_depth: int = 5000
    # Small chunks: rows stay locked while their messages are sent.
    feeder_chunk: int = 250
    # Job ids per classify message the feeder sends, when the classifier runs in
    # process: a chunk is routed with one read and one write (tierroute/pipeline/classify_chunk.py).
    classify_batch_size: int = 50
    # Job ids per tier message when a classify chunk hands its jobs on: one Celery
    # message per job was most of a tier worker's CPU (bench/README.md, "Why the stack is
    # shaped this way"). 1: a `complete` message per job.
    complete_batch_size: int = 10
    # Open connections per SDK client (a tier worker spreads its calls over
    # worker/call_loop.ASYNC_CLIENTS of them); above the calls it keeps in flight.
    http_max_connections: int = 2000
    # Per-model RPM/ITPM/OTPM limits and 429 cooldowns shared by all workers through
    # the broker's Redis (tierroute/llm/ratelimit.py). Unset: on when the broker is Redis.
    rate_limits: bool | None = None
    # Seconds of refill a bucket may save up (at least one request's worth). 0 paces
    # calls evenly, so no 60 s window exceeds a limit; 60 allows a minute's burst.
    rate_limit_burst_s: float = 0.0
    # JSON, by tier name or model: {"haiku": {"rpm": 50, "itpm": 50000, "otpm": 10000}}.
    # Without an entry a model gets the tier table's limits, except against the
    # simulator, which has no limits of its own to protect.
    rate_limit_overrides: dict[str, dict[str, int]] = Field(default_factory=dict)
    # Celery's INFO line per task received and succeeded; off keeps the log readable.
    log_each_task: bool = False
    # The most all keys together may spend per UTC day (None: no global limit); a key's
    # own limit is api_keys.daily_budget_usd. A job that would exceed one is rejected,
    # or with policy "downgrade" moved to the dearest cheaper tier that fits.
    daily_budget_usd: float | None = Field(default=None, gt=0)
    budget_policy: BudgetPolicy = BudgetPolicy.REJECT
    # Batch mode (pipeline/message_batches): how often the classify workers' beat polls the
    # Message Batches, what an errored, expired or cancelled request does ("live":
    # run it live on its tier; "fail": fail the job with the reason), and where a
    # batch is split (Anthropic's limits: 100,000 requests or 256 MB per batch).
    batch_api_poll_s: float = Field(default=30.0, gt=0)
    batch_api_failure_policy: Literal["live", "fail"] = "live"
    batch_api_max_requests: int = Field(default=100_000, ge=1, le=100_000)
    batch_api_max_bytes: int = Field(default=256_000_000, ge=1024, le=256_000_000)
    # Prompt caching (tierroute/llm/caching.py): while one job writes a cacheable prefix,
    # the others with the same prefix retry after about cache_prime_wait_s; the
    # writer's lock lapses after cache_prime_lock_s should it die.
    cache_prime_wait_s: float = Field(default=0.5, gt=0)
    cache_prime_lock_s: float = Field(default=30.0, gt=0)
    # /metrics shows every key's spend: it asks for `Authorization: Bearer` with this
    # token, or with any active API key while it is unset (api/metrics_auth.py).
    metrics_token: SecretStr | None = None
    # Seconds an API process reuses the Postgres aggregates of /metrics, so scrapers
    # cost one table pass per window however many they are; 0 reads on every scrape.
    metrics_cache_s: float = Field(default=10.0, ge=0)
    # Retention (tierroute/store/retention.py): finished jobs and their calls older than
    # this many days are pruned by the classify worker's beat, once an hour, after
    # being archived as gzip JSONL under retention_archive_dir when it is set. Unset:
    # kept forever. The rollups keep every pruned call's sums either way.
    retention_days: float | None = Field(default=None, gt=0)
    retention_archive_dir: Path | None = None
    # Shadow judging (tierroute/pipeline/shadow.py): this share of finished jobs (by a hash of
    # the job id; 0 = off) is also answered on the neighbouring tier, and a judge
    # (default: the top tier's model) says whether the cheaper answer is as good.
    # Their calls, the learning cost, stay within shadow_max_share of the day's
    # completion spend, and within the key's and the global budgets.
    shadow_rate: float = Field(default=0.0, ge=0, le=1)
    judge_model: str | None = None
    shadow_max_share: float = Field(default=0.2, ge=0)

    @field_validator("confidence_threshold", "hybrid_confidence")
    @classmethod
    def _threshold_in_unit_interval(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError("must be within [0, 1]")
        return value

    @field_validator("haiku_max_score", "opus_min_score")
    @classmethod
    def _score_in_unit_interval(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError("must be within [0, 1]")
        return value

    @model_validator(mode="after")
    def _score_thresholds_ordered(self) -> Settings:
        low, high = self.haiku_max_score, self.opus_min_score
        if low is not None and high is not None and low > high:
            raise ValueError(f"haiku_max_score ({low:g}) must not exceed opus_min_score ({high:g})")
        return self

    @property
    def router_path(self) -> Path:
        """Where trained router versions and calibrated thresholds live."""
        return self.router_dir or self.data_dir / "router"

    @field_validator(
        "max_attempts",
        "default_max_tokens",
        "db_pool_size",
        "feeder_max_depth",
        "feeder_chunk",
        "classify_batch_size",
        "complete_batch_size",
    )
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be >= 1")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty value (compose's `${TIERROUTE_METRICS_TOKEN:-}`) means unset.
        if value is None or value.get_secret_value() == "":
            return None
        if len(value.get_secret_value()) < MIN_METRICS_TOKEN_CHARS:
            raise ValueError(f"must be at least {MIN_METRICS_TOKEN_CHARS} characters")
        return value

    @field_validator("rate_limit_burst_s")
    @classmethod
    def _positive_burst(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must be >= 0")
        return value

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str | None) -> str | None:
        # Accept the URLs people paste (postgres://, postgresql://) and pin psycopg 3.
        if value is None or value == "":
            return None
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        if not value.startswith("postgresql+psycopg://"):
            raise ValueError("must be a postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _visibility_outlasts_leases_and_countdowns(self) -> Settings:
        longest_lease = max(self.request_timeout_s, self.classify_timeout_s) + LEASE_MARGIN_S
        if longest_lease >= self.visibility_timeout_s:
            raise ValueError(
                f"visibility_timeout_s ({self.visibility_timeout_s:g}) must exceed the longest "
                f"lease, request_timeout_s + {LEASE_MARGIN_S:g} ({longest_lease:g})"
            )
        if self.retry_backoff_max_s >= self.visibility_timeout_s:
            raise ValueError(
                f"retry_backoff_max_s ({self.retry_backoff_max_s:g}) must be below "
                f"visibility_timeout_s ({self.visibility_timeout_s:g})"
            )
        if self.stale_after_s is not None and self.stale_after_s <= self.retry_backoff_max_s:
            # Else a job waiting out a retry countdown would be sent again before it.
            raise ValueError(
                f"stale_after_s ({self.stale_after_s:g}) must exceed "
                f"retry_backoff_max_s ({self.retry_backoff_max_s:g})"
            )
        return self

    @property
    def stale_s(self) -> float:
        """After how long an unfinished, untouched job counts as having lost its message."""
        return self.stale_after_s or self.visibility_timeout_s * 1.25

    @model_validator(mode="after")
    def _known_classifier_and_tier(self) -> Settings:

        if "classifier" not in self.model_fields_set and self.anthropic_api_key is not None:
            self.classifier = "hybrid"

        table = load_tier_table(self.tiers_file)
        if self.default_tier not in table.names:
            raise ValueError(f"default_tier {self.default_tier!r} is not one of {table.names}")
        if self.classifier not in KNOWN_CLASSIFIERS:
            raise ValueError(f"classifier {self.classifier!r} is not one of {KNOWN_CLASSIFIERS}")
        return self

    @model_validator(mode="after")
    def _rate_limits_have_a_redis(self) -> Settings:
        # An unset broker means the embedded Redis, which the limiter can use.
        if self.rate_limits and self.broker_url and not self.limiter_redis_url:
            raise ValueError(
                "rate_limits needs Redis: the broker is not Redis, so set TIERROUTE_REDIS_URL"
            )
        return self

    @property
    def broker_is_redis(self) -> bool:
        """Whether the broker is Redis (its queues live in memory there)."""
        return _is_redis(self.broker_url)

    @property
    def limiter_redis_url(self) -> str | None:
        """The Redis that holds the shared rate limits: redis_url, else a Redis broker."""
        if self.redis_url:
            return self.redis_url
        return self.broker_url if self.broker_is_redis else None

    @property
    def rate_limits_enabled(self) -> bool:
        """Shared rate limits are on when asked for, or by default when there is a Redis."""
        if self.rate_limits is not None:
            return self.rate_limits
        return self.limiter_redis_url is not None

    @property
    def simulated(self) -> bool:
        """No API key means every model call goes to the project's simulator."""
        return self.anthropic_api_key is None


def _is_redis(url: str | None) -> bool:
    return (url or "").startswith(("redis://", "rediss://", "unix://"))


KNOWN_CLASSIFIERS = ("llm", "local", "hybrid")
# A metrics token shorter than this could be guessed (`openssl rand -hex 16` gives 32).
MIN_METRICS_TOKEN_CHARS = 16
# A lease outlives the longest call a task can make (the SDK timeout) by this much,
# so it only expires when the task that took it is gone.
LEASE_MARGIN_S = 30.0


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    try:
        return Settings()
    except ValueError as exc:
        raise ConfigurationError(f"invalid settings: {exc}") from exc


@cache
def default_tier_table() -> TierTable:
    """The table for this process: TIERROUTE_TIERS_FILE if set, else the bundled one."""
    return load_tier_table(get_settings().tiers_file)


use_tier_table(default_tier_table)
