package main

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

func median(xs []float64) float64 {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func minMax(xs []float64) (lo, hi float64, n int) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		lo, hi, n = math.Min(lo, x), math.Max(hi, x), n+1
	}
	return
}

// stat is the median and spread of per-round values.
type stat struct {
	med, lo, hi float64
	n           int
}

func statOf(xs []float64) stat {
	lo, hi, n := minMax(xs)
	return stat{med: median(xs), lo: lo, hi: hi, n: n}
}

func (s stat) ok() bool { return s.n > 0 && !math.IsNaN(s.med) }

// ratioCell formats a median ratio with its spread: 1.32 [1.28–1.35].
func (s stat) ratioCell() string {
	if !s.ok() {
		return "—"
	}
	if s.n == 1 {
		return fmt.Sprintf("%.2f", s.med)
	}
	return fmt.Sprintf("%.2f [%.2f–%.2f]", s.med, s.lo, s.hi)
}

// perRound applies f to each round's values of a and b.
func perRound(a, b []float64, f func(a, b float64) float64) []float64 {
	n := max(len(a), len(b))
	out := make([]float64, n)
	for i := range out {
		out[i] = math.NaN()
		if i < len(a) && i < len(b) && !math.IsNaN(a[i]) && !math.IsNaN(b[i]) {
			out[i] = f(a[i], b[i])
		}
	}
	return out
}

func div(a, b float64) float64 {
	if b <= 0 {
		return math.NaN()
	}
	return a / b
}

func num(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	s := fmt.Sprintf("%.*f", prec, v)
	// thousands separators for big numbers
	intPart, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if neg {
		out = "-" + out
	}
	if frac != "" {
		out += "." + frac
	}
	return out
}

