// The strategy page's charts are drawn by the server (services/query_api/charts.py, SVG and a table);
// this adds their hover read-out: the day under the pointer, each line's value that day (from the
// page's data island #series-data, the document of /p/strategies/{id}/series), a heatmap cell's return.
(function () {
  "use strict";
  var island = document.getElementById("series-data");
  if (!island) { return; }
  var data = JSON.parse(island.textContent);
  var times = data.dates.map(function (d) { return Date.parse(d + "T00:00:00Z"); });

  function el(tag, cls, parent) {
    var node = document.createElement(tag);
    node.className = cls;
    parent.appendChild(node);
    return node;
  }

  function format(v, fmt, digits) {
    var text = fmt === "num" ? v.toFixed(2) : (v * 100).toFixed(digits === undefined ? 2 : digits) + "%";
    return parseFloat(text) === 0 ? text.replace("-", "") : text.replace("-", "\u2212");
  }

  function nearest(t) {  // the index of the day closest to time t (days are sorted)
    var lo = 0, hi = times.length - 1;
    while (hi - lo > 1) {
      var mid = (lo + hi) >> 1;
      if (times[mid] <= t) { lo = mid; } else { hi = mid; }
    }
    return Math.abs(times[hi] - t) < Math.abs(t - times[lo]) ? hi : lo;
  }

  function row(tip, cls, label, value) {
    var line = el("div", "", tip);
    el("span", "k " + cls, line);
    line.appendChild(document.createTextNode(label + " "));
    el("b", "", line).textContent = value;
  }

  function place(tip, box, x, y) {  // beside the pointer, inside the chart
    tip.style.display = "block";
    var left = x + 14;
    if (left + tip.offsetWidth > box.clientWidth) { left = Math.max(0, x - 14 - tip.offsetWidth); }
    tip.style.left = left + "px";
    tip.style.top = Math.max(0, y - tip.offsetHeight / 2) + "px";
  }

  function plot(node) {
    var panels = Array.prototype.slice.call(node.querySelectorAll(".panel"));
    if (!panels.length || !times.length) { return; }
    var tip = el("div", "chart-tip", node);
    tip.style.display = "none";
    var marks = panels.map(function (panel) {
      var cursor = el("div", "cursor", panel);
      var dots = Array.prototype.map.call(panel.querySelectorAll("path.line"), function (path) {
        var cls = path.getAttribute("class").replace("line", "").trim();
        return { path: path, dot: el("div", "dot " + cls, panel), cls: cls };
      });
      return { panel: panel, cursor: cursor, dots: dots, low: +panel.dataset.low, high: +panel.dataset.high,
               fmt: panel.dataset.format };
    });
    function hide() {
      tip.style.display = "none";
      marks.forEach(function (m) {
        m.cursor.style.display = "none";
        m.dots.forEach(function (d) { d.dot.style.display = "none"; });
      });
    }
    function show(event) {
      var svg = panels[0].querySelector("svg").getBoundingClientRect();
      var fx = Math.min(1, Math.max(0, (event.clientX - svg.left) / svg.width));
      var i = nearest(times[0] + fx * (times[times.length - 1] - times[0]));
      var span = times[times.length - 1] - times[0];
      var x = (span > 0 ? (times[i] - times[0]) / span : 0) * 100;
      tip.textContent = "";
      el("div", "", tip).textContent = data.dates[i];
      marks.forEach(function (m) {
        m.cursor.style.display = "block";
        m.cursor.style.left = x + "%";
        m.dots.forEach(function (d) {
          var values = data[d.path.dataset.series], v = values ? values[i] : null;
          if (v === null || v === undefined) { d.dot.style.display = "none"; return; }
          d.dot.style.display = "block";
          d.dot.style.left = x + "%";
          d.dot.style.top = (m.high - v) / (m.high - m.low) * 100 + "%";
          row(tip, d.cls, d.path.dataset.label, format(v, m.fmt));
        });
      });
      var box = node.getBoundingClientRect();
      place(tip, node, svg.left - box.left + x / 100 * svg.width, event.clientY - box.top);
    }
    hide();
    node.addEventListener("pointermove", show);
    node.addEventListener("pointerdown", show);
    node.addEventListener("pointerleave", hide);
  }

  function heatmap(node) {
    var tip = el("div", "chart-tip", node);
    tip.style.display = "none";
    function show(event) {
      var cell = event.target.closest ? event.target.closest("td[data-label]") : null;
      if (!cell) { tip.style.display = "none"; return; }
      var v = cell.dataset.value;
      tip.textContent = cell.dataset.label + ": " + (v === "" ? "no return" : format(+v, "pct", 1));
      var box = node.getBoundingClientRect(), rect = cell.getBoundingClientRect();
      place(tip, node, rect.right - box.left, rect.top - box.top + rect.height / 2);
    }
    node.addEventListener("pointerover", show);
    node.addEventListener("pointerdown", show);
    node.addEventListener("pointerleave", function () { tip.style.display = "none"; });
  }

  Array.prototype.forEach.call(document.querySelectorAll(".chart.plot"), plot);
  Array.prototype.forEach.call(document.querySelectorAll(".chart.chart-monthly[data-drawn='true']"), heatmap);
}());
