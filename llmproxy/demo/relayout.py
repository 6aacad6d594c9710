"""Size the demo grid's panes for its window's current size (the grid's ``window-resized`` hook runs this).

``python -m llmproxy.demo.relayout SOCKET_PATH WINDOW_ID``; only tmux commands, no libtmux (it runs on every
resize).
"""

from __future__ import annotations

import subprocess
import sys

from llmproxy.demo.setup import Geometry, geometry

ROLE = "@llmproxy_role"


def tmux(socket_path: str, *args: str) -> str:
    return subprocess.run(["tmux", "-S", socket_path, *args], capture_output=True, text=True, timeout=10).stdout


def commands(g: Geometry, panes: dict[str, str]) -> list[list[str]]:
    """tmux commands that give each pane (by role) its size in ``g``."""
    cmds = []
    if "log" in panes:
        cmds.append(["resize-pane", "-t", panes["log"], "-y", str(g.log)])
    for role, rows in (("fast", g.top), ("intelligent", g.top)):
        if role in panes:
            cmds.append(["resize-pane", "-t", panes[role], "-y", str(rows)])
    if "fast" in panes:
        cmds.append(["resize-pane", "-t", panes["fast"], "-x", str(g.left)])
    if "balanced" in panes:
        cmds.append(["resize-pane", "-t", panes["balanced"], "-x", str(g.left)])
    return cmds


def relayout(socket_path: str, window: str) -> Geometry:
    size = tmux(socket_path, "display-message", "-p", "-t", window, "#{window_width} #{window_height}").split()
    g = geometry(int(size[0]), int(size[1]))
    panes = {}
    for line in tmux(socket_path, "list-panes", "-t", window, "-F", f"#{{pane_id}} #{{{ROLE}}}").splitlines():
        pid, _, role = line.partition(" ")
        if role:
            panes[role] = pid
    for cmd in commands(g, panes):
        tmux(socket_path, *cmd)
    return g


if __name__ == "__main__":
    relayout(sys.argv[1], sys.argv[2])
