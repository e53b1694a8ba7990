"""The entity's incident settings (the `incidents:` section of nis2kube.yaml).

These are facts about the entity, not about an incident: its time zone, whether it is a trust service
provider (shorter notification deadline), its turnover (IR 2024/2690 Art. 3(1)(a) threshold), the report
profile (country/language templates) and the intake thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nis2kube.config import Config, ConfigError

# Falco's priority names, lowest to highest; Alertmanager `severity` labels are mapped onto this scale.
PRIORITIES = ("debug", "informational", "notice", "warning", "error", "critical", "alert", "emergency")
_PRIORITY_ALIASES = {"info": "informational", "information": "informational", "warn": "warning",
                     "err": "error", "crit": "critical", "high": "error", "page": "critical",
                     "none": "notice", "low": "notice", "medium": "warning", "emerg": "emergency"}


def canonical_priority(name: str) -> str | None:
    """The Falco scale name for a priority or severity word ('Info', 'page', ...), None when unknown."""
    key = name.strip().lower()
    key = _PRIORITY_ALIASES.get(key, key)
    return key if key in PRIORITIES else None


def priority_rank(name: str) -> int:
    """Position on the Falco priority scale; unknown names rank as 'notice' so they are kept, not paged."""
    return PRIORITIES.index(canonical_priority(name) or "notice")


UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class EntityProfile:
    timezone: ZoneInfo = UTC_ZONE
    trust_service_provider: bool = False
    annual_turnover_eur: float | None = None
    report_profile: str = "eu"
    templates_dir: str | None = None
    entity_name: str = ""
    min_priority: str = "error"
    dedup_window_minutes: int = 60

    @property
    def tz_name(self) -> str:
        return self.timezone.key


def profile_from_config(cfg: Config) -> EntityProfile:
    raw = cfg.section("incidents")
    where = f"{cfg.path or 'config'}: incidents"
    try:
        tz = ZoneInfo(str(raw.get("timezone", "UTC")))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}.timezone: unknown time zone {raw.get('timezone')!r} "
                          "(use an IANA name such as Europe/Berlin)") from None
    turnover = raw.get("annual_turnover_eur")
    if turnover is not None and (not isinstance(turnover, int | float) or turnover < 0):
        raise ConfigError(f"{where}.annual_turnover_eur must be a non-negative number")
    min_priority = str(raw.get("min_priority", "error")).lower()
    if _PRIORITY_ALIASES.get(min_priority, min_priority) not in PRIORITIES:
        raise ConfigError(f"{where}.min_priority must be one of {', '.join(PRIORITIES)}")
    window = raw.get("dedup_window_minutes", 60)
    if not isinstance(window, int) or window < 0:
        raise ConfigError(f"{where}.dedup_window_minutes must be a non-negative integer")
    tsp = raw.get("trust_service_provider", False)
    if not isinstance(tsp, bool):
        raise ConfigError(f"{where}.trust_service_provider must be true or false")
    templates_dir = raw.get("templates_dir")
    return EntityProfile(
        timezone=tz, trust_service_provider=tsp, annual_turnover_eur=turnover,
        report_profile=str(raw.get("profile", "eu")),
        templates_dir=cfg.resolve_path(str(templates_dir)) if templates_dir else None,
        entity_name=str(raw.get("entity_name", "")), min_priority=min_priority, dedup_window_minutes=window)
