package chaos

import (
	"fmt"
	"image/color"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// rateWindow is the span over which the chart averages the relay rate.
const rateWindow = 2 * time.Second

// chartCap is where the chart's axis stops, in times the target rate.
const chartCap = 5

// chart draws the workers' relayed envelopes per second over the run, the
// target rate, and each fault (numbered as in the report) as a red line
// at its start and a shaded span until everything was relayed again, into
// a PNG at path. relayed_total counts an envelope relayed again after a
// fault (Centrifugo drops the repeat) once more: the spikes after a
// fault are the resends as well as the backlog.
func (r *run) chart(path string) error {
	r.mu.Lock()
	points := append([]point(nil), r.relayed...)
	r.mu.Unlock()
	var rates plotter.XYs
	j := 0
	for i, p := range points {
		for j < i && p.at.Sub(points[j].at) > rateWindow {
			j++
		}
		if j == i {
			continue
		}
		dt := p.at.Sub(points[j].at).Seconds()
		rates = append(rates, plotter.XY{X: p.at.Sub(r.began).Seconds(), Y: (p.relayed - points[j].relayed) / dt})
	}
	if len(rates) == 0 {
		return fmt.Errorf("no samples of relayed_total")
	}
	// New envelopes arriving at subscriber all-1, per second.
	var arrivals plotter.XYs
	if len(r.arrived) > 0 {
		counts := map[int]int{}
		last := 0
		for _, at := range r.arrived {
			sec := int(at.Sub(r.began) / time.Second)
			counts[sec]++
			last = max(last, sec)
		}
		for sec := 0; sec <= last; sec++ {
			arrivals = append(arrivals, plotter.XY{X: float64(sec) + 0.5, Y: float64(counts[sec])})
		}
	}
	// Resends after a takeover can relay many times the rate for a
	// moment: the axis stops at chartCap times the target rate.
	top, cut := float64(r.cfg.rate), false
	for _, xy := range append(append(plotter.XYs(nil), rates...), arrivals...) {
		top = max(top, xy.Y)
	}
	if limit := chartCap * float64(r.cfg.rate); top > limit {
		top, cut = limit, true
		for _, xys := range []plotter.XYs{rates, arrivals} {
			for i := range xys {
				xys[i].Y = min(xys[i].Y, limit)
			}
		}
	}
	top *= 1.3 // room for the legend

	p := plot.New()
	p.Title.Text = fmt.Sprintf("instant under faults: envelopes per second, target %d/s", r.cfg.rate)
	p.X.Label.Text = "seconds since the load started"
	p.Y.Label.Text = "envelopes / s"
	p.Y.Min, p.Y.Max = 0, top
	p.Add(plotter.NewGrid())

	red := color.RGBA{R: 200, G: 30, B: 30, A: 255}
	var marks plotter.XYLabels
	for i, o := range r.outcomes {
		x0, x1 := o.start.Sub(r.began).Seconds(), o.end.Sub(r.began).Seconds()
		span, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: 0}, {X: x1, Y: 0}, {X: x1, Y: top}, {X: x0, Y: top}})
		if err != nil {
			return err
		}
		span.Color = color.RGBA{R: 255, G: 220, B: 220, A: 255}
		span.LineStyle.Width = 0
		p.Add(span)
		start, err := plotter.NewLine(plotter.XYs{{X: x0, Y: 0}, {X: x0, Y: top}})
		if err != nil {
			return err
		}
		start.Color = red
		start.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		p.Add(start)
		marks.XYs = append(marks.XYs, plotter.XY{X: x0, Y: top * 0.02})
		marks.Labels = append(marks.Labels, fmt.Sprintf(" %d", i+1))
	}
	target, err := plotter.NewLine(plotter.XYs{{X: 0, Y: float64(r.cfg.rate)}, {X: rates[len(rates)-1].X, Y: float64(r.cfg.rate)}})
	if err != nil {
		return err
	}
	target.Color = color.Gray{Y: 120}
	target.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	p.Add(target)
	line, err := plotter.NewLine(rates)
	if err != nil {
		return err
	}
	line.Color = color.RGBA{B: 180, A: 255}
	line.Width = vg.Points(1.2)
	p.Add(line)
	var got *plotter.Line
	if len(arrivals) > 0 {
		if got, err = plotter.NewLine(arrivals); err != nil {
			return err
		}
		got.Color = color.RGBA{G: 140, A: 255}
		got.Width = vg.Points(0.8)
		p.Add(got)
	}
	if len(marks.XYs) > 0 {
		labels, err := plotter.NewLabels(marks)
		if err != nil {
			return err
		}
		for i := range labels.TextStyle {
			labels.TextStyle[i].Color = red
		}
		p.Add(labels)
	}
	what := "relayed by the workers / s (resends included)"
	if cut {
		what += fmt.Sprintf(", cut at %d", int(chartCap)*r.cfg.rate)
	}
	p.Legend.Add(what, line)
	if got != nil {
		p.Legend.Add("new envelopes at a subscriber / s", got)
	}
	p.Legend.Add("target rate", target)
	p.Legend.Add("fault (number as in the report), until all relayed", start0(red))
	p.Legend.Top = true
	return p.Save(12*vg.Inch, 4.5*vg.Inch, path)
}

// start0 is a legend thumbnail of a fault's start line.
func start0(c color.Color) plot.Thumbnailer {
	l, _ := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	l.Color = c
	l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
	return l
}
