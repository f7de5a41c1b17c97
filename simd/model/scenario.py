"""Scenario files: TOML validated into pydantic models.

`read_scenario(path)` returns a `Scenario` or raises `ScenarioError` with one line per problem,
each naming the dotted key path (`fleet[1].rate: must be > 0`). Unknown keys are errors.
The JSON Schema (`simd schema`) is derived from these models, never written by hand.
"""

from __future__ import annotations

import math
import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from simd.errors import ScenarioError, UserError
from simd.model.durations import format_duration_ns, parse_duration_ns
from simd.model.edits import apply_sets
from simd.model.targets import scheme_of
from simd.model.topics import topic_filter_problem, topic_name_problem


class _Model(BaseModel):
    # no inf or nan anywhere: a rate of inf plans nothing and 1e308 plans forever
    # a field's docstring is its description in the JSON Schema (`simd schema`)
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
    )


DEFAULT_SESSION_EXPIRY_S = 3600  # MQTT 5, clean_start = false: the session outlives an outage

USER_INPUT = {"user_input": True}
"""Validation context of what a person wrote (parse_scenario): strict types, durations only as
strings. A scenario re-read from run.json (integer nanoseconds) is validated without it."""

MAX_RATE = 1_000_000.0  # messages/s per device: one every microsecond keeps a plan computable
CLIENT_ID_CHECK = 1_000_000  # fleets up to this size have every client id compared
MAX_SEQ = 2**31 - 1  # publishes per device in one run: the event log's seq column is int32
MAX_PLANNED = 1e12  # publishes in one run (a week at 1.6M/s); beyond, a plan is a typo


def _from_user(info: ValidationInfo | None) -> bool:
    """Whether this validation is of what a person wrote (parse_scenario), not of a run.json."""
    return bool(info is not None and info.context and info.context.get("user_input"))


def _duration(value: Any, info: ValidationInfo | None = None) -> int:
    """Durations are written as strings (`30s`); internally they are integer nanoseconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        if _from_user(info):
            raise ValueError(
                f'a duration is a string like "{value}s" or "{value}ms" (a bare number has no unit)'
            )
        return value
    if not isinstance(value, str):
        raise ValueError("a duration is a string like 500ms, 30s, 10m or 2h")
    return parse_duration_ns(value)


DurationNs = Annotated[int, Field(json_schema_extra={"x-simd-duration": True})]
# a duration as written: 500ms, 30s, 1h30m (simd.model.durations)
DURATION_PATTERN = r"^ *([0-9]+(\.[0-9]+)? *(ns|us|ms|s|m|h|d) *)+$"


def _opt_dur(v: Any, info: ValidationInfo | None = None) -> Any:
    return None if v is None else _duration(v, info)


def _durations(*names: str, optional: bool = False) -> Any:
    """A before-validator turning the named fields' duration strings into nanoseconds."""
    parse = _opt_dur if optional else _duration
    return field_validator(*names, mode="before")(classmethod(lambda cls, v, info: parse(v, info)))


# ---------------------------------------------------------------- payloads


class UniformField(_Model):
    kind: Literal["uniform"] = "uniform"
    """a number drawn uniformly per message"""
    min: float = 0.0
    """the smallest value"""
    max: float = 1.0
    """the largest value"""
    decimals: int = Field(2, ge=0, le=9)
    """digits after the point"""

    @model_validator(mode="after")
    def _ordered(self) -> UniformField:
        if self.max < self.min:
            raise ValueError("max must be >= min")
        return self


class WalkField(_Model):
    """A bounded random walk per device: +-step each message, folded back into [min, max]."""

    kind: Literal["walk"] = "walk"
    """a random walk per device (a sensor drifting)"""
    start: float = 0.0
    """the first value"""
    step: float = Field(0.1, gt=0)
    """the largest change between two messages"""
    min: float = -1e9
    """the walk stays at or above this"""
    max: float = 1e9
    """the walk stays at or below this"""
    decimals: int = Field(2, ge=0, le=9)
    """digits after the point"""

    @model_validator(mode="after")
    def _ordered(self) -> WalkField:
        if not self.min <= self.start <= self.max:
            raise ValueError("start must lie in [min, max]")
        return self


class ChoiceField(_Model):
    kind: Literal["choice"] = "choice"
    """a value picked from `values` per message"""
    values: list[str | int | float | bool] = Field(min_length=1)
    """the values to pick from, uniformly"""


PayloadField = Annotated[UniformField | WalkField | ChoiceField, Field(discriminator="kind")]

BUILTIN_FIELDS = ("device_id", "index", "seq", "timestamp", "group")


class TemplatePayload(_Model):
    """A JSON text with `{name}` placeholders: built-ins (device_id, index, seq, timestamp in epoch
    ms of the intended send time, group) or a named field from `fields`."""

    kind: Literal["template"] = "template"
    """a text (JSON) with {name} placeholders"""
    template: str
    """the payload text; {device_id}, {index}, {seq}, {timestamp}, {group} or a key of fields"""
    fields: dict[str, PayloadField] = Field(default_factory=dict)
    """named generated values the template uses"""

    @model_validator(mode="after")
    def _placeholders_known(self) -> TemplatePayload:
        for name in template_names(self.template):
            if name not in BUILTIN_FIELDS and name not in self.fields:
                raise ValueError(
                    f"template placeholder {{{name}}} is neither a built-in "
                    f"({', '.join(BUILTIN_FIELDS)}) nor a key of fields"
                )
        return self


class JsonLinesPayload(_Model):
    """One payload per line of a JSON-lines file, taken in order (per device, cycling)."""

    kind: Literal["jsonl"] = "jsonl"
    """payloads from a JSON-lines file"""
    file: str
    """the file (relative to the scenario's folder)"""
    order: Literal["sequential", "random"] = "sequential"
    """sequential (per device, cycling) or random"""


class RandomBytesPayload(_Model):
    kind: Literal["random"] = "random"
    """random bytes"""
    size: int = Field(ge=0, le=256 * 1024 * 1024)
    """bytes per payload"""


class PluginPayload(_Model):
    """`module:Class`, imported only when a scenario names it
    (simd.plan.payloads.PayloadGenerator)."""

    kind: Literal["plugin"] = "plugin"
    """payloads from user code"""
    plugin: str = Field(pattern=r"^[\w.]+:\w+$")
    """module:Class, imported from the scenario's folder"""
    options: dict[str, Any] = Field(default_factory=dict)
    """given to the plugin's constructor"""


