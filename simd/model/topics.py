"""MQTT topic rules (MQTT 3.1.1 and 5.0, section 4.7), checked where a scenario is validated so
that a publish that no broker can accept is a scenario error, not a run of failed publishes.

Topic names (what a publish goes to): at least one character [MQTT-4.7.3-1], no wildcard
characters [MQTT-4.7.1-1], no U+0000 [MQTT-4.7.3-2], at most 65,535 bytes of UTF-8
[MQTT-4.7.3-3]. Topic filters (what a subscription matches): the same, except that `#` may stand
alone as the last level [MQTT-4.7.1-2] and `+` alone in any level [MQTT-4.7.1-3].
"""

from __future__ import annotations

MAX_TOPIC_BYTES = 65_535


def topic_name_problem(topic: str) -> str | None:
    """Why `topic` cannot be published to, or None."""
    common = _common_problem(topic)
    if common:
        return common
    for ch in "+#":
        if ch in topic:
            return f"a topic to publish to has no wildcard ({ch!r} in {_short(topic)})"
    return None


def topic_filter_problem(topic: str) -> str | None:
    """Why `topic` is not a valid subscription filter, or None."""
    common = _common_problem(topic)
    if common:
        return common
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return f"'#' stands alone as the last level of a filter ({_short(topic)})"
        if "+" in level and level != "+":
            return f"'+' stands alone in a level of a filter ({_short(topic)})"
    return None


def _common_problem(topic: str) -> str | None:
    if not topic:
        return "a topic is at least one character"
    if "\x00" in topic:
        return f"a topic has no U+0000 character ({_short(topic)})"
    size = len(topic.encode("utf-8", "surrogatepass"))
    if size > MAX_TOPIC_BYTES:
        return f"a topic is at most {MAX_TOPIC_BYTES:,} bytes of UTF-8 (this one: {size:,})"
    return None


def _short(topic: str) -> str:
    shown = topic if len(topic) <= 60 else topic[:57] + "..."
    return repr(shown.replace("\x00", "\\0"))
