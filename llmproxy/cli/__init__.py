"""The command line. Heavy modules are imported inside commands so ``llmproxy --help`` stays fast."""
