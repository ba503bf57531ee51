"""agentshell_chat: plain text is a message to the session's chat agent.

See docs/chat.md. The plugin module is :mod:`agentshell_chat.plugin`; the conversation
itself (history, branches, turns) is :mod:`agentshell_chat.session`.
"""
