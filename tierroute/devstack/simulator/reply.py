"""Build the simulated `Message`: thinking, text or structured JSON, stop reason and usage."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from tierroute.devstack.simulator.config import SimulatorConfig
from tierroute.devstack.simulator.judge import is_judge_schema, judge_verdict
from tierroute.devstack.simulator.rubric import classify, prompt_to_classify
from tierroute.devstack.simulator.schema import SchemaGenerator
from tierroute.devstack.simulator.text import (
    answer_text,
    label,
    natural_answer_tokens,
    request_seed,
    signature,
    thinking_text,
    thinking_tokens_wanted,
)
from tierroute.devstack.simulator.tokens import (
    count_text_tokens,
    last_user_text,
    truncate_to_tokens,
)
from tierroute.devstack.simulator.validation import MessageRequest

CLASSIFIER_KEYS = frozenset({"tier", "confidence", "reasoning"})
# Words that identify tiers in string-typed `tier` fields (e.g. enum ["haiku", ...]).
_TIER_WORDS = {
    1: ("1", "haiku", "simple"),
    2: ("2", "sonnet", "moderate"),
    3: ("3", "opus", "complex"),
}


@dataclass
class Reply:
    """The model-side result of one request, before it is wrapped in a Message."""

    content: list[dict[str, Any]]
    stop_reason: str
    output_tokens: int
    thinking_tokens: int = 0
    stop_details: dict[str, Any] | None = None


def message_id(body: dict[str, Any]) -> str:
    """A deterministic id: the same request body always gets the same id."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return f"msg_sim_{digest[:24]}"


def is_classifier_schema(generator: SchemaGenerator) -> bool:
    """True when the schema is tierroute's classifier: tier, confidence and reasoning."""
    root = generator.resolve(generator.root)
    properties = root.get("properties")
    return isinstance(properties, dict) and set(properties) >= CLASSIFIER_KEYS


def _fit_tier(tier: int, schema: dict[str, Any]) -> Any:
    """The tier in whatever form the schema asks for: int, numeric string or tier name."""
    if "const" in schema:
        return schema["const"]
    options = schema.get("enum")
    if options:
        for option in options:
            text = str(option).lower()
            if option == tier or any(word in text for word in _TIER_WORDS[tier]):
                return option
        return options[min(tier, len(options)) - 1]
    if schema.get("type") == "string":
        return str(tier)
    low, high = schema.get("minimum", tier), schema.get("maximum", tier)
    return min(max(tier, low), high)


def _fit_confidence(confidence: float, schema: dict[str, Any]) -> Any:
    low, high = schema.get("minimum", 0.0), schema.get("maximum", 1.0)
    value = min(max(confidence, low), high)
    return round(value * 100) if schema.get("type") == "integer" and high > 1 else value


def _fit_text(text: str, schema: dict[str, Any]) -> str:
    high = schema.get("maxLength")
    return text[: int(high)] if high is not None else text


def structured_value(
    request: MessageRequest, seed: int, rule_words: list[str] | None = None
) -> Any:
    """A JSON value valid for the request's schema; the classifier and the judge get verdicts."""
    rule_words = rule_words or []
    assert request.schema is not None
    generator = SchemaGenerator(request.schema, random.Random(seed))
    value = generator.generate(request.schema)
    judge_properties: Any = generator.resolve(generator.root).get("properties")
    if is_judge_schema(judge_properties) and isinstance(value, dict):
        as_good, reasoning = judge_verdict(last_user_text(request.messages), rule_words)
        value["cheaper_as_good"] = as_good
        reasoning_schema = generator.resolve(judge_properties["reasoning"])
        value["reasoning"] = _fit_text(reasoning, reasoning_schema)
    elif is_classifier_schema(generator) and isinstance(value, dict):
        properties = generator.resolve(request.schema)["properties"]
        verdict = classify(prompt_to_classify(last_user_text(request.messages)))
        value["tier"] = _fit_tier(verdict.tier, generator.resolve(properties["tier"]))
        value["confidence"] = _fit_confidence(
            verdict.confidence, generator.resolve(properties["confidence"])
        )
        value["reasoning"] = _fit_text(
            verdict.reasoning, generator.resolve(properties["reasoning"])
        )
    return value


