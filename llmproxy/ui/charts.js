// llmproxy dashboard charts: small hand-written SVG line charts and HTML bar lists, no dependencies.
// Charts.line(el, spec) and Charts.bars(el, items, opts) redraw el from scratch; each leaves a
// data-points attribute (how many values it drew) for tests and screen readers.
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, parent) {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    if (parent) parent.appendChild(el);
    return el;
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 4, 6, 8, 10]) if (m * p >= v) return m * p;  // quarters stay round
    return 10 * p;
  }

  function hhmm(t) {
    const d = new Date(t);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  // spec: {x: [ms...], series: [{name, values: [number|null...], cls}], fmt: v => string, x0, x1, empty}
  function line(el, spec) {
    const W = el.clientWidth || 320, H = 130;  // the svg's CSS height: drawn 1:1, never letterboxed
    const pad = {l: 46, r: 10, t: 8, b: 20};
    el.replaceChildren();
    const root = svg("svg", {viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img"}, el);
    const x0 = spec.x0, x1 = spec.x1;
    let max = 0, points = 0;
    for (const s of spec.series) for (const v of s.values) if (v != null) { max = Math.max(max, v); points++; }
    el.dataset.points = points;
    const ymax = niceMax(max);
    const X = t => pad.l + (W - pad.l - pad.r) * (t - x0) / Math.max(1, x1 - x0);
    const Y = v => H - pad.b - (H - pad.t - pad.b) * v / ymax;
    const grid = svg("g", {class: "grid"}, root);
    for (let i = 0; i <= 4; i++) {
      const v = ymax * i / 4, y = Y(v);
      svg("line", {x1: pad.l, x2: W - pad.r, y1: y, y2: y}, grid);
      const label = svg("text", {x: pad.l - 6, y: y + 3, "text-anchor": "end"}, grid);
      label.textContent = spec.fmt ? spec.fmt(v) : String(v);
    }
    const step = spec.tick || 10 * 60 * 1000;
    for (let t = Math.ceil(x0 / step) * step; t <= x1; t += step) {
      const label = svg("text", {x: X(t), y: H - 5, "text-anchor": "middle"}, grid);
      label.textContent = hhmm(t);
    }
    if (!points) {
      const t = svg("text", {x: (W + pad.l) / 2, y: H / 2, "text-anchor": "middle", class: "empty"}, root);
      t.textContent = spec.empty || "no requests in the last hour";
      return;
    }
    spec.series.forEach((s, si) => {
      let d = "", open = false;
      s.values.forEach((v, i) => {
        if (v == null) { open = false; return; }
        d += (open ? "L" : "M") + X(spec.x[i]).toFixed(1) + " " + Y(v).toFixed(1);
        open = true;
      });
      svg("path", {d, class: "series s" + si + (s.cls ? " " + s.cls : "")}, root);
      s.values.forEach((v, i) => {  // lone points would be invisible as paths
        const prev = s.values[i - 1], next = s.values[i + 1];
        if (v != null && prev == null && next == null)
          svg("circle", {cx: X(spec.x[i]), cy: Y(v), r: 2.5, class: "dot s" + si}, root);
      });
    });
    const legend = document.createElement("div");
    legend.className = "legend";
    spec.series.forEach((s, si) => {
      const item = document.createElement("span");
      item.className = "key s" + si + (s.cls ? " " + s.cls : "");
      item.textContent = s.name;
      legend.appendChild(item);
    });
    el.appendChild(legend);
    // hover: the values at the nearest bucket
    const cursor = svg("line", {class: "cursor", y1: pad.t, y2: H - pad.b, x1: 0, x2: 0, visibility: "hidden"}, root);
    const tip = document.createElement("div");
    tip.className = "tip";
    tip.hidden = true;
    el.appendChild(tip);
    root.addEventListener("mousemove", ev => {
      const box = root.getBoundingClientRect();
      const px = (ev.clientX - box.left) * W / box.width;
      let best = 0, bd = Infinity;
      spec.x.forEach((t, i) => { const d = Math.abs(X(t) - px); if (d < bd) { bd = d; best = i; } });
      cursor.setAttribute("x1", X(spec.x[best]));
      cursor.setAttribute("x2", X(spec.x[best]));
      cursor.setAttribute("visibility", "visible");
      tip.hidden = false;
      tip.textContent = hhmm(spec.x[best]) + "  " + spec.series.map(s =>
        s.name + " " + (s.values[best] == null ? "–" : (spec.fmt ? spec.fmt(s.values[best]) : s.values[best]))).join("  ");
    });
    root.addEventListener("mouseleave", () => { tip.hidden = true; cursor.setAttribute("visibility", "hidden"); });
  }

  // items: [{label, value, title}] drawn as horizontal bars, largest first
  function bars(el, items, opts = {}) {
    el.replaceChildren();
    const list = items.filter(i => i.value > 0).sort((a, b) => b.value - a.value).slice(0, opts.max || 8);
    el.dataset.points = list.reduce((n, i) => n + i.value, 0);
    if (!list.length) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = opts.empty || "no requests in the last hour";
      el.appendChild(p);
      return;
    }
    const top = list[0].value;
    for (const item of list) {
      const row = document.createElement("div");
      row.className = "bar";
      row.title = item.title || item.label;
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = item.label;
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill" + (item.cls ? " " + item.cls : "");
      fill.style.width = Math.max(1, 100 * item.value / top) + "%";
      track.appendChild(fill);
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = opts.fmt ? opts.fmt(item.value) : String(item.value);
      row.append(label, track, value);
      el.appendChild(row);
    }
  }

  return {line, bars};
})();
