"""speckit_consensus: multi-agent spec-kit stages with computed consensus (see docs/spec-kit.md)."""