def _thinking_block(
    request: MessageRequest, input_tokens: int, rng: random.Random
) -> tuple[dict[str, Any] | None, int]:
    """The thinking block (or None) and the output tokens it used."""
    if request.thinking_type is None or request.max_tokens < 2:
        return None, 0
    wanted = thinking_tokens_wanted(request.model, input_tokens, request.effort, rng)
    if request.thinking_type == "enabled" and request.budget_tokens is not None:
        tokens = min(wanted, request.budget_tokens)
    else:
        # Adaptive thinking leaves at least half of max_tokens for the answer.
        tokens = min(wanted, request.max_tokens // 2)
    # Never more than the cap: an enabled budget is a hard limit.
    text = truncate_to_tokens(thinking_text(request.model, tokens, rng), tokens)
    tokens = count_text_tokens(text)
    # "omitted" hides the reasoning but it is still generated and billed.
    shown = "" if request.thinking_display == "omitted" else text
    return {"type": "thinking", "thinking": shown, "signature": signature(text)}, tokens


def _faulty_structured_reply(
    request: MessageRequest, fault: str, remaining: int
) -> tuple[str, str, dict[str, Any] | None]:
    """Text, stop reason and stop details for a misbehaving classifier."""
    if fault == "refusal":
        text = f"{label(request.model)} I can't help with that request."
        details = {
            "type": "refusal",
            "category": None,
            "explanation": "simulated refusal (classifier_fault=refusal)",
        }
        return truncate_to_tokens(text, remaining), "refusal", details
    text = f"{label(request.model)} I'd say tier 2, confidence fairly high. (not JSON)"
    return truncate_to_tokens(text, remaining), "end_turn", None


def _forced_tool_use(body: dict[str, Any], seed: int) -> dict[str, Any] | None:
    """A `tool_use` block when `tool_choice` forces a tool call, with input fitting its schema."""
    choice = body.get("tool_choice") or {}
    tools = [tool for tool in body.get("tools") or [] if isinstance(tool, dict)]
    if choice.get("type") not in ("any", "tool") or not tools:
        return None
    named = [tool for tool in tools if tool.get("name") == choice.get("name")]
    tool = named[0] if named else tools[0]
    schema = tool.get("input_schema") or {"type": "object"}
    value = SchemaGenerator(schema, random.Random(seed)).generate(schema)
    return {
        "type": "tool_use",
        "id": f"toolu_sim_{seed % 10**12:012d}",
        "name": tool.get("name", "tool"),
        "input": value if isinstance(value, dict) else {},
        "caller": {"type": "direct"},
    }


def build_reply(
    request: MessageRequest, body: dict[str, Any], config: SimulatorConfig, input_tokens: int
) -> Reply:
    """The deterministic answer to a validated request."""
    if request.max_tokens == 0:
        return Reply(content=[], stop_reason="max_tokens", output_tokens=0)
    seed = request_seed(request.model, body)
    rng = random.Random(seed)
    content: list[dict[str, Any]] = []
    thinking, thinking_tokens = _thinking_block(request, input_tokens, rng)
    if thinking is not None:
        content.append(thinking)
    remaining = request.max_tokens - thinking_tokens
    details: dict[str, Any] | None = None

    tool_use = _forced_tool_use(body, seed)
    if tool_use is not None:
        # A forced tool_choice: the model answers with a call of that tool, and stops.
        content.append(tool_use)
        tokens = count_text_tokens(json.dumps(tool_use["input"]))
        return Reply(content, "tool_use", thinking_tokens + tokens, thinking_tokens)
    fault = config.classifier_fault if config.faults_apply_to(request.model) else None
    if request.schema is not None and fault is not None:
        text, stop_reason, details = _faulty_structured_reply(request, fault, remaining)
    elif request.schema is not None:
        full = json.dumps(structured_value(request, seed, config.judge_rule_words))
        text = truncate_to_tokens(full, remaining)
        # Like the real API, a too-small max_tokens cuts the JSON off mid-document.
        stop_reason = "end_turn" if text == full else "max_tokens"
    else:
        natural = natural_answer_tokens(request.model, input_tokens, rng)
        full = answer_text(request.model, last_user_text(request.messages), natural, rng)
        text = truncate_to_tokens(full, remaining)
        stop_reason = "end_turn" if text == full else "max_tokens"
        if config.answer_fault == "nul_byte" and config.faults_apply_to(request.model):
            text = f"{text[: len(text) // 2]}\x00{text[len(text) // 2 :]}"
    # The spec requires `citations` on response text blocks (null when there are none).
    content.append({"type": "text", "text": text, "citations": None})
    output_tokens = thinking_tokens + (count_text_tokens(text) if text else 0)
    return Reply(
        content=content,
        stop_reason=stop_reason,
        output_tokens=output_tokens,
        thinking_tokens=thinking_tokens,
        stop_details=details,
    )


def message_body(
    request: MessageRequest, body: dict[str, Any], reply: Reply, input_tokens: int
) -> dict[str, Any]:
    """The `Message` JSON object, with every field the OpenAPI spec marks required."""
    return {
        "id": message_id(body),
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": reply.content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "stop_details": reply.stop_details,
        "container": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": reply.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens_details": {"thinking_tokens": reply.thinking_tokens},
            "server_tool_use": None,
            "service_tier": "standard",
            "inference_geo": None,
        },
    }
