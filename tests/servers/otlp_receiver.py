"""A real OTLP/HTTP receiver on loopback, for tests.

Accepts ``POST /v1/traces``, ``/v1/metrics`` and ``/v1/logs`` with
``Content-Type: application/x-protobuf`` (optionally ``Content-Encoding: gzip`` or
``deflate``), decodes them with ``opentelemetry-proto`` and answers the matching
``Export*ServiceResponse``. Decoded data is kept as plain dicts:

- span: ``name, kind ("CLIENT", "INTERNAL", ...), trace_id, span_id, parent_span_id
  (hex; parent None for a root), attributes, status {"code": "UNSET"|"OK"|"ERROR",
  "message"}, start_time_unix_nano, end_time_unix_nano, events, resource, scope``
- metric data point: ``name, type ("sum"|"gauge"|"histogram"|...), unit, attributes,
  value`` (sum/gauge) or ``count, sum, bucket_counts, explicit_bounds, min, max``
  (histogram), plus ``resource, scope``
- log record: ``body, severity_text, severity_number, attributes, trace_id, span_id,
  resource, scope``

Point an exporter at it with ``OTLPSpanExporter(endpoint=receiver.traces_endpoint)`` or
``OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint``.

Run standalone: ``python -m tests.servers.otlp_receiver`` (prints what arrives).
"""

from __future__ import annotations

import argparse
import gzip
import json
import signal
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any, cast
from urllib.parse import urlsplit

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.servers._http import LoopbackHTTPServer, LoopbackServerBase, QuietHandler

__all__ = ["OTLPReceiver", "any_value", "flatten_attributes"]

Signal = str  # "traces" | "metrics" | "logs"
Message = Any  # a protobuf message (google.protobuf ships no type stubs)

_REQUEST_TYPES: dict[str, tuple[Any, Any]] = {
    "traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
    "logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
}


def any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as a Python value (list for arrays, dict for kvlists)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return flatten_attributes(value.kvlist_value.values)
    return getattr(value, which)