class ReplayPayload(_Model):
    """The recorded payload of each message, byte for byte (a replay group's own;
    simd.plan.replay)."""

    kind: Literal["replay"] = "replay"
    """the recorded payload (replay groups only)"""


Payload = Annotated[
    TemplatePayload | JsonLinesPayload | RandomBytesPayload | PluginPayload | ReplayPayload,
    Field(discriminator="kind"),
]


PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")
"""`{name}` in topics and payload templates; JSON's own braces (`{"a": 1}`) never match."""


def template_names(template: str) -> list[str]:
    """The placeholder names in a payload or topic template (`{device_id}` -> device_id)."""
    return PLACEHOLDER.findall(template)


def fill_template(template: str, fields: dict[str, str]) -> str:
    """A topic (or client id, user name) template with every {placeholder} filled in."""
    out = template
    for name in PLACEHOLDER.findall(template):
        out = out.replace("{" + name + "}", fields[name])
    return out


def _fill(template: str, fields: dict[str, str]) -> str:
    """A template with the placeholders `fields` knows filled in (the others left as written)."""
    return PLACEHOLDER.sub(lambda m: fields.get(m[1], m[0]), template)


# ---------------------------------------------------------------- mqtt


class MqttOptions(_Model):
    """How a group's devices speak MQTT (ignored by the sim: and null: transports).

    Secrets: give `password_env` (an environment variable's name) or `token_file` (one token per
    line, device i of the group takes line i; the ThingsBoard convention puts it in the
    username). A literal `password` works but is redacted from manifests and reports.
    """

    version: Literal["3.1.1", "5"] = "3.1.1"
    """MQTT protocol version"""
    client_id: str = "{device_id}"
    """client id template ({device_id}, {index}, {group})"""
    keepalive: DurationNs = 60_000_000_000
    """MQTT keepalive; simd pings when idle for half of it"""
    clean_start: bool = True
    """false: a persistent session (in-flight publishes are re-sent after a reconnect)"""
    session_expiry: DurationNs | None = Field(
        None,
        description="MQTT 5: how long the broker keeps a device's session after its connection "
        "is lost (Session Expiry Interval); default with clean_start = false: 1h (without one "
        "an MQTT 5 session ends with its connection, MQTT-3.1.2-23)",
    )
    username: str | None = None
    """user name template ({device_id}, {index}, {group})"""
    password: str | None = None
    """the password as text (prefer password_env: kept out of every result)"""
    password_env: str | None = None
    """environment variable holding the password"""
    token_file: str | None = None
    """a file with one token per device (by index), used as user name or password"""
    token_as: Literal["username", "password"] = "username"
    """where a token_file's token goes"""
    publish_timeout: DurationNs = 10_000_000_000
    """qos 1/2: no ack within this is a timeout row"""
    connect_timeout: DurationNs = 10_000_000_000
    """a handshake that takes longer fails"""
    inflight: int = Field(1000, ge=1, le=65535)
    """qos 1/2 publishes in flight per connection at most"""
    window_full: Literal["wait", "drop"] = Field(
        "wait",
        description="a publish whose connection's in-flight window is full: wait for room "
        "(the delay is schedule lag; the worker sends nothing else meanwhile) for at most "
        "publish_timeout, or drop it at once",
    )
    connect_rate: float | None = Field(None, gt=0, description="connections/s for the group")
    user_properties: dict[str, str] = Field(default_factory=dict)
    """MQTT 5 user properties on every publish"""
    message_expiry: DurationNs | None = None
    """MQTT 5 Message Expiry Interval"""
    reconnect_min: DurationNs = 500_000_000
    """backoff before the first reconnect (doubling, jittered)"""
    reconnect_max: DurationNs = 30_000_000_000
    """the longest backoff between reconnects"""
    trace: bool | Literal["property", "payload"] = Field(
        False,
        description="mark each publish with '<device> <seq> <intended ns>' so probes can tell "
        "which publish they received (delivery, loss, duplicates, order, end-to-end latency): "
        "true or 'property' as the MQTT 5 user property simd-trace; 'payload' as a first line "
        "'#simd <device> <seq> <ns>' before the payload (any MQTT version)",
    )

    @property
    def trace_in(self) -> str | None:
        """Where publishes carry their trace: "property", "payload" or None."""
        if self.trace is True:
            return "property"
        return self.trace or None

    _durs = _durations(
        "keepalive", "publish_timeout", "connect_timeout", "reconnect_min", "reconnect_max"
    )
    _opt = _durations("message_expiry", "session_expiry", optional=True)

    @model_validator(mode="after")
    def _consistent(self) -> MqttOptions:
        for name in (*template_names(self.client_id), *template_names(self.username or "")):
            if name not in ("device_id", "index", "group"):
                raise ValueError(f"placeholder {{{name}}} is not one of device_id, index, group")
        if self.version == "3.1.1" and (
            self.user_properties or self.message_expiry or self.trace_in == "property"
        ):
            raise ValueError(
                'user_properties, message_expiry and trace = "property" need version = "5" '
                '(trace = "payload" works with 3.1.1)'
            )
        if self.password is not None and self.password_env is not None:
            raise ValueError("give password or password_env, not both")
        if self.keepalive > 65_535 * 1_000_000_000:
            raise ValueError("keepalive must be at most 65535s")
        if self.session_expiry is not None:
            if self.version != "5":
                raise ValueError('session_expiry needs version = "5" (3.1.1 sessions persist)')
            if not 0 <= self.session_expiry <= 0xFFFFFFFF * 1_000_000_000:
                raise ValueError("session_expiry must lie in 0s..4294967295s")
        return self

    @property
    def session_expiry_s(self) -> int | None:
        """The Session Expiry Interval a v5 CONNECT carries (None: the property is left out)."""
        if self.version != "5":
            return None
        if self.session_expiry is not None:
            return math.ceil(self.session_expiry / 1e9)
        return None if self.clean_start else DEFAULT_SESSION_EXPIRY_S


class TlsOptions(_Model):
    """For mqtts:// targets. Certificates are verified unless verify = false."""

    ca_file: str | None = None
    """CA certificates to verify the target with (PEM)"""
    cert_file: str | None = None
    """client certificate (PEM)"""
    key_file: str | None = None
    """the client certificate's key (PEM)"""
    verify: bool = True
    """verify the target's certificate and host name"""
    server_name: str | None = None
    """the name to check the certificate against (SNI), if not the URL's host"""


