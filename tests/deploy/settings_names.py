"""What the deploy files may name: the real JOBQ_* settings, and which of them are secrets."""

from __future__ import annotations

import re

from worker.settings import JobqSettings, env_name

__all__ = ["SECRETS", "SETTINGS", "parse_duration_s", "shutdown_grace_s"]

SETTINGS = frozenset(env_name(name) for name in JobqSettings.model_fields)
SECRETS = frozenset(
    env_name(name) for name, info in JobqSettings.model_fields.items() if "SecretStr" in str(info.annotation)
)


def shutdown_grace_s(environment: dict[str, str]) -> float:
    """JOBQ_SHUTDOWN_GRACE_S as ``environment`` sets it, else jobq's default."""
    value = environment.get(env_name("shutdown_grace_s"))
    default = JobqSettings.model_fields["shutdown_grace_s"].default
    return float(value) if value is not None else float(default)


_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}


def parse_duration_s(text: str) -> float:
    """A Compose/Go duration such as ``35s`` or ``1m30s``, in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)
