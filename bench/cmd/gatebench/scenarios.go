package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// load runs `gatebench load KIND` against a target, pinned like the other
// load generators.
func (m *modeRun) load(t *target, kind string, args ...string) (loadResult, spanResult, error) {
	argv := append([]string{m.o.self, "load", kind, "-addr", t.addr, "-host", t.host}, args...)
	if m.spec.loadCPU != "" {
		argv = append([]string{"taskset", "-c", m.spec.loadCPU}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	sp := m.begin(t)
	out, err := cmd.Output()
	var sr spanResult
	if cmd.ProcessState != nil {
		sr = sp.end(cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime())
	}
	if err != nil {
		return loadResult{}, sr, fmt.Errorf("gatebench load %s: %v: %s", kind, err, stderr.String())
	}
	var r loadResult
	if err := json.Unmarshal(out, &r); err != nil {
		return loadResult{}, sr, fmt.Errorf("gatebench load %s: %v: %s", kind, err, out)
	}
	return r, sr, nil
}

// loadChecked runs a load and books its failures against the target.
func (m *modeRun) loadChecked(t *target, kind string, args ...string) (loadResult, bool) {
	r, _, ok := m.loadOnce(t, kind, args...)
	return r, ok
}

func (m *modeRun) loadOnce(t *target, kind string, args ...string) (loadResult, spanResult, bool) {
	r, sr, err := m.load(t, kind, args...)
	if err != nil {
		m.res.errs[t.key]++
		m.res.note("%s %s: %v", t.label, kind, err)
		return r, sr, false
	}
	if r.Bad > 0 || !r.OK {
		m.res.errs[t.key] += max(r.Bad, 1)
		m.res.note("%s %s: %s", t.label, kind, r.Err)
	}
	return r, sr, r.OK
}

// loadMeasured is a measured load run: repeated if others disturbed it
// (see cleanest), with the foreign share booked for the report.
func (m *modeRun) loadMeasured(t *target, kind string, args ...string) (loadResult, spanResult, bool) {
	type both struct {
		r  loadResult
		sr spanResult
	}
	b, f, ok := cleanest(m, t.label+" "+kind, func() (both, float64, bool) {
		r, sr, ok := m.loadOnce(t, kind, args...)
		return both{r, sr}, sr.foreign, ok
	})
	if ok {
		sc := kind
		switch kind {
		case "range":
			sc = "blob"
		case "handshake":
			sc = "tls"
		}
		m.res.foreign[sc] = append(m.res.foreign[sc], f*100)
	}
	return b.r, b.sr, ok
}

type vegetaResult struct {
	Latencies map[string]float64 `json:"latencies"`
	Requests  int64              `json:"requests"`
	Codes     map[string]int64   `json:"status_codes"`
	Errors    []string           `json:"errors"`
}

func (m *modeRun) vegeta(t *target, rate int, d time.Duration) (vegetaResult, float64, error) {
	dir := filepath.Join(m.o.work, m.spec.name)
	tf := filepath.Join(dir, "vegeta-targets-"+t.key)
	spec := fmt.Sprintf("GET http://%s/1k\nHost: %s\n", t.addr, t.host)
	if t.cookie != "" {
		spec += "Cookie: " + t.cookie + "\n"
	}
	if err := os.WriteFile(tf, []byte(spec), 0o644); err != nil {
		return vegetaResult{}, 0, err
	}
	sp := m.begin(t)
	bin := filepath.Join(dir, "vegeta-results-"+t.key+".bin")
	argv := []string{m.o.vegeta, "attack", "-targets", tf, "-rate", fmt.Sprintf("%d/1s", rate),
		"-duration", d.String(), "-timeout", "10s", "-output", bin}
	if m.spec.loadCPU != "" {
		argv = append([]string{"taskset", "-c", m.spec.loadCPU}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return vegetaResult{}, 0, fmt.Errorf("vegeta attack: %v: %s", err, out)
	}
	f := sp.end(cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).foreign
	out, err := exec.Command(m.o.vegeta, "report", "-type", "json", bin).Output()
	if err != nil {
		return vegetaResult{}, f, fmt.Errorf("vegeta report: %v", err)
	}
	os.Remove(bin)
	var r vegetaResult
	return r, f, json.Unmarshal(out, &r)
}

// scenarioLatency: an open-loop fixed rate below saturation (vegeta), p50
// and p99 per target; the report subtracts direct's from the same round.
func (m *modeRun) scenarioLatency() {
	targets := m.up(tDirect, tGH, tCaddy, tNginx, tNginxBuf)
	rate := m.o.rate
	if rate == 0 {
		slowest := math.Inf(1)
		for _, k := range []string{tGH, tCaddy, tNginx, tNginxBuf} {
			if v := median(m.res.values["rps/1k"][k]); !math.IsNaN(v) {
				slowest = math.Min(slowest, v)
			}
		}
		rate = 1000
		if !math.IsInf(slowest, 1) {
			rate = max(100, min(2000, int(slowest/4)/100*100))
		}
	}
	m.res.latRate = rate
	logf("latency: GET /1k at %d/s open loop (vegeta), %s, %d rounds", rate, m.o.latDur, m.o.rounds)
	warm := max(m.o.latWarm, 500*time.Millisecond)
	for _, t := range targets {
		m.vegeta(t, rate, warm)
	}
	for round := 0; round < m.o.rounds; round++ {
		for _, i := range m.shuffle(len(targets)) {
			t := targets[i]
			r, f, ok := cleanest(m, t.label+" latency", func() (vegetaResult, float64, bool) {
				if m.o.latWarm > 0 {
					m.vegeta(t, rate, m.o.latWarm)
				}
				r, f, err := m.vegeta(t, rate, m.o.latDur)
				if err != nil {
					m.res.errs[t.key]++
					m.res.note("%s latency: %v", t.label, err)
					return r, f, false
				}
				return r, f, r.Requests == r.Codes["200"]
			})
			if r.Requests == 0 {
				continue
			}
			_ = ok
			m.res.foreign["latency"] = append(m.res.foreign["latency"], f*100)
			bad := r.Requests - r.Codes["200"]
			if bad > 0 {
				m.res.errs[t.key] += int(bad)
				first := ""
				if len(r.Errors) > 0 {
					first = r.Errors[0]
				}
				m.res.note("%s latency: %d of %d requests failed or were not 200 %v %s", t.label, bad, r.Requests, r.Codes, first)
			}
			p50, p99 := r.Latencies["50th"]/1e3, r.Latencies["99th"]/1e3
			m.res.put("lat50", t.key, round, p50)
			m.res.put("lat99", t.key, round, p99)
			logf("  round %d %-12s p50 %7.0f µs  p99 %7.0f µs", round+1, t.label, p50, p99)
		}
	}
}

// scenarioBlob: the 256 MiB /blob in one GET, then random Range requests.
func (m *modeRun) scenarioBlob() {
	targets := m.up(tDirect, tGH, tCaddy, tNginx, tNginxBuf, tRelay)
	logf("blob: GET /blob (256 MiB) %d times on one connection, and %d random Range requests, %d rounds", m.o.blobN, m.o.rangeN, m.o.rounds)
	for _, t := range targets {
		m.loadChecked(t, "blob", "-size", strconv.Itoa(32<<20))
		m.loadChecked(t, "range", "-n", "10", "-seed", "99")
	}
	for round := 0; round < m.o.rounds; round++ {
		for _, i := range m.shuffle(len(targets)) {
			t := targets[i]
			if r, sr, ok := m.loadMeasured(t, "blob", "-size", "0", "-repeat", strconv.Itoa(m.o.blobN)); ok {
				m.putTransfer("blob", t.key, round, r, sr)
			}
			if r, _, ok := m.loadMeasured(t, "range", "-n", strconv.Itoa(m.o.rangeN), "-seed", strconv.Itoa(round+1)); ok {
				m.res.put("range", t.key, round, float64(r.Count)/r.Seconds)
			}
			logf("  round %d %-12s %7.0f MB/s  %6.0f ranges/s", round+1, t.label,
				at(m.res.values["blob"][t.key], round), at(m.res.values["range"][t.key], round))
		}
	}
}

// putTransfer books a bulk transfer's MB/s as metric, what it cost the
// proxy per MiB as metric+"cpu" (whatever held its speed back), and how
// busy the load and the proxy's core were as metric+"loadcore" and
// metric+"proxycore": the names modeResult.cores reads.
func (m *modeRun) putTransfer(metric, key string, round int, r loadResult, sr spanResult) {
	m.res.put(metric, key, round, float64(r.Bytes)/1e6/r.Seconds)
	m.res.put(metric+"cpu", key, round, sr.targetTicks*1e6/clkTck/(float64(r.Bytes)/(1<<20)))
	m.res.put(metric+"loadcore", key, round, sr.loadCore*100)
	m.res.put(metric+"proxycore", key, round, sr.proxyCore*100)
}

// scenarioUpload: a 1 GiB POST whose hash the backend checks, with the
// proxy's RSS sampled during it.
func (m *modeRun) scenarioUpload() {
	targets := m.up(tDirect, tGH, tCaddy, tNginx, tNginxBuf)
	size := m.o.uploadSize
	logf("upload: POST /upload %d MiB with SHA-256 check, %d rounds", size>>20, m.o.rounds)
	warm := m.o.warmUploadSize()
	// Growth counts from before the first upload (the warm-up), so memory
	// the warm-up keeps is counted too.
	base := map[string]float64{}
	for _, t := range targets {
		base[t.key] = t.group.rssMiB()
		m.loadChecked(t, "upload", "-size", strconv.FormatInt(warm, 10), "-want", m.o.hashes[warm])
	}
	for round := 0; round < m.o.rounds; round++ {
		for _, i := range m.shuffle(len(targets)) {
			t := targets[i]
			before := t.group.rssMiB()
			s := sampleRSS(map[string]pidGroup{t.proc: t.group}, 20*time.Millisecond)
			r, sr, ok := m.loadMeasured(t, "upload", "-size", strconv.FormatInt(size, 10), "-want", m.o.hashes[size])
			peak := s.finish()[t.proc]
			if ok {
				m.putTransfer("upload", t.key, round, r, sr)
			}
			m.res.put("uprss", t.key, round, math.Max(0, peak-math.Min(before, base[t.key])))
			logf("  round %d %-12s %7.0f MB/s  RSS %5.1f → peak %5.1f MiB", round+1, t.label,
				at(m.res.values["upload"][t.key], round), before, peak)
		}
	}
}

// scenarioSSE: events flushed every 100 ms; the delay from the backend's
// write to the client's read, per event.
func (m *modeRun) scenarioSSE() {
	targets := m.up(tDirect, tGH, tCaddy, tNginx, tNginxBuf)
	logf("SSE: %d events 100 ms apart, %d rounds", m.o.sseEvents, m.o.rounds)
	for _, t := range targets {
		m.loadChecked(t, "sse", "-n", "2")
	}
	for round := 0; round < m.o.rounds; round++ {
		for _, i := range m.shuffle(len(targets)) {
			t := targets[i]
			r, _, ok := m.loadMeasured(t, "sse", "-n", strconv.Itoa(m.o.sseEvents))
			if ok {
				m.res.put("sse", t.key, round, median(r.Delays))
			}
			logf("  round %d %-12s median delay %6.0f µs over %d events", round+1, t.label, median(r.Delays), len(r.Delays))
		}
	}
}

// wsSockets is the WebSockets of the busy echo: enough that the proxy's
// core never waits idle between messages.
const wsSockets = 32

// scenarioWS: 32-byte messages echoed back to back, on one WebSocket and
// on wsSockets at once. One socket measures the round trip's latency, on
// a VM mostly how fast an idle core wakes up; many measure what a message
// costs the proxy.
func (m *modeRun) scenarioWS() {
	targets := m.up(tDirect, tGH, tCaddy, tNginx, tNginxBuf, tRelay)
	logf("WebSocket: echo round trips for %s on 1 and %d sockets, %d rounds", m.o.wsDur, wsSockets, m.o.rounds)
	for _, t := range targets {
		m.loadChecked(t, "ws", "-d", "300ms", "-c", strconv.Itoa(wsSockets))
	}
	for round := 0; round < m.o.rounds; round++ {
		for _, i := range m.shuffle(len(targets)) {
			t := targets[i]
			if r, _, ok := m.loadMeasured(t, "ws", "-d", m.o.wsDur.String(), "-c", "1"); ok {
				m.res.put("ws", t.key, round, float64(r.Count)/r.Seconds)
			}
			if r, sr, ok := m.loadMeasured(t, "ws", "-d", m.o.wsDur.String(), "-c", strconv.Itoa(wsSockets)); ok && r.Count > 0 {
				m.res.put("wsmany", t.key, round, float64(r.Count)/r.Seconds)
				m.res.put("wscpu", t.key, round, sr.targetTicks*1e6/clkTck/float64(r.Count))
			}
			logf("  round %d %-12s %7.0f round trips/s on 1 socket, %7.0f on %d (%5.1f µs CPU each)", round+1, t.label,
				at(m.res.values["ws"][t.key], round), at(m.res.values["wsmany"][t.key], round), wsSockets,
				at(m.res.values["wscpu"][t.key], round))
		}
	}
}

func at(xs []float64, i int) float64 {
	if i < len(xs) {
		return xs[i]
	}
	return math.NaN()
}
