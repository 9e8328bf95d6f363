package main

import (
	"strings"
	"testing"
)

// Every target is in the list with the verdict its figures give: met,
// missed (by how much), or n/a with the reason when a measurement could
// not run.
func TestTargetsList(t *testing.T) {
	r := &modeResult{rounds: 1, values: map[string]map[string][]float64{}, targets: map[string]*target{}, errs: map[string]int{}}
	for _, k := range []string{tDirect, tGH, tNoLimit, tFamily, tCaddy, tNginx, tNginxBuf, tLAN, tCaddyTLS, tNginxTLS} {
		r.targets[k] = &target{key: k, label: k}
	}
	set := func(metric string, byTarget map[string]float64) {
		for k, v := range byTarget {
			r.put(metric, k, 0, v)
		}
	}
	set("rps/1k", map[string]float64{tGH: 1000, tNoLimit: 1010, tFamily: 900, tCaddy: 500, tNginx: 1100, tNginxBuf: 1100})
	set("cpu/1k", map[string]float64{tGH: 30, tFamily: 30, tCaddy: 100, tNginx: 20, tNginxBuf: 25})
	set("rps/64k", map[string]float64{tGH: 1000, tFamily: 990, tCaddy: 500, tNginx: 900})
	set("cpu/64k", map[string]float64{tGH: 50, tFamily: 60, tCaddy: 100, tNginx: 100})
	set("ws", map[string]float64{tGH: 1000, tNginx: 1000})
	set("wsmany", map[string]float64{tGH: 900, tNginx: 1000})
	set("blob", map[string]float64{tGH: 79, tDirect: 100, tRelay: 80})
	set("blobloadcore", map[string]float64{tGH: 97, tDirect: 99})
	set("blobproxycore", map[string]float64{tGH: 55})
	set("blobcpu", map[string]float64{tGH: 400})
	set("upload", map[string]float64{tGH: 86, tDirect: 100})
	set("uploadloadcore", map[string]float64{tGH: 100, tDirect: 98})
	set("uploadproxycore", map[string]float64{tGH: 40})
	set("uploadcpu", map[string]float64{tGH: 500})
	set("tlsrps", map[string]float64{tLAN: 1000, tCaddyTLS: 900, tNginxTLS: 1000})
	set("hs", map[string]float64{tLAN: 700, tCaddyTLS: 800, tNginxTLS: 1000})
	r.tailnet = tailnetResult{oneNode: []float64{39}, perNode: []float64{3.5}, extra: 4, restarts: []float64{1, 1.1, 11.3}}

	got := map[string]check{}
	for _, c := range r.targets_() {
		name, _, _ := strings.Cut(c.text, ":")
		got[name] = c
	}
	for name, want := range map[string]string{
		"signed-in family route ≥ 0.95× open route rps (/1k)":               "missed",
		"signed-in family route ≤ 1.05× open route CPU/request (/1k)":       "met",
		"signed-in family route ≥ 0.95× open route rps (/64k)":              "met",
		"signed-in family route ≤ 1.05× open route CPU/request (/64k)":      "missed",
		"rate limiting on ≥ 0.97× route without limits rps (/1k)":           "met",
		"GET /1k CPU/request gatehouse ≤ 1.25× nginx":                       "missed",
		"WebSocket round trips/s gatehouse ≥ 1.0× nginx (one socket)":       "met",
		"WebSocket round trips/s gatehouse ≥ 1.0× nginx (32 sockets)":       "missed",
		"/blob download ≥ 0.8× direct MB/s":                                 "missed",
		"/blob download ≥ 0.95× a bare TCP relay's MB/s":                    "met",
		"HTTPS GET /1k rps, LAN door > 1.0× Caddy":                          "met",
		"HTTPS GET /1k rps, LAN door ≥ 0.8× nginx":                          "met",
		"new TLS handshakes/s, LAN door > 1.0× Caddy":                       "missed",
		"new TLS handshakes/s, LAN door ≥ 0.8× nginx":                       "missed",
		"idle RSS with one tailnet node ≤ 40 MiB":                           "met",
		"RSS per extra route node ≤ 3 MiB (4 extra)":                        "missed",
		"restarted tailnet node answers its peer within 3 s, every restart": "missed",
		"upload ≥ 0.95× direct MB/s":                                        "missed",
		"added p99 gatehouse ≤ Caddy's (ratio of added p99)":                "n/a",
		"GET /1k CPU/request gatehouse ≤ 1.25× nginx buffered":              "met",
		"zero failed or non-2xx responses through gatehouse":                "met",
		"GET /64k CPU/request gatehouse ≤ 0.75× Caddy":                      "met",
		"GET /1k rps gatehouse ≥ 0.8× nginx":                                "met",
		"GET /64k rps gatehouse ≥ 1.3× Caddy":                               "met",
		"GET /1k CPU/request gatehouse ≤ 0.75× Caddy":                       "met",
		"GET /64k rps gatehouse ≥ 0.8× nginx":                               "met",
		"GET /1k rps gatehouse ≥ 1.3× Caddy":                                "met",
	} {
		c, ok := got[name]
		if !ok {
			t.Errorf("the list has no %q", name)
			continue
		}
		verdict := "missed"
		switch {
		case c.na:
			verdict = "n/a"
		case c.ok:
			verdict = "met"
		}
		if verdict != want {
			t.Errorf("%s: %s, want %s", c.text, verdict, want)
		}
		if name == "/blob download ≥ 0.8× direct MB/s" && !strings.Contains(c.text, "the load core 97%, gatehouse's core 55%; during direct's, the load core 99%; at 400 µs of CPU per MiB one core carries 2621 MB/s, 26.21× direct's") {
			t.Errorf("the download target says which core set the pace: %s", c.text)
		}
		if name == "upload ≥ 0.95× direct MB/s" && !strings.Contains(c.text, "busy during gatehouse's uploads: the load core 100%, gatehouse's core 40%; during direct's, the load core 98%; at 500 µs of CPU per MiB one core carries 2097 MB/s, 20.97× direct's") {
			t.Errorf("the upload target says which core set the pace: %s", c.text)
		}
		if verdict == "missed" && !strings.Contains(c.text, "missed by") {
			t.Errorf("%s: a missed target says by how much", c.text)
		}
	}

	// A measurement that could not run says why.
	r.targets[tLAN].down = "did not start"
	r.tailnet = tailnetResult{down: "the in-process tailnet did not start"}
	for _, c := range r.targets_() {
		if strings.HasPrefix(c.text, "HTTPS") && (!c.na || !strings.Contains(c.text, "did not start")) {
			t.Errorf("with the LAN door down: %+v", c)
		}
		if (strings.HasPrefix(c.text, "idle RSS with one tailnet node") || strings.HasPrefix(c.text, "restarted tailnet node")) &&
			(!c.na || !strings.Contains(c.text, "tailnet did not start")) {
			t.Errorf("with the tailnet down: %+v", c)
		}
	}
}