# ---------------------------------------------------------------- http

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""`${NAME}` in an HTTP header value: the environment variable NAME, read by the worker (never
written to a manifest or a log)."""


class HttpRequest(_Model):
    """One request of a group's weighted mix, or one step of its journey (http:// targets).

    `path` is a template like topics (`/v1/users/{device_id}`, `{seq}`: in a journey, the
    journey's own sequence id, the same for every step). `body` is any payload generator.
    A response passes when its status is in `expect_status` (default: any 2xx), its body holds
    `expect_body` and it came within `max_time`; otherwise its row is an error with the reason.
    """

    name: str = Field(pattern=r"^[\w.-]+$")
    """the request's name in results (per-request tables)"""
    method: HttpMethod | None = Field(None, description="default: the group's http.method")
    path: str = "/"
    """path and query, with placeholders ({device_id}, {index}, {seq}, ...)"""
    headers: dict[str, str] = Field(default_factory=dict)
    """headers of this request (${ENV} expanded)"""
    body: Payload | None = None
    """the request body (a payload)"""
    weight: float = Field(1.0, gt=0)
    """its share of the mix"""
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = Field(default_factory=list)
    """statuses that pass (default 2xx)"""
    expect_body: str | None = None
    """a regular expression the body must match"""
    max_time: DurationNs | None = None
    """a slower response fails its check"""

    _dur = _durations("max_time", optional=True)

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("a path starts with /")
        for name in template_names(v):
            if name not in ("device_id", "index", "group", "seq"):
                raise ValueError(
                    f"path placeholder {{{name}}} is not one of device_id, index, group, seq"
                )
        return v


class HttpOptions(_Model):
    """How a group's devices (or users) speak HTTP/1.1: one keep-alive connection each.

    open model (the default): requests arrive on the group's schedule (rate or interval);
    closed model: each device is a user that sends its next request when the previous one
    completes (plus `think_time`), `requests_per_user` times or until the run ends.
    """

    method: HttpMethod = "GET"
    """the default method"""
    headers: dict[str, str] = Field(
        default_factory=dict, description="sent with every request; values may use ${ENV_VAR}"
    )
    timeout: DurationNs = 5_000_000_000
    """a response not complete within this is a timeout"""
    connect_timeout: DurationNs = 10_000_000_000
    """a connection that takes longer fails"""
    model: Literal["open", "closed"] = "open"
    """open: requests at the scheduled rate; closed: users that send when the last response came"""
    requests_per_user: int | None = Field(None, ge=1, description="closed model")
    think_time: DurationNs = Field(0, description="closed model: pause after each response")

    _durs = _durations("timeout", "connect_timeout", "think_time")


class PluginOptions(_Model):
    """How a group's devices use a plugin transport (target `plugin:module:Class` or a scheme
    registered in entry point group `simd.transports`)."""

    publish_timeout: DurationNs = 10_000_000_000
    """a publish not done within this is a timeout (the connection is reopened)"""
    connect_timeout: DurationNs = 10_000_000_000
    """a connect that takes longer fails"""
    reconnect_min: DurationNs = 500_000_000
    """backoff before the first reconnect"""
    reconnect_max: DurationNs = 30_000_000_000
    """the longest backoff between reconnects"""
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="given to the plugin with the target URL's query parameters (these win); "
        "a secret goes in an environment variable named by <name>_env",
    )

    _durs = _durations("publish_timeout", "connect_timeout", "reconnect_min", "reconnect_max")


class OfflineWindow(_Model):
    """[start, end) of run time."""

    start: DurationNs
    """run time the probe disconnects"""
    end: DurationNs
    """run time it connects again"""

    _durs = _durations("start", "end")

    @model_validator(mode="after")
    def _ordered(self) -> OfflineWindow:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Probe(_Model):
    """A subscriber that receives the fleet's messages through the broker and logs a `receive`
    row per message, with end-to-end latency from the intended send time when it can tell it:
    from the publisher's `simd-trace` user property (mqtt.trace), or from a JSON payload field
    holding the intended time in epoch milliseconds (`timestamp_field`, e.g. "ts")."""

    name: str = Field(pattern=r"^[\w.-]+$")
    """the probe's name in results"""
    topic: str = "#"
    """the filter it subscribes to"""
    qos: Literal[0, 1, 2] = 1
    """its subscription's qos"""
    version: Literal["3.1.1", "5"] = "5"
    """its MQTT version"""
    timestamp_field: str | None = None
    """a JSON payload field with the epoch ms a message was meant to be sent (untraced
    publishers)"""
    clean: bool = Field(
        True,
        description="false: a persistent session (kept an hour), so the broker queues qos 1/2 "
        "messages while the probe is away",
    )
    offline: list[OfflineWindow] = Field(
        default_factory=list,
        description="windows of run time in which the probe is disconnected (a subscriber "
        "outage: what is lost shows in the delivery views)",
    )


# ---------------------------------------------------------------- fleet


class Message(_Model):
    """One entry of a weighted message mix. Unset keys inherit the group's."""

    name: str = Field(pattern=r"^[\w.-]+$")
    """the message's name in results"""
    weight: float = Field(1.0, gt=0)
    """its share of the mix"""
    topic: str | None = None
    """topic template (default: the group's)"""
    qos: Literal[0, 1, 2] | None = None
    """qos (default: the group's)"""
    retain: bool | None = None
    """retain flag (default: the group's)"""
    payload: Payload | None = None
    """payload (default: the group's)"""


