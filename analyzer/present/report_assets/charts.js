// efftrace report charts: time series on one shared, zoomable time axis, and static bar charts.
// Data comes from the JSON block the page embeds; every text from it goes through textContent.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("efftrace-data").textContent);
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
  const view = { lo: data.range_s[0], hi: data.range_s[1] };
  const timeCharts = [];
  let drawn = 0;
  let pending = false;

  function clock(seconds) {
    const sign = seconds < 0 ? "-" : "";
    let s = Math.abs(seconds);
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    const sec = s < 10 ? "0" + s.toFixed(s % 1 ? 1 : 0) : s.toFixed(s % 1 ? 1 : 0);
    return sign + (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + sec;
  }

  function niceStep(span, target) {
    const raw = span / target;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const k of [1, 2, 5, 10]) if (k * power >= raw) return k * power;
    return 10 * power;
  }

  function setup(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px system-ui, sans-serif";
    return { ctx, width, height };
  }

  const PAD = { left: 52, right: 12, top: 18, bottom: 22 };

  class TimeChart {
    constructor(element, spec) {
      this.spec = spec;
      this.canvas = element.querySelector("canvas");
      this.readout = element.querySelector(".readout");
      this.hover = null;
      const legend = element.querySelector(".legend");
      spec.series.forEach((series, i) => {
        const item = document.createElement("span");
        const swatch = document.createElement("i");
        swatch.style.background = COLORS[i % COLORS.length];
        item.appendChild(swatch);
        item.appendChild(document.createTextNode(series.label));
        legend.appendChild(item);
      });
      this.canvas.addEventListener("wheel", (event) => this.zoom(event), { passive: false });
      this.canvas.addEventListener("mousedown", (event) => this.pan(event));
      this.canvas.addEventListener("dblclick", () => resetView());
      this.canvas.addEventListener("mousemove", (event) => {
        this.hover = event.offsetX;
        this.draw();
      });
      this.canvas.addEventListener("mouseleave", () => {
        this.hover = null;
        this.draw();
      });
    }

    x(seconds) {
      return PAD.left + ((seconds - view.lo) / (view.hi - view.lo)) * (this.plotWidth);
    }

    secondsAt(px) {
      return view.lo + ((px - PAD.left) / this.plotWidth) * (view.hi - view.lo);
    }

    zoom(event) {
      event.preventDefault();
      const at = this.secondsAt(event.offsetX);
      const factor = event.deltaY < 0 ? 0.8 : 1.25;
      setView(at - (at - view.lo) * factor, at + (view.hi - at) * factor);
    }

    pan(event) {
      const startX = event.clientX;
      const lo = view.lo;
      const hi = view.hi;
      const perPx = (hi - lo) / this.plotWidth;
      const move = (e) => setView(lo - (e.clientX - startX) * perPx, hi - (e.clientX - startX) * perPx);
      const up = () => {
        window.removeEventListener("mousemove", move);
        window.removeEventListener("mouseup", up);
      };
      window.addEventListener("mousemove", move);
      window.addEventListener("mouseup", up);
    }

    visible(series) {
      const first = Math.max(0, Math.floor((view.lo - series.t0) / series.dt) - 1);
      const last = Math.min(series.mean.length - 1, Math.ceil((view.hi - series.t0) / series.dt) + 1);
      return [first, last];
    }

    yRange() {
      if (this.spec.y_max !== null && this.spec.y_max !== undefined) return [0, this.spec.y_max];
      let top = 0;
      for (const series of this.spec.series) {
        const [first, last] = this.visible(series);
        const high = series.max || series.mean;
        for (let i = first; i <= last; i++) if (high[i] !== null && high[i] > top) top = high[i];
      }
      return [0, top > 0 ? top * 1.08 : 1];
    }

    draw() {
      const { ctx, width, height } = setup(this.canvas);
      this.plotWidth = width - PAD.left - PAD.right;
      const plotHeight = height - PAD.top - PAD.bottom;
      const [y0, y1] = this.yRange();
      const y = (v) => PAD.top + plotHeight - ((v - y0) / (y1 - y0)) * plotHeight;
      this.axes(ctx, y, y0, y1, plotHeight);
      this.markers(ctx, plotHeight);
      ctx.save();
      ctx.beginPath();
      ctx.rect(PAD.left, PAD.top, this.plotWidth, plotHeight);
      ctx.clip();
      let points = 0;
      this.spec.series.forEach((series, i) => {
        points += this.line(ctx, series, y, COLORS[i % COLORS.length]);
      });
      ctx.restore();
      this.readoutAt(ctx, plotHeight);
      if (!this.canvas.dataset.drawn) {
        this.canvas.dataset.drawn = points > 0 ? "1" : "empty";
        drawn += 1;
      }
    }

    axes(ctx, y, y0, y1, plotHeight) {
      ctx.strokeStyle = "#ddd";
      ctx.fillStyle = "#555";
      ctx.lineWidth = 1;
      const yStep = niceStep(y1 - y0, 4);
      ctx.textAlign = "right";
      for (let v = 0; v <= y1; v += yStep) {
        ctx.beginPath();
        ctx.moveTo(PAD.left, y(v));
        ctx.lineTo(PAD.left + this.plotWidth, y(v));
        ctx.stroke();
        ctx.fillText(String(+v.toPrecision(3)), PAD.left - 4, y(v) + 4);
      }
      ctx.textAlign = "left";
      ctx.fillText(this.spec.unit, 4, PAD.top - 6);  // the y axis's unit, above its numbers
      const xStep = niceStep(view.hi - view.lo, 8);
      ctx.textAlign = "center";
      for (let s = Math.ceil(view.lo / xStep) * xStep; s <= view.hi; s += xStep) {
        ctx.fillText(clock(s), this.x(s), PAD.top + plotHeight + 15);
      }
    }

    markers(ctx, plotHeight) {
      for (const [start, end] of data.shaded) {
        ctx.fillStyle = "rgba(120, 160, 220, 0.08)";
        const a = Math.max(this.x(start), PAD.left);
        const b = Math.min(this.x(end), PAD.left + this.plotWidth);
        if (b > a) ctx.fillRect(a, PAD.top, b - a, plotHeight);
      }
      const span = view.hi - view.lo;
      const lines = (times, color, limit) => {
        const inView = times.filter((t) => t >= view.lo && t <= view.hi);
        if (inView.length === 0 || inView.length > limit) return;
        ctx.strokeStyle = color;
        ctx.beginPath();
        for (const t of inView) {
          ctx.moveTo(Math.round(this.x(t)) + 0.5, PAD.top);
          ctx.lineTo(Math.round(this.x(t)) + 0.5, PAD.top + plotHeight);
        }
        ctx.stroke();
      };
      if (span > 0) {
        lines(data.step_ends_s, "rgba(0, 0, 0, 0.10)", this.plotWidth / 6);
        lines(data.window_ends_s, "rgba(200, 80, 0, 0.35)", this.plotWidth / 4);
      }
    }

    line(ctx, series, y, color) {
      const [first, last] = this.visible(series);
      // a chart may say how far apart two points can be and still be joined (step latencies: the
      // longest step), else the samples' gap bound applies
      const gapS = this.spec.gap_s === undefined || this.spec.gap_s === null ? data.max_gap_s : this.spec.gap_s;
      const gap = Math.max(1, Math.round(gapS / series.dt));
      let points = 0;
      if (series.min && series.max) {
        ctx.fillStyle = color + "33";
        for (let i = first; i <= last; i++) {
          if (series.min[i] === null) continue;
          const px = this.x(series.t0 + (i + 0.5) * series.dt);
          const top = y(series.max[i]);
          ctx.fillRect(px - 0.5, top, 1, Math.max(1, y(series.min[i]) - top));
        }
      }
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.3;
      ctx.beginPath();
      let previous = -Infinity;
      for (let i = first; i <= last; i++) {
        const v = series.mean[i];
        if (v === null) continue;
        const px = this.x(series.t0 + (i + 0.5) * series.dt);
        if (i - previous > gap) ctx.moveTo(px, y(v));
        else ctx.lineTo(px, y(v));
        previous = i;
        points += 1;
      }
      ctx.stroke();
      return points;
    }

    readoutAt(ctx, plotHeight) {
      if (this.hover === null || this.hover < PAD.left) {
        this.readout.textContent = "";
        return;
      }
      const at = this.secondsAt(this.hover);
      ctx.strokeStyle = "#888";
      ctx.beginPath();
      ctx.moveTo(this.hover + 0.5, PAD.top);
      ctx.lineTo(this.hover + 0.5, PAD.top + plotHeight);
      ctx.stroke();
      const parts = [clock(at)];
      for (const series of this.spec.series) {
        const i = Math.floor((at - series.t0) / series.dt);
        const v = i >= 0 && i < series.mean.length ? series.mean[i] : null;
        parts.push(series.label + " " + (v === null ? "–" : v + " " + this.spec.unit));
      }
      this.readout.textContent = parts.join("   ");
    }
  }

  function setView(lo, hi) {
    const full = data.range_s;
    const minimum = 0.2;
    if (hi - lo < minimum) {
      const mid = (lo + hi) / 2;
      lo = mid - minimum / 2;
      hi = mid + minimum / 2;
    }
    const width = Math.min(hi - lo, full[1] - full[0]);
    lo = Math.min(Math.max(lo, full[0]), full[1] - width);
    view.lo = lo;
    view.hi = lo + width;
    schedule();
  }

  function resetView() {
    setView(data.range_s[0], data.range_s[1]);
  }

  function schedule() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(() => {
      pending = false;
      timeCharts.forEach((chart) => chart.draw());
    });
  }

  function barChart(element, spec) {
    const canvas = element.querySelector("canvas");
    const { ctx, width, height } = setup(canvas);
    const plotWidth = width - PAD.left - PAD.right;
    const plotHeight = height - PAD.top - PAD.bottom - 10;
    const top = Math.max(...spec.values, 0) * 1.1 || 1;
    const y = (v) => PAD.top + plotHeight - (v / top) * plotHeight;
    ctx.fillStyle = "#555";
    ctx.strokeStyle = "#ddd";
    ctx.textAlign = "right";
    const yStep = niceStep(top, 4);
    for (let v = 0; v <= top; v += yStep) {
      ctx.beginPath();
      ctx.moveTo(PAD.left, y(v));
      ctx.lineTo(PAD.left + plotWidth, y(v));
      ctx.stroke();
      ctx.fillText(String(+v.toPrecision(3)), PAD.left - 4, y(v) + 4);
    }
    const slot = plotWidth / spec.values.length;
    ctx.textAlign = "center";
    const labelEvery = Math.max(1, Math.ceil(spec.values.length / 10));
    spec.values.forEach((v, i) => {
      ctx.fillStyle = COLORS[0];
      ctx.fillRect(PAD.left + i * slot + 1, y(v), Math.max(1, slot - 2), y(0) - y(v));
      if (i % labelEvery === 0) {
        ctx.fillStyle = "#555";
        ctx.fillText(spec.labels[i], PAD.left + (i + 0.5) * slot, PAD.top + plotHeight + 15);
      }
    });
    ctx.fillStyle = "#555";
    ctx.fillText(spec.x_label, PAD.left + plotWidth / 2, height - 2);
    canvas.dataset.drawn = spec.values.length ? "1" : "empty";
    drawn += 1;
  }

  function start() {
    document.querySelectorAll("[data-time-chart]").forEach((element) => {
      timeCharts.push(new TimeChart(element, data.time_charts[element.dataset.timeChart]));
    });
    timeCharts.forEach((chart) => chart.draw());
    document.querySelectorAll("[data-bar-chart]").forEach((element) => {
      barChart(element, data.bar_charts[element.dataset.barChart]);
    });
    document.querySelectorAll("button[data-reset]").forEach((button) => button.addEventListener("click", resetView));
    window.addEventListener("resize", schedule);
    document.body.dataset.chartsDrawn = String(drawn);
    document.body.dataset.renderMs = performance.now().toFixed(1);
  }

  start();
})();
