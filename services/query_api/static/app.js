// Charts of the strategy page: plotly.js (served from the plotly package by query_api) drawing the
// page's JSON data island #series-data (the same document as /p/strategies/{id}/series).
(function () {
  "use strict";
  var island = document.getElementById("series-data");
  if (!island) { return; }
  var data = JSON.parse(island.textContent);
  var config = { responsive: true, displaylogo: false, displayModeBar: false };
  var font = { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12, color: "#1f2937" };
  var STRATEGY = "#1d4ed8", BENCHMARK = "#9ca3af", LOSS = "#b91c1c", VOL = "#d97706";

  function layout(extra) {
    var base = {
      margin: { l: 52, r: 16, t: 8, b: 36 }, font: font, hovermode: "x unified",
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
      xaxis: { type: "date", gridcolor: "#eef0f3" }, yaxis: { gridcolor: "#eef0f3", zerolinecolor: "#d1d5db" }
    };
    for (var k in extra) { if (Object.prototype.hasOwnProperty.call(extra, k)) { base[k] = extra[k]; } }
    return base;
  }

  function empty(id, text) {  // nothing to draw (yet): say so; data-drawn="empty" tells tests apart
    var node = document.getElementById(id);
    if (node) { node.classList.add("chart-empty"); node.textContent = text; node.setAttribute("data-drawn", "empty"); }
  }

  function draw(id, traces, extra) {
    var node = document.getElementById(id);
    if (!node) { return; }
    window.Plotly.newPlot(node, traces, layout(extra), config).then(function () {
      node.setAttribute("data-drawn", "true");
    });
  }

  if (!window.Plotly) { return; }
  var noData = "Not enough history to draw this yet.";
  if (!data.dates.length) {
    ["chart-equity", "chart-drawdown", "chart-rolling", "chart-monthly"].forEach(function (id) { empty(id, noData); });
    return;
  }

  var equity = [{ x: data.dates, y: data.equity, name: "Strategy", type: "scatter", mode: "lines",
                  line: { color: STRATEGY, width: 2 }, hovertemplate: "%{y:.2f}<extra>Strategy</extra>" }];
  if (data.benchmark) {
    equity.push({ x: data.dates, y: data.benchmark, name: data.benchmark_symbol, type: "scatter", mode: "lines",
                  line: { color: BENCHMARK, width: 1.5 }, connectgaps: true,
                  hovertemplate: "%{y:.2f}<extra>" + data.benchmark_symbol + "</extra>" });
  }
  draw("chart-equity", equity, {});

  function percentFormat(values) {  // a shallow series needs decimals to tell its ticks apart
    var span = 0;
    values.forEach(function (v) { if (v !== null && Math.abs(v) > span) { span = Math.abs(v); } });
    return span < 0.05 ? ".1%" : ".0%";
  }

  draw("chart-drawdown", [{ x: data.dates, y: data.drawdown, name: "Drawdown", type: "scatter", mode: "lines",
                            fill: "tozeroy", line: { color: LOSS, width: 1 }, fillcolor: "rgba(185,28,28,0.25)",
                            hovertemplate: "%{y:.2%}<extra>Drawdown</extra>" }],
       { yaxis: { tickformat: percentFormat(data.drawdown), gridcolor: "#eef0f3", rangemode: "tozero" },
         showlegend: false });

  var hasRolling = data.rolling_sharpe.some(function (v) { return v !== null; });
  if (hasRolling) {
    // two stacked panels on one x axis (Sharpe above, volatility below), each autoranged to its own
    // data, so neither squashes or clips the other as they did on twin y axes
    draw("chart-rolling", [
      { x: data.dates, y: data.rolling_sharpe, name: "Sharpe", type: "scatter", mode: "lines", yaxis: "y",
        line: { color: STRATEGY, width: 1.5 }, hovertemplate: "%{y:.2f}<extra>Sharpe</extra>" },
      { x: data.dates, y: data.rolling_volatility, name: "Volatility", type: "scatter", mode: "lines", yaxis: "y2",
        line: { color: VOL, width: 1.5 }, hovertemplate: "%{y:.1%}<extra>Volatility</extra>" }
    ], { showlegend: false,
         xaxis: { type: "date", anchor: "y2", gridcolor: "#eef0f3" },
         yaxis: { domain: [0.54, 1], autorange: true, automargin: true, title: { text: "Sharpe" },
                  gridcolor: "#eef0f3", zerolinecolor: "#9ca3af" },
         yaxis2: { domain: [0, 0.46], autorange: true, rangemode: "tozero", automargin: true,
                   title: { text: "Volatility" }, tickformat: percentFormat(data.rolling_volatility),
                   gridcolor: "#eef0f3", zerolinecolor: "#d1d5db" },
         margin: { l: 52, r: 12, t: 8, b: 36 } });
  } else {
    empty("chart-rolling", "Rolling figures need " + data.rolling_window + " days of returns.");
  }

  var m = data.monthly;
  if (m.years.length) {
    var text = m.returns.map(function (row) {
      return row.map(function (v) { return v === null ? "" : (v * 100).toFixed(1) + "%"; });
    });
    var node = document.getElementById("chart-monthly");
    var narrow = node && node.clientWidth < 560;  // a phone: figures on tap (hover), not in 13 tiny cells
    if (node) { node.style.height = Math.max(120, 48 + 30 * m.years.length) + "px"; }
    draw("chart-monthly", [{
      type: "heatmap", x: m.columns, y: m.years, z: m.returns, text: text, texttemplate: narrow ? "" : "%{text}",
      textfont: { size: 11 }, zmid: 0, showscale: false, xgap: 2, ygap: 2, hoverongaps: false,
      colorscale: [[0, "#b91c1c"], [0.5, "#f9fafb"], [1, "#15803d"]],
      hovertemplate: "%{x} %{y}: %{text}<extra></extra>"
    }], { xaxis: { type: "category", side: "top", fixedrange: true, tickangle: 0, tickvals: m.columns,
                   // a phone: one letter a month ("Yr" for the year), so no label is clipped
                   ticktext: narrow ? m.columns.map(function (c) { return c.length > 3 ? "Yr" : c.slice(0, 1); })
                                    : m.columns }, hovermode: "closest",
          yaxis: { type: "category", autorange: "reversed", fixedrange: true }, margin: { l: 48, r: 8, t: 28, b: 8 } });
  } else {
    empty("chart-monthly", noData);
  }
}());
