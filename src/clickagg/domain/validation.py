"""Semantic validation of an Aggregation object: every problem, each with its field path.

Structure and types come from the pydantic model; this module adds the rules that span
fields (levels that nest, retentions that fit, cuboids that name declared dimensions)
and the size bound of the plan.
"""

from __future__ import annotations

import difflib
import re
import reprlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pydantic

from clickagg import errors
from clickagg.domain import dimensions, durations, events, kpis, model, plan, spec

NAME_MAX = 40  # children append up to 23 characters and Kubernetes names stop at 63
NEAR_BOUND_SHARE = 0.8  # a plan past this share of maxDocumentsPerDay gets an advisory
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DAY = durations.DAY
_MAX_SESSION_TIMEOUT = durations.Duration(0, _DAY)

# Fields the pipeline derives rather than reads from the event.
_DERIVED_FIELDS = tuple(n for n, d in dimensions.STANDARD.items() if d.field is None)

Issues = list[errors.SpecIssue]


def validate(obj: Mapping[str, Any]) -> model.Aggregation:
    """A valid Aggregation from a Kubernetes-style object, or SpecError with every issue."""
    issues: Issues = []
    name, namespace = _check_object(obj, issues)
    try:
        parsed = spec.AggregationSpec.model_validate(obj.get("spec"))
    except pydantic.ValidationError as exc:
        raise errors.SpecError(issues + _pydantic_issues(exc, "spec")) from None
    aggregation = _resolve(name, namespace, parsed, issues)
    if aggregation is not None:
        _check_plan_size(aggregation, issues)
    if issues or aggregation is None:
        raise errors.SpecError(issues)
    return aggregation


def advisories(aggregation: model.Aggregation) -> Issues:
    """What a valid Aggregation may still want a look at, without blocking it: a plan
    within reach of its size bound (growth in traffic or a new cuboid would cross it)."""
    documents = plan.build(aggregation).documents_per_day
    bound = aggregation.spec.limits.max_documents_per_day
    # Compared as documents/bound, not documents < share * bound: a bound of hundreds of
    # digits is a valid int that no float holds.
    if bound > documents / NEAR_BOUND_SHARE:
        return []
    return [
        _issue(
            "spec.limits.maxDocumentsPerDay",
            f"the plan writes about {documents:,.0f} documents a day, {documents / bound:.0%} "
            f"of the bound {bound:,}",
        )
    ]


def validate_spec(name: str, namespace: str, body: Mapping[str, Any]) -> model.Aggregation:
    """Validate a bare spec, as the operator receives it."""
    return validate(
        {
            "apiVersion": f"{spec.API_GROUP}/{spec.API_VERSION}",
            "kind": spec.KIND,
            "metadata": {"name": name, "namespace": namespace},
            "spec": body,
        }
    )


def _check_object(obj: Mapping[str, Any], issues: Issues) -> tuple[str, str]:
    expected_api = f"{spec.API_GROUP}/{spec.API_VERSION}"
    if obj.get("apiVersion") != expected_api:
        issues.append(
            _issue("apiVersion", f"must be {expected_api}, got {_shown(obj.get('apiVersion'))}")
        )
    if obj.get("kind") != spec.KIND:
        issues.append(_issue("kind", f"must be {spec.KIND}, got {_shown(obj.get('kind'))}"))
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        issues.append(_issue("metadata", f"expected an object, got {_shown(metadata)}"))
        metadata = {}
    name = _text(metadata, "name", issues)
    if not name:
        if metadata.get("name") in (None, ""):
            issues.append(_issue("metadata.name", "is required"))
    elif not _DNS_LABEL.match(name) or len(name) > NAME_MAX:
        issues.append(
            _issue(
                "metadata.name",
                f"'{name}' is not DNS-safe: use at most {NAME_MAX} lower-case letters, digits "
                "and '-', starting and ending with a letter or digit",
            )
        )
    return name, _text(metadata, "namespace", issues) or "default"


