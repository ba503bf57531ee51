"""speckit_device_login: the OAuth 2.0 device authorization grant (RFC 8628) as an
agentshell auth provider — ``/login``, ``/logout``, ``/auth status``, tokens in the
keyring, refreshed before they expire."""
