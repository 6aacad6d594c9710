"""`llmproxy demo`: four Claude Code sessions in tmux, one per profile, side by side with the request log."""
