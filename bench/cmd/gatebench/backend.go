package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// blobSize is the size of /blob.
const blobSize = 256 << 20

// The backend behind every target: one listener per target (so connections,
// requests and TIME_WAIT can be told apart per proxy), all with the same
// handler, and a control listener for the counters.
//
//	/1k, /64k   fixed bodies with Content-Length
//	/blob       256 MiB of pattern bytes, Range support (http.ServeContent)
//	/upload     hashes the request body (SHA-256), answers {"bytes","sha256"}
//	/sse?n=N    N events, one every 100 ms, each carrying its send time
//	/ws         WebSocket echo
type portStats struct {
	Port int `json:"port"`
	// Served counts the connections that carried a request: the proxy's
	// pool reconnecting, not gatehouse's health check (a TCP connect
	// every 15 s by default).
	Served   int64 `json:"served"`
	Requests int64 `json:"requests"`
}

func backendMain(args []string) int {
	fs := flag.NewFlagSet("gatebench backend", flag.ExitOnError)
	n := fs.Int("ports", 1, "number of listeners on 127.0.0.1")
	portFile := fs.String("portfile", "", "write the ports here (JSON) once listening")
	fs.Parse(args)

	body1k := make([]byte, 1<<10)
	body64k := make([]byte, 64<<10)
	fillPattern(body1k, 0)
	fillPattern(body64k, 0)
	modTime := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

	mux := http.NewServeMux()
	fixed := func(b []byte) http.HandlerFunc {
		cl := strconv.Itoa(len(b))
		return func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"application/octet-stream"}
			h["Content-Length"] = []string{cl}
			w.Write(b)
		}
	}
	mux.HandleFunc("/1k", fixed(body1k))
	mux.HandleFunc("/64k", fixed(body64k))
	mux.HandleFunc("/blob", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "blob", modTime, newPatternReader(blobSize))
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		buf := make([]byte, 256<<10)
		n, err := io.CopyBuffer(h, r.Body, buf)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"bytes": n, "sha256": hex.EncodeToString(h.Sum(nil))})
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if n <= 0 {
			n = 10
		}
		f, ok := w.(http.Flusher)
		if !ok {
			http.Error(w, "no flusher", 500)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(200)
		f.Flush()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < n; i++ {
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
			fmt.Fprintf(w, "id: %d\ndata: %d\n\n", i, time.Now().UnixNano())
			f.Flush()
		}
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled,
		})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		ctx := r.Context()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				return
			}
		}
	})

	stats := make([]portStats, *n)
	requests := make([]atomic.Int64, *n)
	served := make([]atomic.Int64, *n)
	var ports []int
	for i := range *n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "backend:", err)
			return 1
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ports = append(ports, port)
		stats[i].Port = port
		cnt, conns := &requests[i], &served[i]
		var active sync.Map // net.Conn → struct{}: had a request
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cnt.Add(1)
			mux.ServeHTTP(w, r)
		}), ReadHeaderTimeout: 10 * time.Second, ConnState: func(c net.Conn, st http.ConnState) {
			switch st {
			case http.StateActive:
				if _, seen := active.LoadOrStore(c, struct{}{}); !seen {
					conns.Add(1)
				}
			case http.StateClosed, http.StateHijacked:
				active.Delete(c)
			}
		}}
		go srv.Serve(ln)
	}
	cln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		return 1
	}
	cmux := http.NewServeMux()
	cmux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		out := make([]portStats, len(stats))
		for i := range stats {
			out[i] = portStats{Port: stats[i].Port, Served: served[i].Load(), Requests: requests[i].Load()}
		}
		json.NewEncoder(w).Encode(out)
	})
	go http.Serve(cln, cmux)

	// The harness reads the ports from the port file.
	b, _ := json.Marshal(map[string]any{"ports": ports, "control": cln.Addr().(*net.TCPAddr).Port})
	if *portFile == "" {
		fmt.Println(string(b))
	} else if err := os.WriteFile(*portFile+".tmp", b, 0o644); err != nil || os.Rename(*portFile+".tmp", *portFile) != nil {
		fmt.Fprintln(os.Stderr, "backend: cannot write", *portFile)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return 0
}
