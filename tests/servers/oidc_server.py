"""A real OAuth 2.0 / OIDC authorization server on loopback, for tests.

`OIDCServer` runs ``node tests/servers/oidc/server.mjs`` (npm ``oidc-provider``) as a
subprocess in its own process group; `complete_device_flow` plays the human on the
device-verification pages headlessly, the way a browser would.

Needs Node.js and ``npm ci`` run once in ``tests/servers/oidc``.

Run standalone: ``python -m tests.servers.oidc_server [--slow-down] [--device-code-ttl N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urljoin

import httpx

__all__ = [
    "CLIENT_ID",
    "DEVICE_CODE_GRANT_TYPE",
    "OIDC_DIR",
    "DeviceFlowError",
    "OIDCServer",
    "OIDCServerUnavailable",
    "complete_device_flow",
    "oidc_unavailable_reason",
]

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "agentshell-test"
DEVICE_CODE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"


class OIDCServerUnavailable(RuntimeError):
    """Node.js or the npm dependencies of tests/servers/oidc are missing."""


class DeviceFlowError(RuntimeError):
    """The verification pages did not go as expected."""


def oidc_unavailable_reason() -> str | None:
    """Why the OIDC server cannot start here, or None when it can."""
    if shutil.which("node") is None:
        return "Node.js (`node`) is not on PATH; the OIDC test server needs Node.js >= 20"
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        return f"npm dependencies missing: run `npm ci` in {OIDC_DIR}"
    return None


class OIDCServer:
    """``oidc-provider`` on 127.0.0.1 with one public client, ``agentshell-test``.

    Device flow, dev interactions (any login/password), revocation and refresh-token
    rotation are enabled; scopes ``openid offline_access``.
    """

    client_id: str = CLIENT_ID

    def __init__(
        self,
        *,
        port: int = 0,
        device_code_ttl: int | None = None,
        access_token_ttl: int | None = None,
        refresh_token_ttl: int | None = None,
        slow_down: bool = False,
        slow_down_interval: float | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self._port = port
        self._device_code_ttl = device_code_ttl
        self._access_token_ttl = access_token_ttl
        self._refresh_token_ttl = refresh_token_ttl
        self._slow_down = slow_down
        self._slow_down_interval = slow_down_interval
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._issuer: str | None = None
        self._metadata: dict[str, Any] = {}

    # -- properties -------------------------------------------------------------
    @property
    def issuer(self) -> str:
        if self._issuer is None:
            raise RuntimeError("OIDCServer is not started")
        return self._issuer

    @property
    def metadata(self) -> dict[str, Any]:
        """The discovery document (``/.well-known/openid-configuration``)."""
        return dict(self._metadata)

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def device_authorization_endpoint(self) -> str:
        return str(self._metadata["device_authorization_endpoint"])

    @property
    def token_endpoint(self) -> str:
        return str(self._metadata["token_endpoint"])

    @property
    def revocation_endpoint(self) -> str:
        return str(self._metadata["revocation_endpoint"])

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        """What the node process wrote on stderr so far."""
        if self._log is None:
            return ""
        self._log.flush()
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> OIDCServer:
        if self._proc is not None:
            raise RuntimeError("OIDCServer already started")
        reason = oidc_unavailable_reason()
        if reason is not None:
            raise OIDCServerUnavailable(reason)
        node = shutil.which("node")
        assert node is not None
        env = dict(os.environ)
        for name in (
            "PORT",
            "DEVICE_CODE_TTL",
            "ACCESS_TOKEN_TTL",
            "REFRESH_TOKEN_TTL",
            "SLOW_DOWN",
            "SLOW_DOWN_INTERVAL",
        ):
            env.pop(name, None)
        env["PORT"] = str(self._port)
        if self._device_code_ttl is not None:
            env["DEVICE_CODE_TTL"] = str(self._device_code_ttl)
        if self._access_token_ttl is not None:
            env["ACCESS_TOKEN_TTL"] = str(self._access_token_ttl)
        if self._refresh_token_ttl is not None:
            env["REFRESH_TOKEN_TTL"] = str(self._refresh_token_ttl)
        if self._slow_down:
            env["SLOW_DOWN"] = "1"
        if self._slow_down_interval is not None:
            env["SLOW_DOWN_INTERVAL"] = str(self._slow_down_interval)
        env.setdefault("NODE_ENV", "test")

        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="oidc-server-", suffix=".log", delete=False
        )
        self._proc = subprocess.Popen(
            [node, "server.mjs"],
            cwd=OIDC_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        try:
            line = self._read_issuer_line()
            self._issuer = str(json.loads(line)["issuer"])
            response = httpx.get(self.discovery_url, timeout=10.0, trust_env=False)
            response.raise_for_status()
            self._metadata = response.json()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_issuer_line(self) -> str:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        stdout = proc.stdout
        deadline = time.monotonic() + self._startup_timeout
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError(
                        f"OIDC server did not report its issuer within {self._startup_timeout}s;"
                        f" stderr:\n{self.log_text()}"
                    )
                if not selector.select(timeout=remaining):
                    continue
                chunk = os.read(stdout.fileno(), 4096)
                if not chunk:
                    proc.wait(timeout=5)
                    raise RuntimeError(
                        f"OIDC server exited with {proc.returncode} before listening;"
                        f" stderr:\n{self.log_text()}"
                    )
                buffer += chunk
        # Keep draining stdout so the child can never block on a full pipe.
        threading.Thread(target=_drain, args=(stdout,), daemon=True).start()
        return buffer.split(b"\n", 1)[0].decode()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
        log, self._log = self._log, None
        if log is not None:
            log.close()
            Path(log.name).unlink(missing_ok=True)

    def __enter__(self) -> OIDCServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- client-side conveniences for tests --------------------------------------
    def start_device_authorization(
        self, scope: str = "openid offline_access", client: httpx.Client | None = None
    ) -> dict[str, Any]:
        """POST the device authorization request; returns the parsed JSON answer."""
        data = {"client_id": self.client_id, "scope": scope}
        if client is None:
            response = httpx.post(
                self.device_authorization_endpoint, data=data, timeout=10.0, trust_env=False
            )
        else:
            response = client.post(self.device_authorization_endpoint, data=data)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def _drain(stream: IO[bytes]) -> None:
    try:
        while stream.read(4096):
            pass
    except (OSError, ValueError):
        pass


# -- the headless user ---------------------------------------------------------


class _Form:
    def __init__(self, attrs: dict[str, str]) -> None:
        self.id = attrs.get("id", "")
        self.action = attrs.get("action", "")
        self.method = attrs.get("method", "get").lower()
        self.fields: dict[str, str] = {}


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self._current: _Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "form":
            self._current = _Form(values)
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and values.get("name"):
            self._current.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def _forms(response: httpx.Response) -> list[_Form]:
    parser = _FormParser()
    parser.feed(response.text)
    parser.close()
    return parser.forms


def _only_form(response: httpx.Response, what: str) -> _Form:
    forms = _forms(response)
    if len(forms) != 1:
        raise DeviceFlowError(
            f"expected one form ({what}) at {response.url} (HTTP {response.status_code}),"
            f" found {len(forms)}: {_excerpt(response)}"
        )
    return forms[0]


def _excerpt(response: httpx.Response) -> str:
    text = re.sub(r"<style>.*?</style>", "", response.text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split())[:400]


def _submit(
    client: httpx.Client, page: httpx.Response, form: _Form, data: dict[str, str]
) -> httpx.Response:
    url = urljoin(str(page.url), form.action or str(page.url))
    response = client.post(url, data=data)
    if response.status_code >= 400:
        raise DeviceFlowError(f"POST {url} gave HTTP {response.status_code}: {_excerpt(response)}")
    return response


def complete_device_flow(
    verification_uri_complete: str,
    *,
    deny: bool = False,
    login: str = "tester",
    password: str = "secret",
    timeout: float = 10.0,
) -> None:
    """Act as the user in a browser for one pending device authorization.

    Opens ``verification_uri_complete``, confirms the user code, signs in on the dev
    login page and consents (``deny=False``), or aborts on the confirmation page
    (``deny=True``; the next token poll then answers ``access_denied``). Raises
    `DeviceFlowError` when a page is not what the flow expects.
    """
    with httpx.Client(follow_redirects=True, timeout=timeout, trust_env=False) as client:
        page = client.get(verification_uri_complete)
        if page.status_code >= 400:
            raise DeviceFlowError(f"GET {verification_uri_complete} gave HTTP {page.status_code}")
        # 1. The auto-submitting form carrying xsrf and user_code.
        form = _only_form(page, "user code submission")
        if "xsrf" not in form.fields or "user_code" not in form.fields:
            raise DeviceFlowError(f"no xsrf/user_code in the form at {page.url}: {form.fields}")
        page = _submit(client, page, form, dict(form.fields))
        # 2. The confirmation page: confirm=yes, or abort=yes.
        form = _only_form(page, "device confirmation")
        if "confirm" not in form.fields:
            raise DeviceFlowError(f"not a confirmation page at {page.url}: {_excerpt(page)}")
        if deny:
            data = {
                "xsrf": form.fields["xsrf"],
                "user_code": form.fields["user_code"],
                "abort": "yes",
            }
            page = _submit(client, page, form, data)
            if "interrupted" not in page.text:
                raise DeviceFlowError(f"abort was not acknowledged: {_excerpt(page)}")
            return
        page = _submit(client, page, form, dict(form.fields))
        # 3. Interactions (login, then consent) until the success page.
        for _ in range(6):
            if "Sign-in Success" in page.text:
                return
            form = _only_form(page, "interaction")
            prompt = form.fields.get("prompt")
            if prompt == "login":
                page = _submit(
                    client, page, form, {"prompt": "login", "login": login, "password": password}
                )
            elif prompt == "consent":
                page = _submit(client, page, form, {"prompt": "consent"})
            else:
                raise DeviceFlowError(f"unexpected interaction at {page.url}: {_excerpt(page)}")
        raise DeviceFlowError(f"device flow did not finish: {_excerpt(page)}")


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the loopback OIDC test server.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--device-code-ttl", type=int)
    parser.add_argument("--access-token-ttl", type=int)
    parser.add_argument("--refresh-token-ttl", type=int)
    parser.add_argument("--slow-down", action="store_true")
    args = parser.parse_args(argv)
    server = OIDCServer(
        port=args.port,
        device_code_ttl=args.device_code_ttl,
        access_token_ttl=args.access_token_ttl,
        refresh_token_ttl=args.refresh_token_ttl,
        slow_down=args.slow_down,
    )
    with server:
        print(json.dumps({"issuer": server.issuer, "client_id": server.client_id}), flush=True)
        try:
            while server.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    _main()