// A round run twice books the mean of its rates and the worse of its
// reconnect counts; a round run once books its one value.
func TestPutMeanAndMax(t *testing.T) {
	r := &modeResult{rounds: 2, values: map[string]map[string][]float64{}}
	r.putMean("rps/1k", tGH, 0, 1000, 1)
	r.putMean("rps/1k", tGH, 0, 1100, 2)
	r.putMean("rps/1k", tGH, 1, 900, 1)
	r.putMax("conns/1k", tGH, 0, 2)
	r.putMax("conns/1k", tGH, 0, 1)
	if got := r.values["rps/1k"][tGH]; got[0] != 1050 || got[1] != 900 {
		t.Errorf("rps per round %v, want [1050 900]", got)
	}
	if got := r.value("conns/1k", tGH, 0); got != 2 {
		t.Errorf("conns %v, want the worse run's 2", got)
	}
}

// The relay's line compares gatehouse and nginx with the bare relay in
// each scenario the relay ran in, and is left out when it ran in none.
func TestRelayLine(t *testing.T) {
	r := &modeResult{rounds: 1, values: map[string]map[string][]float64{}, targets: map[string]*target{}}
	if got := r.relayLine(); got != "" {
		t.Errorf("without relay figures: %q, want nothing", got)
	}
	r.put("wscpu", tRelay, 0, 20)
	r.put("wscpu", tGH, 0, 22)
	r.put("wscpu", tNginx, 0, 15)
	got := r.relayLine()
	for _, want := range []string{"A WebSocket round trip on 32 sockets costs it 20.0 µs CPU (nginx 0.75", "gatehouse 1.10× the relay's"} {
		if !strings.Contains(got, want) {
			t.Errorf("relay line %q does not say %q", got, want)
		}
	}
	if strings.Contains(got, "/blob") || strings.Contains(got, "GET /1k") {
		t.Errorf("relay line %q speaks of scenarios the relay did not run in", got)
	}
}

// The restart target takes the worst restart, not the median: one page
// left waiting 11 s is the miss it is there to catch.
func TestRestartCheckTakesTheWorstRestart(t *testing.T) {
	for _, c := range []struct {
		restarts []float64
		down     string
		ok, na   bool
	}{
		{restarts: []float64{1, 1, 1, 1, 1, 1}, ok: true},
		{restarts: []float64{1, 1, 1, 1, 1, 3.1}},
		{restarts: []float64{1}, down: "gatehouse exited"},
		{na: true},
	} {
		got := restartCheck(tailnetResult{restarts: c.restarts, restartDown: c.down})
		if got.ok != c.ok || got.na != c.na {
			t.Errorf("%v (%q): %+v", c.restarts, c.down, got)
		}
		if c.down != "" && !strings.Contains(got.text, "restart 2 did not answer: gatehouse exited") {
			t.Errorf("a restart that failed is named, with why: %s", got.text)
		}
		if !c.ok && !c.na && c.down == "" && !strings.Contains(got.text, "worst of 6 3.1 s") {
			t.Errorf("a miss names the worst restart: %s", got.text)
		}
	}
}