def flatten_attributes(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    return {item.key: any_value(item.value) for item in attributes}


def _hex(raw: bytes) -> str | None:
    return raw.hex() if raw else None


def _kind_name(kind: int) -> str:
    return str(Span.SpanKind.Name(cast(Any, kind))).removeprefix("SPAN_KIND_")


def _status_name(code: int) -> str:
    return str(Status.StatusCode.Name(cast(Any, code))).removeprefix("STATUS_CODE_")


class _Handler(QuietHandler):
    server: LoopbackHTTPServer

    def do_POST(self) -> None:
        receiver = cast(OTLPReceiver, self.server.owner)
        body = self.read_body()
        path = urlsplit(self.path).path.rstrip("/")
        signal_name = path.removeprefix("/v1/")
        if path.count("/") != 2 or signal_name not in _REQUEST_TYPES:
            self._reply(404, b"unknown OTLP path", "text/plain")
            return
        failure = receiver.failure_status
        if failure is not None:
            self._reply(failure, b"scripted failure", "text/plain")
            return
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/x-protobuf":
            self._reply(415, b"only application/x-protobuf is supported", "text/plain")
            return
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        request_type, response_type = _REQUEST_TYPES[signal_name]
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding not in ("", "identity"):
                self._reply(415, f"unsupported Content-Encoding {encoding}".encode(), "text/plain")
                return
            message = request_type()
            message.ParseFromString(body)
        except Exception as exc:  # gzip/zlib errors, protobuf DecodeError
            self._reply(400, f"cannot decode: {exc}".encode(), "text/plain")
            return
        receiver._receive(signal_name, message, dict(self.headers.items()))
        self._reply(200, response_type().SerializeToString(), "application/x-protobuf")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_bytes(status, body, content_type)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True


class OTLPReceiver(LoopbackServerBase):
    """The receiver. ``with OTLPReceiver() as receiver: ... receiver.endpoint ...``."""

    handler_class = _Handler

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._spans: list[dict[str, Any]] = []
        self._metrics: dict[str, list[dict[str, Any]]] = {}
        self._logs: list[dict[str, Any]] = []
        self._requests: list[tuple[Signal, Message, dict[str, str]]] = []
        self.failure_status: int | None = None

    # -- addresses ----------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: the OTLP base endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_endpoint(self) -> str:
        return f"{self.endpoint}/v1/traces"

    @property
    def metrics_endpoint(self) -> str:
        return f"{self.endpoint}/v1/metrics"

    @property
    def logs_endpoint(self) -> str:
        return f"{self.endpoint}/v1/logs"

    # -- behaviour ------------------------------------------------------------------
    def fail_with(self, status: int | None) -> None:
        """Answer every export with this HTTP status (None: accept again)."""
        self.failure_status = status

    def clear(self) -> None:
        with self._cond:
            self._spans.clear()
            self._metrics.clear()
            self._logs.clear()
            self._requests.clear()

    # -- what arrived ---------------------------------------------------------------
    @property
    def spans(self) -> list[dict[str, Any]]:
        with self._cond:
            return list(self._spans)

    @property
    def metrics(self) -> dict[str, list[dict[str, Any]]]:
        """Metric name -> every data point received for it, in arrival order."""
        with self._cond:
            return {name: list(points) for name, points in self._metrics.items()}

    @property
    def logs(self) -> list[dict[str, Any]]:
        with self._cond:
            return list(self._logs)

    @property
    def requests(self) -> list[tuple[Signal, Message, dict[str, str]]]:
        """(signal, decoded Export*ServiceRequest, request headers) per export call."""
        with self._cond:
            return list(self._requests)

    def spans_named(self, name: str) -> list[dict[str, Any]]:
        return [span for span in self.spans if span["name"] == name]

    def wait_for_spans(self, n: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``n`` spans arrived; returns all spans so far."""
        return self._wait(
            lambda: len(self._spans) >= n, lambda: list(self._spans), timeout, f"{n} span(s)"
        )

    def wait_for_metric(self, name: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until a data point of metric ``name`` arrived; returns its points so far."""
        return self._wait(
            lambda: bool(self._metrics.get(name)),
            lambda: list(self._metrics[name]),
            timeout,
            f"metric {name!r}",
        )

    def wait_for_logs(self, n: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        return self._wait(
            lambda: len(self._logs) >= n, lambda: list(self._logs), timeout, f"{n} log record(s)"
        )

    def _wait(
        self,
        ready: Callable[[], bool],
        result: Callable[[], list[dict[str, Any]]],
        timeout: float,
        what: str,
    ) -> list[dict[str, Any]]:
        with self._cond:
            if not self._cond.wait_for(ready, timeout=timeout):
                raise TimeoutError(
                    f"OTLP receiver: no {what} within {timeout}s; have {len(self._spans)} span(s)"
                    f" {[s['name'] for s in self._spans]}, metrics {sorted(self._metrics)},"
                    f" {len(self._logs)} log record(s)"
                )
            return result()

    # -- decoding -------------------------------------------------------------------
    def _receive(self, signal_name: Signal, message: Message, headers: dict[str, str]) -> None:
        if isinstance(message, ExportTraceServiceRequest):
            spans = list(self._decode_spans(message))
            with self._cond:
                self._spans.extend(spans)
                self._requests.append((signal_name, message, headers))
                self._cond.notify_all()
        elif isinstance(message, ExportMetricsServiceRequest):
            points = list(self._decode_metrics(message))
            with self._cond:
                for point in points:
                    self._metrics.setdefault(point["name"], []).append(point)
                self._requests.append((signal_name, message, headers))
                self._cond.notify_all()
        elif isinstance(message, ExportLogsServiceRequest):
            logs = list(self._decode_logs(message))
            with self._cond:
                self._logs.extend(logs)
                self._requests.append((signal_name, message, headers))
                self._cond.notify_all()

    @staticmethod
    def _decode_spans(message: ExportTraceServiceRequest) -> Iterable[dict[str, Any]]:
        for resource_spans in message.resource_spans:
            resource = flatten_attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope.name
                for span in scope_spans.spans:
                    yield {
                        "name": span.name,
                        "kind": _kind_name(span.kind),
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": _hex(span.parent_span_id),
                        "attributes": flatten_attributes(span.attributes),
                        "status": {
                            "code": _status_name(span.status.code),
                            "message": span.status.message,
                        },
                        "start_time_unix_nano": span.start_time_unix_nano,
                        "end_time_unix_nano": span.end_time_unix_nano,
                        "events": [
                            {
                                "name": event.name,
                                "time_unix_nano": event.time_unix_nano,
                                "attributes": flatten_attributes(event.attributes),
                            }
                            for event in span.events
                        ],
                        "resource": resource,
                        "scope": scope,
                    }

    @staticmethod
    def _decode_metrics(message: ExportMetricsServiceRequest) -> Iterable[dict[str, Any]]:
        for resource_metrics in message.resource_metrics:
            resource = flatten_attributes(resource_metrics.resource.attributes)
            for scope_metrics in resource_metrics.scope_metrics:
                scope = scope_metrics.scope.name
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    base = {
                        "name": metric.name,
                        "type": kind,
                        "unit": metric.unit,
                        "description": metric.description,
                        "resource": resource,
                        "scope": scope,
                    }
                    if kind in ("sum", "gauge"):
                        data = metric.sum if kind == "sum" else metric.gauge
                        for number in data.data_points:
                            value_kind = number.WhichOneof("value")
                            yield {
                                **base,
                                "attributes": flatten_attributes(number.attributes),
                                "value": getattr(number, value_kind) if value_kind else None,
                                "time_unix_nano": number.time_unix_nano,
                            }
                    elif kind == "histogram":
                        for hist in metric.histogram.data_points:
                            yield {
                                **base,
                                "attributes": flatten_attributes(hist.attributes),
                                "count": hist.count,
                                "sum": hist.sum if hist.HasField("sum") else None,
                                "bucket_counts": list(hist.bucket_counts),
                                "explicit_bounds": list(hist.explicit_bounds),
                                "min": hist.min if hist.HasField("min") else None,
                                "max": hist.max if hist.HasField("max") else None,
                                "time_unix_nano": hist.time_unix_nano,
                            }
                    elif kind == "exponential_histogram":
                        for exp in metric.exponential_histogram.data_points:
                            yield {
                                **base,
                                "attributes": flatten_attributes(exp.attributes),
                                "count": exp.count,
                                "sum": exp.sum if exp.HasField("sum") else None,
                                "scale": exp.scale,
                                "min": exp.min if exp.HasField("min") else None,
                                "max": exp.max if exp.HasField("max") else None,
                                "time_unix_nano": exp.time_unix_nano,
                            }
                    elif kind == "summary":
                        for summary in metric.summary.data_points:
                            yield {
                                **base,
                                "attributes": flatten_attributes(summary.attributes),
                                "count": summary.count,
                                "sum": summary.sum,
                                "time_unix_nano": summary.time_unix_nano,
                            }

    @staticmethod
    def _decode_logs(message: ExportLogsServiceRequest) -> Iterable[dict[str, Any]]:
        for resource_logs in message.resource_logs:
            resource = flatten_attributes(resource_logs.resource.attributes)
            for scope_logs in resource_logs.scope_logs:
                scope = scope_logs.scope.name
                for record in scope_logs.log_records:
                    yield {
                        "body": any_value(record.body),
                        "severity_text": record.severity_text,
                        "severity_number": int(record.severity_number),
                        "attributes": flatten_attributes(record.attributes),
                        "trace_id": _hex(record.trace_id),
                        "span_id": _hex(record.span_id),
                        "time_unix_nano": record.time_unix_nano,
                        "resource": resource,
                        "scope": scope,
                    }


def _main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description="Run the loopback OTLP/HTTP receiver.").parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with OTLPReceiver() as receiver:
        print(json.dumps({"endpoint": receiver.endpoint}), flush=True)
        seen_spans = 0
        seen_points = 0
        try:
            while not done.wait(0.5):
                spans = receiver.spans
                for span in spans[seen_spans:]:
                    print(json.dumps({"span": span}, default=str), flush=True)
                seen_spans = len(spans)
                points = [p for ps in receiver.metrics.values() for p in ps]
                if len(points) != seen_points:
                    print(json.dumps({"metric_points": len(points), "at": time.time()}), flush=True)
                    seen_points = len(points)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    _main()