def _text(metadata: Mapping[str, Any], key: str, issues: Issues) -> str:
    """A metadata string; "" when absent, or not a string (then an issue says so)."""
    value = metadata.get(key)
    if value is None or isinstance(value, str):
        return value or ""
    issues.append(_issue(f"metadata.{key}", f"expected a string, got {_shown(value)}"))
    return ""


def _shown(value: object) -> str:
    """A value as a message shows it: repr, but cut short and shallow."""
    return reprlib.repr(value)


def _pydantic_issues(exc: pydantic.ValidationError, root: str) -> Issues:
    found: Issues = []
    for error in exc.errors():
        path = _path(root, error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "is required"
        found.append(_issue(path, message))
    return found


def _path(root: str, loc: Sequence[int | str]) -> str:
    text = root
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _resolve(
    name: str, namespace: str, parsed: spec.AggregationSpec, issues: Issues
) -> model.Aggregation | None:
    before = len(issues)
    _check_source(parsed.source, issues)
    _check_solr(parsed.solr, issues)
    _check_storage(parsed.storage, issues)
    _check_autoscale(parsed.spark, issues)
    prefix = parsed.solr.collection_prefix or name
    levels = _check_levels(
        parsed.levels, prefix, durations.parse(parsed.lateness.allowed_lateness), issues
    )
    dims = _check_dimensions(parsed.dimensions, issues)
    cuboids = _check_cuboids(parsed.cuboids, dims, issues)
    kpi_names = _check_kpis(parsed.kpis, issues)
    timing = _check_timing(parsed, levels, issues)
    if len(issues) > before or timing is None or not name:
        return None
    session_timeout, watermark, lateness, trigger = timing
    return model.Aggregation(
        name=name,
        namespace=namespace,
        spec=parsed,
        levels=tuple(levels),
        dimensions=tuple(dims),
        cuboids=tuple(cuboids),
        kpis=tuple(kpi_names),
        session_timeout=session_timeout,
        watermark=watermark,
        allowed_lateness=lateness,
        trigger_interval=trigger,
    )


def _check_source(source: spec.Source, issues: Issues) -> None:
    chosen = source.type
    for kind in ("files", "kafka"):
        given = getattr(source, kind) is not None
        if kind == chosen and not given:
            issues.append(_issue(f"spec.source.{kind}", f"is required when source.type is {kind}"))
        if kind != chosen and given:
            issues.append(
                _issue(f"spec.source.{kind}", f"must be empty when source.type is {chosen}")
            )
    if source.kafka is not None:
        _check_kafka_security(source.kafka.security, issues)


def _check_kafka_security(security: spec.KafkaSecurity, issues: Issues) -> None:
    """SASL needs a mechanism and the Secret with its user; without SASL, neither applies.
    A CA Secret applies to SSL and SASL_SSL only."""
    path = "spec.source.kafka.security"
    if security.ca_secret is not None and not security.protocol.endswith("SSL"):
        issues.append(
            _issue(
                f"{path}.caSecret",
                f"has no effect with protocol {security.protocol}: use SSL or SASL_SSL, or "
                "leave it out",
            )
        )
    if security.protocol.startswith("SASL_"):
        for name, value in (
            ("saslMechanism", security.sasl_mechanism),
            ("credentialsSecret", security.credentials_secret),
        ):
            if value is None:
                issues.append(
                    _issue(f"{path}.{name}", f"is required when protocol is {security.protocol}")
                )
        return
    for name, value in (
        ("saslMechanism", security.sasl_mechanism),
        ("credentialsSecret", security.credentials_secret),
    ):
        if value is not None:
            issues.append(
                _issue(
                    f"{path}.{name}",
                    f"has no effect with protocol {security.protocol}: use SASL_PLAINTEXT or "
                    "SASL_SSL, or leave it out",
                )
            )


def _check_storage(storage: spec.StorageSpec, issues: Issues) -> None:
    if storage.persistent_volume_claim is not None and storage.uri is not None:
        issues.append(_issue("spec.storage", "name at most one of persistentVolumeClaim and uri"))
    if storage.credentials_secret is not None and storage.uri is None:
        issues.append(
            _issue(
                "spec.storage.credentialsSecret",
                "is for an object store: set spec.storage.uri too, or leave it out",
            )
        )


def _check_autoscale(spark: spec.SparkSpec, issues: Issues) -> None:
    """Bounds only with autoscale, a maximum with it, and instances between them."""
    executor, path = spark.executor, "spec.spark.executor"
    if not spark.autoscale:
        for name, value in (
            ("minInstances", executor.min_instances),
            ("maxInstances", executor.max_instances),
        ):
            if value is not None:
                issues.append(
                    _issue(f"{path}.{name}", "has no effect without spec.spark.autoscale: true")
                )
        return
    if executor.max_instances is None:
        issues.append(_issue(f"{path}.maxInstances", "is required when spark.autoscale is true"))
        return
    low = executor.min_instances or 1
    if not low <= executor.instances <= executor.max_instances:
        issues.append(
            _issue(
                f"{path}.instances",
                f"{executor.instances} must lie within minInstances {low} and maxInstances "
                f"{executor.max_instances}",
            )
        )


def _check_solr(solr: spec.SolrTarget, issues: Issues) -> None:
    if (solr.solr_cloud_ref is None) == (solr.url is None):
        issues.append(_issue("spec.solr", "name exactly one of solrCloudRef and url"))
    if solr.url is not None and not solr.url.startswith(("http://", "https://")):
        issues.append(_issue("spec.solr.url", f"'{solr.url}' must start with http:// or https://"))


def _check_levels(
    levels: Sequence[spec.LevelSpec],
    prefix: str,
    lateness: durations.Duration,
    issues: Issues,
) -> list[model.Level]:
    parsed: list[model.Level] = []
    for index, level in enumerate(levels):
        path = f"spec.levels[{index}]"
        granularity = durations.parse(level.granularity)
        retention = durations.parse_retention(level.retention)
        if not _check_granularity(granularity, f"{path}.granularity", issues):
            continue
        too_short = retention is not None and retention.approx_seconds < granularity.approx_seconds
        if too_short and retention is not None:
            issues.append(
                _issue(
                    f"{path}.retention",
                    f"retention {retention.describe()} is shorter than granularity "
                    f"{granularity}{_months_hint(retention)}",
                )
            )
        current = model.Level(
            granularity.short(), granularity, retention, f"{prefix}-{granularity.short()}"
        )
        if parsed and not too_short:
            _check_nesting(parsed[-1], current, lateness, path, issues)
        parsed.append(current)
    return parsed


def _check_granularity(granularity: durations.Duration, path: str, issues: Issues) -> bool:
    text = f"granularity {granularity.describe()}"
    if granularity.is_zero:
        issues.append(_issue(path, f"{text} must be longer than zero"))
    elif granularity.months and granularity.seconds:
        issues.append(_issue(path, f"{text} mixes months with days or hours"))
    elif granularity.is_calendar:
        if 12 % granularity.months and granularity.months % 12:
            issues.append(_issue(path, f"{text} must divide a year (1mo, 2mo, 3mo, 4mo, 6mo, 1y)"))
        else:
            return True
    elif granularity.seconds <= _DAY:
        if _DAY % granularity.seconds:
            issues.append(
                _issue(path, f"{text} does not divide a day; use e.g. 1m, 5m, 15m, 30m, 1h, 6h, 1d")
            )
        else:
            return True
    elif granularity.seconds % durations.WEEK:
        issues.append(
            _issue(path, f"{text}: above a day, use whole weeks (1w) or calendar months (1mo)")
        )
    else:
        return True
    return False


def _check_nesting(
    finer: model.Level,
    coarser: model.Level,
    lateness: durations.Duration,
    path: str,
    issues: Issues,
) -> None:
    if not _is_multiple(coarser.granularity, finer.granularity):
        issues.append(
            _issue(
                f"{path}.granularity",
                f"granularity {coarser.granularity.describe()} is not a multiple of the finer "
                f"level's {finer.granularity.describe()}; levels go finest first and each "
                "coarser bucket must be a whole number of finer ones",
            )
        )
        return
    if _outlives(finer.retention, coarser.retention):
        issues.append(
            _issue(
                f"{path}.retention",
                f"level {coarser.name} is kept {coarser.retention_text}, less than the finer "
                f"level {finer.name} ({finer.retention_text}); a coarser level must be kept at "
                "least as long",
            )
        )
    needed = coarser.granularity.approx_seconds + lateness.approx_seconds
    if finer.retention is not None and finer.retention.approx_seconds < needed:
        issues.append(
            _issue(
                f"{path}.granularity",
                f"level {coarser.name} is rolled up from level {finer.name}, which is kept only "
                f"{finer.retention_text}; keep {finer.name} at least {coarser.granularity} plus "
                f"the allowed lateness {lateness}",
            )
        )


def _is_multiple(coarser: durations.Duration, finer: durations.Duration) -> bool:
    if coarser.approx_seconds <= finer.approx_seconds:
        return False
    if coarser.is_calendar and finer.is_calendar:
        return coarser.months % finer.months == 0
    if coarser.is_calendar:
        # Months hold whole days, and so whole buckets of anything that divides a day.
        return _DAY % finer.seconds == 0
    return not finer.is_calendar and coarser.seconds % finer.seconds == 0


def _outlives(finer: durations.Duration | None, coarser: durations.Duration | None) -> bool:
    """True when the finer level is kept longer than the coarser one."""
    if coarser is None:
        return False
    return finer is None or finer.approx_seconds > coarser.approx_seconds


def _months_hint(retention: durations.Duration) -> str:
    """The seed writes `1h:4m` meaning four months; point that out."""
    text = retention.text.strip()
    short = re.fullmatch(r"(\d+)m", text)
    if short:
        return f"; did you mean {short.group(1)}mo?"
    iso = re.fullmatch(r"PT(\d+)M", text.upper())
    if iso:
        return f"; did you mean P{iso.group(1)}M (months)?"
    return ""


def _check_dimensions(
    declared: Sequence[spec.DimensionSpec], issues: Issues
) -> list[model.Dimension]:
    found: list[model.Dimension] = []
    known_fields = sorted(set(events.OPTIONAL_STRING_FIELDS) | set(_DERIVED_FIELDS))
    for index, dimension in enumerate(declared):
        path = f"spec.dimensions[{index}]"
        if any(d.name == dimension.name for d in found):
            issues.append(_issue(f"{path}.name", f"dimension '{dimension.name}' is declared twice"))
            continue
        standard = dimensions.STANDARD.get(dimension.name)
        field = dimension.field or _default_field(dimension.name)
        if field not in known_fields:
            issues.append(
                _issue(
                    f"{path}.field" if dimension.field else f"{path}.name",
                    f"unknown event field '{field}'{_suggest(field, known_fields)}; "
                    f"known fields: {', '.join(known_fields)}",
                )
            )
            continue
        # A standard dimension keeps its scope; a custom one is read per event.
        scope = standard.scope if standard and field == _default_field(standard.name) else "event"
        found.append(model.Dimension(dimension.name, field, scope, dimension.max_cardinality))
    return found


def _default_field(name: str) -> str:
    """A standard dimension's event field; derived ones (visitor_type) go by their name."""
    standard = dimensions.STANDARD.get(name)
    return (standard.field if standard else None) or name


def _check_cuboids(
    declared: Sequence[spec.CuboidSpec] | None,
    dims: Sequence[model.Dimension],
    issues: Issues,
) -> list[model.Cuboid]:
    if not declared:
        return [model.Cuboid(())] + [model.Cuboid((d.name,)) for d in dims]
    names = [d.name for d in dims]
    found: list[model.Cuboid] = []
    for index, cuboid in enumerate(declared):
        path = f"spec.cuboids[{index}].dimensions"
        bad = False
        for position, dimension in enumerate(cuboid.dimensions):
            if dimension not in names:
                issues.append(
                    _issue(
                        f"{path}[{position}]",
                        f"unknown dimension '{dimension}'{_suggest(dimension, names)}; "
                        f"declared: {', '.join(names) or 'none'}",
                    )
                )
                bad = True
        if len(set(cuboid.dimensions)) != len(cuboid.dimensions):
            issues.append(_issue(path, "names a dimension twice"))
            bad = True
        # Order within a cuboid does not matter; keep the declaration order of dimensions.
        ordered = model.Cuboid(tuple(n for n in names if n in cuboid.dimensions))
        if not bad and ordered in found:
            issues.append(_issue(path, f"cuboid {ordered.name} is declared twice"))
        elif not bad:
            found.append(ordered)
    return found


def _check_kpis(declared: Sequence[str] | None, issues: Issues) -> list[str]:
    catalogue = list(kpis.CATALOGUE)
    if not declared:
        return catalogue
    for index, name in enumerate(declared):
        if name not in kpis.CATALOGUE:
            issues.append(
                _issue(
                    f"spec.kpis[{index}]",
                    f"unknown KPI '{name}'{_suggest(name, catalogue)}; see docs/kpis.md",
                )
            )
        elif name in declared[:index]:
            issues.append(_issue(f"spec.kpis[{index}]", f"KPI '{name}' is listed twice"))
    return [name for name in catalogue if name in declared]


def _check_timing(
    parsed: spec.AggregationSpec, levels: Sequence[model.Level], issues: Issues
) -> tuple[durations.Duration, ...] | None:
    session_timeout = durations.parse(parsed.session_timeout)
    watermark = durations.parse(parsed.lateness.watermark)
    lateness = durations.parse(parsed.lateness.allowed_lateness)
    trigger = durations.parse(parsed.spark.trigger_interval)
    checks: list[tuple[bool, str, Callable[[], str]]] = [
        (
            session_timeout.is_zero
            or session_timeout > _MAX_SESSION_TIMEOUT
            or session_timeout.is_calendar,
            "spec.sessionTimeout",
            lambda: f"session timeout {session_timeout.describe()} must be between 1s and 1d",
        ),
        (
            lateness.approx_seconds < watermark.approx_seconds,
            "spec.lateness.allowedLateness",
            lambda: (
                f"allowed lateness {lateness.describe()} is shorter than the watermark "
                f"{watermark.describe()}"
            ),
        ),
        (
            trigger.is_zero,
            "spec.spark.triggerInterval",
            lambda: "trigger interval must be longer than zero",
        ),
    ]
    if levels:
        finest = levels[0].granularity
        checks.append(
            (
                trigger.approx_seconds >= finest.approx_seconds,
                "spec.spark.triggerInterval",
                lambda: (
                    f"trigger interval {trigger.describe()} is not shorter than the finest "
                    f"granularity {finest}; the current bucket would never be live"
                ),
            )
        )
    failed = [(path, message()) for bad, path, message in checks if bad]
    issues.extend(_issue(path, message) for path, message in failed)
    return None if failed else (session_timeout, watermark, lateness, trigger)


def _check_plan_size(aggregation: model.Aggregation, issues: Issues) -> None:
    estimate = plan.build(aggregation)
    bound = aggregation.spec.limits.max_documents_per_day
    if estimate.documents_per_day > bound:
        biggest = max(estimate.rows, key=lambda row: row.documents_per_day)
        issues.append(
            _issue(
                "spec.cuboids",
                f"the plan writes about {estimate.documents_per_day:,.0f} documents a day, over "
                f"the bound spec.limits.maxDocumentsPerDay={bound:,}; the largest is cuboid "
                f"{biggest.cuboid} at level {biggest.level} ({biggest.documents_per_day:,.0f} a "
                "day): drop it, lower maxCardinality, or raise the bound",
            )
        )


def _suggest(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _issue(path: str, message: str) -> errors.SpecIssue:
    return errors.SpecIssue(path, message)