class ReplaySource(_Model):
    """A recording as a group's timing, topics and payloads (simd.plan.replay).

    Each recorded device (its client id when the capture has one, else the topic level named by
    `device_level`) becomes a simulated device; its messages keep their recorded topics, with
    the device's level as `{device_id}`, and payloads byte for byte. Message i plays at
    `lead_in + (loop * recording length + recorded offset of i) / speed`, offsets counted from
    the recording's first message. `fanout` K runs K copies of every device: copy j > 0 has the
    id `<id>-r<j>` (and so its own topics). Phases name stretches of the run; they do not scale
    a replay (its rate is the recording's).
    """

    recording: str = Field(description="a .simrec recording or a JSON-lines capture (.jsonl)")
    speed: float = Field(1.0, gt=0, le=1e6, description="2 plays twice as fast")
    loop: int = Field(1, ge=0, description="times through the recording; 0 = until the duration")
    fanout: int = Field(1, ge=1, le=1_000_000, description="copies of every recorded device")
    topic_map: dict[str, str] = Field(
        default_factory=dict,
        description="topic prefix FROM -> TO, applied to recorded topics (longest FROM first)",
    )
    device_level: int | Literal["auto", "topic"] = Field(
        "auto",
        description="which topic level (0-based) names the device: auto = the level with the "
        "most distinct values; topic = every topic is its own device",
    )
    lead_in: DurationNs = Field(
        1_000_000_000, description="when the first recorded message plays (connections first)"
    )
    qos: Literal[0, 1, 2] | None = Field(None, description="instead of the recorded qos")
    recording_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="the recording's content hash; set when a run starts, checked on resume",
    )
    # derived from the recording when a run starts (simd.plan.replay.expand_replays), so that
    # the model answers for a replay group without reading a file: never written by a person
    messages: list[Message] | None = Field(
        None, description="set when a run starts: one message per recorded topic template"
    )
    mean_rate: float | None = Field(
        None, ge=0, description="set when a run starts: the recording's messages/s per device"
    )

    _dur = _durations("lead_in")

    @field_validator("device_level")
    @classmethod
    def _level(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 0:
            raise ValueError("a topic level is >= 0 (or auto, or topic)")
        return v


_FROM_RECORDING = ("rate", "interval", "arrival", "topic", "qos", "retain", "payload", "messages")


class ReplyOptions(_Model):
    """How a listening device answers a command: on `topic` (its template), after `service_time`
    (the device's own processing), at qos 0, with the command's trace line as the payload."""

    topic: str = "devices/{device_id}/replies"
    """topic template of the replies"""
    service_time: DurationNs = 10_000_000
    """how long the device takes before it answers"""

    _durs = _durations("service_time")


class CommandOptions(_Model):
    """A commander group: each of its scheduled publishes is a command to one device of group
    `to` (chosen by a seeded hash of (commander, seq)), on `topic` ({target_id} is that device's
    id), carrying a trace line; the commander subscribes to `replies` and logs a `command` row
    per command: answered (acked) with the round trip from the intended send time, or timeout
    when no reply came within `timeout` (or by the end of the run)."""

    to: str
    """the group whose devices are commanded"""
    topic: str = "devices/{target_id}/commands"
    """command topic template ({target_id}: the commanded device)"""
    replies: str = "devices/+/replies"
    """the filter the commander subscribes to for replies"""
    timeout: DurationNs = 5_000_000_000
    """a command without a reply within this is a timeout"""

    _durs = _durations("timeout")


class FleetGroup(_Model):
    name: str = Field(pattern=r"^[\w.-]+$")
    """the group's name in results"""
    replay: ReplaySource | None = None
    """play a recording instead of a rate (timing, topics, payloads)"""
    count: int | None = Field(
        None,
        gt=0,
        le=10_000_000,
        validate_default=True,
        description="devices (with replay: derived, recorded devices x fanout)",
    )
    id: str = "{group}-{index:05d}"
    """device id template ({group}, {index:05d})"""
    rate: float | None = Field(
        None, gt=0, le=MAX_RATE, description="messages per second per device"
    )
    interval: DurationNs | None = Field(None, description="time between messages per device")
    arrival: Literal["periodic", "poisson", "pareto", "zipf"] = Field(
        "periodic",
        description="periodic (deterministic phase jitter); random, same mean rate: poisson, "
        "pareto (heavy-tailed gaps, pareto_shape), zipf (bursts of Zipf-sized length)",
    )
    pareto_shape: float = Field(
        1.5, gt=1.0, le=10.0, description="pareto: tail shape a (smaller: heavier tail)"
    )
    zipf_exponent: float = Field(
        2.0, gt=1.0, le=10.0, description="zipf: P(burst of k) ~ k^-exponent"
    )
    burst_max: int = Field(100, ge=1, le=100_000, description="zipf: the largest burst")
    burst_spacing: DurationNs = Field(
        10_000_000, description="zipf: time between the messages of one burst"
    )
    topic: str = "devices/{device_id}/telemetry"
    """topic template ({device_id}, {index}, {group}, {seq}, {message})"""
    qos: Literal[0, 1, 2] = 0
    """publish qos"""
    retain: bool = False
    """publish with the retain flag"""
    payload: Payload = Field(
        default_factory=lambda: TemplatePayload(
            template='{"device":"{device_id}","seq":{seq},"ts":{timestamp}}'
        )
    )
    """what each message carries"""
    messages: list[Message] = Field(default_factory=list)
    """a weighted mix of messages instead of one"""
    mqtt: MqttOptions = Field(default_factory=MqttOptions)
    """MQTT client options"""
    http: HttpOptions = Field(default_factory=HttpOptions)
    """HTTP options (http:// targets)"""
    plugin: PluginOptions = Field(default_factory=PluginOptions)
    """options for a plugin target"""
    requests: list[HttpRequest] = Field(
        default_factory=list, description="http: the weighted request mix"
    )
    journey: list[HttpRequest] = Field(
        default_factory=list,
        description="http: steps run in order per arrival, sharing one sequence id",
    )
    subscribe: list[str] = Field(
        default_factory=list,
        description="mqtt: topic filters each device subscribes to on its own connection "
        "(templates: {device_id}, {index}, {group}); what arrives is logged as receive rows",
    )
    subscribe_qos: Literal[0, 1] = 1
    """qos of a listening device's subscriptions"""
    reply: ReplyOptions | None = Field(
        None, description="mqtt: answer each command received (see commands) after a service time"
    )
    commands: CommandOptions | None = Field(
        None, description="mqtt: this group's publishes are commands to devices of another group"
    )

    _dur = _durations("interval", optional=True)
    _spacing = _durations("burst_spacing")

    @field_validator("count")
    @classmethod
    def _count_given(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is None and "replay" in info.data and info.data["replay"] is None:
            raise ValueError("required key is missing")
        return v

    @field_validator("interval")
    @classmethod
    def _positive_interval(cls, v: int | None) -> int | None:
        if v is not None and v <= 0:
            raise ValueError("must be > 0")
        if v is not None and v < 1e9 / MAX_RATE:
            raise ValueError(f"must be at least {1e6 / MAX_RATE:g}us (at most {MAX_RATE:,.0f}/s)")
        return v

    @model_validator(mode="after")
    def _rate_or_interval(self, info: ValidationInfo) -> FleetGroup:
        if self.replay is not None:
            fields = type(self).model_fields
            given = [
                k
                for k in _FROM_RECORDING
                if getattr(self, k) != fields[k].get_default(call_default_factory=True)
            ]
            if given:
                raise ValueError(
                    f"{', '.join(given)}: a replay group takes its timing, topics and payloads "
                    "from its recording (replay.qos overrides the recorded qos)"
                )
            return self
        if self.requests and self.journey:
            raise ValueError("give requests (a weighted mix) or journey (ordered steps), not both")
        if (self.requests or self.journey) and self.messages:
            raise ValueError("requests or journey replace messages for http targets; give one")
        if self.http.model == "closed":
            if self.rate is not None or self.interval is not None:
                raise ValueError("a closed-model group has no rate: each user sends when ready")
            return self
        if any(isinstance(m.payload, ReplayPayload) for m in [self, *self.messages]):
            raise ValueError("payload kind 'replay' belongs to replay groups (give replay = {...})")
        if (self.rate is None) == (self.interval is None):
            raise ValueError("give exactly one of rate (messages/s) or interval (e.g. 10s)")
        try:
            self.id.format(index=0, group=self.name)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"id pattern {self.id!r} may use only {{index}} and {{group}}"
            ) from exc
        for name in template_names(self.topic):
            if name not in ("device_id", "index", "group", "seq", "message"):
                raise ValueError(
                    f"topic placeholder {{{name}}} is not one of device_id, index, group"
                )
        if _from_user(info):  # a run.json of an older simd may hold what is refused now
            self._check_topics()
        if self.reply is not None and not self.subscribe:
            raise ValueError("reply: the devices must subscribe to their command topics")
        if self.commands is not None and self.messages:
            raise ValueError("commands: a commander group publishes commands, not a messages mix")
        if self.arrival == "zipf" and self.burst_spacing * (self.rate_per_s or 0) >= 1e9:
            raise ValueError(
                f"burst_spacing {self.burst_spacing / 1e6:g}ms: must be shorter than the mean "
                f"time between a device's messages ({1e3 / self.rate_per_s:g}ms at this rate)"
            )
        return self

    def _check_topics(self) -> None:
        """MQTT's topic rules (simd.model.topics) for every topic and filter the group uses, filled
        in for its first and last device (http paths are not topics)."""
        if self.requests or self.journey:
            return
        samples = [
            {"device_id": self.id.format(index=i, group=self.name), "index": str(i),
             "group": self.name, "seq": "0", "message": "m", "target_id": "t"}
            for i in {0, (self.count or 1) - 1}
        ]  # fmt: skip
        inherited = not self.messages or any(m.topic is None for m in self.messages)
        names = [("topic", self.topic)] if inherited else []
        names += [(f"messages[{i}].topic", m.topic) for i, m in enumerate(self.messages) if m.topic]
        if self.reply is not None:
            names.append(("reply.topic", self.reply.topic))
        if self.commands is not None:
            names.append(("commands.topic", self.commands.topic))
        filters = [(f"subscribe[{i}]", f) for i, f in enumerate(self.subscribe)]
        if self.commands is not None:
            filters.append(("commands.replies", self.commands.replies))
        for check, items in ((topic_name_problem, names), (topic_filter_problem, filters)):
            for key, template in items:
                for fields in samples:
                    problem = check(_fill(template, fields))
                    if problem:
                        raise ValueError(f"{key}: {problem}")

    @property
    def steps(self) -> int:
        """Rows per scheduled arrival: a journey's steps, else 1."""
        return len(self.journey) or 1

    @property
    def closed(self) -> bool:
        """A closed-model http group: users send when ready, not on a schedule."""
        return self.http.model == "closed"

    @property
    def rate_per_s(self) -> float:
        """Messages per second per device at a phase level of 1 (replay: the mean; a closed
        group: 0, it has no schedule)."""
        if self.closed:
            return 0.0
        if self.replay is not None:
            return self._replay_resolved().mean_rate or 0.0
        if self.rate is not None:
            return self.rate
        assert self.interval is not None
        return 1e9 / self.interval

    def _replay_resolved(self) -> ReplaySource:
        """The replay options once expanded against the recording (simd.plan.replay)."""
        replay = self.replay
        assert replay is not None
        if replay.messages is None or replay.mean_rate is None:
            raise UserError(
                f"fleet {self.name}: its replay is not resolved against the recording yet "
                "(simd.plan.replay.expand_replays)"
            )
        return replay

    def resolved_messages(self) -> list[Message]:
        """The weighted mix with every key filled from the group's defaults (replay: one
        message per recorded topic template)."""
        if self.replay is not None:
            return list(self._replay_resolved().messages or [])
        if self.requests or self.journey:
            empty = RandomBytesPayload(size=0)
            return [
                Message(
                    name=r.name,
                    weight=r.weight,
                    topic=r.path,
                    qos=0,
                    retain=False,
                    payload=r.body or empty,
                )
                for r in (self.requests or self.journey)
            ]
        if self.commands is not None:
            return [
                Message(
                    name="command",
                    topic=self.commands.topic,
                    qos=self.qos,
                    retain=False,
                    payload=self.payload,
                )
            ]
        if not self.messages:
            return [
                Message(
                    name="default",
                    topic=self.topic,
                    qos=self.qos,
                    retain=self.retain,
                    payload=self.payload,
                )
            ]
        return [
            Message(
                name=m.name,
                weight=m.weight,
                topic=m.topic if m.topic is not None else self.topic,
                qos=m.qos if m.qos is not None else self.qos,
                retain=m.retain if m.retain is not None else self.retain,
                payload=m.payload if m.payload is not None else self.payload,
            )
            for m in self.messages
        ]


# ---------------------------------------------------------------- phases


class Phase(_Model):
    """A stretch of the run whose shape scales every device's rate (1.0 = the group's rate).

    constant: `level`. ramp: `start` -> `end`. step: `levels`, each for an equal share.
    burst: `level` with `peak` for `burst_length` starting `burst_at` into the phase.
    sine: `level` + `amplitude` * sin(2 pi t / `period`).
    """

    name: str = Field(pattern=r"^[\w.-]+$")
    """the phase's name in results"""
    duration: DurationNs
    """how long it lasts"""
    shape: Literal["constant", "ramp", "step", "burst", "sine"] = "constant"
    """how the rate level moves through it"""
    level: float = Field(1.0, ge=0)
    """rate multiplier (constant, burst base, sine middle)"""
    start: float = Field(0.0, ge=0)
    """ramp: the level at its start"""
    end: float = Field(1.0, ge=0)
    """ramp: the level at its end"""
    levels: list[Annotated[float, Field(ge=0)]] = Field(default_factory=list)
    """step: the levels, each for an equal share"""
    peak: float = Field(2.0, ge=0)
    """burst: the level during the burst"""
    burst_at: DurationNs = 0
    """burst: when it starts, into the phase"""
    burst_length: DurationNs = 0
    """burst: how long it lasts"""
    amplitude: float = Field(0.5, ge=0)
    """sine: the swing around level"""
    period: DurationNs = 60_000_000_000
    """sine: one full wave"""

    _durs = _durations("duration", "burst_at", "burst_length", "period")

    @property
    def max_level(self) -> float:
        """The highest level the phase's shape reaches."""
        return {
            "constant": self.level,
            "ramp": max(self.start, self.end),
            "step": max(self.levels, default=0.0),
            "burst": max(self.level, self.peak),
            "sine": self.level + self.amplitude,
        }[self.shape]

    @model_validator(mode="after")
    def _consistent(self) -> Phase:
        if self.duration <= 0:
            raise ValueError("duration must be > 0")
        if self.shape == "step" and not self.levels:
            raise ValueError("a step phase needs levels = [...]")
        if self.shape == "burst":
            if self.burst_length <= 0:
                raise ValueError("a burst phase needs burst_length > 0")
            if self.burst_at + self.burst_length > self.duration:
                raise ValueError("the burst (burst_at + burst_length) must fit in the phase")
        if self.shape == "sine":
            if self.period <= 0:
                raise ValueError("period must be > 0")
            if self.amplitude > self.level:
                raise ValueError("amplitude must be <= level (a rate cannot go negative)")
        return self


# ---------------------------------------------------------------- sim, slo, run


class Outage(_Model):
    start: DurationNs
    """run time the modelled target stops answering"""
    end: DurationNs
    """run time it answers again"""

    _durs = _durations("start", "end")

    @model_validator(mode="after")
    def _ordered(self) -> Outage:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class SimOptions(_Model):
    """The `sim` transport's model of a system under test (see simd.transports.sim)."""

    latency_p50: DurationNs = 2_000_000
    """modelled median latency"""
    latency_p99: DurationNs = 20_000_000
    """modelled p99 latency (lognormal)"""
    capacity: float | None = Field(None, gt=0, description="messages/s the system serves")
    queue_limit: DurationNs = 1_000_000_000
    """queueing beyond this is refused (an error)"""
    error_rate: float = Field(0.0, ge=0, le=1)
    """share of publishes that fail at random"""
    timeout: DurationNs = 10_000_000_000
    """a modelled answer later than this is a timeout"""
    outages: list[Outage] = Field(default_factory=list)
    """windows in which the modelled target answers nothing"""

    _durs = _durations("latency_p50", "latency_p99", "queue_limit", "timeout")

    @model_validator(mode="after")
    def _ordered(self) -> SimOptions:
        if self.latency_p50 <= 0 or self.latency_p99 < self.latency_p50:
            raise ValueError("need 0 < latency_p50 <= latency_p99")
        return self


DURATION_SLOS = ("latency_p50", "latency_p90", "latency_p99", "latency_p999", "schedule_lag_p99")


DEFAULT_ERROR_RATE = 0.05  # checked when [slo] sets no error_rate: a run that mostly failed fails


class Slo(_Model):
    """Thresholds checked by `simd check` (and at the end of `simd run`). Without error_rate,
    error_rate <= DEFAULT_ERROR_RATE is checked as the default; log_integrity always is."""

    latency_p50: DurationNs | None = None
    """latency p50 (from intended send time) at most"""
    latency_p90: DurationNs | None = None
    """latency p90 at most"""
    latency_p99: DurationNs | None = None
    """latency p99 at most"""
    latency_p999: DurationNs | None = None
    """latency p99.9 at most"""
    error_rate: float | None = Field(None, ge=0, le=1)
    """failed / logged publishes at most (default 0.05)"""
    throughput_ratio: float | None = Field(None, ge=0, le=1, description="completed / planned")
    schedule_lag_p99: DurationNs | None = None
    """schedule lag p99 (actual minus intended send time) at most"""
    latency_p99_growth_per_h: float | None = Field(
        None, description="slope of p99 latency over the run, per hour, relative to its mean"
    )
    throughput_drift_per_h: float | None = Field(
        None, ge=0, description="|slope| of completed/planned per window, per hour"
    )
    memory_growth_per_h: float | None = Field(
        None, description="slope of a worker's RSS per hour relative to its mean (worst worker)"
    )
    error_bursts: int | None = Field(
        None, ge=0, description="most error bursts allowed (runs of windows over burst_error_rate)"
    )
    loss_rate: float | None = Field(
        None,
        ge=0,
        le=1,
        description="most of the traced publishes a probe should get that it may miss "
        "(delivery views; needs mqtt.trace and a [[probe]])",
    )
    burst_error_rate: float = Field(
        0.01, gt=0, le=1, description="a window whose error rate passes this is in a burst"
    )

    _durs = _durations(*DURATION_SLOS, optional=True)


ClockSpec = Annotated[str, Field(pattern=r"^(real|virtual|scaled:\d+(\.\d+)?)$")]


class RunOptions(_Model):
    workers: int = Field(0, ge=0, le=1024, description="0 = one per usable core")
    clock: ClockSpec = "real"
    """real, scaled:N (N times faster) or virtual (null:/sim: only)"""
    flush_interval: DurationNs = 100_000_000
    """the log reaches disk at least this often"""
    drain_timeout: DurationNs = 5_000_000_000
    """after the schedule, how long to wait for outstanding acks"""
    fsync: Literal["never", "segment", "frame"] = "segment"
    """when the log is fsynced: never, per segment, per frame"""
    segment_bytes: int = Field(256 * 1024 * 1024, ge=64 * 1024)
    """a log segment is closed and a new one begun past this size"""
    max_restarts: int = Field(
        100, ge=0, description="times a worker that dies is restarted from its log, per worker"
    )
    status_port: int = Field(
        0,
        ge=-1,
        le=65535,
        description="/status and /metrics on 127.0.0.1 while the run is on: 0 a free port "
        "(printed, and in run.json), -1 none",
    )
    resource_samples: DurationNs = Field(
        5_000_000_000,
        description="how often each worker logs its RSS, CPU time and open fds (run time; "
        "0s turns sampling off)",
    )
    source_addresses: list[str] = Field(
        default_factory=list,
        description="local addresses to connect from, device i using [i % n]: each address "
        "has its own ephemeral-port range, so one run can hold more connections to one target",
    )

    @field_validator("source_addresses")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        import ipaddress

        for a in v:
            try:
                ipaddress.ip_address(a)
            except ValueError:
                raise ValueError(f"{a!r} is not an IP address") from None
        return v

    _durs = _durations("flush_interval", "drain_timeout", "resource_samples")


class Scenario(_Model):
    name: str = Field(pattern=r"^[\w.-]+$")
    """the scenario's name (in run ids and reports)"""
    seed: int = Field(0, ge=0, lt=2**63)
    """the seed of every random choice: same seed, same schedule"""
    duration: DurationNs | None = None
    """how long the run lasts (default: the phases' sum)"""
    target: str = "sim:"
    """where publishes go: mqtt://, mqtts://, ws://, wss://, http(s)://, null:, sim:,
    embedded, plugin:module:Class"""
    fleet: list[FleetGroup] = Field(min_length=1)
    """the device groups"""
    phase: list[Phase] = Field(default_factory=list)
    """stretches of the run with their rate shape"""
    probe: list[Probe] = Field(default_factory=list)
    """subscribers logging what the target delivers"""
    sim: SimOptions = Field(default_factory=SimOptions)
    """the sim: target's model"""
    tls: TlsOptions = Field(default_factory=TlsOptions)
    """TLS options (mqtts://, wss://, https://)"""
    slo: Slo = Field(default_factory=Slo)
    """service levels the run is judged by"""
    run: RunOptions = Field(default_factory=RunOptions)
    """how the run itself runs"""

    _durs = _durations("duration", optional=True)

    @model_validator(mode="after")
    def _whole(self, info: ValidationInfo) -> Scenario:
        if self.duration is None and not self.phase and not any(g.replay for g in self.fleet):
            raise ValueError('give a duration (e.g. duration = "10m") or at least one [[phase]]')
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be > 0")
        for kind, names in (
            ("fleet", [g.name for g in self.fleet]),
            ("phase", [p.name for p in self.phase]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind} names must be unique; repeated: {', '.join(dupes)}")
        names = [g.name for g in self.fleet]
        for gi, g in enumerate(self.fleet):
            if g.commands is not None and g.commands.to not in names:
                raise ValueError(
                    f"fleet[{gi}].commands.to: no group {g.commands.to!r} (groups: "
                    f"{', '.join(names)})"
                )
            if g.commands is not None and g.commands.to == g.name:
                raise ValueError(f"fleet[{gi}].commands.to: a group commands another group")
        patterns = [g.id for g in self.fleet]
        if len(set(patterns)) != len(patterns) and "{group}" not in "".join(patterns):
            raise ValueError("two fleet groups share an id pattern; device ids would collide")
        if not _from_user(info):
            return self  # what a run recorded (run.json) reads back, whatever simd refuses now
        for pi, probe in enumerate(self.probe):
            problem = topic_filter_problem(probe.topic)
            if problem:
                raise ValueError(f"probe[{pi}].topic: {problem}")
        self._check_load()
        return self

    def _check_load(self) -> None:
        """A plan stays computable: per device at most MAX_RATE/s at the highest phase level,
        and at most MAX_PLANNED publishes in all."""
        top = max((p.max_level for p in self.phase), default=1.0)
        total = 0.0
        for gi, g in enumerate(self.fleet):
            if g.replay is not None or g.closed:
                continue
            peak = g.rate_per_s * top
            if peak > MAX_RATE:
                raise ValueError(
                    f"fleet[{gi}]: {g.rate_per_s:g}/s x phase level {top:g} = {peak:g} messages/s "
                    f"per device; at most {MAX_RATE:,.0f}"
                )
            per_device = peak * self.duration_ns / 1e9
            if per_device > MAX_SEQ:
                raise ValueError(
                    f"fleet[{gi}]: up to {per_device:.3g} publishes per device over the run; at "
                    f"most {MAX_SEQ:,} (a row's seq is a 32-bit number)"
                )
            total += (g.count or 0) * per_device
        if total > MAX_PLANNED:
            raise ValueError(
                f"the fleet would publish up to {total:.3g} messages; at most {MAX_PLANNED:.0e} "
                "(a shorter duration, fewer devices or a lower rate)"
            )

    @field_validator("target")
    @classmethod
    def _known_target(cls, v: str) -> str:
        try:
            scheme_of(v)
        except UserError as exc:  # "target 'ftp://x': unsupported scheme ..." -> the reason
            raise ValueError(str(exc).split(": ", 1)[-1]) from None
        return v

    @property
    def duration_ns(self) -> int:
        """The run's length: `duration` if given, else the phases' total."""
        if self.duration is not None:
            return self.duration
        return sum(p.duration for p in self.phase)

    @property
    def device_count(self) -> int:
        return sum(g.count for g in self.fleet)

    def group_offsets(self) -> list[int]:
        """Each group's first device in the fleet's global device index."""
        out, off = [], 0
        for g in self.fleet:
            out.append(off)
            off += g.count or 0
        return out


# ---------------------------------------------------------------- loading


_TAGS = {"template", "jsonl", "random", "plugin", "uniform", "walk", "choice"}


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    prev: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _TAGS or (part == "replay" and prev == "payload"):
            continue  # pydantic's discriminator tag; the user never wrote it as a key
        elif part in ("int", "str") or part.startswith(("function-", "literal[")):
            continue  # which member of a union pydantic tried
        else:
            out += f".{part}" if out else str(part)
        prev = part
    return out or "(top level)"


def _message(err: dict[str, Any]) -> str:
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    return msg[0].lower() + msg[1:] if msg else msg


def problems_of(exc: ValidationError) -> list[str]:
    """One line per pydantic error: `dotted.key[0].path: message`."""
    lines = []
    for err in exc.errors():
        loc, msg = _loc(tuple(err["loc"])), _message(err)
        inner = _KEY_FIRST.match(msg)  # a model's check naming its own key: one dotted path
        if inner and loc != "(top level)":
            loc, msg = f"{loc}.{inner[1]}", inner[2]
        lines.append(f"{loc}: {msg}")
    return list(dict.fromkeys(lines))


_KEY_FIRST = re.compile(r"^([a-z_]\w*(?:\[\d+\])?(?:\.[a-z_]\w*(?:\[\d+\])?)*): (.*)$", re.S)


def parse_scenario(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate what a person wrote (a parsed TOML document; `source` names it in errors):
    strictly (no number from a string, durations only as strings like "5s")."""
    try:
        scenario = Scenario.model_validate(data, strict=True, context=USER_INPUT)
    except ValidationError as exc:
        raise ScenarioError(source, problems_of(exc)) from None
    problem = _client_id_clash(scenario)
    if problem:
        raise ScenarioError(source, [problem])
    return scenario


def _client_id_clash(scenario: Scenario) -> str | None:
    """Two devices with one MQTT client id take each other's session (the broker drops the
    first, MQTT-3.1.4-3): name the first such pair. Fleets above CLIENT_ID_CHECK devices are
    checked by template only (each group's ids must vary with the device)."""
    for gi, g in enumerate(scenario.fleet):
        varies = {"device_id", "index"} & set(template_names(g.mqtt.client_id))
        if (g.count or 1) > 1 and g.replay is None and not varies:
            return (
                f"fleet[{gi}].mqtt.client_id: {g.mqtt.client_id!r} gives all {g.count} devices "
                "one client id; use {device_id} or {index}"
            )
    if any(g.replay for g in scenario.fleet) or scenario.device_count > CLIENT_ID_CHECK:
        return None
    seen: dict[str, str] = {}
    for gi, g in enumerate(scenario.fleet):
        pattern = g.mqtt.client_id
        for i in range(g.count or 0):
            device = g.id.format(index=i, group=g.name)
            cid = _fill(pattern, {"device_id": device, "index": str(i), "group": g.name})
            if cid in seen:
                return (
                    f"fleet[{gi}].mqtt.client_id: device {device!r} gets client id {cid!r}, "
                    f"as {seen[cid]} does; client ids must be unique across the fleet"
                )
            seen[cid] = f"device {device!r} of group {g.name!r}"
    return None


def read_scenario(
    path: str | Path, overrides: dict[str, Any] | None = None, sets: Sequence[str] = ()
) -> Scenario:
    """Read and validate a scenario file (`-`: standard input), as written: replay groups are
    not yet resolved against their recordings (simd.plan.inputs.load_scenario does that).
    `overrides` replace top-level keys (from CLI flags); `sets` are `--set KEY=VALUE` edits
    (simd.model.edits), applied after them."""
    p = Path(path)
    source = "<stdin>" if str(path) == "-" else str(p)
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else p.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(source, ["file not found"]) from None
    except IsADirectoryError:
        raise ScenarioError(source, ["is a directory, not a scenario file"]) from None
    except OSError as exc:
        raise ScenarioError(source, [f"cannot read: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ScenarioError(source, ["not UTF-8 text; a scenario is a TOML file"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, [f"not valid TOML: {exc}"]) from None
    if overrides:
        data = {**data, **overrides}
    if sets:
        data = apply_sets(data, list(sets))
    scenario = parse_scenario(data, source)
    _check_files(scenario, p.parent, source)
    return scenario


def _check_files(scenario: Scenario, base: Path, source: str) -> None:
    """Payload data files are read at plan time; a missing one is a scenario error, not a crash."""
    problems = []
    for gi, group in enumerate(scenario.fleet):
        if group.replay is not None:
            continue  # its recording is read by simd.plan.replay.expand_replays
        if group.mqtt.token_file is not None:
            f = resolve_path(group.mqtt.token_file, base)
            if not f.is_file():
                problems.append(f"fleet[{gi}].mqtt.token_file: {group.mqtt.token_file!r} not found")
            else:
                tokens = [t for t in f.read_text().splitlines() if t.strip()]
                if len(tokens) < group.count:
                    problems.append(
                        f"fleet[{gi}].mqtt.token_file: {len(tokens)} tokens for "
                        f"{group.count} devices"
                    )
        for mi, msg in enumerate(group.resolved_messages()):
            payload = msg.payload
            if isinstance(payload, JsonLinesPayload):
                f = resolve_path(payload.file, base)
                where = (
                    f"fleet[{gi}].payload"
                    if not group.messages
                    else f"fleet[{gi}].messages[{mi}].payload"
                )
                if not f.is_file():
                    problems.append(f"{where}.file: {payload.file!r} not found (looked in {f})")
    if problems:
        raise ScenarioError(source, problems)


def resolve_path(name: str, base: Path) -> Path:
    """A file named in a scenario is relative to the scenario's folder, unless absolute."""
    p = Path(name)
    return p if p.is_absolute() else (base / p)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file, derived from the models: durations are strings
    with their pattern and their defaults as written (`60s`, not 60000000000)."""
    from simd._version import __version__

    schema = Scenario.model_json_schema(mode="validation")
    _durations_as_written(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:simd:scenario-schema:{__version__}",
        **schema,
    }


def _durations_as_written(node: Any) -> None:
    """Every field marked as a duration: a pattern-checked string, its default spelt."""
    if isinstance(node, list):
        for item in node:
            _durations_as_written(item)
        return
    if not isinstance(node, dict):
        return
    for v in node.values():
        _durations_as_written(v)
    marked = node.pop("x-simd-duration", None)
    members = [m for m in node.get("anyOf", []) if isinstance(m, dict)]
    if marked or any(m.get("x-simd-duration") for m in members):
        for target in [node] if marked else members:
            if target.get("type") != "null":
                target.pop("x-simd-duration", None)
                target.update(type="string", pattern=DURATION_PATTERN, examples=["30s"])
        if isinstance(node.get("default"), int) and not isinstance(node["default"], bool):
            node["default"] = format_duration_ns(node["default"])
