"""The README's configuration table, generated from the settings class (``jobq settings --markdown``)."""

from __future__ import annotations

from worker.settings import JobqSettings, env_name


def settings_table_markdown() -> str:
    """The configuration table of the README, generated from the settings class."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, info in JobqSettings.model_fields.items():
        default = info.get_default(call_default_factory=True)
        if isinstance(default, list):
            shown = ",".join(default) if default else "(empty)"
        elif default is None:
            shown = "(unset)"
        else:
            shown = str(default)
        rows.append(f"| `{env_name(name)}` | `{shown}` | {info.description} |")
    return "\n".join(rows)