type table struct {
	rows [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) String(header []string, align string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for i := range header {
		if i < len(align) && align[i] == 'r' {
			b.WriteString("--:|")
		} else {
			b.WriteString("---|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

func (r *modeResult) cell(metric, tgt string, prec int) string {
	t := r.targets[tgt]
	if t != nil && t.down != "" {
		return "n/a"
	}
	return num(median(r.values[metric][tgt]), prec)
}

// ratio of gatehouse to another target, per round.
func (r *modeResult) ratio(metric, a, b string) stat {
	return statOf(perRound(r.values[metric][a], r.values[metric][b], div))
}

// added is a target's value minus direct's in the same round.
func (r *modeResult) added(metric, tgt string) []float64 {
	return perRound(r.values[metric][tgt], r.values[metric][tDirect], func(a, b float64) float64 { return a - b })
}

// addedRatio compares what two proxies add over direct, per round. A
// proxy that added less than 10 µs in a round gives no ratio for it: the
// quotient of two noise-sized differences means nothing.
func (r *modeResult) addedRatio(metric, a, b string) stat {
	return statOf(perRound(r.added(metric, a), r.added(metric, b), func(x, y float64) float64 {
		if y < 10 {
			return math.NaN()
		}
		return x / y
	}))
}

func (r *modeResult) has(metric string) bool { return len(r.values[metric]) > 0 }

// mainTable is the one table per mode: the targets side by side.
func (r *modeResult) mainTable(caddy, nginx string) string {
	var t table
	plain := func(metric, label string, prec int, directNote string) {
		if !r.has(metric) {
			return
		}
		d := r.cell(metric, tDirect, prec)
		if directNote != "" && d != "—" && d != "n/a" {
			d += " " + directNote
		}
		gd := r.ratio(metric, tGH, tDirect).ratioCell()
		if directNote != "" {
			gd = "—"
		}
		t.add(label, d, r.cell(metric, tGH, prec), r.cell(metric, tCaddy, prec), r.cell(metric, tNginx, prec), r.cell(metric, tNginxBuf, prec),
			gd, r.ratio(metric, tGH, tCaddy).ratioCell(), r.ratio(metric, tGH, tNginx).ratioCell(), r.ratio(metric, tGH, tNginxBuf).ratioCell())
	}
	addedRow := func(metric, label string) {
		if !r.has(metric) {
			return
		}
		c := func(tgt string) string {
			if tt := r.targets[tgt]; tt != nil && tt.down != "" {
				return "n/a"
			}
			v := median(r.added(metric, tgt))
			if math.IsNaN(v) {
				return "—"
			}
			return fmt.Sprintf("%+.0f", v)
		}
		t.add(label, r.cell(metric, tDirect, 0), c(tGH), c(tCaddy), c(tNginx), c(tNginxBuf),
			r.ratio(metric, tGH, tDirect).ratioCell(), r.addedRatio(metric, tGH, tCaddy).ratioCell(), r.addedRatio(metric, tGH, tNginx).ratioCell(),
			r.addedRatio(metric, tGH, tNginxBuf).ratioCell())
	}
	plain("rps/1k", "GET /1k, requests/s (wrk -c32)", 0, "")
	plain("cpu/1k", "GET /1k, CPU µs/request", 1, "(backend)")
	plain("rps/64k", "GET /64k, requests/s (wrk -c32)", 0, "")
	plain("cpu/64k", "GET /64k, CPU µs/request", 1, "(backend)")
	addedRow("lat50", fmt.Sprintf("GET /1k at %d/s: p50 µs (direct) / added by the proxy", r.latRate))
	addedRow("lat99", fmt.Sprintf("GET /1k at %d/s: p99 µs (direct) / added by the proxy", r.latRate))
	plain("blob", fmt.Sprintf("/blob 256 MiB download ×%d on one connection, MB/s", max(r.blobN, 1)), 0, "")
	plain("blobcpu", "/blob download, CPU µs per MiB (10 ms clock ticks)", 0, "(backend)")
	plain("range", "random Range requests/s (≤256 KiB each)", 0, "")
	plain("upload", fmt.Sprintf("%s upload, MB/s (SHA-256 checked)", sizeName(r.uploadSize)), 0, "")
	plain("uploadcpu", "upload, CPU µs per MiB (10 ms clock ticks)", 0, "(backend)")
	if r.has("uprss") {
		t.add("RSS growth during the upload, MiB", r.cell("uprss", tDirect, 1)+" (backend)", r.cell("uprss", tGH, 1),
			r.cell("uprss", tCaddy, 1), r.cell("uprss", tNginx, 1), r.cell("uprss", tNginxBuf, 1), "—", "—", "—", "—")
	}
	addedRow("sse", "SSE: delay per event µs (direct) / added by the proxy")
	plain("ws", "WebSocket echo round trips/s, one socket", 0, "")
	plain("wsmany", fmt.Sprintf("WebSocket echo round trips/s, %d sockets at once", wsSockets), 0, "")
	plain("wscpu", fmt.Sprintf("WebSocket echo on %d sockets, CPU µs per round trip", wsSockets), 1, "(backend)")
	if r.has("conns/1k") {
		c := func(tgt string) string {
			if tt := r.targets[tgt]; tt != nil && tt.down != "" {
				return "n/a"
			}
			_, a, _ := minMax(r.values["conns/1k"][tgt])
			_, b, _ := minMax(r.values["conns/64k"][tgt])
			return num(a, 1) + " / " + num(b, 1)
		}
		t.add("new backend connections per 1,000 requests, steady state (worst round, /1k / /64k)", c(tDirect), c(tGH), c(tCaddy), c(tNginx), c(tNginxBuf), "—", "—", "—", "—")
		tw := func(tgt string) string {
			if tt := r.targets[tgt]; tt != nil && tt.down != "" {
				return "n/a"
			}
			_, a, _ := minMax(append(append([]float64{}, r.values["tw/1k"][tgt]...), r.values["tw/64k"][tgt]...))
			return num(a, 0)
		}
		t.add("TIME_WAIT sockets at its backend port (most after a GET round)", tw(tDirect), tw(tGH), tw(tCaddy), tw(tNginx), tw(tNginxBuf), "—", "—", "—", "—")
	}
	rss := func(label string, m map[string]float64) {
		if len(m) == 0 {
			return
		}
		c := func(p string) string { return num(m[p], 1) }
		q := func(a, b string) string {
			if m[a] <= 0 || m[b] <= 0 {
				return "—"
			}
			return fmt.Sprintf("%.2f", m[a]/m[b])
		}
		t.add(label, c("backend")+" (backend)", c("gatehouse"), c("caddy"), c("nginx"), c("nginx-buffered"), "—",
			q("gatehouse", "caddy"), q("gatehouse", "nginx"), q("gatehouse", "nginx-buffered"))
	}
	rss("RSS idle after start, MiB", r.rssIdle)
	rss("RSS under load (peak during GET), MiB", r.rssLoad)
	e := func(tgt string) string {
		if tt := r.targets[tgt]; tt != nil && tt.down != "" {
			return "n/a"
		}
		n := r.errs[tgt]
		switch tgt {
		case tGH:
			n += r.errs[tNoLimit] + r.errs[tFamily] + r.errs[tLAN]
		case tCaddy:
			n += r.errs[tCaddyTLS]
		case tNginxBuf:
			n += r.errs[tNginxTLS]
		}
		return fmt.Sprint(n)
	}
	t.add("failed, non-2xx or unforwarded responses (all scenarios, HTTPS included)", e(tDirect), e(tGH), e(tCaddy), e(tNginx), e(tNginxBuf), "—", "—", "—", "—")
	return t.String([]string{"scenario", "direct", "gatehouse", "Caddy " + caddy, "nginx " + nginx, "nginx " + nginx + " buffered",
		"gh÷direct", "gh÷Caddy", "gh÷nginx", "gh÷nginx buffered"}, "lrrrrrrrrr")
}

// variantsTable: what gatehouse's own features cost, in the same run.
func (r *modeResult) variantsTable() string {
	if !r.has("rps/1k") {
		return ""
	}
	var t table
	cost := func(s stat) string {
		if !s.ok() {
			return "—"
		}
		return fmt.Sprintf("%s (%+.1f%%)", s.ratioCell(), (s.med-1)*100)
	}
	for _, v := range []struct{ label, a, b string }{
		{"rate limiting on ÷ same route without limits", tGH, tNoLimit},
		{"family route, signed in ÷ open app route", tFamily, tGH},
	} {
		down := ""
		for _, k := range []string{v.a, v.b} {
			if tt := r.targets[k]; tt != nil && tt.down != "" {
				down = tt.down
			}
		}
		if down != "" {
			t.add(v.label, down, "", "", "")
			continue
		}
		t.add(v.label, cost(r.ratio("rps/1k", v.a, v.b)), cost(r.ratio("cpu/1k", v.a, v.b)),
			cost(r.ratio("rps/64k", v.a, v.b)), cost(r.ratio("cpu/64k", v.a, v.b)))
	}
	return t.String([]string{"gatehouse", "GET /1k rps", "GET /1k CPU/request", "GET /64k rps", "GET /64k CPU/request"}, "lrrrr")
}

type check struct {
	ok   bool
	na   bool
	text string
}

// targets_ checks gatehouse's performance targets against one mode: the
// ratios to Caddy, nginx and direct access it must reach, what its own
// features may cost, and its memory. Every target is listed, measured or
// not, so a missing measurement shows as such.
func (r *modeResult) targets_() []check {
	var out []check
	ratioCheck := func(name string, s stat, want float64, atLeast bool) {
		if !s.ok() {
			out = append(out, check{na: true, text: name + ": not measured"})
			return
		}
		ok := s.med >= want
		if !atLeast {
			ok = s.med <= want
		}
		by := ""
		if !ok {
			// A miss that rounds to the target's own figure says by how
			// little, not "by 0%".
			off, prec := math.Abs(s.med/want-1)*100, 0
			if off < 1 {
				prec = 1
			}
			by = fmt.Sprintf(" — missed by %s%%", num(off, prec))
		}
		out = append(out, check{ok: ok, text: fmt.Sprintf("%s: %s%s", name, s.ratioCell(), by)})
	}
	// downCheck lists a target whose measurement could not run, with why.
	downCheck := func(name string, keys ...string) bool {
		for _, k := range keys {
			if t := r.targets[k]; t != nil && t.down != "" {
				out = append(out, check{na: true, text: name + ": " + t.down})
				return true
			}
		}
		return false
	}
	ratioCheck("GET /1k rps gatehouse ≥ 1.3× Caddy", r.ratio("rps/1k", tGH, tCaddy), 1.3, true)
	ratioCheck("GET /64k rps gatehouse ≥ 1.3× Caddy", r.ratio("rps/64k", tGH, tCaddy), 1.3, true)
	ratioCheck("GET /1k rps gatehouse ≥ 0.8× nginx", r.ratio("rps/1k", tGH, tNginx), 0.8, true)
	ratioCheck("GET /64k rps gatehouse ≥ 0.8× nginx", r.ratio("rps/64k", tGH, tNginx), 0.8, true)
	ratioCheck("GET /1k CPU/request gatehouse ≤ 0.75× Caddy", r.ratio("cpu/1k", tGH, tCaddy), 0.75, false)
	ratioCheck("GET /64k CPU/request gatehouse ≤ 0.75× Caddy", r.ratio("cpu/64k", tGH, tCaddy), 0.75, false)
	ratioCheck("GET /1k CPU/request gatehouse ≤ 1.25× nginx", r.ratio("cpu/1k", tGH, tNginx), 1.25, false)
	ratioCheck("GET /1k CPU/request gatehouse ≤ 1.25× nginx buffered", r.ratio("cpu/1k", tGH, tNginxBuf), 1.25, false)
	ratioCheck("added p99 gatehouse ≤ Caddy's (ratio of added p99)", r.addedRatio("lat99", tGH, tCaddy), 1, false)
	for _, size := range []string{"1k", "64k"} {
		if !downCheck("signed-in family route ÷ open route, /"+size, tFamily) {
			ratioCheck("signed-in family route ≥ 0.95× open route rps (/"+size+")", r.ratio("rps/"+size, tFamily, tGH), 0.95, true)
			ratioCheck("signed-in family route ≤ 1.05× open route CPU/request (/"+size+")", r.ratio("cpu/"+size, tFamily, tGH), 1.05, false)
		}
	}
	ratioCheck("rate limiting on ≥ 0.97× route without limits rps (/1k)", r.ratio("rps/1k", tGH, tNoLimit), 0.97, true)
	ratioCheck("WebSocket round trips/s gatehouse ≥ 1.0× nginx (one socket)", r.ratio("ws", tGH, tNginx), 1, true)
	ratioCheck(fmt.Sprintf("WebSocket round trips/s gatehouse ≥ 1.0× nginx (%d sockets)", wsSockets), r.ratio("wsmany", tGH, tNginx), 1, true)
	ratioCheck("/blob download ≥ 0.8× direct MB/s", r.ratio("blob", tGH, tDirect), 0.8, true)
	if c := &out[len(out)-1]; !c.na {
		c.text += r.cores("blob", "downloads")
	}
	// Not the target but its yardstick: the hop alone, through a
	// relay that does nothing else, sets the ceiling under 0.8× here.
	ratioCheck("/blob download ≥ 0.95× a bare TCP relay's MB/s", r.ratio("blob", tGH, tRelay), 0.95, true)
	ratioCheck("upload ≥ 0.95× direct MB/s", r.ratio("upload", tGH, tDirect), 0.95, true)
	if c := &out[len(out)-1]; !c.na {
		c.text += r.cores("upload", "uploads")
	}
	if r.has("uprss") {
		_, hi, n := minMax(r.values["uprss"][tGH])
		if n > 0 {
			c := check{ok: hi < 16, text: fmt.Sprintf("gatehouse RSS growth during the upload < 16 MiB: %.1f MiB (worst round)", hi)}
			out = append(out, c)
		}
	}
	if !downCheck("HTTPS (LAN door)", tLAN, tCaddyTLS, tNginxTLS) {
		ratioCheck("HTTPS GET /1k rps, LAN door > 1.0× Caddy", r.ratio("tlsrps", tLAN, tCaddyTLS), 1, true)
		ratioCheck("HTTPS GET /1k rps, LAN door ≥ 0.8× nginx", r.ratio("tlsrps", tLAN, tNginxTLS), 0.8, true)
		ratioCheck("new TLS handshakes/s, LAN door > 1.0× Caddy", r.ratio("hs", tLAN, tCaddyTLS), 1, true)
		ratioCheck("new TLS handshakes/s, LAN door ≥ 0.8× nginx", r.ratio("hs", tLAN, tNginxTLS), 0.8, true)
	}
	ghErr := r.errs[tGH] + r.errs[tNoLimit] + r.errs[tFamily] + r.errs[tLAN]
	out = append(out, check{ok: ghErr == 0, text: fmt.Sprintf("zero failed or non-2xx responses through gatehouse: %d", ghErr)})
	if r.has("conns/1k") {
		_, a, _ := minMax(r.values["conns/1k"][tGH])
		_, b, _ := minMax(r.values["conns/64k"][tGH])
		worst := math.Max(a, b)
		out = append(out, check{ok: worst == 0, text: fmt.Sprintf("zero backend reconnects after warm-up (gatehouse, app route, steady state of each GET run): worst round %s per 1,000 requests", num(worst, 2))})
	}
	tn := r.tailnet
	switch one, per := statOf(tn.oneNode), statOf(tn.perNode); {
	case tn.down != "":
		out = append(out, check{na: true, text: "idle RSS with one tailnet node ≤ 40 MiB: not measured: " + firstLine(tn.down)},
			check{na: true, text: "RSS per extra route node ≤ 3 MiB: not measured"})
	case !one.ok():
		out = append(out, check{na: true, text: "idle RSS with one tailnet node ≤ 40 MiB: not measured"},
			check{na: true, text: "RSS per extra route node ≤ 3 MiB: not measured"})
	default:
		memCheck := func(name string, s stat, want float64) {
			by := ""
			if s.med > want {
				by = fmt.Sprintf(" — missed by %.0f%%", (s.med/want-1)*100)
			}
			out = append(out, check{ok: s.med <= want, text: fmt.Sprintf("%s: %s MiB%s", name, s.cell(1), by)})
		}
		memCheck("idle RSS with one tailnet node ≤ 40 MiB", one, 40)
		memCheck(fmt.Sprintf("RSS per extra route node ≤ 3 MiB (%d extra)", tn.extra), per, 3)
	}
	out = append(out, restartCheck(tn))
	return out
}

// restartCheck: a gatehouse restarted the moment its node answered must
// be answering again within restartWant, every time (tailnet/udpport.go);
// one that did not come back at all misses it.
func restartCheck(tn tailnetResult) check {
	const restartWant = 3.0 // seconds from the process's start
	name := fmt.Sprintf("restarted tailnet node answers its peer within %.0f s, every restart", restartWant)
	switch {
	case tn.down != "":
		return check{na: true, text: name + ": not measured: " + firstLine(tn.down)}
	case tn.restartDown != "":
		// A restart that never answers is the worst result, not a gap in
		// the measurement.
		return check{text: fmt.Sprintf("%s: missed: restart %d did not answer: %s", name, len(tn.restarts)+1, firstLine(tn.restartDown))}
	case len(tn.restarts) == 0:
		return check{na: true, text: name + ": not measured"}
	}
	worst := slices.Max(tn.restarts)
	by := ""
	if worst > restartWant {
		by = fmt.Sprintf(" — missed by %.0f%%", (worst/restartWant-1)*100)
	}
	return check{ok: worst <= restartWant, text: fmt.Sprintf("%s: worst of %d %.1f s, median %.1f s%s", name, len(tn.restarts), worst, median(tn.restarts), by)}
}

// cell formats a median with its spread: 31.2 [30.9–31.8].
func (s stat) cell(prec int) string {
	if !s.ok() {
		return "—"
	}
	if s.n == 1 || s.lo == s.hi {
		return num(s.med, prec)
	}
	return fmt.Sprintf("%s [%s–%s]", num(s.med, prec), num(s.lo, prec), num(s.hi, prec))
}

// tlsTable: the LAN door against Caddy and nginx on HTTPS.
func (r *modeResult) tlsTable(caddy, nginx string) string {
	if !r.has("tlsrps") && !r.has("hs") {
		return ""
	}
	var t table
	row := func(metric, label string, prec int) {
		if !r.has(metric) {
			return
		}
		t.add(label, r.cell(metric, tLAN, prec), r.cell(metric, tCaddyTLS, prec), r.cell(metric, tNginxTLS, prec),
			r.ratio(metric, tLAN, tCaddyTLS).ratioCell(), r.ratio(metric, tLAN, tNginxTLS).ratioCell())
	}
	row("tlsrps", "HTTPS GET /1k, requests/s (wrk -c32, keep-alive)", 0)
	row("tlscpu", "HTTPS GET /1k, CPU µs/request", 1)
	row("hs", "new connections/s: full TLS handshake + GET /1k each (8 at once; client offers X25519)", 0)
	row("hscpu", "… CPU µs per new connection", 1)
	row("hspq", "new connections/s, client offers Go's default groups (X25519MLKEM768 first, as current browsers)", 0)
	row("hspqcpu", "… CPU µs per new connection", 1)
	s := t.String([]string{"HTTPS, one certificate (ECDSA P-256, *.bench.test)", "gatehouse LAN door", "Caddy " + caddy,
		"nginx " + nginx + " buffered", "gh÷Caddy", "gh÷nginx"}, "lrrrrr")
	var used []string
	for _, m := range []string{"hs", "hspq"} {
		var parts []string
		for _, k := range []string{tLAN, tCaddyTLS, tNginxTLS} {
			if v := r.tlsInfo[m+"/"+k]; v != "" {
				parts = append(parts, r.targets[k].label+": "+v)
			}
		}
		if len(parts) > 0 {
			which := "X25519 offered"
			if m == "hspq" {
				which = "default groups offered"
			}
			used = append(used, which+" — "+strings.Join(parts, "; "))
		}
	}
	if len(used) > 0 {
		s += "\nNegotiated (" + strings.Join(used, ". ") + ").\n"
	}
	return s
}

// relayLine: what the bare relay (relay.go) cost and reached in each
// scenario it ran in, beside nginx and gatehouse: what the system calls
// alone cost, and the most the extra hop allows any proxy.
func (r *modeResult) relayLine() string {
	var parts []string
	// cpuPart: the relay's CPU per unit of metric, and nginx's and
	// gatehouse's as multiples of it.
	cpuPart := func(metric, what, tail string) {
		if len(r.values[metric][tRelay]) == 0 {
			return
		}
		parts = append(parts, fmt.Sprintf("%s costs it %s µs CPU (nginx %s×, gatehouse %s× the relay's)%s", what,
			r.cell(metric, tRelay, 1), r.ratio(metric, tNginx, tRelay).ratioCell(), r.ratio(metric, tGH, tRelay).ratioCell(), tail))
	}
	cpuPart("cpu/1k", "a GET /1k request", ": what the same system calls cost a process that parses nothing")
	cpuPart("wscpu", fmt.Sprintf("a WebSocket round trip on %d sockets", wsSockets), "")
	if len(r.values["blob"][tRelay]) > 0 {
		parts = append(parts, fmt.Sprintf("/blob goes through it at %s MB/s, %s× direct: the most the extra hop allows; gatehouse reached %s× the relay's MB/s and used %s× its CPU per MiB",
			r.cell("blob", tRelay, 0), r.ratio("blob", tRelay, tDirect).ratioCell(), r.ratio("blob", tGH, tRelay).ratioCell(),
			r.ratio("blobcpu", tGH, tRelay).ratioCell()))
	}
	if len(parts) == 0 {
		return ""
	}
	said := strings.Join(parts, "; ")
	return "A bare TCP relay (relay.go: read and write both ways, splice once the data comes in bulk; no HTTP; a Go process pinned like the proxies) measures the hop itself. " +
		strings.ToUpper(said[:1]) + said[1:] + ".\n"
}

// cores says which core set the pace of a bulk transfer (metric "blob"
// or "upload"), when pinned: a proxy that leaves its own core half idle
// while the load core (the client and the backend, and the loopback's
// interrupts) is saturated is not what holds the transfer back.
func (r *modeResult) cores(metric, what string) string {
	load, own := median(r.values[metric+"loadcore"][tGH]), median(r.values[metric+"proxycore"][tGH])
	if math.IsNaN(load) || math.IsNaN(own) {
		return ""
	}
	out := fmt.Sprintf(" (busy during gatehouse's %s: the load core %.0f%%, gatehouse's core %.0f%%; during direct's, the load core %.0f%%",
		what, load, own, median(r.values[metric+"loadcore"][tDirect]))
	// What gatehouse's own core could carry at the CPU it spent per MiB.
	if perMiB, direct := median(r.values[metric+"cpu"][tGH]), median(r.values[metric][tDirect]); perMiB > 0 && direct > 0 {
		carry := 1e6 / perMiB * (1 << 20) / 1e6
		out += fmt.Sprintf("; at %.0f µs of CPU per MiB one core carries %.0f MB/s, %.2f× direct's", perMiB, carry, carry/direct)
	}
	return out + ")"
}

// tailnetLines: what the tailnet door costs in memory.
func (r *modeResult) tailnetLines() string {
	tn := r.tailnet
	if tn.down != "" {
		return "Tailnet door memory: not measured: " + strings.ReplaceAll(firstLine(tn.down), "\n", " ") + "\n"
	}
	one, per := statOf(tn.oneNode), statOf(tn.perNode)
	if !one.ok() {
		return ""
	}
	return fmt.Sprintf("Tailnet door memory (gatehouse against the in-process control server, idle after every node answered once through the tailnet): "+
		"RSS %s MiB with the shared node (without the tailnet door: %s MiB, the table's idle RSS); %s MiB more per extra route node (%d extra). "+
		"Last round: one node %.1f MiB = %.1f anonymous + %.1f file-backed (the binary's code); with %d more %.1f = %.1f + %.1f. "+
		"Nodes up and answering in %s (one) and %s (%d). Heap profiles: gatehouse-tailnet-*.heap in the work directory (-keep).%s\n",
		one.cell(1), num(tn.noTailnet, 1), per.cell(1), tn.extra,
		tn.one.rss, tn.one.anon, tn.one.file, tn.extra, tn.more.rss, tn.more.anon, tn.more.file,
		tn.one.up.Round(100*time.Millisecond), tn.more.up.Round(100*time.Millisecond), 1+tn.extra, restartLine(tn))
}

// restartLine: how long each restarted node took to answer again.
func restartLine(tn tailnetResult) string {
	if len(tn.restarts) == 0 {
		return ""
	}
	return fmt.Sprintf(" Restarted %d times, each the moment the node had answered: answering again %s s after the process started.",
		len(tn.restarts), strings.Join(fmtSeconds(tn.restarts), ", "))
}

func (o *options) report(results []*modeResult, wall time.Duration, args []string) string {
	var b strings.Builder
	cmd := "bench/run.sh"
	if len(args) > 0 {
		cmd += " " + strings.Join(args, " ")
	}
	fmt.Fprintf(&b, "# gatehouse against Caddy and nginx\n\n")
	fmt.Fprintf(&b, "`%s` — %s, wall time %s. %d measured round(s) per scenario in shuffled order (seed %d), each after a warm-up; "+
		"absolute figures are medians and swing from run to run, ratios are medians of per-round ratios [lowest–highest round].\n\n",
		cmd, time.Now().UTC().Format("2006-01-02 15:04 MST"), wall.Round(time.Second), o.rounds, o.seed)
	fmt.Fprintf(&b, "Machine: %d × %s. gatehouse %s (built with %s), Caddy %s, nginx %s, wrk %s, vegeta %s.\n",
		runtime.NumCPU(), o.versions["cpu"], o.versions["gatehouse"], o.versions["go"], o.versions["caddy"]+" ("+o.caddyHow+")", o.versions["nginx"], o.versions["wrk"], o.versions["vegeta"])
	if strings.HasPrefix(o.caddyHow, "from PATH") {
		fmt.Fprintf(&b, "\n**Caddy is %s from PATH, not the current release %s: its figures are an older Caddy's.**\n", o.versions["caddy"], caddyRelease)
	}
	if o.quick {
		b.WriteString("\n**-quick: tiny durations, a smoke test of the harness; the figures mean nothing.**\n")
	}
	for _, r := range results {
		fmt.Fprintf(&b, "\n## %s\n\n", r.spec.title)
		b.WriteString(r.mainTable(o.versions["caddy"], o.versions["nginx"]))
		if v := r.variantsTable(); v != "" {
			b.WriteString("\n")
			b.WriteString(v)
		}
		if v := r.tlsTable(o.versions["caddy"], o.versions["nginx"]); v != "" {
			b.WriteString("\n")
			b.WriteString(v)
		}
		if v := r.relayLine(); v != "" {
			b.WriteString("\n")
			b.WriteString(v)
		}
		if v := r.tailnetLines(); v != "" {
			b.WriteString("\n")
			b.WriteString(v)
		}
		fmt.Fprintf(&b, "\nCPU is user+system time of the proxy's processes (nginx: master and workers) from /proc/PID/stat over the measured seconds, divided by the requests. "+
			"gh÷ columns of added latency compare the latency each proxy adds over direct in the same round. "+
			"New connections are those the backend served a request on, at the proxy's own backend port, from 0.5 s into each measured GET run to 0.3 s before its end (direct: wrk's own; gatehouse's health check, a TCP connect every 15 s, is not one); TIME_WAIT sockets include those a proxy leaves when wrk cuts the requests in flight at the end of a run, and those of its idle timeout.")
		if r.gh != "" {
			fmt.Fprintf(&b, " gatehouse's own count of its responses (gatehouse_requests_total by code): %s.", r.gh)
		}
		fmt.Fprintf(&b, " Mode took %s.\n", r.elapsed.Round(time.Second))
		b.WriteString("\n" + r.foreignLine() + "\n")
		if u := r.utilLine(); u != "" {
			b.WriteString("\n" + u + "\n")
		}
		if len(r.notes) > 0 {
			b.WriteString("\nNotes and anomalies:\n\n")
			for _, n := range r.notes {
				b.WriteString("- " + strings.ReplaceAll(n, "\n", " ") + "\n")
			}
		}
	}
	var head *modeResult
	for _, r := range results {
		if r.spec.name == "headline" {
			head = r
		}
	}
	if head == nil && len(results) > 0 {
		head = results[0]
	}
	if head != nil {
		var other *modeResult
		for _, r := range results {
			if r != head {
				other = r
			}
		}
		fmt.Fprintf(&b, "\n## Performance targets (%s mode", head.spec.name)
		if other != nil {
			fmt.Fprintf(&b, "; the %s mode's verdict in brackets", other.spec.name)
		}
		b.WriteString(")\n\n")
		var second []check
		if other != nil {
			second = other.targets_()
		}
		mark := func(c check) string {
			switch {
			case c.na:
				return "n/a"
			case c.ok:
				return "met"
			}
			return "missed"
		}
		for i, c := range head.targets_() {
			extra := ""
			if i < len(second) && !second[i].na {
				_, val, _ := strings.Cut(second[i].text, ": ")
				extra = fmt.Sprintf(" [%s: %s, %s]", other.spec.name, mark(second[i]), val)
			}
			fmt.Fprintf(&b, "- **%s** — %s%s\n", mark(c), c.text, extra)
		}
	}
	return b.String()
}

// foreignLine says how much of the CPU other processes took while this
// mode measured: the figures are only as good as the machine was quiet.
func (r *modeResult) foreignLine() string {
	where := "of the whole machine"
	if r.spec.proxyCPU != "" {
		where = "of the proxy's core " + r.spec.proxyCPU
	}
	var parts []string
	worst := 0.0
	for _, k := range append([]string{"get"}, allScenarios[1:]...) {
		v := r.foreign[k]
		if len(v) == 0 {
			continue
		}
		_, hi, _ := minMax(v)
		worst = math.Max(worst, hi)
		parts = append(parts, fmt.Sprintf("%s %.0f%% (worst %.0f%%)", k, median(v), hi))
	}
	if len(parts) == 0 {
		return ""
	}
	s := fmt.Sprintf("CPU taken by other processes during the measured runs, median %s: %s.", where, strings.Join(parts, ", "))
	if r.retries > 0 {
		s += fmt.Sprintf(" %d runs were repeated because others took over %.0f%%; the cleanest of up to three counts.", r.retries, foreignLimit*100)
	}
	if worst > 20 {
		s = "**Warning: this machine was busy with other work during the run; treat the figures with care.** " + s
	}
	return s
}

// utilLine flags pinned proxies that did not use their whole core during
// GET /1k or the TLS runs: something other than the proxy's CPU was the
// limit (the load core, or waiting), so rps understates that proxy and
// CPU/request is the fair comparison.
func (r *modeResult) utilLine() string {
	if r.spec.proxyCPU == "" {
		return ""
	}
	var parts []string
	for _, u := range []struct {
		metric, what string
		keys         []string
	}{
		{"util/1k", "GET /1k", []string{tGH, tCaddy, tNginx, tNginxBuf}},
		{"tlsutil", "HTTPS GET /1k", []string{tLAN, tCaddyTLS, tNginxTLS}},
		{"hsutil", "new TLS connections", []string{tLAN, tCaddyTLS, tNginxTLS}},
	} {
		var these []string
		for _, k := range u.keys {
			v := median(r.values[u.metric][k])
			if !math.IsNaN(v) && v < 0.9 {
				these = append(these, fmt.Sprintf("%s %.0f%%", r.targets[k].label, v*100))
			}
		}
		if len(these) > 0 {
			parts = append(parts, u.what+": "+strings.Join(these, ", "))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("Not CPU-bound (share of its core used) on %s. Such a proxy was held back by core %s (the load generators and the backend) or by waiting, not by its own CPU: its requests/s understate it, and CPU µs/request is the fairer comparison.",
		strings.Join(parts, "; "), r.spec.loadCPU)
}

func sizeName(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}
