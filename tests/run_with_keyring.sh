#!/bin/sh
# Run a command with a real, unlocked Secret Service keyring (gnome-keyring) on a
# private D-Bus session bus, with a throw-away HOME so no real keyring is touched.
#
#   usage: tests/run_with_keyring.sh COMMAND [ARG...]
#   e.g.:  tests/run_with_keyring.sh .venv/bin/python -m pytest tests/plugins/device_login/test_device_login_e2e.py
#
# Needs dbus-run-session and gnome-keyring-daemon (Debian/Ubuntu:
# apt-get install -y gnome-keyring dbus libsecret-tools dbus-x11). The exit status is
# the command's. Set KEEP_KEYRING_HOME=1 to keep the temporary HOME for inspection.
set -eu

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi
for tool in dbus-run-session gnome-keyring-daemon; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$0: $tool not found (apt-get install -y gnome-keyring dbus dbus-x11)" >&2
        exit 127
    fi
done

keyring_home=$(mktemp -d "${TMPDIR:-/tmp}/agentshell-keyring.XXXXXX")
if [ "${KEEP_KEYRING_HOME:-0}" != 1 ]; then
    trap 'rm -rf "$keyring_home"' EXIT
fi
mkdir -p "$keyring_home/.local/share/keyrings" "$keyring_home/.cache" "$keyring_home/run"
chmod 700 "$keyring_home/run"

status=0
HOME="$keyring_home" XDG_DATA_HOME="$keyring_home/.local/share" \
XDG_CACHE_HOME="$keyring_home/.cache" XDG_RUNTIME_DIR="$keyring_home/run" \
    dbus-run-session -- sh -c '
        # --unlock reads the new login keyring password on stdin; without it every
        # write fails with "Prompt dismissed"
        eval "$(printf test | gnome-keyring-daemon --unlock --components=secrets)"
        export GNOME_KEYRING_CONTROL 2>/dev/null || true
        "$@"
    ' sh "$@" || status=$?
exit "$status"
